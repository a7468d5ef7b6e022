import { describe, expect, it } from 'vitest';
import { EVENT_DATA_SCHEMAS } from '../../model/events.js';
import { loadConfig } from '../../platform/config.js';
import { checkDedupRules, type DataSchemaVersion } from './rules.js';

// The shipped token kinds per field class.
const KINDS = loadConfig({ env: {} }).tokenization.kinds;

/** The registry port: canonical types, plus the given schemas as `x.custom.v1` versions. */
const check = (key: string[], custom: unknown[] = [], eventType = 'x.custom.v1') =>
  checkDedupRules([{ name: 'r', eventType, key, window: '1d', action: 'drop' }], {
    dataSchemas: (type): Promise<DataSchemaVersion[]> => {
      const canonical = (EVENT_DATA_SCHEMAS as Record<string, unknown>)[type];
      if (canonical !== undefined) return Promise.resolve([{ version: 1, schema: canonical }]);
      if (type !== 'x.custom.v1') return Promise.resolve([]);
      return Promise.resolve(
        custom.map((schema, i) => ({
          version: i + 1,
          schema,
          references: new Map<string, unknown>([
            ['money.json', { type: 'object', properties: { amount: { type: 'string' } } }],
          ]),
        })),
      );
    },
    tokenKinds: KINDS,
  });

const refusedFor = async (promise: Promise<void>) =>
  promise.then(
    () => 'accepted',
    (error: { extensions: { reason: string } }) => error.extensions.reason,
  );

describe('dedup rule keys against a data schema', () => {
  const schema = {
    type: 'object',
    properties: {
      labels: { type: 'object', additionalProperties: { type: 'string' } },
      attrs: { type: 'object', patternProperties: { '^x-': { type: 'integer' } } },
      pair: {
        type: 'array',
        prefixItems: [{ type: 'string' }, { type: 'object', properties: { n: {} } }],
        items: false,
      },
      price: { $ref: 'money.json' },
      local: { $ref: '#/$defs/local' },
      open: { type: 'object' },
    },
    allOf: [{ properties: { fromAllOf: { type: 'string' } } }],
    oneOf: [
      { properties: { kind: { const: 'a' }, a: {} } },
      { properties: { kind: { const: 'b' }, b: {} } },
    ],
    $defs: {
      local: { type: 'object', properties: { deep: { type: 'object', properties: { er: {} } } } },
    },
  };

  it('follows maps, tuples, $ref (local and registry references) and every branch', async () => {
    for (const key of [
      '/data/labels/anything',
      '/data/attrs/x-colour',
      '/data/pair/0',
      '/data/pair/1/n',
      '/data/price/amount',
      '/data/local/deep/er',
      '/data/fromAllOf',
      '/data/a',
      '/data/b',
      '/data',
      '/id',
      '/partitionkey',
    ]) {
      expect([key, await refusedFor(check([key], [schema]))]).toEqual([key, 'accepted']);
    }
    for (const key of [
      '/data/attrs/colour',
      '/data/pair/2',
      '/data/pair/1/m',
      '/data/price/currency',
      '/data/local/deep/est',
      '/data/c',
      // An open object's undeclared fields: nothing says an event carries them.
      '/data/open/anything',
      '/data/labels/a/b',
      '/dat',
      '/data/',
    ]) {
      expect([key, await refusedFor(check([key], [schema]))]).toEqual([
        key,
        'DEDUP_KEY_UNKNOWN_FIELD',
      ]);
    }
  });

  it('takes a field any registered version declares', async () => {
    const v1 = { type: 'object', properties: { a: {} } };
    const v2 = { type: 'object', properties: { a: {}, b: {} } };
    expect(await refusedFor(check(['/data/b'], [v1, v2]))).toBe('accepted');
    expect(await refusedFor(check(['/data/b'], [v1]))).toBe('DEDUP_KEY_UNKNOWN_FIELD');
  });

  it('minds personal data only where the hub tokenizes it', async () => {
    // A registered type's data is published as sent: its x-pii marks do not make tokens.
    const custom = { type: 'object', properties: { name: { type: 'string', 'x-pii': 'name' } } };
    expect(await refusedFor(check(['/data/name'], [custom]))).toBe('accepted');
    // The whole data of a customer contains names: vault tokens inside never repeat.
    expect(await refusedFor(check(['/data'], [], 'customer.registered.v1'))).toBe(
      'DEDUP_KEY_RANDOM_TOKEN',
    );
    expect(
      await refusedFor(check(['/data/contactPoints/0/type'], [], 'customer.registered.v1')),
    ).toBe('accepted');
    expect(
      await refusedFor(check(['/data/lines/0/delivery/locationId'], [], 'order.placed.v1')),
    ).toBe('accepted');
    expect(await refusedFor(check(['/data/lines/0/delivery'], [], 'order.placed.v1'))).toBe(
      'DEDUP_KEY_RANDOM_TOKEN',
    );
  });
});
