import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../src/platform/bus/bus.js';
import { fixtures, hubShapes, startTestHub, type TestHub } from './support/hub.js';
import { waitFor } from './support/targets.js';

interface ProblemBody {
  code: string;
  status: number;
  type: string;
  title: string;
  detail: string;
  requestId: string;
  errors?: Array<{ pointer: string; detail: string; in?: string }>;
}

describe.each(hubShapes)('HTTP API end to end: %s', (shape) => {
  let t: TestHub;
  let events: Delivery[];
  let observer: Subscription;

  const eventsOf = (type: string) => events.filter((e) => e.envelope.type === type);

  beforeAll(async () => {
    t = await startTestHub(shape);
    events = [];
    observer = await t.hub.bus.subscribe({ name: 'test-observer', filter: 'nexus.evt.>' }, (d) => {
      events.push(d);
      return Promise.resolve();
    });
  });
  afterAll(async () => {
    await observer.stop();
    await t.dispose();
  });

  describe('authentication and scopes', () => {
    it('refuses a request without a key with 401 problem+json', async () => {
      const r = await t.request('GET', '/v1/markets', { key: null });
      expect(r.status).toBe(401);
      expect(r.headers['content-type']).toContain('application/problem+json');
      expect(r.headers['www-authenticate']).toBe('Bearer');
      const p = r.json as ProblemBody;
      expect(p).toMatchObject({
        code: 'UNAUTHENTICATED',
        status: 401,
        type: '/problems/unauthenticated',
      });
      expect(p.requestId).toBe(r.headers['x-request-id']);
    });

    it('refuses an unknown or revoked key', async () => {
      expect(
        (await t.request('GET', '/v1/markets', { key: 'nx_deadbeef_' + 'a'.repeat(43) })).status,
      ).toBe(401);
      const { key, secret } = await t.hub.services.access.create({
        name: 'tmp',
        channel: 'app',
        scopes: ['markets:read'],
      });
      expect((await t.request('GET', '/v1/markets', { key: secret })).status).toBe(200);
      await t.hub.services.access.revoke(key.id);
      expect((await t.request('GET', '/v1/markets', { key: secret })).status).toBe(401);
    });

    it('refuses a key without the route scope with 403 and changes nothing', async () => {
      const { secret } = await t.hub.services.access.create({
        name: 'reader',
        channel: 'web',
        scopes: ['markets:read'],
      });
      const r = await t.request('POST', '/v1/markets', {
        key: secret,
        body: fixtures.market('FR'),
      });
      expect(r.status).toBe(403);
      expect((r.json as ProblemBody).code).toBe('FORBIDDEN_SCOPE');
      expect((await t.request('GET', '/v1/markets/FR')).status).toBe(404);
    });

    it('lets health, readiness, metrics and the OpenAPI document through without a key', async () => {
      expect((await t.request('GET', '/healthz', { key: null })).status).toBe(200);
      const ready = await t.request('GET', '/readyz', { key: null });
      expect(ready.status).toBe(200);
      expect(ready.json).toMatchObject({
        status: 'ready',
        checks: { database: { ok: true }, bus: { ok: true } },
      });
      const openapi = await t.request('GET', '/v1/openapi.json', { key: null });
      const doc = openapi.json as { openapi: string; paths: Record<string, unknown> };
      expect(doc.openapi).toBe('3.1.0');
      expect(Object.keys(doc.paths)).toEqual(
        expect.arrayContaining(['/v1/markets', '/v1/locations/{id}', '/v1/products/bulk']),
      );
      expect((await t.request('GET', '/v1/docs/', { key: null })).status).toBe(200);
    });
  });

  describe('markets', () => {
    it('creates, reads, replaces and announces a market', async () => {
      const created = await t.request('POST', '/v1/markets', { body: fixtures.market('DE') });
      expect(created.status).toBe(201);
      expect(created.headers.location).toBe('/v1/markets/DE');
      expect(created.json).toMatchObject({ code: 'DE', version: 1, status: 'active' });

      const same = await t.request('PUT', '/v1/markets/DE', { body: fixtures.market('DE') });
      expect(same.status).toBe(200);
      expect(same.json).toMatchObject({ version: 1 });

      const changed = await t.request('PUT', '/v1/markets/DE', {
        body: fixtures.market('DE', { name: 'Deutschland' }),
      });
      expect(changed.json).toMatchObject({ name: 'Deutschland', version: 2 });

      await waitFor(() => eventsOf('market.updated.v1').length === 1);
      const [createdEvent] = eventsOf('market.created.v1');
      expect(createdEvent!.envelope).toMatchObject({
        specversion: '1.0',
        subject: 'market/DE',
        market: 'DE',
        channel: 'web',
        dataschema: '/registry/subjects/market.created.v1/versions/1',
        data: { code: 'DE', version: 1 },
      });
      expect(createdEvent!.subject).toBe('nexus.evt.DE.market.created.v1');
      expect(eventsOf('market.updated.v1')[0]!.envelope.data).toMatchObject({
        name: 'Deutschland',
        version: 2,
      });
    });

    it('refuses a second create of the same code with 409', async () => {
      const r = await t.request('POST', '/v1/markets', { body: fixtures.market('DE') });
      expect(r.status).toBe(409);
      expect((r.json as ProblemBody).errors?.[0]?.pointer).toBe('/code');
    });

    it('points at each unknown field, wrong type and missing field', async () => {
      const r = await t.request('POST', '/v1/markets', {
        body: { ...fixtures.market('SE'), channels: 'web', colour: 'blue', name: undefined },
      });
      expect(r.status).toBe(400);
      const p = r.json as ProblemBody;
      expect(p.code).toBe('VALIDATION_FAILED');
      const pointers = p.errors!.map((e) => e.pointer);
      expect(pointers).toEqual(expect.arrayContaining(['/channels', '/colour', '/name']));
      expect((await t.request('GET', '/v1/markets/SE')).status).toBe(404);
    });

    it('checks rules the schema cannot state', async () => {
      const r = await t.request('POST', '/v1/markets', {
        body: fixtures.market('SE', { defaultLocale: 'sv-SE' }),
      });
      expect(r.status).toBe(400);
      expect((r.json as ProblemBody).errors).toEqual([
        { pointer: '/defaultLocale', detail: 'must be one of locales' },
      ]);
    });

    it('refuses malformed JSON, a wrong media type and an oversized body', async () => {
      const bad = await t.request('POST', '/v1/markets', { raw: '{"code": "SE",' });
      expect(bad.status).toBe(400);
      expect((bad.json as ProblemBody).code).toBe('MALFORMED_JSON');
      const media = await t.request('POST', '/v1/markets', {
        raw: 'code=SE',
        headers: { 'content-type': 'text/csv' },
      });
      expect(media.status).toBe(415);
      expect((media.json as ProblemBody).code).toBe('UNSUPPORTED_MEDIA_TYPE');
      const big = await t.request('POST', '/v1/markets', {
        body: { ...fixtures.market('SE'), name: 'x'.repeat(2 * 1024 * 1024) },
      });
      expect(big.status).toBe(413);
      expect((big.json as ProblemBody).code).toBe('PAYLOAD_TOO_LARGE');
    });

    it('answers unknown routes and ids with problem+json', async () => {
      const route = await t.request('GET', '/v1/nothing-here');
      expect(route.status).toBe(404);
      expect((route.json as ProblemBody).code).toBe('ROUTE_NOT_FOUND');
      const id = await t.request('GET', '/v1/markets/NO');
      expect((id.json as ProblemBody).code).toBe('NOT_FOUND');
    });
  });

  describe('idempotency', () => {
    it('replays the first response for a retry with the same key and body', async () => {
      const headers = { 'idempotency-key': 'create-se-1' };
      const first = await t.request('POST', '/v1/markets', {
        body: fixtures.market('SE'),
        headers,
      });
      const retry = await t.request('POST', '/v1/markets', {
        body: fixtures.market('SE'),
        headers,
      });
      expect(first.status).toBe(201);
      expect(retry.status).toBe(201);
      expect(retry.headers['idempotent-replayed']).toBe('true');
      expect(retry.json).toEqual(first.json);
      await waitFor(() =>
        eventsOf('market.created.v1').some((e) => e.envelope.subject === 'market/SE'),
      );
      expect(
        eventsOf('market.created.v1').filter((e) => e.envelope.subject === 'market/SE'),
      ).toHaveLength(1);
    });

    it('refuses the same key with a different body, and keys are per API key', async () => {
      const headers = { 'idempotency-key': 'create-se-1' };
      const other = await t.request('POST', '/v1/markets', {
        body: fixtures.market('GB'),
        headers,
      });
      expect(other.status).toBe(422);
      expect((other.json as ProblemBody).code).toBe('IDEMPOTENCY_KEY_REUSED');
      const { secret } = await t.hub.services.access.create({
        name: 'second client',
        channel: 'pos',
        scopes: ['*'],
      });
      const fresh = await t.request('POST', '/v1/markets', {
        key: secret,
        body: fixtures.market('GB'),
        headers,
      });
      expect(fresh.status).toBe(201);
    });

    it('expires keys after 24 hours', async () => {
      await t.hub.storage.db
        .updateTable('idempotency_keys')
        .set({ expires_at: Date.now() - 1 })
        .execute();
      const { purgeExpiredIdempotencyKeys } = await import('../src/api/idempotency.js');
      expect(await purgeExpiredIdempotencyKeys(t.hub.storage.db)).toBeGreaterThan(0);
      const r = await t.request('PUT', '/v1/markets/SE', {
        body: fixtures.market('SE', { name: 'Sverige' }),
        headers: { 'idempotency-key': 'create-se-1' },
      });
      expect(r.status).toBe(200);
    });
  });

  describe('locations', () => {
    it('refuses an unknown market with 422 and a pointer, writing nothing', async () => {
      const r = await t.request('POST', '/v1/locations', { body: fixtures.location('XX-1', 'XX') });
      expect(r.status).toBe(422);
      const p = r.json as ProblemBody;
      expect(p.code).toBe('UNKNOWN_REFERENCE');
      expect(p.errors).toEqual([{ pointer: '/marketCode', detail: "unknown market 'XX'" }]);
      expect((await t.request('GET', '/v1/locations/XX-1')).status).toBe(404);
    });

    it('bulk upserts, filters and pages', async () => {
      const items = Array.from({ length: 25 }, (_, i) =>
        fixtures.location(`DE-S-${String(i).padStart(3, '0')}`, i % 5 === 0 ? 'SE' : 'DE', {
          capabilities: i % 2 === 0 ? ['pickup', 'same-day'] : ['ship'],
        }),
      );
      const bulk = await t.request('POST', '/v1/locations/bulk', { body: { items } });
      expect(bulk.status).toBe(200);
      expect(bulk.json).toMatchObject({ created: 25, updated: 0, unchanged: 0 });

      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await t.request(
          'GET',
          `/v1/locations?limit=10&marketCode=DE${cursor ? `&cursor=${cursor}` : ''}`,
        );
        const body = page.json as { items: Array<{ id: string }>; nextCursor: string | null };
        seen.push(...body.items.map((l) => l.id));
        cursor = body.nextCursor;
      } while (cursor);
      expect(seen).toHaveLength(20);
      expect([...seen].sort()).toEqual(seen);

      const sameDay = await t.request('GET', '/v1/locations?capability=same-day&limit=100');
      expect((sameDay.json as { items: unknown[] }).items).toHaveLength(13);
      const badCursor = await t.request('GET', '/v1/locations?cursor=%%%');
      expect(badCursor.status).toBe(400);
      const badLimit = await t.request('GET', '/v1/locations?limit=5000');
      expect((badLimit.json as ProblemBody).errors?.[0]).toMatchObject({
        pointer: '/limit',
        in: 'query',
      });
    });

    it('will not delete a market that still has locations', async () => {
      const r = await t.request('DELETE', '/v1/markets/SE');
      expect(r.status).toBe(409);
      expect((r.json as ProblemBody).code).toBe('CONFLICT');
    });

    it('deletes a location and announces it', async () => {
      expect((await t.request('DELETE', '/v1/locations/DE-S-000')).status).toBe(204);
      expect((await t.request('DELETE', '/v1/locations/DE-S-000')).status).toBe(404);
      await waitFor(() => eventsOf('location.deleted.v1').length === 1);
      expect(eventsOf('location.deleted.v1')[0]!.envelope.data).toEqual({
        id: 'DE-S-000',
        version: 1,
      });
    });
  });

  describe('products', () => {
    const price = (marketCode: string, amount: string, currency = 'EUR') => ({
      marketCode,
      price: { currency, amount },
    });

    it('bulk upserts a thousand products, and a re-sent feed changes nothing', async () => {
      const items = Array.from({ length: 1000 }, (_, i) =>
        fixtures.product(`P-${i}`, [{ sku: `P-${i}-S` }, { sku: `P-${i}-M` }], {
          category: i % 2 ? 'shoes/running' : 'apparel',
        }),
      );
      const first = await t.request('POST', '/v1/products/bulk', { body: { items } });
      expect(first.json).toMatchObject({ created: 1000, updated: 0, unchanged: 0 });
      await waitFor(() => eventsOf('product.created.v1').length === 1000);
      const again = await t.request('POST', '/v1/products/bulk', { body: { items } });
      expect(again.json).toMatchObject({ created: 0, updated: 0, unchanged: 1000 });
      const running = await t.request('GET', '/v1/products?category=shoes&limit=500');
      expect((running.json as { items: unknown[] }).items).toHaveLength(500);
      const bySku = await t.request('GET', '/v1/products?sku=P-7-M');
      expect((bySku.json as { items: Array<{ id: string }> }).items.map((p) => p.id)).toEqual([
        'P-7',
      ]);
      await new Promise((r) => setTimeout(r, 100));
      expect(eventsOf('product.created.v1')).toHaveLength(1000);
      expect(eventsOf('product.updated.v1')).toHaveLength(0);
    });

    it('refuses a SKU that belongs to another product, with a pointer, all or nothing', async () => {
      const r = await t.request('POST', '/v1/products/bulk', {
        body: {
          items: [
            fixtures.product('NEW-1', [{ sku: 'NEW-1-S' }]),
            fixtures.product('NEW-2', [{ sku: 'P-3-S' }]),
          ],
        },
      });
      expect(r.status).toBe(409);
      expect((r.json as ProblemBody).errors).toEqual([
        { pointer: '/items/1/skus/0/sku', detail: "belongs to product 'P-3'" },
      ]);
      expect((await t.request('GET', '/v1/products/NEW-1')).status).toBe(404);
    });

    it('checks GTIN check digits, prices and their markets', async () => {
      const badGtin = await t.request('POST', '/v1/products', {
        body: fixtures.product('G-1', [{ sku: 'G-1-A', gtin: '4006381333932' }]),
      });
      expect(badGtin.status).toBe(400);
      expect((badGtin.json as ProblemBody).errors?.[0]?.pointer).toBe('/skus/0/gtin');
      const good = fixtures.product('G-1', [{ sku: 'G-1-A', gtin: '4006381333931' }]);
      expect((await t.request('POST', '/v1/products', { body: good })).status).toBe(201);

      const tooPrecise = fixtures.product('M-1', [{ sku: 'M-1-A' }]);
      (tooPrecise.skus[0] as Record<string, unknown>).prices = [price('DE', '12.999')];
      const r1 = await t.request('POST', '/v1/products', { body: tooPrecise });
      expect((r1.json as ProblemBody).errors?.[0]?.pointer).toBe('/skus/0/prices/0/price/amount');

      const floatPrice = fixtures.product('M-1', [{ sku: 'M-1-A' }]);
      (floatPrice.skus[0] as Record<string, unknown>).prices = [
        { marketCode: 'DE', price: { currency: 'EUR', amount: 12.99 } },
      ];
      expect((await t.request('POST', '/v1/products', { body: floatPrice })).status).toBe(400);

      const unknownMarket = fixtures.product('M-1', [{ sku: 'M-1-A' }]);
      (unknownMarket.skus[0] as Record<string, unknown>).prices = [price('NO', '10.00', 'NOK')];
      const r2 = await t.request('POST', '/v1/products', { body: unknownMarket });
      expect(r2.status).toBe(422);
      expect((r2.json as ProblemBody).errors?.[0]?.pointer).toBe('/skus/0/prices/0/marketCode');
    });

    it('points into the offending bulk item, and writes none of the batch', async () => {
      const r = await t.request('POST', '/v1/products/bulk', {
        body: {
          items: [
            fixtures.product('V-1', [{ sku: 'V-1-A' }]),
            fixtures.product('V-2', [{ sku: 'V-2-A', gtin: '4006381333932' }], { colour: 'red' }),
          ],
        },
      });
      expect(r.status).toBe(400);
      expect((r.json as ProblemBody).errors?.map((e) => e.pointer)).toEqual(
        expect.arrayContaining(['/items/1/skus/0/gtin', '/items/1/colour']),
      );
      expect((await t.request('GET', '/v1/products/V-1')).status).toBe(404);
      const notAList = await t.request('POST', '/v1/products/bulk', {
        body: { items: 'all of them' },
      });
      expect((notAList.json as ProblemBody).errors?.[0]?.pointer).toBe('/items');
    });

    it('refuses duplicate ids inside one bulk call', async () => {
      const r = await t.request('POST', '/v1/products/bulk', {
        body: {
          items: [
            fixtures.product('D-1', [{ sku: 'D-1-A' }]),
            fixtures.product('D-1', [{ sku: 'D-1-B' }]),
          ],
        },
      });
      expect(r.status).toBe(400);
      expect((r.json as ProblemBody).errors?.[0]?.pointer).toBe('/items/1/id');
    });
  });

  it('keeps per-entity order on the bus: every version of one product arrives in order', async () => {
    for (let v = 0; v < 20; v++) {
      const r = await t.request('PUT', '/v1/products/ORDERED', {
        body: fixtures.product('ORDERED', [{ sku: 'ORDERED-1' }], { brand: `b${v}` }),
      });
      expect(r.status).toBeLessThan(300);
    }
    const versions = () =>
      events
        .filter((e) => e.envelope.subject === 'product/ORDERED')
        .map((e) => (e.envelope.data as { version: number }).version);
    await waitFor(() => versions().length === 20);
    expect(versions()).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('counts requests in /metrics', async () => {
    const metrics = await t.request('GET', '/metrics', { key: null });
    expect(metrics.body).toContain(
      'nexus_http_requests_total{method="POST",route="/v1/markets",status="201"}',
    );
    expect(metrics.body).toMatch(/nexus_outbox_backlog \d+/);
  });
});
