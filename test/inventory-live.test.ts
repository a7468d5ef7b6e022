import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtures, hubShapes, startTestHub, type TestHub } from './support/hub.js';
import { openEventStream } from './support/sse.js';

type Change = {
  sku: string;
  locationId: string;
  available: number;
  channel: string;
  onHand: number;
};
const openStream = (url: string, key: string, lastEventId?: string) =>
  openEventStream<Change>(url, key, lastEventId);

const until = async (check: () => boolean, ms = 10_000) => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe.each(hubShapes)('live availability stream: %s', (shape) => {
  let t: TestHub;
  let base: string;

  beforeAll(async () => {
    // A tiny replay buffer, so reconnects exercise both the memory and the bus paths.
    t = await startTestHub(shape, { inventory: { liveReplayCapacity: 3 } });
    base = await t.hub.listen();
    const post = (url: string, body: unknown) => t.request('POST', url, { body });
    await post('/v1/markets', fixtures.market('DE'));
    await post('/v1/markets', fixtures.market('SE'));
    await post('/v1/locations', fixtures.location('LIVE-1', 'DE'));
    await post('/v1/locations', fixtures.location('LIVE-SE', 'SE'));
    await post('/v1/products', fixtures.product('P-LIVE', [{ sku: 'LIVE-A' }, { sku: 'LIVE-B' }]));
  });
  afterAll(async () => {
    await t.dispose();
  });

  /** The relay has put every committed event on the bus (a stream starts at the bus's end). */
  const drained = async () => {
    for (;;) {
      const { n } = await t.hub.storage.db
        .selectFrom('outbox')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('published_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(n) === 0) return;
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  const sale = (n: number, sku = 'LIVE-A', locationId = 'LIVE-1') =>
    t.request('POST', `/v1/inventory/locations/${locationId}/pos-sales`, {
      body: {
        sales: [
          {
            saleId: `sale-${sku}-${locationId}-${n}`,
            occurredAt: new Date().toISOString(),
            lines: [{ sku, quantity: 1 }],
          },
        ],
      },
    });

  it('streams a POS sale to another channel, and a reconnect with Last-Event-ID misses nothing', async () => {
    await t.request('POST', '/v1/inventory/receipts', {
      body: {
        lines: [
          { sku: 'LIVE-A', locationId: 'LIVE-1', quantity: 100 },
          { sku: 'LIVE-B', locationId: 'LIVE-1', quantity: 100 },
          { sku: 'LIVE-A', locationId: 'LIVE-SE', quantity: 100 },
        ],
      },
    });
    await drained();
    const web = await openStream(
      `${base}/v1/inventory/stream?marketCode=DE&channel=web&sku=LIVE-A`,
      t.adminKey,
    );
    expect(web.response.status).toBe(200);
    expect(web.response.headers.get('content-type')).toContain('text/event-stream');
    await new Promise((r) => setTimeout(r, 100));

    expect((await sale(1)).status).toBe(200);
    await sale(1, 'LIVE-B'); // another SKU: filtered out
    await sale(1, 'LIVE-A', 'LIVE-SE'); // another market: filtered out
    await until(() => web.events.length === 1);
    expect(web.events[0]).toMatchObject({
      event: 'availability',
      data: { sku: 'LIVE-A', locationId: 'LIVE-1', channel: 'web', available: 99, onHand: 99 },
    });
    const lastSeen = web.events[0]!.id;
    await web.close();

    // While away: two changes (within the replay buffer), then reconnect.
    await sale(2);
    await sale(3);
    const back = await openStream(
      `${base}/v1/inventory/stream?marketCode=DE&channel=web&sku=LIVE-A`,
      t.adminKey,
      lastSeen,
    );
    await until(() => back.events.length === 2);
    expect(back.events.map((e) => e.data.onHand)).toEqual([98, 97]);
    await sale(4);
    await until(() => back.events.length === 3);
    expect(back.events[2]!.data.onHand).toBe(96);
    const resumeFrom = back.events[2]!.id;
    await back.close();

    // Away for longer than the buffer holds: the stream is served from the bus.
    for (let n = 5; n <= 10; n++) await sale(n, n % 2 === 0 ? 'LIVE-A' : 'LIVE-B');
    const later = await openStream(
      `${base}/v1/inventory/stream?marketCode=DE&channel=web&sku=LIVE-A`,
      t.adminKey,
      resumeFrom,
    );
    await until(() => later.events.length === 3);
    expect(later.events.map((e) => e.data.onHand)).toEqual([95, 94, 93]);
    await later.close();
  });

  it('refuses a stream without a market, or for a market the key may not read', async () => {
    const noMarket = await fetch(`${base}/v1/inventory/stream`, {
      headers: { authorization: `Bearer ${t.adminKey}` },
    });
    expect(noMarket.status).toBe(400);
    const { secret } = await t.hub.services.access.create({
      name: 'se-only',
      channel: 'app',
      scopes: ['inventory:read'],
      markets: ['SE'],
    });
    const forbidden = await fetch(`${base}/v1/inventory/stream?marketCode=DE`, {
      headers: { authorization: `Bearer ${secret}` },
    });
    expect(forbidden.status).toBe(403);
  });
});
