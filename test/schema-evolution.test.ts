import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../src/model/ids.js';
import { verifyWebhookSignature, type Delivery } from '../src/modules/webhooks/index.js';
import { systemContext } from '../src/platform/context.js';
import { fixtures, hubShapes, startTestHub, type TestHub } from './support/hub.js';
import { waitFor } from './support/targets.js';

// A whole hub, listening, with its own webhooks wiring (app.ts): subscribers declare the schema
// versions they understand, and get events in those versions, as CloudEvents JSON or in
// Confluent's wire format (decoded here with the real @kafkajs/confluent-schema-registry client
// against the hub's /registry).

const SUBJECT = 'market.updated.v1';
const CT = 'application/vnd.schemaregistry.v1+json';
const ctx = systemContext('test');

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** A subscriber: a real HTTP server on a free port that records every request and answers 200. */
async function startSubscriber() {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      hits.push({ path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    at: (path: string) => hits.filter((h) => h.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Envelope {
  id: string;
  type: string;
  dataschema: string;
  data: Record<string, unknown>;
}
const json = (hit: Hit) => JSON.parse(hit.body.toString('utf8')) as Envelope;

describe.each(hubShapes.filter((s) => s !== 'postgres+nats'))(
  'schema evolution for webhook consumers: %s',
  (shape) => {
    let t: TestHub;
    let sub: Awaited<ReturnType<typeof startSubscriber>>;
    let client: SchemaRegistry;
    let v1: { id: number; schema: Record<string, unknown> };
    let v2Id: number;

    const registry = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
      const r = await t.request(method, `/registry${path}`, {
        ...(body === undefined ? {} : { raw: JSON.stringify(body) }),
        headers: body === undefined ? {} : { 'content-type': CT },
      });
      return { status: r.status, json: r.json as Record<string, unknown> };
    };
    const subscribe = async (path: string, extra: Record<string, unknown> = {}) => {
      const r = await t.request('POST', '/v1/webhooks', {
        body: { url: sub.url(path), eventTypes: [SUBJECT], ...extra },
      });
      expect(r.status, r.body).toBe(201);
      return r.json as { id: string; secret: string };
    };
    const putMarket = async (code: string, name: string) => {
      const r = await t.request('PUT', `/v1/markets/${code}`, {
        body: fixtures.market(code, { name }),
      });
      expect(r.status, r.body).toBeLessThan(300);
      const got = await t.request('GET', `/v1/markets/${code}`);
      return got.json as Record<string, unknown>;
    };
    /** An event from a channel adapter already on a newer version of the market schema. */
    const ingest = async (version: number, data: Record<string, unknown>) => {
      const id = uuidv7();
      const r = await t.request('POST', '/v1/events', {
        body: {
          specversion: '1.0',
          id,
          source: '//erp/se',
          type: SUBJECT,
          subject: `market/${String(data.code)}`,
          time: new Date().toISOString(),
          datacontenttype: 'application/json',
          dataschema: `/registry/subjects/${SUBJECT}/versions/${version}`,
          partitionkey: `market/${String(data.code)}`,
          market: data.code,
          data,
        },
      });
      expect(r.status, r.body).toBe(202);
      return id;
    };
    const deliveries = async (subscription: string): Promise<Delivery[]> =>
      (await t.hub.services.webhooks.deliveries(ctx, subscription, { limit: 100 })).items;

    beforeAll(async () => {
      t = await startTestHub(shape);
      // listen() starts the hub's own webhooks fan-out and dispatcher (as app.ts wires them).
      const base = await t.hub.listen();
      sub = await startSubscriber();
      // The client's own Ajv (strict, no format plugin) is told the formats the market schema
      // uses, as a consumer would; they are accepted unchecked, everything else is validated.
      client = new SchemaRegistry(
        { host: `${base}/registry`, auth: { username: 'nexus', password: t.adminKey } },
        { [SchemaType.JSON]: { formats: { 'date-time': true, 'iana-time-zone': true } } },
      );

      // An operator registers v2 of the event's data schema: one optional field more.
      const first = await registry('GET', `/subjects/${SUBJECT}/versions/1`);
      const schema = JSON.parse(first.json.schema as string) as Record<string, unknown>;
      v1 = { id: first.json.id as number, schema };
      const v2 = {
        ...schema,
        $id: 'https://schemas.nexus-hub.dev/market-resource/v2.json',
        properties: {
          ...(schema.properties as object),
          loyaltyProgram: { type: 'string', minLength: 1, maxLength: 50 },
        },
      };
      expect((await registry('GET', `/config/${SUBJECT}?defaultToGlobal=true`)).json).toEqual({
        compatibilityLevel: 'BACKWARD_TRANSITIVE',
      });
      const registered = await registry('POST', `/subjects/${SUBJECT}/versions`, {
        schemaType: 'JSON',
        schema: JSON.stringify(v2),
      });
      expect(registered.status, JSON.stringify(registered.json)).toBe(200);
      v2Id = registered.json.id as number;
    });
    afterAll(async () => {
      await sub.close();
      await t.dispose();
    });

    it('serves each subscriber the version it declared, as JSON or in the wire format', async () => {
      const asV1 = await subscribe('/v1', { schemaVersions: { [SUBJECT]: 1 } });
      const asIs = await subscribe('/as-is');
      const asV2 = await subscribe('/v2', { schemaVersions: { [SUBJECT]: 2 } });
      const wire = await subscribe('/wire', { format: 'confluent-wire' });
      const wireV1 = await subscribe('/wire-v1', {
        format: 'confluent-wire',
        schemaVersions: { [SUBJECT]: 1 },
      });

      // 1. The hub's own event: its code schema is registered as version 1.
      await putMarket('SE', 'Sweden');
      const renamed = await putMarket('SE', 'Sverige');
      // 2. A channel adapter on version 2 sends the new field.
      const resource = { ...renamed, loyaltyProgram: 'Klubb' };
      const ingested = await ingest(2, resource);

      for (const path of ['/v1', '/as-is', '/v2', '/wire', '/wire-v1'])
        await waitFor(() => sub.at(path).length === 2, { timeoutMs: 15_000 });

      // Declared v1: the hub's event as is; the v2 event without the new field, named as v1.
      const [nativeV1, ingestedV1] = sub.at('/v1').map(json);
      expect(nativeV1).toMatchObject({
        dataschema: `/registry/subjects/${SUBJECT}/versions/1`,
        data: renamed,
      });
      expect(ingestedV1!.id).toBe(ingested);
      expect(ingestedV1!.dataschema).toBe(`/registry/subjects/${SUBJECT}/versions/1`);
      expect(ingestedV1!.data).toEqual(renamed);
      expect(ingestedV1!.data).not.toHaveProperty('loyaltyProgram');

      // No declaration: every event exactly as stored (the default shaper's bytes).
      const [, ingestedAsIs] = sub.at('/as-is');
      const [stored] = (await deliveries(asIs.id)).filter((d) => d.eventId === ingested);
      const detail = await t.hub.services.webhooks.delivery(ctx, asIs.id, stored!.id);
      expect(ingestedAsIs!.body.toString('utf8')).toBe(JSON.stringify(detail.envelope));
      expect(ingestedAsIs!.headers['content-type']).toBe('application/cloudevents+json');
      expect(json(ingestedAsIs!)).toMatchObject({
        dataschema: `/registry/subjects/${SUBJECT}/versions/2`,
        data: resource,
      });

      // Declared v2: the hub's v1 event fits v2 (the field is optional), named as v2.
      const [nativeV2, ingestedV2] = sub.at('/v2').map(json);
      expect(nativeV2).toMatchObject({
        dataschema: `/registry/subjects/${SUBJECT}/versions/2`,
        data: renamed,
      });
      expect(ingestedV2!.data).toEqual(resource);

      // Wire format: magic byte, schema id, JSON data; the attributes as ce-* headers.
      const [nativeWire, ingestedWire] = sub.at('/wire');
      expect(ingestedWire!.headers['content-type']).toBe('application/octet-stream');
      expect(ingestedWire!.body[0]).toBe(0);
      expect(ingestedWire!.body.readUInt32BE(1)).toBe(v2Id);
      expect(nativeWire!.body.readUInt32BE(1)).toBe(v1.id);
      expect(await client.decode(ingestedWire!.body)).toEqual(resource);
      expect(await client.decode(nativeWire!.body)).toEqual(renamed);
      expect(ingestedWire!.headers).toMatchObject({
        'ce-specversion': '1.0',
        'ce-id': ingested,
        'ce-source': '//erp/se',
        'ce-type': SUBJECT,
        'ce-subject': 'market/SE',
        'ce-dataschema': `/registry/subjects/${SUBJECT}/versions/2`,
        'ce-market': 'SE',
        'ce-partitionkey': 'market/SE',
        'nexus-event-id': ingested,
      });
      expect(ingestedWire!.headers['ce-time']).toMatch(/^\d{4}-\d\d-\d\dT/);
      expect(ingestedWire!.headers).not.toHaveProperty('ce-data');
      expect(
        verifyWebhookSignature(
          wire.secret,
          ingestedWire!.headers['nexus-signature'] as string,
          ingestedWire!.body,
        ),
      ).toBe(true);

      // Wire format, declared v1: framed with version 1's id, without the new field.
      const [, ingestedWireV1] = sub.at('/wire-v1');
      expect(ingestedWireV1!.body.readUInt32BE(1)).toBe(v1.id);
      expect(ingestedWireV1!.headers['ce-dataschema']).toBe(
        `/registry/subjects/${SUBJECT}/versions/1`,
      );
      expect(await client.decode(ingestedWireV1!.body)).toEqual(renamed);

      for (const id of [asV1.id, asIs.id, asV2.id, wire.id, wireV1.id]) {
        expect((await deliveries(id)).map((d) => [d.status, d.attempts])).toEqual([
          ['succeeded', 1],
          ['succeeded', 1],
        ]);
      }
    });

    it('refuses to subscribe (or update) with a version that is not registered', async () => {
      const refused = await t.request('POST', '/v1/webhooks', {
        body: { url: sub.url('/x'), eventTypes: ['*'], schemaVersions: { [SUBJECT]: 7 } },
      });
      expect(refused.status).toBe(400);
      expect(refused.json).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [
          {
            pointer: `/schemaVersions/${SUBJECT}`,
            detail: `version 7 of '${SUBJECT}' is not registered in the schema registry`,
          },
        ],
      });
      const unknown = await t.request('POST', '/v1/webhooks', {
        body: { url: sub.url('/x'), eventTypes: ['*'], schemaVersions: { 'no.such.event.v1': 1 } },
      });
      expect(unknown.json).toMatchObject({
        code: 'VALIDATION_FAILED',
        errors: [{ pointer: '/schemaVersions/no.such.event.v1' }],
      });

      const { id } = await subscribe('/x', { status: 'paused' });
      const update = await t.request('PUT', `/v1/webhooks/${id}`, {
        body: {
          url: sub.url('/x'),
          eventTypes: [SUBJECT],
          status: 'paused',
          schemaVersions: { [SUBJECT]: 3 },
        },
      });
      expect(update.status).toBe(400);
      expect((update.json as { errors: unknown[] }).errors).toEqual([
        expect.objectContaining({ pointer: `/schemaVersions/${SUBJECT}` }),
      ]);
      const fine = await t.request('PUT', `/v1/webhooks/${id}`, {
        body: {
          url: sub.url('/x'),
          eventTypes: [SUBJECT],
          status: 'paused',
          schemaVersions: { [SUBJECT]: 2 },
        },
      });
      expect(fine.status, fine.body).toBe(200);
    });

    it('gives an event the declared version cannot represent up at once, and moves on', async () => {
      // v3 widens the status (compatible for readers of v3), which version 1 cannot represent.
      const latest = await registry('GET', `/subjects/${SUBJECT}/versions/2`);
      const v2 = JSON.parse(latest.json.schema as string) as {
        properties: { status: { anyOf: unknown[] } };
      };
      const v3 = {
        ...v2,
        $id: 'https://schemas.nexus-hub.dev/market-resource/v3.json',
        properties: {
          ...v2.properties,
          status: {
            ...v2.properties.status,
            anyOf: [...v2.properties.status.anyOf, { const: 'archived', type: 'string' }],
          },
        },
      };
      const registered = await registry('POST', `/subjects/${SUBJECT}/versions`, {
        schemaType: 'JSON',
        schema: JSON.stringify(v3),
      });
      expect(registered.status, JSON.stringify(registered.json)).toBe(200);

      const strict = await subscribe('/strict', { schemaVersions: { [SUBJECT]: 1 } });
      const market = await putMarket('NO', 'Norway');
      const archived = await ingest(3, { ...market, status: 'archived' });
      const later = await putMarket('NO', 'Norge');

      await waitFor(async () => (await deliveries(strict.id)).length === 2, { timeoutMs: 15_000 });
      await waitFor(
        async () =>
          (await deliveries(strict.id)).every(
            (d) => d.status === 'succeeded' || d.status === 'dead',
          ),
        { timeoutMs: 15_000 },
      );
      const list = await deliveries(strict.id);
      const dead = list.find((d) => d.eventId === archived)!;
      expect(dead).toMatchObject({ status: 'dead', attempts: 1, lastStatusCode: null });
      expect(dead.lastError).toContain('cannot be served in the older version 1');
      expect(dead.lastError).toContain('/status must be one of "active", "inactive"');
      // The queue moved on: the later event was delivered, the refused one never sent.
      const received = sub.at('/strict').map(json);
      expect(received.map((e) => e.id)).not.toContain(archived);
      expect(received.at(-1)!.data).toMatchObject({ name: later.name, status: 'active' });
    });
  },
);
