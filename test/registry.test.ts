import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryService } from '../src/modules/registry/index.js';
import { openPostgres } from '../src/platform/db/postgres.js';
import { hubShapes, startTestHub, type TestHub } from './support/hub.js';

const CT = 'application/vnd.schemaregistry.v1+json';

const orderV1 = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  type: 'object',
  properties: { orderId: { type: 'string' }, total: { type: 'number' } },
  required: ['orderId'],
  additionalProperties: false,
};

describe.each(hubShapes.filter((s) => s !== 'postgres+nats'))('schema registry: %s', (shape) => {
  let t: TestHub;
  let base: string;
  let client: SchemaRegistry;

  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown) => {
    const r = await t.request(method, `/registry${path}`, {
      ...(body === undefined ? {} : { raw: JSON.stringify(body) }),
      headers: body === undefined ? {} : { 'content-type': CT },
    });
    return {
      status: r.status,
      json: r.json as Record<string, unknown> & unknown[],
      type: r.headers['content-type'],
    };
  };

  beforeAll(async () => {
    t = await startTestHub(shape);
    base = await t.hub.server.listen({ host: '127.0.0.1', port: 0 });
    client = new SchemaRegistry({
      host: `${base}/registry`,
      auth: { username: 'nexus', password: t.adminKey },
    });
  });
  afterAll(async () => {
    await t.dispose();
  });

  describe('with the @kafkajs/confluent-schema-registry client', () => {
    it('registers, encodes in the wire format, decodes, and fetches by id', async () => {
      const { id } = await client.register(
        { type: SchemaType.JSON, schema: JSON.stringify(orderV1) },
        { subject: 'orders-value' },
      );
      expect(id).toBeGreaterThan(0);
      const payload = { orderId: 'O-1', total: 12.5 };
      const encoded = await client.encode(id, payload);
      expect(encoded[0]).toBe(0);
      expect(encoded.readInt32BE(1)).toBe(id);
      expect(await client.decode(encoded)).toEqual(payload);
      expect(JSON.parse(JSON.stringify(await client.getSchema(id)))).toBeTruthy();
      expect(await client.getLatestSchemaId('orders-value')).toBe(id);
      expect(
        await client.getRegistryIdBySchema('orders-value', {
          type: SchemaType.JSON,
          schema: JSON.stringify(orderV1),
        }),
      ).toBe(id);
      // The client set the subject's level on first registration, as it does with Confluent.
      expect((await call('GET', '/config/orders-value')).json).toEqual({
        compatibilityLevel: 'BACKWARD',
      });
    });

    it('gives the same id to the same schema again, also under another subject', async () => {
      const first = await client.register(
        { type: SchemaType.JSON, schema: JSON.stringify(orderV1) },
        { subject: 'orders-value' },
      );
      const other = await client.register(
        { type: SchemaType.JSON, schema: JSON.stringify(orderV1) },
        { subject: 'orders-copy-value' },
      );
      expect(other.id).toBe(first.id);
      expect((await call('GET', '/subjects/orders-value/versions')).json).toEqual([1]);
    });

    it('refuses an incompatible change and accepts a compatible one', async () => {
      const narrowed = {
        ...orderV1,
        properties: { ...orderV1.properties, total: { type: 'integer' } },
        required: ['orderId', 'total'],
      };
      await expect(
        client.register(
          { type: SchemaType.JSON, schema: JSON.stringify(narrowed) },
          { subject: 'orders-value' },
        ),
      ).rejects.toMatchObject({ status: 409 });
      // Adding an optional property to a closed content model is a change Confluent allows.
      const widened = {
        ...orderV1,
        properties: { ...orderV1.properties, note: { type: 'string' } },
      };
      const { id } = await client.register(
        { type: SchemaType.JSON, schema: JSON.stringify(widened) },
        { subject: 'orders-value' },
      );
      expect((await call('GET', '/subjects/orders-value/versions')).json).toEqual([1, 2]);
      expect((await call('GET', '/subjects/orders-value/versions/latest')).json).toMatchObject({
        id,
        version: 2,
        schemaType: 'JSON',
      });
    });

    it('refuses to encode a payload that breaks the schema (client-side validation)', async () => {
      const id = await client.getLatestSchemaId('orders-value');
      await expect(client.encode(id, { orderId: 7 })).rejects.toThrow();
    });
  });

  describe('the REST API', () => {
    it("answers in Confluent's content type and error shape", async () => {
      const r = await call('GET', '/subjects/nothing/versions');
      expect(r.status).toBe(404);
      expect(r.type).toContain('application/vnd.schemaregistry.v1+json');
      expect(r.json).toEqual({ error_code: 40401, message: "Subject 'nothing' not found." });
      expect((await call('GET', '/subjects/orders-value/versions/99')).json).toMatchObject({
        error_code: 40402,
      });
      expect((await call('GET', '/schemas/ids/999999')).json).toMatchObject({ error_code: 40403 });
      expect((await call('GET', '/subjects/orders-value/versions/abc')).json).toMatchObject({
        error_code: 42202,
      });
      expect((await call('GET', '/subjects/orders-value/versions/0')).json).toMatchObject({
        error_code: 42202,
      });
      expect((await call('GET', '/config/no-own-level')).json).toMatchObject({ error_code: 40408 });
      expect(
        (await call('PUT', '/config/orders-value', { compatibility: 'SIDEWAYS' })).json,
      ).toMatchObject({ error_code: 42203 });
      expect((await call('PUT', '/mode', { mode: 'SOMETIMES' })).json).toMatchObject({
        error_code: 42204,
      });
      const unauth = await t.request('GET', '/registry/subjects', { key: null });
      expect(unauth.status).toBe(401);
      expect(unauth.json).toMatchObject({ error_code: 40101 });
    });

    it('refuses invalid, unresolvable, huge and deeply nested schemas, storing nothing', async () => {
      const before = (await call('GET', '/subjects')).json.length;
      const cases: unknown[] = [
        { schema: '{"type": "strin"}', schemaType: 'JSON' },
        {
          schema: '{"type": "object", "properties": {"a": {"$ref": "missing.json"}}}',
          schemaType: 'JSON',
        },
        { schema: 'not json', schemaType: 'JSON' },
        {
          schema: JSON.stringify({ type: 'object', description: 'x'.repeat(300 * 1024) }),
          schemaType: 'JSON',
        },
        {
          schema: JSON.stringify(
            Array.from({ length: 80 }).reduce((inner) => ({ type: 'array', items: inner }), {
              type: 'string',
            }),
          ),
          schemaType: 'JSON',
        },
        { schema: JSON.stringify(orderV1) }, // no schemaType means AVRO to Confluent clients
        {
          schema: JSON.stringify(orderV1),
          schemaType: 'JSON',
          references: [{ name: 'x.json', subject: 'nothing', version: 1 }],
        },
      ];
      for (const body of cases) {
        const r = await call('POST', '/subjects/bad-value/versions', body);
        expect(r.status, JSON.stringify(r.json)).toBe(422);
        expect(r.json.error_code).toBe(42201);
      }
      expect((await call('GET', '/subjects')).json.length).toBe(before);
    });

    it('resolves references across subjects', async () => {
      const money = {
        type: 'object',
        properties: { amount: { type: 'string' }, currency: { type: 'string' } },
        required: ['amount'],
      };
      await call('POST', '/subjects/money-value/versions', {
        schema: JSON.stringify(money),
        schemaType: 'JSON',
      });
      const line = { type: 'object', properties: { price: { $ref: 'money.json' } } };
      const references = [{ name: 'money.json', subject: 'money-value', version: 1 }];
      const r = await call('POST', '/subjects/line-value/versions', {
        schema: JSON.stringify(line),
        schemaType: 'JSON',
        references,
      });
      expect(r.status).toBe(200);
      const got = await call('GET', `/schemas/ids/${String(r.json.id)}`);
      expect(got.json).toMatchObject({ schemaType: 'JSON', references });
      expect((await call('GET', `/schemas/ids/${String(r.json.id)}/versions`)).json).toEqual([
        { subject: 'line-value', version: 1 },
      ]);
    });

    it('tests compatibility with reasons, and looks schemas up', async () => {
      const incompatible = {
        ...orderV1,
        required: ['orderId', 'customer'],
        properties: { ...orderV1.properties, customer: { type: 'string' } },
      };
      const r = await call(
        'POST',
        '/compatibility/subjects/orders-value/versions/latest?verbose=true',
        {
          schema: JSON.stringify(incompatible),
          schemaType: 'JSON',
        },
      );
      expect(r.json.is_compatible).toBe(false);
      expect((r.json.messages as string[]).length).toBeGreaterThan(0);
      const ok = await call('POST', '/compatibility/subjects/orders-value/versions/1', {
        schema: JSON.stringify(orderV1),
        schemaType: 'JSON',
      });
      expect(ok.json).toEqual({ is_compatible: true });
      const found = await call('POST', '/subjects/orders-value', {
        schema: JSON.stringify(orderV1),
        schemaType: 'JSON',
      });
      expect(found.json).toMatchObject({ subject: 'orders-value', version: 1 });
      const missing = await call('POST', '/subjects/orders-value', {
        schema: '{"type": "string"}',
        schemaType: 'JSON',
      });
      expect(missing.json).toMatchObject({ error_code: 40403 });
      expect((await call('GET', '/schemas/types')).json).toEqual(['JSON']);
    });

    it('deletes softly, then permanently, and keeps version numbers', async () => {
      expect(
        (await call('DELETE', '/subjects/orders-copy-value/versions/1?permanent=true')).json,
      ).toMatchObject({ error_code: 40407 });
      expect((await call('DELETE', '/subjects/orders-copy-value')).json).toEqual([1]);
      expect((await call('GET', '/subjects')).json).not.toContain('orders-copy-value');
      expect((await call('GET', '/subjects?deleted=true')).json).toContain('orders-copy-value');
      expect((await call('DELETE', '/subjects/orders-copy-value?permanent=true')).json).toEqual([
        1,
      ]);
      expect((await call('GET', '/subjects?deleted=true')).json).not.toContain('orders-copy-value');
    });

    it('refuses writes in READONLY mode', async () => {
      expect((await call('PUT', '/mode/orders-value', { mode: 'READONLY' })).json).toEqual({
        mode: 'READONLY',
      });
      const r = await call('POST', '/subjects/orders-value/versions', {
        schema: '{"type":"object"}',
        schemaType: 'JSON',
      });
      expect(r.json).toMatchObject({ error_code: 42205 });
      await call('PUT', '/mode/orders-value', { mode: 'READWRITE' });
    });
  });

  describe("the hub's canonical schemas", () => {
    it('are registered at start under entity and event-type subjects, BACKWARD_TRANSITIVE by default', async () => {
      const subjects = (await call('GET', '/subjects')).json as string[];
      expect(subjects).toEqual(
        expect.arrayContaining([
          'market',
          'product',
          'order',
          'customer',
          'market.created.v1',
          'product.updated.v1',
        ]),
      );
      expect((await call('GET', '/config')).json).toEqual({
        compatibilityLevel: 'BACKWARD_TRANSITIVE',
      });
      const latest = await call('GET', '/subjects/market.created.v1/versions/latest');
      expect(latest.json).toMatchObject({ version: 1, schemaType: 'JSON' });
    });

    it('are described in the AsyncAPI event catalogue served by the hub', async () => {
      const doc = (await t.request('GET', '/v1/asyncapi.json', { key: null })).json as {
        asyncapi: string;
        channels: Record<string, { address: string }>;
        components: {
          messages: Record<
            string,
            { 'x-nexus-registry': { subject: string; schemaId: number; version: number } }
          >;
        };
      };
      expect(doc.asyncapi).toBe('3.0.0');
      expect(doc.channels['product.updated.v1']?.address).toBe(
        'nexus.evt.{market}.product.updated.v1',
      );
      const registered = (await call('GET', '/subjects/product.updated.v1/versions/latest')).json;
      expect(doc.components.messages['product.updated.v1']?.['x-nexus-registry']).toEqual({
        subject: 'product.updated.v1',
        schemaId: registered.id,
        version: registered.version,
      });
    });

    it('are the only ones that may mark personal data (x-pii): a feed schema that does is refused', async () => {
      const feed = {
        type: 'object',
        properties: {
          loyaltyId: { type: 'string' },
          email: { type: 'string', 'x-pii': 'Email' },
        },
      };
      const before = ((await call('GET', '/subjects')).json as string[]).length;
      const r = await call('POST', '/subjects/legacy.member.joined.v1/versions', {
        schema: JSON.stringify(feed),
        schemaType: 'JSON',
      });
      expect(r.status).toBe(422);
      expect(r.json.error_code).toBe(42201);
      expect(r.json.message).toContain('x-pii');
      expect(r.json.message).toContain('customer.registered.v1');
      // Also when the mark comes in through a reference.
      const unmarked = { type: 'object', properties: { loyaltyId: { type: 'string' } } };
      await call('POST', '/subjects/legacy-member/versions', {
        schema: JSON.stringify(unmarked),
        schemaType: 'JSON',
      });
      const viaReference = await call('POST', '/subjects/legacy.member.moved.v1/versions', {
        schema: JSON.stringify({ $ref: 'customer.json' }),
        schemaType: 'JSON',
        references: [{ name: 'customer.json', subject: 'customer', version: 1 }],
      });
      expect(viaReference.status).toBe(422);
      expect((await call('GET', '/subjects')).json.length).toBe(before + 1);
      // The hub's own event types carry it, and may evolve with it.
      const latest = (await call('GET', '/subjects/customer.registered.v1/versions/latest')).json;
      expect(latest.schema).toContain('x-pii');
      const again = await call('POST', '/subjects/customer.registered.v1/versions', {
        schema: latest.schema,
        schemaType: 'JSON',
      });
      expect(again.status).toBe(200);
      expect(again.json.id).toBe(latest.id);
    });

    it('are not registered twice when the hub starts again', async () => {
      const again = await t.hub.services.registry.registerCanonical({});
      expect(again.lookup('market.created.v1')).toBeUndefined();
      const { CANONICAL_SCHEMAS } = await import('../src/model/catalog.js');
      await t.hub.services.registry.registerCanonical(CANONICAL_SCHEMAS);
      expect((await call('GET', '/subjects/market/versions')).json).toEqual([1]);
    });
  });
});

describe.runIf(process.env.NEXUS_TEST_DATABASE_URL)(
  'schema registry: concurrent registration from two processes',
  () => {
    it('never gives two ids to one schema nor one id to two schemas', async () => {
      const t = await startTestHub('postgres');
      const other = openPostgres({ url: t.hub.storage.location.replace('***', '') });
      try {
        const a = t.hub.services.registry;
        const b = new RegistryService(other);
        const schema = (n: number) =>
          JSON.stringify({ type: 'object', properties: { [`f${n}`]: { type: 'string' } } });
        await a.setCompatibility(undefined, 'NONE');
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? a : b).register(`race-${i % 3}`, {
              schema: schema(i % 5),
              schemaType: 'JSON',
            }),
          ),
        );
        const idBySchema = new Map<number, Set<number>>();
        results.forEach((r, i) => {
          const set = idBySchema.get(i % 5) ?? new Set<number>();
          set.add(r.id);
          idBySchema.set(i % 5, set);
        });
        for (const ids of idBySchema.values()) expect(ids.size).toBe(1);
        const distinct = new Set([...idBySchema.values()].map((s) => [...s][0]));
        expect(distinct.size).toBe(5);
      } finally {
        await other.close();
        await t.dispose();
      }
    });
  },
);
