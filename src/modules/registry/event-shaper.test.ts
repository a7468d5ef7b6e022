import { describe, expect, it } from 'vitest';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { JsonSchema } from './compatibility.js';
import { registryErrors } from './errors.js';
import {
  RegistryEventShaper,
  ReshapeError,
  createDowncaster,
  downcast,
  encodeHeaderValue,
  upcast,
  type RegistryReader,
} from './event-shaper.js';
import type { RegisteredSchema } from './service.js';
import { decodeWire } from './wire-format.js';

/** Runs `fn`, expecting a ReshapeError; returns it. */
function refused(fn: () => unknown): ReshapeError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ReshapeError);
    return error as ReshapeError;
  }
  throw new Error('expected a ReshapeError, nothing was thrown');
}

const closed = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

describe('downcast', () => {
  it('drops a top-level optional field the older version does not have', () => {
    const v1 = closed({ code: { type: 'string' }, name: { type: 'string' } }, ['code']);
    const v2 = closed(
      { code: { type: 'string' }, name: { type: 'string' }, loyalty: { type: 'string' } },
      ['code'],
    );
    const data = { code: 'DE', name: 'Germany', loyalty: 'gold' };
    expect(downcast(data, v2, v1)).toEqual({ code: 'DE', name: 'Germany' });
    // The input is not modified.
    expect(data).toEqual({ code: 'DE', name: 'Germany', loyalty: 'gold' });
  });

  it('drops added fields in nested objects and in array items', () => {
    const line1 = closed({ sku: { type: 'string' }, qty: { type: 'integer' } }, ['sku', 'qty']);
    const line2 = closed(
      { sku: { type: 'string' }, qty: { type: 'integer' }, note: { type: 'string' } },
      ['sku', 'qty'],
    );
    const v1 = closed({
      address: closed({ street: { type: 'string' } }),
      lines: { type: 'array', items: line1 },
    });
    const v2 = closed({
      address: closed({ street: { type: 'string' }, floor: { type: 'integer' } }),
      lines: { type: 'array', items: line2 },
      tags: { type: 'array', items: { type: 'string' } },
    });
    const data = {
      address: { street: 'Hauptstr. 1', floor: 3 },
      lines: [
        { sku: 'A', qty: 1, note: 'gift' },
        { sku: 'B', qty: 2 },
      ],
      tags: ['x'],
    };
    expect(downcast(data, v2, v1)).toEqual({
      address: { street: 'Hauptstr. 1' },
      lines: [
        { sku: 'A', qty: 1 },
        { sku: 'B', qty: 2 },
      ],
    });
  });

  it('follows $ref into $defs and to registry references', () => {
    const v1 = {
      type: 'object',
      properties: { line: { $ref: '#/$defs/line' }, store: { $ref: 'store.json' } },
      additionalProperties: false,
      $defs: { line: closed({ sku: { type: 'string' } }) },
    };
    const v2 = {
      ...v1,
      $defs: { line: closed({ sku: { type: 'string' }, colour: { type: 'string' } }) },
    };
    const store1 = closed({ id: { type: 'string' } });
    const store2 = closed({ id: { type: 'string' }, region: { type: 'string' } });
    const data = { line: { sku: 'A', colour: 'red' }, store: { id: 'S1', region: 'N' } };
    expect(
      downcast(data, v2, v1, {
        fromReferences: new Map([['store.json', store2]]),
        toReferences: new Map([['store.json', store1]]),
      }),
    ).toEqual({ line: { sku: 'A' }, store: { id: 'S1' } });
  });

  it('follows a $ref to a $id inside the document (TypeBox Type.Ref style)', () => {
    const v1 = {
      $id: 'https://example.com/order.json',
      type: 'object',
      properties: { customer: { $ref: 'https://example.com/customer.json' } },
      $defs: {
        customer: {
          $id: 'https://example.com/customer.json',
          ...closed({ id: { type: 'string' } }),
        },
      },
      additionalProperties: false,
    };
    const v2 = {
      ...v1,
      $defs: {
        customer: {
          $id: 'https://example.com/customer.json',
          ...closed({ id: { type: 'string' }, tier: { type: 'string' } }),
        },
      },
    };
    expect(downcast({ customer: { id: 'C', tier: 'gold' } }, v2, v1)).toEqual({
      customer: { id: 'C' },
    });
  });

  it('open content model: drops what the newer version added, keeps undeclared open content', () => {
    const v1 = { type: 'object', properties: { a: { type: 'string' } } };
    const v2 = { type: 'object', properties: { a: { type: 'string' }, b: { type: 'integer' } } };
    expect(downcast({ a: 'x', b: 1, extra: true }, v2, v1)).toEqual({ a: 'x', extra: true });
  });

  it('closed content model: drops every property the older version does not declare', () => {
    const v1 = closed({ a: { type: 'string' } });
    const v2 = { type: 'object', properties: { a: { type: 'string' } } }; // opened
    expect(downcast({ a: 'x', extra: true }, v2, v1)).toEqual({ a: 'x' });
  });

  it('keeps properties matched by patternProperties of the older version', () => {
    const v1 = { type: 'object', patternProperties: { '^x-': {} }, additionalProperties: false };
    const v2 = {
      type: 'object',
      properties: { name: { type: 'string' } },
      patternProperties: { '^x-': {} },
      additionalProperties: false,
    };
    expect(downcast({ name: 'n', 'x-a': 1 }, v2, v1)).toEqual({ 'x-a': 1 });
  });

  it('leaves a free-form value of the older version as it is', () => {
    const v1 = closed({ metadata: {} });
    const v2 = closed({ metadata: { type: 'object', properties: { a: { type: 'string' } } } });
    expect(downcast({ metadata: { a: 'x', b: 2 } }, v2, v1)).toEqual({
      metadata: { a: 'x', b: 2 },
    });
  });

  it('picks the matching branch of a discriminated union', () => {
    const branch = (kind: string, extra: Record<string, unknown> = {}) =>
      closed({ kind: { const: kind }, value: { type: 'string' }, ...extra }, ['kind']);
    const v1 = { anyOf: [branch('a'), branch('b', { size: { type: 'integer' } })] };
    const v2 = {
      anyOf: [
        branch('a', { note: { type: 'string' } }),
        branch('b', { size: { type: 'integer' } }),
      ],
    };
    expect(downcast({ kind: 'a', value: 'v', note: 'n' }, v2, v1)).toEqual({
      kind: 'a',
      value: 'v',
    });
    expect(downcast({ kind: 'b', size: 2 }, v2, v1)).toEqual({ kind: 'b', size: 2 });
  });

  it('refuses when the older version requires a field the newer one dropped, naming the path', () => {
    const v1 = {
      type: 'object',
      properties: {
        item: closed({ sku: { type: 'string' }, legacy: { type: 'string' } }, ['sku', 'legacy']),
      },
    };
    const v2 = {
      type: 'object',
      properties: { item: closed({ sku: { type: 'string' } }, ['sku']) },
    };
    const error = refused(() => downcast({ item: { sku: 'A' } }, v2, v1));
    expect(error.permanent).toBe(true);
    expect(error.errors).toEqual([{ pointer: '/item/legacy', detail: 'is required' }]);
    expect(error.message).toContain('/item/legacy is required');
  });

  it('refuses a type the older version does not allow', () => {
    const v1 = closed({ lines: { type: 'array', items: closed({ qty: { type: 'integer' } }) } });
    const v2 = closed({ lines: { type: 'array', items: closed({ qty: { type: 'number' } }) } });
    const error = refused(() => downcast({ lines: [{ qty: 1 }, { qty: 1.5 }] }, v2, v1));
    expect(error.errors).toEqual([{ pointer: '/lines/1/qty', detail: 'must be integer' }]);
  });

  it('refuses a value of an enum the older version does not have (enum and anyOf of consts)', () => {
    const v1 = closed({ status: { enum: ['active', 'inactive'] } });
    const v2 = closed({ status: { enum: ['active', 'inactive', 'archived'] } });
    expect(downcast({ status: 'active' }, v2, v1)).toEqual({ status: 'active' });
    const error = refused(() => downcast({ status: 'archived' }, v2, v1));
    expect(error.errors).toEqual([
      { pointer: '/status', detail: 'must be one of "active", "inactive"' },
    ]);

    const literal = (...values: string[]) => ({
      anyOf: values.map((v) => ({ const: v, type: 'string' })),
    });
    const t1 = closed({ status: literal('active', 'inactive') });
    const t2 = closed({ status: literal('active', 'inactive', 'archived') });
    const typebox = refused(() => downcast({ status: 'archived' }, t2, t1));
    expect(typebox.message).toContain('/status must be one of "active", "inactive"');
  });

  it('compiles once and reshapes many', () => {
    const v1 = closed({ a: { type: 'string' } });
    const v2 = closed({ a: { type: 'string' }, b: { type: 'string' } });
    const reshape = createDowncaster(v2, v1);
    for (let i = 0; i < 3; i++) expect(reshape({ a: `${i}`, b: 'x' })).toEqual({ a: `${i}` });
  });
});

describe('upcast', () => {
  const v1 = closed({ code: { type: 'string' } }, ['code']);

  it('passes data unchanged when the newer version only added optional fields', () => {
    const v2 = closed({ code: { type: 'string' }, loyalty: { type: 'string' } }, ['code']);
    const data = { code: 'DE' };
    expect(upcast(data, v1, v2)).toBe(data);
  });

  it('refuses when the newer version made a field required, naming the path', () => {
    const v2 = closed({ code: { type: 'string' }, region: { type: 'string' } }, ['code', 'region']);
    const error = refused(() => upcast({ code: 'DE' }, v1, v2));
    expect(error.errors).toEqual([{ pointer: '/region', detail: 'is required' }]);
    expect(error.message).toContain('newer schema: /region is required');
  });

  it('refuses open content of the older version that the newer one declares otherwise', () => {
    const open1 = { type: 'object', properties: { code: { type: 'string' } } };
    const v2 = {
      type: 'object',
      properties: { code: { type: 'string' }, size: { type: 'integer' } },
    };
    expect(() => upcast({ code: 'DE', size: 'L' }, open1, v2)).toThrow(/\/size must be integer/);
  });
});

// --- the shaper ----------------------------------------------------------------------------

const marketV1 = closed({ code: { type: 'string' }, name: { type: 'string' } }, ['code']);
const marketV2 = closed(
  { code: { type: 'string' }, name: { type: 'string' }, loyalty: { type: 'string' } },
  ['code'],
);
const marketV3 = closed(
  {
    code: { type: 'string' },
    name: { type: 'string' },
    loyalty: { type: 'string' },
    region: { type: 'string' },
  },
  ['code', 'region'],
);

/** A registry with one subject and three versions (ids 11, 12, 13). */
function fakeRegistry() {
  const versions: Array<{ schema: JsonSchema; id: number }> = [
    { schema: marketV1, id: 11 },
    { schema: marketV2, id: 12 },
    { schema: marketV3, id: 13 },
  ];
  const calls: string[] = [];
  const registry: RegistryReader = {
    getVersion(subject: string, version: string): Promise<RegisteredSchema> {
      calls.push(`${subject}/${version}`);
      if (subject !== 'market.updated.v1')
        return Promise.reject(registryErrors.subjectNotFound(subject));
      const n = version === 'latest' ? versions.length : Number(version);
      const found = versions[n - 1];
      if (!found) return Promise.reject(registryErrors.versionNotFound(subject, version));
      return Promise.resolve({
        subject,
        id: found.id,
        version: n,
        schemaType: 'JSON',
        schema: JSON.stringify(found.schema),
      });
    },
  };
  return { registry, calls };
}

const envelope = (version: number | 'latest', data: unknown): EventEnvelope => ({
  specversion: '1.0',
  id: '0190d1f2-0000-7000-8000-000000000001',
  source: '//nexus/hub',
  type: 'market.updated.v1',
  subject: 'market/DE',
  time: '2026-01-02T03:04:05.000Z',
  datacontenttype: 'application/json',
  dataschema: `/registry/subjects/market.updated.v1/versions/${version}`,
  partitionkey: 'market/DE',
  market: 'DE',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  data,
});

describe('RegistryEventShaper', () => {
  it('json without a declared version: the envelope as the default shaper sends it', async () => {
    const { registry } = fakeRegistry();
    const event = envelope(2, { code: 'DE', loyalty: 'gold' });
    const shaped = await new RegistryEventShaper(registry).shape(event, {
      format: 'json',
      schemaVersions: { 'other.type.v1': 1 },
    });
    expect(shaped).toEqual({
      body: JSON.stringify(event),
      contentType: 'application/cloudevents+json',
      headers: {},
    });
  });

  it('json with an older declared version: data downcast, dataschema names that version', async () => {
    const { registry, calls } = fakeRegistry();
    const shaper = new RegistryEventShaper(registry);
    const event = envelope(2, { code: 'DE', name: 'Germany', loyalty: 'gold' });
    const request = { format: 'json', schemaVersions: { 'market.updated.v1': 1 } };
    const shaped = await shaper.shape(event, request);
    expect(shaped.contentType).toBe('application/cloudevents+json');
    expect(JSON.parse(shaped.body as string)).toEqual({
      ...event,
      dataschema: '/registry/subjects/market.updated.v1/versions/1',
      data: { code: 'DE', name: 'Germany' },
    });
    // Versions and the compiled reshaper are cached.
    const before = calls.length;
    await shaper.shape(event, request);
    expect(calls.length).toBe(before);
  });

  it('a newer declared version: data passed on when it fits, refused (permanent) when not', async () => {
    const { registry } = fakeRegistry();
    const shaper = new RegistryEventShaper(registry);
    const event = envelope(1, { code: 'DE' });
    const shaped = await shaper.shape(event, {
      format: 'json',
      schemaVersions: { 'market.updated.v1': 2 },
    });
    expect(JSON.parse(shaped.body as string)).toMatchObject({
      dataschema: '/registry/subjects/market.updated.v1/versions/2',
      data: { code: 'DE' },
    });
    const error = await shaper
      .shape(event, { format: 'json', schemaVersions: { 'market.updated.v1': 3 } })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(ReshapeError);
    expect((error as ReshapeError).permanent).toBe(true);
    expect((error as Error).message).toMatch(
      /market\.updated\.v1 version 1\) cannot be served in the newer version 3 .*\/region is required/,
    );
  });

  it('confluent-wire: framed with the schema id of the version served, attributes as ce-* headers', async () => {
    const { registry } = fakeRegistry();
    const shaper = new RegistryEventShaper(registry);
    const event = envelope(2, { code: 'DE', loyalty: 'gold' });
    const asIs = await shaper.shape(event, { format: 'confluent-wire', schemaVersions: {} });
    expect(asIs.contentType).toBe('application/octet-stream');
    expect(decodeWire(asIs.body as Buffer)).toEqual({ schemaId: 12, value: event.data });
    expect(asIs.headers).toEqual({
      'ce-specversion': '1.0',
      'ce-id': event.id,
      'ce-source': '//nexus/hub',
      'ce-type': 'market.updated.v1',
      'ce-time': event.time,
      'ce-subject': 'market/DE',
      'ce-dataschema': '/registry/subjects/market.updated.v1/versions/2',
      'ce-market': 'DE',
      'ce-partitionkey': 'market/DE',
      'ce-traceparent': event.traceparent,
    });

    const older = await shaper.shape(event, {
      format: 'confluent-wire',
      schemaVersions: { 'market.updated.v1': 1 },
    });
    expect(decodeWire(older.body as Buffer)).toEqual({ schemaId: 11, value: { code: 'DE' } });
    expect(older.headers['ce-dataschema']).toBe('/registry/subjects/market.updated.v1/versions/1');
  });

  it('resolves dataschema .../versions/latest (ingested events may name it)', async () => {
    const { registry } = fakeRegistry();
    const shaped = await new RegistryEventShaper(registry).shape(
      envelope('latest', { code: 'DE', region: 'S' }),
      { format: 'confluent-wire', schemaVersions: {} },
    );
    expect(decodeWire(shaped.body as Buffer).schemaId).toBe(13);
  });

  it('events without a registry dataschema (webhook.ping): json as is, wire as JSON data in binary mode', async () => {
    const { registry, calls } = fakeRegistry();
    const shaper = new RegistryEventShaper(registry);
    const ping = { ...envelope(1, { message: 'hi' }), type: 'webhook.ping', dataschema: 'urn:x' };
    const json = await shaper.shape(ping, { format: 'json', schemaVersions: {} });
    expect(json.body).toBe(JSON.stringify(ping));
    const wire = await shaper.shape(ping, { format: 'confluent-wire', schemaVersions: {} });
    expect(wire).toMatchObject({ body: '{"message":"hi"}', contentType: 'application/json' });
    expect(wire.headers['ce-type']).toBe('webhook.ping');
    expect(calls).toEqual([]);
  });

  it('a version missing from the registry is a permanent failure', async () => {
    const { registry } = fakeRegistry();
    const error = await new RegistryEventShaper(registry)
      .shape(envelope(9, { code: 'DE' }), { format: 'json', schemaVersions: {} })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReshapeError);
    expect((error as Error).message).toContain('version 9 is not in the registry');
  });

  it('checks declared versions for subscriptions', async () => {
    const { registry } = fakeRegistry();
    const shaper = new RegistryEventShaper(registry);
    expect(await shaper.checkSchemaVersions({ 'market.updated.v1': 2 })).toEqual([]);
    expect(
      await shaper.checkSchemaVersions({ 'market.updated.v1': 4, 'no.such.type.v1': 1 }),
    ).toEqual([
      {
        pointer: '/schemaVersions/market.updated.v1',
        detail: "version 4 of 'market.updated.v1' is not registered in the schema registry",
      },
      {
        pointer: '/schemaVersions/no.such.type.v1',
        detail: "no schema is registered for event type 'no.such.type.v1'",
      },
    ]);
  });
});

describe('encodeHeaderValue', () => {
  it('percent-encodes space, quote, percent and non-ASCII (CloudEvents HTTP binding)', () => {
    expect(encodeHeaderValue('market/DE')).toBe('market/DE');
    expect(encodeHeaderValue('a b"c%d')).toBe('a%20b%22c%25d');
    expect(encodeHeaderValue('Grüße €')).toBe('Gr%C3%BC%C3%9Fe%20%E2%82%AC');
  });
});
