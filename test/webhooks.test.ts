import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubMetrics } from '../src/api/metrics.js';
import { buildServer } from '../src/api/server.js';
import { createHub, type Hub } from '../src/app.js';
import {
  AVAILABILITY_TYPE,
  createWebhooks,
  generateWebhookSecret,
  verifyWebhookSignature,
  WEBHOOK_SECRET_UNREADABLE,
  WEBHOOK_SECRETS_KEY_INFO,
  type Delivery,
  type DeliveryDetail,
  type DispatcherOptions,
  type EventShaper,
  type ShapeOptions,
  type Webhooks,
  type WebhooksOptions,
} from '../src/modules/webhooks/index.js';
import { systemContext } from '../src/platform/context.js';
import { createLogger } from '../src/platform/logging.js';
import { SEALED_PREFIX, Sealer } from '../src/platform/sealing.js';
import { fixtures, hubShapes, startTestHub, type TestHub } from './support/hub.js';
import { openEventStream } from './support/sse.js';
import { PG_URL, waitFor } from './support/targets.js';

// The webhooks module is wired here against a test hub's storage, bus and transactor, with
// its routes on a server of their own (built by the API's buildServer, so keys, scopes,
// idempotency and problem+json behave as in the hub). Events are written through the hub's
// own API (markets), so they take the real path: outbox -> relay -> bus -> fan-out group.

interface Hit {
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}
interface Reply {
  status: number;
  body?: string;
  delayMs?: number;
}

/** A subscriber: a real HTTP server on a free port that records every request. */
async function startSubscriber() {
  const hits: Hit[] = [];
  const replies = new Map<string, (nth: number, hit: Hit) => Reply>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const hit: Hit = { path: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks) };
      hits.push(hit);
      const nth = hits.filter((h) => h.path === hit.path).length;
      const reply = replies.get(hit.path)?.(nth, hit) ?? { status: 200 };
      const send = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status, { 'content-type': 'text/plain' });
        res.end(reply.body ?? 'ok');
      };
      if (reply.delayMs) setTimeout(send, reply.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    hits,
    replies,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    at: (path: string) => hits.filter((h) => h.path === path),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
type Subscriber = Awaited<ReturnType<typeof startSubscriber>>;

const FAST: Partial<DispatcherOptions> = {
  pollIntervalMs: 50,
  backoffBaseMs: 40,
  timeoutMs: 500,
  maxAttempts: 4,
  leaseMarginMs: 5_000,
};

const bodyOf = (hit: Hit) =>
  JSON.parse(hit.body.toString('utf8')) as {
    id: string;
    type: string;
    market?: string;
    data: { code?: string; version?: number; subscriptionId?: string };
  };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ctx = systemContext('test');

/** A webhooks instance on a hub (as app.ts would wire it) and an API server for its routes. */
async function attach(hub: Hub, adminKey: string, options: WebhooksOptions = { dispatch: FAST }) {
  // Should app.ts ever start its own instance with the hub, keep it from competing with this one.
  const wired: unknown = (hub.services as object as { webhooks?: unknown }).webhooks;
  if (wired && typeof (wired as { stop?: unknown }).stop === 'function')
    await (wired as { stop(): Promise<void> }).stop();
  const metrics = new HubMetrics({
    outboxBacklog: () => Promise.resolve(0),
    eventsPublished: () => 0,
    relayLeader: () => false,
  });
  const webhooks = createWebhooks({
    storage: hub.storage,
    bus: hub.bus,
    transactor: hub.transactor,
    logger: createLogger({ level: 'silent' }),
    metrics,
    sealer: new Sealer(hub.services.tokenization.deriveKey(WEBHOOK_SECRETS_KEY_INFO)),
    options,
  });
  const server = await buildServer({
    logger: createLogger({ level: 'silent' }),
    db: hub.storage.db,
    access: hub.services.access,
    metrics,
    readiness: { check: () => Promise.resolve({}) },
    writeGate: () => Promise.resolve(null),
    dependencyFailure: () => Promise.resolve(null),
    version: 'test',
    routes: [webhooks.routes],
  });
  webhooks.start();
  return { webhooks, server, metrics, api: apiOf(server, adminKey) };
}

/** Every row of webhook_subscriptions, every column, as text: what a database reader sees. */
async function subscriptionTable(hub: Hub): Promise<string> {
  const result = await sql<Record<string, unknown>>`select * from webhook_subscriptions`.execute(
    hub.storage.db,
  );
  return JSON.stringify(result.rows);
}

async function storedSecrets(hub: Hub, id: string) {
  const result = await sql<{ secret: string; previous_secret: string | null }>`
    select secret, previous_secret from webhook_subscriptions where id = ${id}`.execute(
    hub.storage.db,
  );
  return result.rows[0]!;
}

async function storeSecrets(
  hub: Hub,
  id: string,
  secret: string,
  previous: { secret: string; expiresAt: number } | null = null,
): Promise<void> {
  await sql`
    update webhook_subscriptions
    set secret = ${secret}, previous_secret = ${previous?.secret ?? null},
      previous_secret_expires_at = ${previous?.expiresAt ?? null}
    where id = ${id}`.execute(hub.storage.db);
}

/** `sealed:v1:`, then base64 of iv (12) | tag (16) | a whsec_ secret's ciphertext (49). */
const SEALED_SECRET = /^sealed:v1:[A-Za-z0-9+/]{103}=$/;

function apiOf(server: FastifyInstance, adminKey: string) {
  return async (
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    body?: unknown,
    key: string = adminKey,
  ) => {
    const response = await server.inject({
      method,
      url,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
    });
    return {
      status: response.statusCode,
      headers: response.headers,
      json: (response.body ? JSON.parse(response.body) : undefined) as Record<string, unknown>,
    };
  };
}

describe.each(hubShapes)('outbound webhooks: %s', (shape) => {
  let t: TestHub;
  let sub: Subscriber;
  let wh: Webhooks;
  let server: FastifyInstance;
  let metrics: HubMetrics;
  let api: ReturnType<typeof apiOf>;

  beforeAll(async () => {
    t = await startTestHub(shape);
    sub = await startSubscriber();
    ({ webhooks: wh, server, metrics, api } = await attach(t.hub, t.adminKey));
  });
  afterAll(async () => {
    await wh.stop();
    await server.close();
    await sub.close();
    await t.dispose();
  });

  const putMarket = async (code: string, name = `Market ${code}`) => {
    const response = await t.request('PUT', `/v1/markets/${code}`, {
      body: fixtures.market(code, { name }),
    });
    expect(response.status).toBeLessThan(300);
  };
  const subscribe = async (body: Record<string, unknown>) => {
    const response = await api('POST', '/v1/webhooks', body);
    expect(response.status, JSON.stringify(response.json)).toBe(201);
    return response.json as { id: string; secret: string };
  };
  const deliveries = async (id: string) =>
    (await wh.service.deliveries(ctx, id, { limit: 500 })).items;
  const detail = (id: string, deliveryId: string): Promise<DeliveryDetail> =>
    wh.service.delivery(ctx, id, deliveryId);
  const settled = async (id: string, count: number, status: Delivery['status'] = 'succeeded') => {
    await waitFor(async () => {
      const list = await deliveries(id);
      return list.length === count && list.every((d) => d.status === status);
    });
    return deliveries(id);
  };

  it('creates, lists, reads, replaces and deletes subscriptions; the secret is shown once', async () => {
    const created = await api('POST', '/v1/webhooks', {
      url: sub.url('/crud'),
      description: 'ERP stock feed',
      eventTypes: ['inventory.level.changed.v1', 'product.*'],
      markets: ['DE'],
      schemaVersions: { 'inventory.level.changed.v1': 1 },
    });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    expect(created.headers.location).toBe(`/v1/webhooks/${id}`);
    expect(created.json).toMatchObject({
      url: sub.url('/crud'),
      description: 'ERP stock feed',
      eventTypes: ['inventory.level.changed.v1', 'product.*'],
      subjectFilter: null,
      markets: ['DE'],
      status: 'active',
      format: 'json',
      schemaVersions: { 'inventory.level.changed.v1': 1 },
      previousSecretExpiresAt: null,
    });
    expect(created.json.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);

    const got = await api('GET', `/v1/webhooks/${id}`);
    expect(got.status).toBe(200);
    expect(got.json).not.toHaveProperty('secret');
    expect(JSON.stringify((await api('GET', '/v1/webhooks')).json)).not.toContain('whsec_');
    const listed = await api('GET', '/v1/webhooks?limit=500');
    expect((listed.json.items as Array<{ id: string }>).map((s) => s.id)).toContain(id);

    const replaced = await api('PUT', `/v1/webhooks/${id}`, {
      url: sub.url('/crud2'),
      subjectFilter: 'nexus.evt.DE.>',
      status: 'paused',
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json).toMatchObject({
      url: sub.url('/crud2'),
      eventTypes: null,
      subjectFilter: 'nexus.evt.DE.>',
      markets: null,
      status: 'paused',
      schemaVersions: null,
    });
    const paused = await api('GET', '/v1/webhooks?status=paused&limit=500');
    expect((paused.json.items as Array<{ id: string }>).map((s) => s.id)).toContain(id);

    const openapi = await server.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(Object.keys(openapi.json<{ paths: object }>().paths)).toEqual(
      expect.arrayContaining([
        '/v1/webhooks',
        '/v1/webhooks/{id}/rotate-secret',
        '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver',
      ]),
    );

    expect((await api('DELETE', `/v1/webhooks/${id}`)).status).toBe(204);
    expect((await api('GET', `/v1/webhooks/${id}`)).json).toMatchObject({ code: 'NOT_FOUND' });
    expect((await api('DELETE', `/v1/webhooks/${id}`)).status).toBe(404);
  });

  it('refuses invalid subscriptions, and confluent-wire while no shaper is configured for it', async () => {
    const pointers = (json: Record<string, unknown>) =>
      (json.errors as Array<{ pointer: string }>).map((e) => e.pointer);
    const wire = await api('POST', '/v1/webhooks', {
      url: sub.url('/x'),
      eventTypes: ['*'],
      format: 'confluent-wire',
    });
    expect(wire.status).toBe(400);
    expect(wire.json.code).toBe('VALIDATION_FAILED');
    expect(pointers(wire.json)).toEqual(['/format']);

    const ftp = await api('POST', '/v1/webhooks', {
      url: 'ftp://example.com/x',
      eventTypes: ['*'],
    });
    expect(ftp.json.code).toBe('VALIDATION_FAILED');
    expect(pointers(ftp.json)).toEqual(['/url']);
    const noFilter = await api('POST', '/v1/webhooks', { url: sub.url('/x') });
    expect(pointers(noFilter.json)).toEqual(['/eventTypes']);
    const badSubject = await api('POST', '/v1/webhooks', {
      url: sub.url('/x'),
      subjectFilter: 'orders.>',
    });
    expect(pointers(badSubject.json)).toEqual(['/subjectFilter']);
    const badVersions = await api('POST', '/v1/webhooks', {
      url: sub.url('/x'),
      eventTypes: ['*'],
      schemaVersions: { 'not a type': 1 },
    });
    expect(badVersions.json.code).toBe('VALIDATION_FAILED');
    expect((await api('POST', '/v1/webhooks', { url: sub.url('/x'), extra: 1 })).status).toBe(400);
  });

  it('needs the webhooks scopes; a key limited to markets subscribes only within them', async () => {
    const { secret: reader } = await t.hub.services.access.create({
      name: 'webhook reader',
      channel: 'web',
      scopes: ['webhooks:read'],
    });
    expect((await api('GET', '/v1/webhooks', undefined, reader)).status).toBe(200);
    const refused = await api(
      'POST',
      '/v1/webhooks',
      { url: sub.url('/x'), eventTypes: ['*'] },
      reader,
    );
    expect(refused.status).toBe(403);
    expect(refused.json.code).toBe('FORBIDDEN_SCOPE');

    const { secret: se } = await t.hub.services.access.create({
      name: 'SE integrator',
      channel: 'web',
      scopes: ['webhooks:read', 'webhooks:write'],
      markets: ['SE'],
    });
    const everywhere = { url: sub.url('/se'), eventTypes: ['*'] };
    expect((await api('POST', '/v1/webhooks', everywhere, se)).status).toBe(403);
    expect((await api('POST', '/v1/webhooks', { ...everywhere, markets: ['DE'] }, se)).status).toBe(
      403,
    );
    const own = await api('POST', '/v1/webhooks', { ...everywhere, markets: ['SE'] }, se);
    expect(own.status).toBe(201);
    const listed = await api('GET', '/v1/webhooks?limit=500', undefined, se);
    expect(
      (listed.json.items as Array<{ markets: string[] }>).every((s) => s.markets[0] === 'SE'),
    ).toBe(true);
    await api(
      'PUT',
      `/v1/webhooks/${own.json.id as string}`,
      { ...everywhere, markets: ['SE'], status: 'paused' },
      se,
    );
  });

  it('delivers an event once, signed, as a CloudEvents JSON envelope', async () => {
    const { id, secret } = await subscribe({
      url: sub.url('/once'),
      eventTypes: ['market.created.v1'],
      markets: ['DE-X1'],
    });
    await putMarket('DE-X1');
    await waitFor(() => sub.at('/once').length === 1);
    await putMarket('DE-X1', 'renamed: market.updated.v1 is not subscribed');
    const [delivery] = await settled(id, 1);
    await sleep(300);
    expect(sub.at('/once')).toHaveLength(1);

    const hit = sub.at('/once')[0]!;
    const event = bodyOf(hit);
    expect(hit.headers['content-type']).toBe('application/cloudevents+json');
    expect(hit.headers['nexus-webhook-id']).toBe(delivery!.id);
    expect(hit.headers['nexus-event-id']).toBe(event.id);
    expect(hit.headers['nexus-event-type']).toBe('market.created.v1');
    expect(event).toMatchObject({
      specversion: '1.0',
      type: 'market.created.v1',
      market: 'DE-X1',
      data: { code: 'DE-X1', version: 1 },
    });
    const timestamp = Number(hit.headers['nexus-timestamp']);
    expect(Math.abs(timestamp - Date.now() / 1000)).toBeLessThan(30);
    const signature = hit.headers['nexus-signature'] as string;
    expect(signature).toMatch(new RegExp(`^t=${timestamp},v1=[0-9a-f]{64}$`));
    expect(verifyWebhookSignature(secret, signature, hit.body)).toBe(true);
    expect(verifyWebhookSignature(`${secret}x`, signature, hit.body)).toBe(false);
    expect(verifyWebhookSignature(secret, signature, Buffer.from(`${hit.body.toString()} `))).toBe(
      false,
    );
    expect(verifyWebhookSignature(secret, signature, hit.body, 300, timestamp + 301)).toBe(false);

    expect(delivery).toMatchObject({ eventId: event.id, attempts: 1, nextAttemptAt: null });
    const fetched = await api('GET', `/v1/webhooks/${id}/deliveries/${delivery!.id}`);
    expect(fetched.json).toMatchObject({
      status: 'succeeded',
      envelope: { id: event.id },
      attemptLog: [{ attempt: 1, statusCode: 200, error: null, responseBody: 'ok' }],
    });
  });

  it('retries a failing subscriber with backoff: 500, 500, 200 succeeds on attempt 3', async () => {
    const long = 'x'.repeat(3000);
    sub.replies.set('/retry', (nth) => (nth <= 2 ? { status: 500, body: long } : { status: 200 }));
    const { id } = await subscribe({
      url: sub.url('/retry'),
      eventTypes: ['market.*'],
      markets: ['DE-R1'],
    });
    await putMarket('DE-R1');
    const [delivery] = await settled(id, 1);
    expect(delivery).toMatchObject({ attempts: 3, lastStatusCode: 200, lastError: null });
    const hits = sub.at('/retry');
    expect(hits).toHaveLength(3);
    expect(new Set(hits.map((h) => h.headers['nexus-webhook-id']))).toEqual(
      new Set([delivery!.id]),
    );
    const { attemptLog } = await detail(id, delivery!.id);
    expect(attemptLog.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 500],
      [3, 200],
    ]);
    expect(attemptLog[0]!.error).toBe('subscriber answered HTTP 500');
    expect(attemptLog[0]!.responseBody).toHaveLength(1024);
    // Backoff: the second retry waited longer than the first (40 ms and 120 ms, +-20 %).
    const at = attemptLog.map((a) => Date.parse(a.at));
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(30);
    expect(at[2]! - at[1]!).toBeGreaterThanOrEqual(90);

    const failed = await api('GET', `/v1/webhooks/${id}/deliveries?status=failed`);
    expect(failed.json.items).toEqual([]);
  });

  it('counts a timeout as a failed attempt', async () => {
    sub.replies.set('/slow', (nth) =>
      nth === 1 ? { status: 200, delayMs: 900 } : { status: 204 },
    );
    const { id } = await subscribe({
      url: sub.url('/slow'),
      eventTypes: ['market.*'],
      markets: ['DE-T1'],
    });
    await putMarket('DE-T1');
    const [delivery] = await settled(id, 1);
    const { attemptLog } = await detail(id, delivery!.id);
    expect(attemptLog).toHaveLength(2);
    expect(attemptLog[0]).toMatchObject({ statusCode: null, error: 'no answer within 500 ms' });
    expect(attemptLog[1]).toMatchObject({ statusCode: 204, error: null });
  });

  it('keeps per-subscription order under retries: N+1 waits while N is retried', async () => {
    sub.replies.set('/order', (nth) => (nth <= 2 ? { status: 503 } : { status: 200 }));
    // Another subscription that always succeeds proceeds meanwhile.
    const { id } = await subscribe({
      url: sub.url('/order'),
      eventTypes: ['market.*'],
      markets: ['DE-O1'],
    });
    const { id: other } = await subscribe({
      url: sub.url('/order-other'),
      eventTypes: ['market.*'],
      markets: ['DE-O1'],
    });
    for (let v = 1; v <= 5; v++) await putMarket('DE-O1', `v${v}`);
    await settled(id, 5);
    await settled(other, 5);
    const versions = sub.at('/order').map((h) => bodyOf(h).data.version);
    expect(versions).toEqual([1, 1, 1, 2, 3, 4, 5]);
    expect(sub.at('/order-other').map((h) => bodyOf(h).data.version)).toEqual([1, 2, 3, 4, 5]);
  });

  it('pauses the subscription when the subscriber answers 410 Gone', async () => {
    sub.replies.set('/gone', () => ({ status: 410 }));
    const { id } = await subscribe({
      url: sub.url('/gone'),
      eventTypes: ['market.*'],
      markets: ['DE-G1'],
    });
    await putMarket('DE-G1');
    await waitFor(async () => (await wh.service.get(ctx, id)).status === 'paused');
    const paused = await api('GET', `/v1/webhooks/${id}`);
    expect(paused.json.statusReason).toMatch(/410 Gone/);
    const [held] = await deliveries(id);
    expect(held).toMatchObject({ status: 'failed', attempts: 1, lastStatusCode: 410 });
    // Paused: later events are not matched to it, and nothing is sent.
    await putMarket('DE-G1', 'while paused');
    await sleep(300);
    expect(sub.at('/gone')).toHaveLength(1);
    expect(await deliveries(id)).toHaveLength(1);
    expect((await api('POST', `/v1/webhooks/${id}/test`)).status).toBe(409);

    // Resumed: the held delivery goes first.
    sub.replies.set('/gone', () => ({ status: 200 }));
    const resumed = await api('PUT', `/v1/webhooks/${id}`, {
      url: sub.url('/gone'),
      eventTypes: ['market.*'],
      markets: ['DE-G1'],
      status: 'active',
    });
    expect(resumed.json).toMatchObject({ status: 'active', statusReason: null });
    const [sent] = await settled(id, 1);
    expect(sent).toMatchObject({ id: held!.id, attempts: 2 });
  });

  it('gives up after maxAttempts (dead); a redelivery sends it again', async () => {
    sub.replies.set('/dead', () => ({ status: 500 }));
    const { id } = await subscribe({
      url: sub.url('/dead'),
      eventTypes: ['market.*'],
      markets: ['DE-D1'],
    });
    await putMarket('DE-D1');
    const [dead] = await settled(id, 1, 'dead');
    expect(dead).toMatchObject({ attempts: 4, lastStatusCode: 500, nextAttemptAt: null });
    const listed = await api('GET', `/v1/webhooks/${id}/deliveries?status=dead`);
    expect((listed.json.items as Delivery[]).map((d) => d.id)).toEqual([dead!.id]);
    await sleep(200);
    expect(sub.at('/dead')).toHaveLength(4);

    sub.replies.set('/dead', () => ({ status: 200 }));
    const again = await api('POST', `/v1/webhooks/${id}/deliveries/${dead!.id}/redeliver`);
    expect(again.status).toBe(202);
    expect(again.json).toMatchObject({ id: dead!.id, status: 'pending', attempts: 4 });
    const [redelivered] = await settled(id, 1);
    expect(redelivered).toMatchObject({ attempts: 5, lastStatusCode: 200 });
    expect(sub.at('/dead')).toHaveLength(5);
    const { attemptLog } = await detail(id, dead!.id);
    expect(attemptLog.map((a) => a.statusCode)).toEqual([500, 500, 500, 500, 200]);

    // Succeeded ones can be sent again too.
    await api('POST', `/v1/webhooks/${id}/deliveries/${dead!.id}/redeliver`);
    await waitFor(() => sub.at('/dead').length === 6);
    expect((await api('GET', `/v1/webhooks/${id}/deliveries/nope/redeliver`)).status).toBe(404);
    expect((await api('POST', `/v1/webhooks/${id}/deliveries/nope/redeliver`)).status).toBe(404);
  });

  it('filters by event type, subject and market', async () => {
    const a = await subscribe({
      url: sub.url('/filter-a'),
      eventTypes: ['market.updated.v1'],
      markets: ['DE-F1'],
    });
    const b = await subscribe({ url: sub.url('/filter-b'), subjectFilter: 'nexus.evt.DE-F2.>' });
    const c = await subscribe({
      url: sub.url('/filter-c'),
      eventTypes: ['market.*'],
      markets: ['DE-F1', 'DE-F2'],
    });
    await putMarket('DE-F1');
    await putMarket('DE-F1', 'updated');
    await putMarket('DE-F2');
    await putMarket('DE-F3');
    await settled(c.id, 3);
    await settled(a.id, 1);
    await settled(b.id, 1);
    const seen = (path: string) =>
      sub.at(path).map((h) => `${bodyOf(h).type}@${bodyOf(h).market ?? ''}`);
    expect(seen('/filter-a')).toEqual(['market.updated.v1@DE-F1']);
    expect(seen('/filter-b')).toEqual(['market.created.v1@DE-F2']);
    expect(seen('/filter-c')).toEqual([
      'market.created.v1@DE-F1',
      'market.updated.v1@DE-F1',
      'market.created.v1@DE-F2',
    ]);
  });

  it('signs with both secrets for a while after a rotation', async () => {
    const { id, secret: old } = await subscribe({
      url: sub.url('/rotate'),
      eventTypes: ['market.*'],
      markets: ['DE-S1'],
    });
    const rotated = await api('POST', `/v1/webhooks/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const fresh = rotated.json.secret as string;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(old);
    const overlap = Date.parse(rotated.json.previousSecretExpiresAt as string) - Date.now();
    expect(overlap).toBeGreaterThan(23 * 3600_000);
    expect(overlap).toBeLessThanOrEqual(24 * 3600_000);

    await putMarket('DE-S1');
    await waitFor(() => sub.at('/rotate').length === 1);
    const hit = sub.at('/rotate')[0]!;
    const header = hit.headers['nexus-signature'] as string;
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verifyWebhookSignature(fresh, header, hit.body)).toBe(true);
    expect(verifyWebhookSignature(old, header, hit.body)).toBe(true);
    expect(verifyWebhookSignature(`${fresh}x`, header, hit.body)).toBe(false);
  });

  it('sends a webhook.ping on test', async () => {
    const { id, secret } = await subscribe({
      url: sub.url('/ping'),
      eventTypes: ['nothing.v1'],
    });
    const queued = await api('POST', `/v1/webhooks/${id}/test`);
    expect(queued.status).toBe(202);
    expect(queued.json).toMatchObject({ eventType: 'webhook.ping', status: 'pending' });
    await waitFor(() => sub.at('/ping').length === 1);
    const hit = sub.at('/ping')[0]!;
    expect(hit.headers['nexus-event-type']).toBe('webhook.ping');
    expect(bodyOf(hit)).toMatchObject({ type: 'webhook.ping', data: { subscriptionId: id } });
    expect(verifyWebhookSignature(secret, hit.headers['nexus-signature'] as string, hit.body)).toBe(
      true,
    );
    await settled(id, 1);
  });

  it('pages the delivery log newest first', async () => {
    const { id } = await subscribe({
      url: sub.url('/pages'),
      eventTypes: ['market.*'],
      markets: ['DE-P1'],
    });
    for (let v = 1; v <= 5; v++) await putMarket('DE-P1', `v${v}`);
    await settled(id, 5);
    const first = await api('GET', `/v1/webhooks/${id}/deliveries?limit=3`);
    const second = await api(
      'GET',
      `/v1/webhooks/${id}/deliveries?limit=3&cursor=${first.json.nextCursor as string}`,
    );
    expect(second.json.nextCursor).toBeNull();
    const ids = [...(first.json.items as Delivery[]), ...(second.json.items as Delivery[])].map(
      (d) => d.id,
    );
    expect(ids).toHaveLength(5);
    expect([...ids].sort().reverse()).toEqual(ids);
  });

  it('stores signing secrets sealed, after create and after a rotation; both still sign', async () => {
    const { id, secret: old } = await subscribe({
      url: sub.url('/sealed'),
      eventTypes: ['market.*'],
      markets: ['DE-K1'],
    });
    const afterCreate = await subscriptionTable(t.hub);
    expect(afterCreate).toContain(id);
    expect(afterCreate).not.toContain(old.slice('whsec_'.length));
    expect(afterCreate).not.toContain('whsec_');
    const created = await storedSecrets(t.hub, id);
    expect(created.secret).toMatch(SEALED_SECRET);
    expect(created.previous_secret).toBeNull();

    const rotated = await api('POST', `/v1/webhooks/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const fresh = rotated.json.secret as string;
    const afterRotation = await subscriptionTable(t.hub);
    for (const secret of [old, fresh]) expect(afterRotation).not.toContain(secret.slice(6));
    expect(afterRotation).not.toContain('whsec_');
    const stored = await storedSecrets(t.hub, id);
    expect(stored.secret).toMatch(SEALED_SECRET);
    expect(stored.secret).not.toBe(created.secret);
    // The secret that signed until now is kept as sealed at creation: bound to the row, not the column.
    expect(stored.previous_secret).toBe(created.secret);

    await putMarket('DE-K1');
    await waitFor(() => sub.at('/sealed').length === 1);
    const hit = sub.at('/sealed')[0]!;
    const header = hit.headers['nexus-signature'] as string;
    expect(header.match(/v1=/g)).toHaveLength(2);
    expect(verifyWebhookSignature(fresh, header, hit.body)).toBe(true);
    expect(verifyWebhookSignature(old, header, hit.body)).toBe(true);
    // What is stored is not what signs.
    expect(verifyWebhookSignature(stored.secret, header, hit.body)).toBe(false);
    await settled(id, 1);
  });

  it('fails a delivery whose sealed secret does not open, sends nothing, and recovers by rotation', async () => {
    const { id: source } = await subscribe({
      url: sub.url('/tamper-source'),
      eventTypes: ['market.*'],
      markets: ['DE-U1'],
    });
    const { id: copied } = await subscribe({
      url: sub.url('/tamper-copied'),
      eventTypes: ['market.*'],
      markets: ['DE-U1'],
    });
    const { id: flipped } = await subscribe({
      url: sub.url('/tamper-flipped'),
      eventTypes: ['market.*'],
      markets: ['DE-U1'],
    });
    // Another row's sealed secret (valid, but bound to that row), and one altered byte.
    await storeSecrets(t.hub, copied, (await storedSecrets(t.hub, source)).secret);
    const own = (await storedSecrets(t.hub, flipped)).secret;
    const blob = Buffer.from(own.slice(SEALED_PREFIX.length), 'base64');
    blob[blob.length - 1]! ^= 1;
    await storeSecrets(t.hub, flipped, SEALED_PREFIX + blob.toString('base64'));

    await putMarket('DE-U1');
    await settled(source, 1);
    const [copiedDead] = await settled(copied, 1, 'dead');
    const [flippedDead] = await settled(flipped, 1, 'dead');
    for (const [id, delivery] of [
      [copied, copiedDead!],
      [flipped, flippedDead!],
    ] as const) {
      expect(delivery).toMatchObject({ attempts: 4, lastStatusCode: null });
      expect(delivery.lastError).toMatch(new RegExp(`^${WEBHOOK_SECRET_UNREADABLE}: `));
      const { attemptLog } = await detail(id, delivery.id);
      expect(attemptLog.map((a) => a.error?.split(':')[0])).toEqual(
        Array(4).fill(WEBHOOK_SECRET_UNREADABLE),
      );
      expect(attemptLog.every((a) => a.statusCode === null)).toBe(true);
    }
    // Nothing went out for them, signed or not.
    expect(sub.at('/tamper-copied')).toHaveLength(0);
    expect(sub.at('/tamper-flipped')).toHaveLength(0);

    // A rotation repairs it: the unreadable secret is dropped, not kept as the previous one.
    const rotated = await api('POST', `/v1/webhooks/${copied}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.json.previousSecretExpiresAt).toBeNull();
    expect((await storedSecrets(t.hub, copied)).previous_secret).toBeNull();
    const redelivered = await api(
      'POST',
      `/v1/webhooks/${copied}/deliveries/${copiedDead!.id}/redeliver`,
    );
    expect(redelivered.status).toBe(202);
    await settled(copied, 1);
    const [hit] = sub.at('/tamper-copied');
    const header = hit!.headers['nexus-signature'] as string;
    expect(header.match(/v1=/g)).toHaveLength(1);
    expect(verifyWebhookSignature(rotated.json.secret as string, header, hit!.body)).toBe(true);
  });

  it('counts deliveries in the metrics', async () => {
    const text = await metrics.registry.getSingleMetricAsString('nexus_webhook_deliveries_total');
    for (const outcome of ['succeeded', 'failed', 'dead']) {
      expect(text).toMatch(new RegExp(`outcome="${outcome}"} [1-9]`));
    }
  });
});

// A database from before sealing: clear secrets are sealed when the hub starts, and still sign.
describe.each(hubShapes.filter((shape) => shape !== 'postgres+nats'))(
  'webhook secrets stored in clear by an older hub: %s',
  (shape) => {
    let t: TestHub;
    let sub: Subscriber;
    let attached: Awaited<ReturnType<typeof attach>> | undefined;

    beforeAll(async () => {
      t = await startTestHub(shape);
      sub = await startSubscriber();
    });
    afterAll(async () => {
      await attached?.webhooks.stop();
      await attached?.server.close();
      await sub.close();
      await t.dispose();
    });

    it('seals them at startup, once, and signs with them as before', async () => {
      const service = t.hub.services.webhooks;
      const input = { eventTypes: ['market.*'], markets: ['DE-L1'] };
      const rotating = await service.create(ctx, { url: sub.url('/legacy-rotating'), ...input });
      const plain = await service.create(ctx, { url: sub.url('/legacy-plain'), ...input });
      const clear = {
        current: generateWebhookSecret(),
        previous: generateWebhookSecret(),
        plain: generateWebhookSecret(),
      };
      await storeSecrets(t.hub, rotating.subscription.id, clear.current, {
        secret: clear.previous,
        expiresAt: Date.now() + 3600_000,
      });
      await storeSecrets(t.hub, plain.subscription.id, clear.plain);
      expect(await subscriptionTable(t.hub)).toContain(clear.previous);

      await t.restart();

      const table = await subscriptionTable(t.hub);
      for (const secret of Object.values(clear)) expect(table).not.toContain(secret.slice(6));
      expect(table).not.toContain('whsec_');
      const sealed = {
        rotating: await storedSecrets(t.hub, rotating.subscription.id),
        plain: await storedSecrets(t.hub, plain.subscription.id),
      };
      expect(sealed.rotating.secret).toMatch(SEALED_SECRET);
      expect(sealed.rotating.previous_secret).toMatch(SEALED_SECRET);
      expect(sealed.plain.secret).toMatch(SEALED_SECRET);
      expect(sealed.plain.previous_secret).toBeNull();
      // Idempotent: a second run finds nothing to seal and changes nothing.
      expect(await t.hub.services.webhooks.sealStoredSecrets()).toBe(0);
      expect(await storedSecrets(t.hub, rotating.subscription.id)).toEqual(sealed.rotating);

      attached = await attach(t.hub, t.adminKey);
      const market = await t.request('PUT', '/v1/markets/DE-L1', {
        body: fixtures.market('DE-L1'),
      });
      expect(market.status).toBe(201);
      await waitFor(
        () => sub.at('/legacy-rotating').length === 1 && sub.at('/legacy-plain').length === 1,
      );
      const [both] = sub.at('/legacy-rotating');
      const header = both!.headers['nexus-signature'] as string;
      expect(header.match(/v1=/g)).toHaveLength(2);
      expect(verifyWebhookSignature(clear.current, header, both!.body)).toBe(true);
      expect(verifyWebhookSignature(clear.previous, header, both!.body)).toBe(true);
      const [one] = sub.at('/legacy-plain');
      const signature = one!.headers['nexus-signature'] as string;
      expect(signature.match(/v1=/g)).toHaveLength(1);
      expect(verifyWebhookSignature(clear.plain, signature, one!.body)).toBe(true);
    });
  },
);

describe('webhooks with a pluggable event shaper', () => {
  let t: TestHub;
  let sub: Subscriber;
  let attached: Awaited<ReturnType<typeof attach>>;
  const calls: ShapeOptions[] = [];
  // Stands in for the confluent-wire shaper someone else supplies: magic byte, schema id, data.
  const wire: EventShaper = {
    shape(envelope, options) {
      calls.push(options);
      return {
        body: Buffer.concat([
          Buffer.from([0, 0, 0, 0, 7]),
          Buffer.from(JSON.stringify(envelope.data)),
        ]),
        contentType: 'application/octet-stream',
        headers: { 'Nexus-Schema-Id': '7' },
      };
    },
  };

  beforeAll(async () => {
    t = await startTestHub('sqlite');
    sub = await startSubscriber();
    attached = await attach(t.hub, t.adminKey, {
      dispatch: FAST,
      shapers: { 'confluent-wire': wire },
    });
  });
  afterAll(async () => {
    await attached.webhooks.stop();
    await attached.server.close();
    await sub.close();
    await t.dispose();
  });

  it('accepts confluent-wire once a shaper is configured, and signs its binary body', async () => {
    const created = await attached.api('POST', '/v1/webhooks', {
      url: sub.url('/wire'),
      eventTypes: ['market.created.v1'],
      markets: ['DE-W1'],
      format: 'confluent-wire',
      schemaVersions: { 'market.created.v1': 1 },
    });
    expect(created.status).toBe(201);
    const market = await t.request('PUT', '/v1/markets/DE-W1', { body: fixtures.market('DE-W1') });
    expect(market.status).toBe(201);
    await waitFor(() => sub.at('/wire').length === 1);
    const hit = sub.at('/wire')[0]!;
    expect(hit.headers['content-type']).toBe('application/octet-stream');
    expect(hit.headers['nexus-schema-id']).toBe('7');
    expect([...hit.body.subarray(0, 5)]).toEqual([0, 0, 0, 0, 7]);
    expect(JSON.parse(hit.body.subarray(5).toString('utf8'))).toMatchObject({ code: 'DE-W1' });
    expect(
      verifyWebhookSignature(
        created.json.secret as string,
        hit.headers['nexus-signature'] as string,
        hit.body,
      ),
    ).toBe(true);
    expect(calls).toEqual([
      { format: 'confluent-wire', schemaVersions: { 'market.created.v1': 1 } },
    ]);
  });
});

// Two hub processes on one PostgreSQL database, each with its own dispatcher: every attempt is
// sent by one of them only, and each subscription's order holds.
describe.runIf(PG_URL)('webhook dispatchers in two hubs on one PostgreSQL', () => {
  let first: TestHub;
  let second: Hub;
  let sub: Subscriber;
  const attached: Array<Awaited<ReturnType<typeof attach>>> = [];

  beforeAll(async () => {
    first = await startTestHub('postgres');
    second = await createHub(first.hub.config, { logger: createLogger({ level: 'silent' }) });
    second.relay.start();
    sub = await startSubscriber();
    const dispatch = { ...FAST, maxAttempts: 12, concurrency: 2 };
    attached.push(await attach(first.hub, first.adminKey, { dispatch }));
    attached.push(await attach(second, first.adminKey, { dispatch }));
  });
  afterAll(async () => {
    for (const a of attached) {
      await a.webhooks.stop();
      await a.server.close();
    }
    await sub.close();
    await second.close();
    await first.dispose();
  });

  it('never sends one attempt twice, and keeps each subscription in order', async () => {
    const paths = Array.from({ length: 6 }, (_, i) => `/multi-${i}`);
    const ids: string[] = [];
    for (const path of paths) {
      // Every third request fails, so retries (and their leases) are part of the run.
      sub.replies.set(path, (nth) => ({ status: nth % 3 === 1 ? 500 : 200, delayMs: 5 }));
      const created = await attached[ids.length % 2]!.api('POST', '/v1/webhooks', {
        url: sub.url(path),
        eventTypes: ['market.*'],
        markets: ['DE-M1'],
      });
      ids.push(created.json.id as string);
    }
    const events = 12;
    for (let v = 1; v <= events; v++) {
      const hub = v % 2 ? first.hub : second;
      const response = await hub.server.inject({
        method: 'PUT',
        url: '/v1/markets/DE-M1',
        headers: { authorization: `Bearer ${first.adminKey}`, 'content-type': 'application/json' },
        payload: JSON.stringify(fixtures.market('DE-M1', { name: `v${v}` })),
      });
      expect(response.statusCode).toBeLessThan(300);
    }
    const service = attached[0]!.webhooks.service;
    await waitFor(
      async () => {
        for (const id of ids) {
          const list = (await service.deliveries(ctx, id, { limit: 500 })).items;
          if (list.length !== events || list.some((d) => d.status !== 'succeeded')) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 50 },
    );

    let attempts = 0;
    for (const [i, id] of ids.entries()) {
      const hits = sub.at(paths[i]!);
      const list = (await service.deliveries(ctx, id, { limit: 500 })).items;
      for (const delivery of list) {
        const received = hits.filter((h) => h.headers['nexus-webhook-id'] === delivery.id);
        // One request per logged attempt: a second sender of one attempt would show here.
        expect(received).toHaveLength(delivery.attempts);
        attempts += delivery.attempts;
      }
      const versions = hits.map((h) => bodyOf(h).data.version!);
      expect(versions).toEqual([...versions].sort((a, b) => a - b));
      expect([...new Set(versions)]).toEqual(Array.from({ length: events }, (_, k) => k + 1));
    }
    expect(sub.hits.filter((h) => h.path.startsWith('/multi-'))).toHaveLength(attempts);
    const sent = attached.map((a) => a.webhooks.dispatcher.stats.sent);
    expect(sent[0]! + sent[1]!).toBe(attempts);
    // Both processes took part.
    expect(sent.every((n) => n > 0)).toBe(true);
  });
});

// The hub as app.ts wires it (listening, its own fan-out and dispatcher, the inventory's
// channel view plugged into the webhooks): what a web shop backend subscribing to "what can
// the web channel in DE sell now" gets.
describe.each(hubShapes)('availability webhooks: %s', (shape) => {
  let t: TestHub;
  let base: string;
  let sub: Subscriber;

  type Body = Record<string, unknown> & { type: string; sku: string; locationId: string };
  const AVAILABILITY_FIELDS = [
    'available',
    'changedAt',
    'channel',
    'channelSafetyStock',
    'eventId',
    'locationId',
    'marketCode',
    'onHand',
    'reserved',
    'safetyStock',
    'sku',
    'type',
    'version',
  ];
  const json = (hit: Hit) => JSON.parse(hit.body.toString('utf8')) as Body;
  const post = async (url: string, body: unknown) => {
    const response = await t.request('POST', url, { body });
    expect(response.status, response.body).toBeLessThan(300);
    return response.json as Record<string, unknown>;
  };
  const receive = (sku: string, locationId: string, quantity = 10) =>
    post('/v1/inventory/receipts', { lines: [{ sku, locationId, quantity }] });
  const subscribe = async (path: string, availability: Record<string, unknown>) =>
    (await post('/v1/webhooks', { url: sub.url(path), availability })) as {
      id: string;
      secret: string;
      availability: unknown;
    };
  const deliveries = async (id: string) =>
    (
      (await t.request('GET', `/v1/webhooks/${id}/deliveries?limit=500`)).json as {
        items: Delivery[];
      }
    ).items;

  beforeAll(async () => {
    t = await startTestHub(shape);
    base = await t.hub.listen();
    sub = await startSubscriber();
    await post('/v1/markets', fixtures.market('DE'));
    await post('/v1/markets', fixtures.market('SE'));
    for (const id of ['AV-S1', 'AV-S2', 'AV-S3'])
      await post('/v1/locations', fixtures.location(id));
    await post('/v1/locations', fixtures.location('AV-SE', 'SE'));
    await post(
      '/v1/products',
      fixtures.product('P-AV', [
        { sku: 'AV-A' },
        { sku: 'AV-B' },
        { sku: 'AV-C' },
        { sku: 'AV-D' },
        { sku: 'AV-E' },
      ]),
    );
    // Stores keep 2 of each SKU back from the web; AV-S2 does not sell to the web at all.
    const policy = await t.request('PUT', '/v1/inventory/channel-policies/DE/web', {
      body: {
        marketCode: 'DE',
        channel: 'web',
        locationTypes: ['store', 'warehouse'],
        requiredCapabilities: [],
        excludeLocations: ['AV-S2'],
        safetyStock: { default: 0, byLocationType: { store: 2 } },
      },
    });
    expect(policy.status).toBeLessThan(300);
  });
  afterAll(async () => {
    await sub.close();
    await t.dispose();
  });

  it('delivers what the web channel can sell, channel safety stock applied, signed; redelivery sends the same bytes', async () => {
    const created = await subscribe('/av-web', { marketCode: 'DE', channel: 'web' });
    expect(created.availability).toEqual({ marketCode: 'DE', channel: 'web' });
    await receive('AV-A', 'AV-S1', 10);
    await waitFor(() => sub.at('/av-web').length === 1);

    const hit = sub.at('/av-web')[0]!;
    const body = json(hit);
    expect(Object.keys(body).sort()).toEqual(AVAILABILITY_FIELDS);
    expect(body).toMatchObject({
      type: 'inventory.availability.changed',
      sku: 'AV-A',
      locationId: 'AV-S1',
      marketCode: 'DE',
      channel: 'web',
      available: 8,
      onHand: 10,
      reserved: 0,
      safetyStock: 0,
      channelSafetyStock: 2,
    });
    expect(hit.headers['content-type']).toBe('application/json');
    expect(hit.headers['nexus-event-type']).toBe('inventory.availability.changed');
    expect(hit.headers['nexus-event-id']).toBe(body.eventId);
    expect(
      verifyWebhookSignature(created.secret, hit.headers['nexus-signature'] as string, hit.body),
    ).toBe(true);

    await waitFor(async () => (await deliveries(created.id))[0]?.status === 'succeeded');
    const [delivery] = await deliveries(created.id);
    expect(delivery).toMatchObject({
      eventType: 'inventory.availability.changed',
      eventId: body.eventId,
      attempts: 1,
    });
    const logged = await t.request('GET', `/v1/webhooks/${created.id}/deliveries/${delivery!.id}`);
    expect(logged.json).toMatchObject({
      payload: body,
      envelope: { id: body.eventId, type: 'inventory.level.changed.v1' },
    });

    const again = await t.request(
      'POST',
      `/v1/webhooks/${created.id}/deliveries/${delivery!.id}/redeliver`,
    );
    expect(again.status).toBe(202);
    await waitFor(() => sub.at('/av-web').length === 2);
    const second = sub.at('/av-web')[1]!;
    expect(second.body.equals(hit.body)).toBe(true);
    expect(second.headers['nexus-webhook-id']).toBe(delivery!.id);
    expect(
      verifyWebhookSignature(
        created.secret,
        second.headers['nexus-signature'] as string,
        second.body,
      ),
    ).toBe(true);
    await t.request('DELETE', `/v1/webhooks/${created.id}`);
  });

  it('records no delivery for a change at a location the channel does not serve, nor in another market', async () => {
    const web = await subscribe('/av-served', { marketCode: 'DE', channel: 'web' });
    // Raw events of the market, to show the changes happened and went through the fan-out.
    const raw = (await post('/v1/webhooks', {
      url: sub.url('/av-raw'),
      eventTypes: ['inventory.level.changed.v1'],
      markets: ['DE'],
    })) as { id: string };
    await receive('AV-B', 'AV-S2', 5); // excluded from the web by the policy
    await receive('AV-B', 'AV-SE', 5); // another market
    await receive('AV-B', 'AV-S1', 5); // served: the marker
    await waitFor(() => sub.at('/av-served').length === 1 && sub.at('/av-raw').length === 2);
    // Fan-out goes in stream order: with the marker delivered, the earlier changes were judged.
    expect(json(sub.at('/av-served')[0]!)).toMatchObject({
      locationId: 'AV-S1',
      available: 3,
      channelSafetyStock: 2,
    });
    expect(await deliveries(web.id)).toHaveLength(1);
    const rawLocations = sub
      .at('/av-raw')
      .map(
        (h) =>
          (JSON.parse(h.body.toString('utf8')) as { data: { locationId: string } }).data.locationId,
      );
    expect(rawLocations).toEqual(['AV-S2', 'AV-S1']);
    await t.request('DELETE', `/v1/webhooks/${web.id}`);
    await t.request('DELETE', `/v1/webhooks/${raw.id}`);
  });

  it('filters by SKU and by location', async () => {
    const bySku = await subscribe('/av-sku', { marketCode: 'DE', channel: 'web', skus: ['AV-D'] });
    const byLocation = await subscribe('/av-location', {
      marketCode: 'DE',
      channel: 'web',
      locationIds: ['AV-S3'],
    });
    await receive('AV-E', 'AV-S1', 4);
    await receive('AV-D', 'AV-S1', 4);
    await receive('AV-E', 'AV-S3', 4);
    await waitFor(() => sub.at('/av-sku').length === 1 && sub.at('/av-location').length === 1);
    await receive('AV-D', 'AV-S3', 4);
    await waitFor(() => sub.at('/av-sku').length === 2 && sub.at('/av-location').length === 2);
    expect(sub.at('/av-sku').map((h) => `${json(h).sku}@${json(h).locationId}`)).toEqual([
      'AV-D@AV-S1',
      'AV-D@AV-S3',
    ]);
    expect(sub.at('/av-location').map((h) => `${json(h).sku}@${json(h).locationId}`)).toEqual([
      'AV-E@AV-S3',
      'AV-D@AV-S3',
    ]);
    expect(await deliveries(bySku.id)).toHaveLength(2);
    expect(await deliveries(byLocation.id)).toHaveLength(2);
    await t.request('DELETE', `/v1/webhooks/${bySku.id}`);
    await t.request('DELETE', `/v1/webhooks/${byLocation.id}`);
  });

  it('sends what the live stream shows the same channel for the same change', async () => {
    const hook = await subscribe('/av-same', { marketCode: 'DE', channel: 'web', skus: ['AV-C'] });
    const stream = await openEventStream<Record<string, unknown>>(
      `${base}/v1/inventory/stream?marketCode=DE&channel=web&sku=AV-C`,
      t.adminKey,
    );
    expect(stream.response.status).toBe(200);
    await sleep(100);
    await receive('AV-C', 'AV-S1', 7);
    await post('/v1/inventory/reservations', {
      sku: 'AV-C',
      locationId: 'AV-S1',
      quantity: 1,
      channel: 'web',
    });
    await receive('AV-C', 'AV-S2', 7); // not the web's: in neither
    await receive('AV-C', 'AV-S3', 7);
    await waitFor(() => stream.events.length === 3 && sub.at('/av-same').length === 3);
    await stream.close();
    const sent = sub.at('/av-same').map(json);
    expect(sent.map(({ type, ...change }) => (type === AVAILABILITY_TYPE ? change : null))).toEqual(
      stream.events.map((e) => e.data),
    );
    expect(sent.map((b) => [b.locationId, b.available, b.reserved])).toEqual([
      ['AV-S1', 5, 0],
      ['AV-S1', 4, 1],
      ['AV-S3', 5, 0],
    ]);
    await t.request('DELETE', `/v1/webhooks/${hook.id}`);
  });

  it('refuses bad availability settings with pointers; an unknown market is taken like a market filter', async () => {
    const refused = async (body: Record<string, unknown>) => {
      const response = await t.request('POST', '/v1/webhooks', {
        body: { url: sub.url('/av-bad'), ...body },
      });
      expect(response.status, response.body).toBe(400);
      const problem = response.json as { code: string; errors: Array<{ pointer: string }> };
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(problem.code).toBe('VALIDATION_FAILED');
      return problem.errors.map((e) => e.pointer);
    };
    const web = { marketCode: 'DE', channel: 'web' };
    expect(await refused({ availability: { marketCode: 'de', channel: 'web' } })).toContain(
      '/availability/marketCode',
    );
    expect(await refused({ availability: { marketCode: 'DE', channel: 'fax' } })).toContain(
      '/availability/channel',
    );
    expect(await refused({ availability: { ...web, skus: [] } })).toContain('/availability/skus');
    const many = Array.from({ length: 1001 }, (_, i) => `SKU-${i}`);
    expect(await refused({ availability: { ...web, skus: many } })).toContain('/availability/skus');
    expect(await refused({ availability: { ...web, locationIds: ['no spaces'] } })).toContain(
      '/availability/locationIds/0',
    );
    expect(await refused({ availability: { ...web, extra: 1 } })).toContain('/availability/extra');
    expect(await refused({ availability: web, eventTypes: ['*'] })).toEqual(['/eventTypes']);
    expect(await refused({ availability: web, subjectFilter: 'nexus.evt.DE.>' })).toEqual([
      '/subjectFilter',
    ]);
    expect(await refused({ availability: web, markets: ['SE'] })).toEqual(['/markets']);
    expect(await refused({ availability: web, format: 'confluent-wire' })).toEqual(['/format']);
    expect(
      await refused({ availability: web, schemaVersions: { 'inventory.level.changed.v1': 1 } }),
    ).toEqual(['/schemaVersions']);

    // Market filters only check the form of a code; so does availability.
    const unknown = await post('/v1/webhooks', {
      url: sub.url('/av-zz'),
      availability: { marketCode: 'ZZ', channel: 'web' },
      markets: ['ZZ'],
    });
    expect(unknown).toMatchObject({ markets: ['ZZ'], eventTypes: null });
    const replaced = await t.request('PUT', `/v1/webhooks/${unknown.id as string}`, {
      body: {
        url: sub.url('/av-zz'),
        availability: { marketCode: 'ZZ', channel: 'app' },
        eventTypes: ['*'],
      },
    });
    expect(replaced.status).toBe(400);
    expect((replaced.json as { errors: Array<{ pointer: string }> }).errors[0]!.pointer).toBe(
      '/eventTypes',
    );
    await t.request('DELETE', `/v1/webhooks/${unknown.id as string}`);
  });
});
