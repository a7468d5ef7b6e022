// One hub process of the two-process reservation benchmark: opens a hub on the given
// PostgreSQL database, reserves the hot SKU with `clientsEach` callers, prints the result.
import { openBenchHub, reserveThroughService } from './inventory.js';

const { url, clientsEach, totalEach } = JSON.parse(process.argv[2] ?? '{}') as {
  url: string;
  clientsEach: number;
  totalEach: number;
};
const hub = await openBenchHub({ NEXUS_DATABASE_URL: url });
hub.relay.start();
const started = performance.now();
const r = await reserveThroughService(hub, clientsEach, totalEach, () => ({
  sku: 'B-HOT',
  locationId: 'L00',
}));
const seconds = (performance.now() - started) / 1000;
await hub.close();
process.stdout.write(JSON.stringify({ perSecond: r.perSecond, seconds, granted: r.granted }));
