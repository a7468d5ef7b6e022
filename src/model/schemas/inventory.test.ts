import { describe, it, expect } from 'vitest';
import {
  INVENTORY_MOVEMENT_REASONS,
  InventoryLevel,
  InventoryMovementReason,
  Reservation,
} from './inventory.js';

import { expectRejected, makeAjv, without, type InvalidCase } from '../../../test/support/schemas.js';

const ajv = makeAjv();
const validateLevel = ajv.compile<InventoryLevel>(InventoryLevel);
const validateReservation = ajv.compile<Reservation>(Reservation);
const validateReason = ajv.compile<InventoryMovementReason>(InventoryMovementReason);

const level: InventoryLevel = {
  sku: 'RUN-42-BLU',
  locationId: 'DE-BER-001',
  onHand: 14,
  reserved: 3,
  safetyStock: 2,
  available: 9,
  version: 57,
  updatedAt: '2024-06-01T09:41:07.123Z',
};

const reservation: Reservation = {
  id: 'res_01HZX4A7',
  sku: 'RUN-42-BLU',
  locationId: 'DE-BER-001',
  quantity: 2,
  channel: 'web',
  marketCode: 'DE',
  reference: { type: 'cart', id: 'cart-8f3a2c' },
  status: 'active',
  expiresAt: '2024-06-01T10:11:07Z',
  createdAt: '2024-06-01T09:41:07Z',
};

const invalidLevels: InvalidCase[] = [
  {
    name: 'unknown field',
    data: { ...level, inTransit: 4 },
    instancePath: '',
    keyword: 'additionalProperties',
  },
  {
    name: 'missing updatedAt',
    data: without(level, 'updatedAt'),
    instancePath: '',
    keyword: 'required',
  },
  {
    name: 'float onHand',
    data: { ...level, onHand: 14.5 },
    instancePath: '/onHand',
    keyword: 'type',
  },
  {
    name: 'onHand as a string',
    data: { ...level, onHand: '14' },
    instancePath: '/onHand',
    keyword: 'type',
  },
  {
    name: 'negative reserved',
    data: { ...level, reserved: -1 },
    instancePath: '/reserved',
    keyword: 'minimum',
  },
  {
    name: 'negative safety stock',
    data: { ...level, safetyStock: -2 },
    instancePath: '/safetyStock',
    keyword: 'minimum',
  },
  {
    name: 'version 0',
    data: { ...level, version: 0 },
    instancePath: '/version',
    keyword: 'minimum',
  },
  {
    name: 'sku with a space',
    data: { ...level, sku: 'RUN 42' },
    instancePath: '/sku',
    keyword: 'pattern',
  },
];

const invalidReservations: InvalidCase[] = [
  {
    name: 'unknown field',
    data: { ...reservation, priority: 1 },
    instancePath: '',
    keyword: 'additionalProperties',
  },
  {
    name: 'missing createdAt',
    data: without(reservation, 'createdAt'),
    instancePath: '',
    keyword: 'required',
  },
  {
    name: 'zero quantity',
    data: { ...reservation, quantity: 0 },
    instancePath: '/quantity',
    keyword: 'minimum',
  },
  {
    name: 'float quantity',
    data: { ...reservation, quantity: 2.5 },
    instancePath: '/quantity',
    keyword: 'type',
  },
  {
    name: 'unknown status',
    data: { ...reservation, status: 'pending' },
    instancePath: '/status',
    keyword: 'anyOf',
  },
  {
    name: 'unknown channel',
    data: { ...reservation, channel: 'kiosk' },
    instancePath: '/channel',
    keyword: 'anyOf',
  },
  {
    name: 'unknown reference type',
    data: { ...reservation, reference: { type: 'wishlist', id: 'w1' } },
    instancePath: '/reference/type',
    keyword: 'anyOf',
  },
  {
    name: 'reference without id',
    data: { ...reservation, reference: { type: 'order' } },
    instancePath: '/reference',
    keyword: 'required',
  },
  {
    name: 'expiresAt that is not a timestamp',
    data: { ...reservation, expiresAt: 'in 30 minutes' },
    instancePath: '/expiresAt',
    keyword: 'format',
  },
];

describe('InventoryLevel schema', () => {
  it('compiles under ajv strict mode and accepts a realistic level', () => {
    expect(validateLevel(level), JSON.stringify(validateLevel.errors)).toBe(true);
  });

  it('accepts negative onHand and available (offline POS sales, safety stock)', () => {
    const oversold = { ...level, onHand: -1, reserved: 0, safetyStock: 2, available: -3 };
    expect(validateLevel(oversold), JSON.stringify(validateLevel.errors)).toBe(true);
  });

  it.each(invalidLevels)('rejects $name at "$instancePath" ($keyword)', (c) => expectRejected(validateLevel, c));
});

describe('Reservation schema', () => {
  it('compiles under ajv strict mode and accepts a realistic reservation', () => {
    expect(validateReservation(reservation), JSON.stringify(validateReservation.errors)).toBe(true);
  });

  it('accepts a reservation without the optional fields', () => {
    const minimal = without(without(without(reservation, 'marketCode'), 'reference'), 'expiresAt');
    expect(validateReservation({ ...minimal, status: 'committed' })).toBe(true);
  });

  it.each(invalidReservations)('rejects $name at "$instancePath" ($keyword)', (c) => expectRejected(validateReservation, c));
});

describe('InventoryMovementReason schema', () => {
  it.each(INVENTORY_MOVEMENT_REASONS)('accepts %s', (reason) => {
    expect(validateReason(reason)).toBe(true);
  });

  it.each(['theft', 'SALE', '', 3])('rejects %s', (reason) => {
    expect(validateReason(reason)).toBe(false);
  });
});

describe('inventory schemas', () => {
  it('carry no personal data', () => {
    for (const schema of [InventoryLevel, Reservation, InventoryMovementReason]) {
      expect(JSON.stringify(schema)).not.toContain('x-pii');
    }
  });
});
