import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reservation } from '../src/model/schemas/inventory.js';
import { fixtures, hubShapes, startTestHub, type TestHub } from './support/hub.js';

interface Problem {
  code: string;
  detail: string;
}
interface Bulk {
  applied: number;
  failed: number;
  results: Array<{ status: string; code?: string }>;
}

// A key limited to markets acts and reads only at locations in them (D35): the German web shop
// cannot reserve, move, sell or read Swedish stock, whatever its scopes; nor change Swedish
// stores or the Swedish market, nor send events of the Swedish market.
describe.each(hubShapes.filter((s) => s !== 'postgres+nats'))(
  'inventory under a key limited to markets: %s',
  (shape) => {
    let t: TestHub;
    let de: string;
    let dePos: string;
    const as = async (key: string, method: 'GET' | 'POST' | 'PUT', url: string, body?: unknown) =>
      t.request(method, url, { key, ...(body === undefined ? {} : { body }) });
    const onHandAt = async (locationId: string) => {
      const r = await t.request('GET', `/v1/inventory/locations/${locationId}/levels`);
      return (r.json as { items: Array<{ sku: string; onHand: number; reserved: number }> })
        .items[0]!;
    };

    beforeAll(async () => {
      t = await startTestHub(shape);
      for (const code of ['DE', 'SE']) {
        expect(
          (await t.request('POST', '/v1/markets', { body: fixtures.market(code) })).status,
        ).toBe(201);
      }
      await t.request('POST', '/v1/locations/bulk', {
        body: { items: [fixtures.location('D1', 'DE'), fixtures.location('S1', 'SE')] },
      });
      await t.request('POST', '/v1/products', {
        body: fixtures.product('P-MK', [{ sku: 'MK-1' }]),
      });
      await t.request('POST', '/v1/inventory/receipts', {
        body: {
          lines: [
            { sku: 'MK-1', locationId: 'D1', quantity: 10 },
            { sku: 'MK-1', locationId: 'S1', quantity: 10 },
          ],
        },
      });
      const access = t.hub.services.access;
      de = (await access.create({ name: 'de web', channel: 'web', scopes: ['*'], markets: ['DE'] }))
        .secret;
      dePos = (
        await access.create({
          name: 'de till',
          channel: 'pos',
          scopes: ['inventory:pos'],
          markets: ['DE'],
        })
      ).secret;
    }, 60_000);
    afterAll(async () => {
      await t.dispose();
    });

    it('acts in its markets and nowhere else, changing nothing there', async () => {
      const line = (locationId: string) => ({ sku: 'MK-1', locationId, quantity: 1 });
      const home = await as(de, 'POST', '/v1/inventory/reservations', line('D1'));
      expect(home.status).toBe(201);
      const away = await as(de, 'POST', '/v1/inventory/reservations', line('S1'));
      expect(away.status).toBe(403);
      expect(away.json).toMatchObject({ code: 'FORBIDDEN_SCOPE' });
      expect((away.json as Problem).detail).toContain("'S1' is in SE");

      // A bulk call with one line abroad is refused whole, also per line.
      const adjust = await as(de, 'POST', '/v1/inventory/adjustments', {
        mode: 'per-line',
        lines: [
          { sku: 'MK-1', locationId: 'D1', delta: -1, reason: 'damage' },
          { sku: 'MK-1', locationId: 'S1', delta: -1, reason: 'damage' },
        ],
      });
      expect(adjust.status).toBe(403);
      const transfer = await as(de, 'POST', '/v1/inventory/transfers', {
        lines: [{ sku: 'MK-1', fromLocationId: 'D1', toLocationId: 'S1', quantity: 1 }],
      });
      expect(transfer.status).toBe(403);
      const sale = await as(dePos, 'POST', '/v1/inventory/locations/S1/pos-sales', {
        sales: [
          {
            saleId: 'mk-1',
            occurredAt: new Date().toISOString(),
            lines: [{ sku: 'MK-1', quantity: 1 }],
          },
        ],
      });
      expect(sale.status).toBe(403);
      expect(await onHandAt('D1')).toMatchObject({ onHand: 10, reserved: 1 });
      expect(await onHandAt('S1')).toMatchObject({ onHand: 10, reserved: 0 });

      // A hold abroad (made by an unlimited key) cannot be committed or released by it.
      const held = (await t.request('POST', '/v1/inventory/reservations', { body: line('S1') }))
        .json as Reservation;
      const commit = await as(de, 'POST', '/v1/inventory/reservations/commit', {
        mode: 'per-line',
        lines: [{ reservationId: held.id }],
      });
      expect((commit.json as Bulk).results[0]).toMatchObject({
        status: 'failed',
        code: 'FORBIDDEN_SCOPE',
      });
      const release = await as(de, 'POST', '/v1/inventory/reservations/release', {
        lines: [{ reservationId: held.id }],
      });
      expect(release.status).toBe(403);
      expect(await onHandAt('S1')).toMatchObject({ onHand: 10, reserved: 1 });

      // Channel policies of another market are not its to set.
      const policy = await as(de, 'PUT', '/v1/inventory/channel-policies/SE/web', {
        marketCode: 'SE',
        channel: 'web',
        locationTypes: ['store'],
        requiredCapabilities: [],
        excludeLocations: [],
        safetyStock: { default: 1 },
      });
      expect(policy.status).toBe(403);
    });

    it('changes its markets and their stores only, and sends only their events', async () => {
      const moved = await as(de, 'PUT', '/v1/locations/D1', fixtures.location('D1', 'SE'));
      expect(moved.status).toBe(403);
      expect((await as(de, 'PUT', '/v1/locations/S1', fixtures.location('S1', 'DE'))).status).toBe(
        403,
      );
      expect((await as(de, 'POST', '/v1/locations', fixtures.location('S2', 'SE'))).status).toBe(
        403,
      );
      expect((await t.request('DELETE', '/v1/locations/S1', { key: de })).status).toBe(403);
      const renamed = await as(de, 'PUT', '/v1/locations/D1', {
        ...fixtures.location('D1', 'DE'),
        name: 'Berlin Mitte',
      });
      expect(renamed.status).toBe(200);
      expect((await as(de, 'PUT', '/v1/markets/SE', fixtures.market('SE'))).status).toBe(403);
      expect((await t.request('GET', '/v1/locations/S1')).json).toMatchObject({ marketCode: 'SE' });

      const schema = {
        type: 'object',
        properties: { note: { type: 'string' } },
        required: ['note'],
        additionalProperties: false,
      };
      await t.request('POST', '/registry/subjects/legacy.note.added.v1/versions', {
        body: { schema: JSON.stringify(schema), schemaType: 'JSON' },
      });
      const event = (id: string, market: string) => ({
        specversion: '1.0',
        id,
        source: '//legacy/notes',
        type: 'legacy.note.added.v1',
        subject: `note/${id}`,
        time: '2026-11-28T09:15:00Z',
        datacontenttype: 'application/json',
        dataschema: '/registry/subjects/legacy.note.added.v1/versions/latest',
        partitionkey: `note/${id}`,
        market,
        data: { note: 'hello' },
      });
      const single = await as(de, 'POST', '/v1/events', event('n-se-1', 'SE'));
      expect(single.status).toBe(403);
      expect(single.json).toMatchObject({ code: 'FORBIDDEN_SCOPE' });
      const batch = await as(de, 'POST', '/v1/events/batch', {
        items: [event('n-de-1', 'DE'), event('n-se-2', 'SE')],
      });
      expect(batch.status).toBe(200);
      expect(batch.json).toMatchObject({ accepted: 1, rejected: [{ index: 1 }] });
      // Kept with its reason, not dropped.
      const letters = (await t.request('GET', '/v1/dead-letters')).json as {
        items: Array<{ errors: Array<{ pointer: string; detail: string }> }>;
      };
      expect(
        letters.items.some((l) =>
          l.errors.some((e) => e.pointer === '/items/1/market' && e.detail.includes("'SE'")),
        ),
      ).toBe(true);
    });

    it('reads its markets only', async () => {
      const item = await as(de, 'GET', '/v1/inventory/items/MK-1');
      expect(item.status).toBe(200);
      expect(
        (item.json as { levels: Array<{ locationId: string }> }).levels.map((l) => l.locationId),
      ).toEqual(['D1']);
      expect((await as(de, 'GET', '/v1/inventory/locations/S1/levels')).status).toBe(403);
      expect((await as(de, 'GET', '/v1/inventory/locations/D1/levels')).status).toBe(200);
      // Lists that span locations name one of its own.
      expect((await as(de, 'GET', '/v1/inventory/movements')).status).toBe(403);
      expect((await as(de, 'GET', '/v1/inventory/movements?locationId=S1')).status).toBe(403);
      expect((await as(de, 'GET', '/v1/inventory/movements?locationId=D1')).status).toBe(200);
      expect((await as(de, 'GET', '/v1/inventory/reservations')).status).toBe(403);
      const mine = await as(de, 'GET', '/v1/inventory/reservations?locationId=D1');
      expect(mine.status).toBe(200);
      const foreign = (
        (await t.request('GET', '/v1/inventory/reservations?locationId=S1')).json as {
          items: Reservation[];
        }
      ).items[0]!;
      expect((await as(de, 'GET', `/v1/inventory/reservations/${foreign.id}`)).status).toBe(403);
      expect((await as(de, 'GET', '/v1/inventory/kpis/accuracy')).status).toBe(403);
      expect((await as(de, 'GET', '/v1/inventory/kpis/accuracy?marketCode=DE')).status).toBe(200);
      expect((await as(de, 'GET', '/v1/inventory/channel-policies/SE/web')).status).toBe(403);
      // The unlimited key still sees everything.
      const all = (await t.request('GET', '/v1/inventory/items/MK-1')).json as {
        levels: unknown[];
      };
      expect(all.levels).toHaveLength(2);
    });
  },
);
