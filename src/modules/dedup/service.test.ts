import { describe, expect, it } from 'vitest';
import { EVENT_DATA_SCHEMAS } from '../../model/events.js';
import { piiPaths } from '../../model/pii.js';
import { canonicalJson, reachesPersonalData, valueAt, windowMs } from './service.js';

describe('business keys', () => {
  const envelope = {
    id: 'e-1',
    market: 'DE',
    data: {
      'a/b': 1,
      'm~n': 2,
      lines: [{ sku: 'P-1' }],
      externalReferences: [{ system: 'shop-de', id: 'W-1' }],
    },
  };

  it('reads JSON Pointers into the envelope (RFC 6901)', () => {
    expect(valueAt(envelope, '/market')).toBe('DE');
    expect(valueAt(envelope, '/data/externalReferences/0/id')).toBe('W-1');
    expect(valueAt(envelope, '/data/a~1b')).toBe(1);
    expect(valueAt(envelope, '/data/m~0n')).toBe(2);
    expect(valueAt(envelope, '/data/lines/1/sku')).toBeUndefined();
    expect(valueAt(envelope, '/data/lines/01/sku')).toBeUndefined();
    expect(valueAt(envelope, '/data/lines/-')).toBeUndefined();
    expect(valueAt(envelope, '/data/nothing/deeper')).toBeUndefined();
    expect(valueAt(envelope, '/data/toString')).toBeUndefined();
  });

  it('hashes key values canonically: object keys in any order, types kept apart', () => {
    expect(canonicalJson([{ b: 1, a: [2, { d: 3, c: 4 }] }])).toBe(
      canonicalJson([{ a: [2, { c: 4, d: 3 }], b: 1 }]),
    );
    expect(canonicalJson(['1001', 'T3'])).toBe(JSON.stringify(['1001', 'T3']));
    expect(canonicalJson([1001])).not.toBe(canonicalJson(['1001']));
  });

  it('reads windows as text or milliseconds', () => {
    expect(windowMs('90s')).toBe(90_000);
    expect(windowMs('72h')).toBe(72 * 3_600_000);
    expect(windowMs('30d')).toBe(30 * 86_400_000);
    expect(windowMs('250ms')).toBe(250);
    expect(windowMs(5000)).toBe(5000);
    expect(() => windowMs('a week')).toThrow(/not a window/);
  });

  it('knows which key pointers reach personal data in the canonical schemas', () => {
    const order = piiPaths(EVENT_DATA_SCHEMAS['order.placed.v1']);
    const customer = piiPaths(EVENT_DATA_SCHEMAS['customer.registered.v1']);
    expect(reachesPersonalData('/data/lines/0/delivery/address', order)).toBe(true);
    expect(reachesPersonalData('/data/lines/3/delivery/address/city', order)).toBe(true);
    // A pointer to something that contains personal data reaches it too.
    expect(reachesPersonalData('/data/lines/0/delivery', order)).toBe(true);
    expect(reachesPersonalData('/data', order)).toBe(true);
    expect(reachesPersonalData('/data/lines/0/sku', order)).toBe(false);
    expect(reachesPersonalData('/data/externalReferences/0/id', order)).toBe(false);
    expect(reachesPersonalData('/data/id', order)).toBe(false);
    expect(reachesPersonalData('/market', order)).toBe(false);
    expect(reachesPersonalData('/data/contactPoints/0/value', customer)).toBe(true);
    expect(reachesPersonalData('/data/names/given', customer)).toBe(true);
    expect(reachesPersonalData('/data/birthDate', customer)).toBe(true);
    expect(reachesPersonalData('/data/contactPoints/0/type', customer)).toBe(false);
    expect(reachesPersonalData('/data/id', customer)).toBe(false);
    expect(
      reachesPersonalData('/data/locationId', piiPaths(EVENT_DATA_SCHEMAS['pos.sale.recorded.v1'])),
    ).toBe(false);
  });
});
