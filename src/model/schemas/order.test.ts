import { describe, it, expect } from 'vitest';
import { Order, type OrderLine, OrderResource } from './order.js';

import { expectRejected, makeAjv, without, type InvalidCase } from '../../../test/support/schemas.js';
import { countPii, piiPaths } from '../pii.js';

const ajv = makeAjv();
const validateOrder = ajv.compile<Order>(Order);
const validateOrderResource = ajv.compile<OrderResource>(OrderResource);

const eur = (amount: string) => ({ currency: 'EUR', amount });
const homeAddress = {
  line1: 'Torstraße 1',
  postalCode: '10119',
  city: 'Berlin',
  region: 'Berlin',
  country: 'DE',
};

const shipped: OrderLine = {
  lineId: '1',
  sku: 'RUN-42-BLU',
  quantity: 2,
  unitPrice: eur('89.95'),
  lineTotal: eur('179.90'),
  delivery: { mode: 'ship-to-address', address: homeAddress },
};
const pickup: OrderLine = {
  lineId: '2',
  sku: 'SOCK-3P-M',
  quantity: 1,
  unitPrice: eur('12.99'),
  lineTotal: eur('12.99'),
  delivery: { mode: 'pickup-in-store', locationId: 'DE-BER-001' },
};
const sameDay: OrderLine = {
  lineId: '3',
  sku: 'BOTTLE-750',
  quantity: 1,
  unitPrice: eur('15.00'),
  lineTotal: eur('15.00'),
  delivery: {
    mode: 'same-day',
    address: { ...homeAddress, line2: 'c/o Müller' },
    window: { from: '2024-06-01T16:00:00+02:00', to: '2024-06-01T18:00:00+02:00' },
  },
};

const valid: Order = {
  id: 'ORD-DE-2024-000123',
  marketCode: 'DE',
  channel: 'web',
  customerId: 'cus_01HZX3K9QF',
  currency: 'EUR',
  placedAt: '2024-06-01T09:41:07.123Z',
  status: 'placed',
  lines: [shipped, pickup, sameDay],
  totals: {
    subtotal: eur('207.89'),
    shipping: eur('4.95'),
    tax: eur('33.98'),
    grandTotal: eur('212.84'),
  },
  externalReferences: [
    { system: 'shopify', id: '5123456789' },
    { system: 'sap-erp', id: '0004500123' },
  ],
};

const meta = { version: 1, createdAt: '2024-06-01T09:41:08Z', updatedAt: '2024-06-01T09:41:08Z' };

const withLine = (line: Record<string, unknown>) => ({ ...valid, lines: [line] });

const invalid: InvalidCase[] = [
  {
    name: 'unknown top-level field',
    data: { ...valid, coupon: 'SUMMER' },
    instancePath: '',
    keyword: 'additionalProperties',
  },
  { name: 'missing totals', data: without(valid, 'totals'), instancePath: '', keyword: 'required' },
  { name: 'no lines', data: { ...valid, lines: [] }, instancePath: '/lines', keyword: 'minItems' },
  {
    name: 'more than 1000 lines',
    data: { ...valid, lines: Array.from({ length: 1001 }, () => pickup) },
    instancePath: '/lines',
    keyword: 'maxItems',
  },
  {
    name: 'unknown status',
    data: { ...valid, status: 'shipped' },
    instancePath: '/status',
    keyword: 'anyOf',
  },
  {
    name: 'placedAt without time zone',
    data: { ...valid, placedAt: '2024-06-01 09:41' },
    instancePath: '/placedAt',
    keyword: 'format',
  },
  {
    name: 'customerId of the wrong type',
    data: { ...valid, customerId: 42 },
    instancePath: '/customerId',
    keyword: 'type',
  },
  {
    name: 'float quantity',
    data: withLine({ ...shipped, quantity: 1.5 }),
    instancePath: '/lines/0/quantity',
    keyword: 'type',
  },
  {
    name: 'zero quantity',
    data: withLine({ ...shipped, quantity: 0 }),
    instancePath: '/lines/0/quantity',
    keyword: 'minimum',
  },
  {
    name: 'quantity above 100000',
    data: withLine({ ...shipped, quantity: 100001 }),
    instancePath: '/lines/0/quantity',
    keyword: 'maximum',
  },
  {
    name: 'amount with six decimals',
    data: withLine({ ...shipped, unitPrice: eur('12.999999') }),
    instancePath: '/lines/0/unitPrice/amount',
    keyword: 'pattern',
  },
  {
    name: 'amount as a number',
    data: withLine({ ...shipped, lineTotal: { currency: 'EUR', amount: 179.9 } }),
    instancePath: '/lines/0/lineTotal/amount',
    keyword: 'type',
  },
  {
    name: 'amount with a decimal comma',
    data: { ...valid, totals: { ...valid.totals, tax: eur('33,98') } },
    instancePath: '/totals/tax/amount',
    keyword: 'pattern',
  },
  {
    name: 'lower-case currency in money',
    data: {
      ...valid,
      totals: { ...valid.totals, grandTotal: { currency: 'eur', amount: '1.00' } },
    },
    instancePath: '/totals/grandTotal/currency',
    keyword: 'pattern',
  },
  {
    name: 'missing tax in totals',
    data: { ...valid, totals: without(valid.totals, 'tax') },
    instancePath: '/totals',
    keyword: 'required',
  },
  {
    name: 'unknown delivery mode',
    data: withLine({ ...shipped, delivery: { mode: 'drone', address: homeAddress } }),
    instancePath: '/lines/0/delivery/mode',
    keyword: 'const',
  },
  {
    name: 'pickup-in-store with an address instead of a location',
    data: withLine({ ...pickup, delivery: { mode: 'pickup-in-store', address: homeAddress } }),
    instancePath: '/lines/0/delivery',
    keyword: 'required',
  },
  {
    name: 'ship-to-address with a location id',
    data: withLine({
      ...shipped,
      delivery: { mode: 'ship-to-address', address: homeAddress, locationId: 'DE-BER-001' },
    }),
    instancePath: '/lines/0/delivery',
    keyword: 'additionalProperties',
  },
  {
    name: 'ship-to-address without a country',
    data: withLine({
      ...shipped,
      delivery: { mode: 'ship-to-address', address: without(homeAddress, 'country') },
    }),
    instancePath: '/lines/0/delivery/address',
    keyword: 'required',
  },
  {
    name: 'same-day window with a bad timestamp',
    data: withLine({
      ...sameDay,
      delivery: { mode: 'same-day', address: homeAddress, window: { from: '16:00', to: '18:00' } },
    }),
    instancePath: '/lines/0/delivery/window/from',
    keyword: 'format',
  },
  {
    name: 'same-day window without an end',
    data: withLine({
      ...sameDay,
      delivery: {
        mode: 'same-day',
        address: homeAddress,
        window: { from: '2024-06-01T16:00:00Z' },
      },
    }),
    instancePath: '/lines/0/delivery/window',
    keyword: 'required',
  },
  {
    name: 'external reference without id',
    data: { ...valid, externalReferences: [{ system: 'shopify' }] },
    instancePath: '/externalReferences/0',
    keyword: 'required',
  },
];

describe('Order schema', () => {
  it('compiles under ajv strict mode and accepts a realistic order', () => {
    expect(validateOrder(valid), JSON.stringify(validateOrder.errors)).toBe(true);
  });

  it('accepts a guest POS order without the optional fields', () => {
    const guest = {
      ...without(without(valid, 'customerId'), 'externalReferences'),
      channel: 'pos',
    };
    expect(validateOrder({ ...guest, lines: [pickup] }), JSON.stringify(validateOrder.errors)).toBe(
      true,
    );
  });

  it("defaults status to 'placed'", () => {
    expect(Order.properties.status.default).toBe('placed');
  });

  it.each(invalid)('rejects $name at "$instancePath" ($keyword)', (c) => expectRejected(validateOrder, c));

  it('OrderResource accepts an order with its meta and needs the meta', () => {
    expect(validateOrderResource({ ...valid, ...meta })).toBe(true);
    expect(validateOrderResource({ ...valid, ...meta, version: 0 })).toBe(false);
    expect(validateOrderResource.errors).toContainEqual(
      expect.objectContaining({ instancePath: '/version', keyword: 'minimum' }),
    );
  });

  it('marks exactly the delivery addresses with x-pii', () => {
    const expected = [
      '/lines/*/delivery[mode=ship-to-address]/address address',
      '/lines/*/delivery[mode=same-day]/address address',
    ].sort();
    expect(piiPaths(Order).sort()).toEqual(expected);
    expect(countPii(Order)).toBe(expected.length);
    expect(piiPaths(OrderResource).sort()).toEqual(expected);
    expect(countPii(OrderResource)).toBe(expected.length);
  });
});
