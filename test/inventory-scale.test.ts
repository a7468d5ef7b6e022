import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reservation } from '../src/model/schemas/inventory.js';
import { fixtures, hubShapes, startTestHub, type TestHub } from './support/hub.js';

// Calls at the sizes retailers send: thousands of lines in one bulk call, availability of 500
// SKUs across every store, pickup stores sorted by distance. Six stores east of a point.
const NEAR = { lat: 52.52, lon: 13.4 };
// [id, degrees of longitude east of NEAR (about 67.8 km each at this latitude), can hand over]
const STORES: Array<[string, number, boolean]> = [
  ['P2', 0.2, true], // ~13.6 km
  ['P4', 0.4, true], // ~27 km, but without one of the items
  ['P1', 0.05, true], // ~3.4 km
  ['P5', 1.0, true], // ~68 km: outside the radius
  ['P3', 0.1, true], // ~6.8 km
  ['P6', 0.3, false], // ~20 km, ships only
];
const SKUS = Array.from({ length: 500 }, (_, i) => `SC-${i}`);
const UNITS = 3;

interface Bulk<R = unknown> {
  applied: number;
  failed: number;
  results: Array<{ index: number; status: string; code?: string; available?: number; result?: R }>;
}
interface Availability {
  items: Array<{
    sku: string;
    total: number;
    locations: Array<{ locationId: string; available: number; reserved: number }>;
  }>;
}

describe.each(hubShapes)('inventory at scale: %s', (shape) => {
  let t: TestHub;
  const post = async <T>(url: string, body: unknown, status = 200) => {
    const r = await t.request('POST', url, { body });
    if (r.status !== status) throw new Error(`${url}: ${r.status} ${r.body}`);
    return r.json as T;
  };
  const availability = () =>
    post<Availability>('/v1/inventory/availability/query', {
      skus: SKUS,
      marketCode: 'DE',
      channel: 'web',
    });

  beforeAll(async () => {
    t = await startTestHub(shape);
    await post('/v1/markets', fixtures.market('DE'), 201);
    await post('/v1/locations/bulk', {
      items: STORES.map(([id, east, pickup]) =>
        fixtures.location(id, 'DE', {
          geo: { lat: NEAR.lat, lon: NEAR.lon + east },
          capabilities: pickup ? ['pickup', 'returns'] : ['ship'],
        }),
      ),
    });
    await post('/v1/products/bulk', {
      items: Array.from({ length: 50 }, (_, p) =>
        fixtures.product(
          `SCP-${p}`,
          SKUS.slice(p * 10, p * 10 + 10).map((sku) => ({ sku })),
        ),
      ),
    });
  }, 60_000);
  afterAll(async () => {
    await t.dispose();
  });

  it('receives 3,000 lines in one call and answers availability of 500 SKUs at every store', async () => {
    const lines = SKUS.flatMap((sku) =>
      STORES.map(([locationId]) => ({
        sku,
        locationId,
        quantity: sku === 'SC-1' && locationId === 'P4' ? 0 : UNITS,
      })),
    ).filter((l) => l.quantity > 0);
    expect(lines.length).toBe(2999);
    const received = await post<Bulk>('/v1/inventory/receipts', { lines });
    expect(received).toMatchObject({ applied: 2999, failed: 0 });

    const answer = await availability();
    expect(answer.items.map((i) => i.sku)).toEqual(SKUS);
    for (const item of answer.items) {
      const stocked = STORES.filter(([id]) => !(item.sku === 'SC-1' && id === 'P4'));
      expect(item.locations.map((l) => l.locationId).sort()).toEqual(
        stocked.map(([id]) => id).sort(),
      );
      expect(item.total).toBe(stocked.length * UNITS);
    }
  });

  it('reserves 2,000 lines in one call: all or nothing, then per line', async () => {
    const lines = SKUS.flatMap((sku) =>
      ['P1', 'P2', 'P3', 'P5'].map((locationId) => ({ sku, locationId, quantity: 1 })),
    );
    // One line more than the store holds, in the middle of the call.
    lines[1000] = { ...lines[1000]!, quantity: UNITS + 1 };
    const whole = await t.request('POST', '/v1/inventory/reservations/bulk', { body: { lines } });
    expect(whole.status).toBe(409);
    const untouched = await availability();
    expect(untouched.items.every((i) => i.locations.every((l) => l.reserved === 0))).toBe(true);

    const each = await post<Bulk<Reservation>>('/v1/inventory/reservations/bulk', {
      mode: 'per-line',
      lines,
    });
    expect(each).toMatchObject({ applied: 1999, failed: 1 });
    expect(each.results[1000]).toMatchObject({
      status: 'failed',
      code: 'INSUFFICIENT_STOCK',
      available: UNITS,
    });
    const after = await availability();
    const reserved = after.items.flatMap((i) => i.locations).reduce((n, l) => n + l.reserved, 0);
    expect(reserved).toBe(1999);

    const released = await post<Bulk>('/v1/inventory/reservations/release', {
      lines: each.results
        .filter((r) => r.status === 'applied')
        .map((r) => ({ reservationId: r.result!.id })),
    });
    expect(released).toMatchObject({ applied: 1999, failed: 0 });
  });

  it('pages the ledger of 3,000 lines and refuses a cursor it never handed out', async () => {
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const page = await t.request(
        'GET',
        `/v1/inventory/movements?locationId=P1&limit=200${query}`,
      );
      expect(page.status).toBe(200);
      const body = page.json as { items: Array<{ id: string }>; nextCursor: string | null };
      for (const m of body.items) seen.add(m.id);
      cursor = body.nextCursor;
    } while (cursor !== null);
    expect(seen.size).toBeGreaterThanOrEqual(500); // the receipts at P1, each once
    const forged = Buffer.from('not-a-position').toString('base64url');
    const bad = await t.request('GET', `/v1/inventory/movements?locationId=P1&cursor=${forged}`);
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({
      code: 'VALIDATION_FAILED',
      errors: [{ pointer: '/cursor', in: 'query' }],
    });
  });

  it('lists the pickup stores that can hand over every item, nearest first', async () => {
    const pickup = await post<{ options: Array<{ locationId: string; distanceKm: number }> }>(
      '/v1/inventory/pickup-options',
      {
        near: NEAR,
        radiusKm: 50,
        items: [
          { sku: 'SC-0', quantity: 2 },
          { sku: 'SC-1', quantity: 1 },
        ],
      },
    );
    // P4 lacks SC-1, P5 is too far, P6 cannot hand over.
    expect(pickup.options.map((o) => o.locationId)).toEqual(['P1', 'P3', 'P2']);
    const km = pickup.options.map((o) => o.distanceKm);
    expect(km[0]).toBeCloseTo(3.4, 0);
    expect(km[1]).toBeCloseTo(6.8, 0);
    expect(km[2]).toBeCloseTo(13.6, 0);

    // More than any store holds: none can hand it over.
    const more = await post<{ options: Array<{ locationId: string }> }>(
      '/v1/inventory/pickup-options',
      { near: NEAR, radiusKm: 50, items: [{ sku: 'SC-0', quantity: UNITS + 1 }] },
    );
    expect(more.options).toEqual([]);
  });
});
