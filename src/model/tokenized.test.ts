import { describe, expect, it } from 'vitest';
import { makeAjv } from '../../test/support/schemas.js';
import { countPii, piiPaths } from './pii.js';
import { Customer } from './schemas/customer.js';
import { Order } from './schemas/order.js';
import { hasPii, inboundFormOf, tokenFormOf } from './tokenized.js';

const ADDRESS = { line1: 'Main St 1', postalCode: '10115', city: 'Berlin', country: 'DE' };
const order = (address: unknown) => ({
  id: 'O-1',
  marketCode: 'DE',
  channel: 'web',
  currency: 'EUR',
  placedAt: '2026-11-28T10:00:00.000Z',
  status: 'placed',
  lines: [
    {
      lineId: '1',
      sku: 'S-1',
      quantity: 1,
      unitPrice: { currency: 'EUR', amount: '1.00' },
      lineTotal: { currency: 'EUR', amount: '1.00' },
      delivery: { mode: 'ship-to-address', address },
    },
  ],
  totals: {
    subtotal: { currency: 'EUR', amount: '1.00' },
    shipping: { currency: 'EUR', amount: '0.00' },
    tax: { currency: 'EUR', amount: '0.16' },
    grandTotal: { currency: 'EUR', amount: '1.00' },
  },
});

describe('tokenFormOf', () => {
  const tokenOrder = tokenFormOf(Order);
  const validate = makeAjv().compile(tokenOrder);

  it('gets its own $id and title, and keeps the x-pii marks where they were', () => {
    expect(tokenOrder.$id).toBe('https://schemas.nexus-hub.dev/order-token-form/v1.json');
    expect(tokenOrder.title).toBe('OrderTokenForm');
    expect(piiPaths(tokenOrder).sort()).toEqual(piiPaths(Order).sort());
    expect(countPii(tokenFormOf(Customer))).toBe(countPii(Customer));
    expect(Order.$id).toBe('https://schemas.nexus-hub.dev/order/v1.json'); // not mutated
  });

  it('accepts a token (any kind) or a mask of the class where the clear value was, and nothing else', () => {
    for (const token of [
      'tok_v1_address_AAAAAAAAAAAAAAAAAAAAAAAA',
      'tok_c12_address_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      '***',
    ]) {
      expect(validate(order(token)), JSON.stringify(validate.errors)).toBe(true);
    }
    for (const bad of [ADDRESS, 'Main St 1, Berlin', 'tok_v1_email_AAAAAAAAAAAAAAAAAAAAAAAA']) {
      expect(validate(order(bad))).toBe(false);
    }
  });

  it('leaves the rest of the schema alone', () => {
    const data = order('tok_v1_address_AAAAAAAAAAAAAAAAAAAAAAAA');
    expect(validate({ ...data, currency: 'euro' })).toBe(false);
    expect(validate({ ...data, extra: 1 })).toBe(false);
  });
});

describe('inboundFormOf', () => {
  it('accepts the clear value or a token at each personal data position', () => {
    const validate = makeAjv().compile(inboundFormOf(Order));
    expect(validate(order(ADDRESS))).toBe(true);
    expect(validate(order('tok_v1_address_AAAAAAAAAAAAAAAAAAAAAAAA'))).toBe(true);
    expect(validate(order({ ...ADDRESS, country: 'Germany' }))).toBe(false);
  });
});

describe('hasPii', () => {
  it('tells schemas with personal data from those without', () => {
    expect(hasPii(Customer)).toBe(true);
    expect(hasPii({ type: 'object', properties: { a: { type: 'string' } } })).toBe(false);
  });
});
