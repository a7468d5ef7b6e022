// One hub process of the two-process reservation benchmark: opens a hub on the given
// PostgreSQL database, reserves with `clientsEach` callers (the hot SKU, or every other key of
// the spread from `offset`), prints the result with its latency samples.
import { openBenchHub, reserveThroughService, spreadKey } from './inventory.js';

const { url, clientsEach, totalEach, load, offset } = JSON.parse(process.argv[2] ?? '{}') as {
  url: string;
  clientsEach: number;
  totalEach: number;
  load: 'hot' | 'spread';
  offset: number;
};
const hub = await openBenchHub({ NEXUS_DATABASE_URL: url });
hub.relay.start();
const started = performance.now();
const r = await reserveThroughService(hub, clientsEach, totalEach, (i) =>
  load === 'hot' ? { sku: 'B-HOT', locationId: 'L00' } : spreadKey(2 * i + offset),
);
const seconds = (performance.now() - started) / 1000;
await hub.close();
process.stdout.write(
  JSON.stringify({
    seconds,
    granted: r.granted,
    samples: r.samples.map((ms) => Math.round(ms * 1000) / 1000),
  }),
);
