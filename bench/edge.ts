// What tokenization and business deduplication add to event ingest: `npx tsx bench/edge.ts`
// (also part of `npm run bench`). The same mix of events goes through the hub's ingest with
// both on, and through an ingest with both off (customers arrive already in token form, so the
// rest of the work is identical), alternating rounds in one process; after one warm-up round,
// best of three each.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createHub } from '../src/app.js';
import { buildDemoActivity, type DemoEnvelope } from '../src/cli/demo-customers.js';
import { buildDemoRetailer } from '../src/cli/demo-data.js';
import { IngestService } from '../src/modules/ingest/index.js';
import { loadConfig } from '../src/platform/config.js';
import { systemContext } from '../src/platform/context.js';
import { createLogger } from '../src/platform/logging.js';
import { now, rate, table } from './lib.js';

export interface EdgeBench {
  events: number;
  onPerSecond: number;
  offPerSecond: number;
  ratio: number;
}

const BATCH = 500;

export async function edgeBench(rounds = 3): Promise<EdgeBench> {
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-edge-'));
  const hub = await createHub(
    loadConfig({
      env: { NEXUS_SQLITE_FILE: join(dir, 'edge.db') },
      overrides: (raw) => {
        raw.log = { level: 'warn' };
      },
    }),
    { logger: createLogger({ level: 'warn' }) },
  );
  hub.relay.start();
  const ctx = systemContext('bench');
  const retailer = buildDemoRetailer({ skuTarget: 200 });
  await hub.services.markets.bulkUpsert(ctx, retailer.markets);
  await hub.services.locations.bulkUpsert(ctx, retailer.locations);
  const plain = new IngestService({
    db: hub.storage.db,
    transactor: hub.transactor,
    registry: hub.services.registry,
  });

  // One round's events: customers with personal data, orders, POS sales (a tenth of them twice).
  const roundEvents = (round: number, tokenized: boolean) => {
    const activity = buildDemoActivity(retailer.products, retailer.locations, {
      customers: 1000,
      orders: 500,
      sales: 1500,
    });
    const all = [...activity.customers, ...activity.orders, ...activity.posSales];
    return all.map((e): DemoEnvelope => {
      const tag = `${tokenized ? 'off' : 'on'}-${round}`;
      const data =
        e.type === 'pos.sale.recorded.v1'
          ? { ...e.data, transactionNumber: `${String(e.data.transactionNumber)}-${tag}` }
          : e.type === 'order.placed.v1'
            ? {
                ...e.data,
                externalReferences: [{ system: 'shop', id: `${String(e.data.id)}-${tag}` }],
              }
            : e.data;
      return { ...e, id: `${e.id}-${tag}`, data };
    });
  };
  // Both-off input: the customers' and orders' personal data tokenized beforehand.
  const pretokenize = async (events: DemoEnvelope[]) =>
    Promise.all(
      events.map(async (e) => ({
        ...e,
        data: (await hub.services.tokenization.prepareInbound(e.type, e.data)) as Record<
          string,
          unknown
        >,
      })),
    );

  const run = async (service: IngestService, events: DemoEnvelope[]) => {
    const started = now();
    for (let i = 0; i < events.length; i += BATCH) {
      const report = await service.ingestBatch(ctx, events.slice(i, i + BATCH));
      if (report.rejected.length > 0) {
        throw new Error(`bench events refused: ${JSON.stringify(report.rejected[0])}`);
      }
    }
    return events.length / ((now() - started) / 1000);
  };

  let on = 0;
  let off = 0;
  let events = 0;
  // Round 0 warms both paths up (JIT, statement caches) and is not counted.
  for (let round = 0; round <= rounds; round++) {
    const withEdge = roundEvents(round, false);
    const without = await pretokenize(roundEvents(round, true));
    events = withEdge.length;
    const offRate = await run(plain, without);
    const onRate = await run(hub.services.ingest, withEdge);
    if (round === 0) continue;
    off = Math.max(off, offRate);
    on = Math.max(on, onRate);
  }
  await hub.close();
  rmSync(dir, { recursive: true, force: true });
  return { events, onPerSecond: on, offPerSecond: off, ratio: off / on };
}

export function edgeTable(r: EdgeBench): string {
  return table(
    ['ingest', 'events/s', 'µs per event', 'time ratio', 'target'],
    [
      [
        'tokenization and deduplication off (payloads pre-tokenized)',
        rate(r.offPerSecond),
        (1e6 / r.offPerSecond).toFixed(1),
        '1.00',
        '',
      ],
      [
        'tokenization and deduplication on',
        rate(r.onPerSecond),
        `${(1e6 / r.onPerSecond).toFixed(1)} (+${(1e6 / r.onPerSecond - 1e6 / r.offPerSecond).toFixed(1)})`,
        r.ratio.toFixed(2),
        `<= 1.25: ${r.ratio <= 1.25 ? 'met' : 'missed'}`,
      ],
    ],
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await edgeBench();
  console.log(`${r.events} events per round (customers, orders, POS sales)\n`);
  console.log(edgeTable(r));
}
