import type { Location } from '../model/schemas/location.js';
import type { Market } from '../model/schemas/market.js';
import type { Product } from '../model/schemas/product.js';
import type { Context } from '../platform/context.js';
import type { UpsertResult } from '../platform/resources.js';
import type { ApiKey, NewApiKey } from '../modules/access/index.js';
import { buildDemoActivity } from './demo-customers.js';
import { buildDemoRetailer, RETAILER_NAME } from './demo-data.js';

/** The slice of the hub the demo seeder needs. */
export interface SeedTarget {
  services: {
    markets: { bulkUpsert(ctx: Context, items: Market[]): Promise<UpsertResult[]> };
    locations: { bulkUpsert(ctx: Context, items: Location[]): Promise<UpsertResult[]> };
    catalog: { bulkUpsert(ctx: Context, items: Product[]): Promise<UpsertResult[]> };
    access: { create(input: NewApiKey): Promise<{ key: ApiKey; secret: string }> };
    ingest: {
      ingestBatch(
        ctx: Context,
        items: readonly unknown[],
      ): Promise<{ accepted: number; deduplicated: unknown[]; rejected: unknown[] }>;
    };
    inventory: {
      receive(
        ctx: Context,
        lines: Array<{ sku: string; locationId: string; quantity: number; reference?: string }>,
        mode: 'all-or-nothing',
      ): Promise<unknown>;
    };
  };
}

export interface SeedReport {
  markets: number;
  stores: number;
  warehouses: number;
  products: number;
  skus: number;
  stockLines: number;
  events: { accepted: number; deduplicated: number };
  keys: Array<{ name: string; channel: string; scopes: string[]; secret: string }>;
}

/** What a channel client of the demo may read. */
const CHANNEL_READ = ['catalog:read', 'markets:read', 'locations:read', 'inventory:read'];

/** One channel client per touchpoint, and one operator key. */
const DEMO_KEYS: NewApiKey[] = [
  {
    name: 'demo web shop',
    channel: 'web',
    scopes: [...CHANNEL_READ, 'inventory:reserve'],
  },
  {
    name: 'demo mobile app',
    channel: 'app',
    scopes: [...CHANNEL_READ, 'inventory:reserve'],
  },
  {
    name: 'demo store POS',
    channel: 'pos',
    scopes: [...CHANNEL_READ, 'inventory:reserve', 'inventory:pos'],
  },
  {
    name: 'demo customer service',
    channel: 'customer-service',
    scopes: [...CHANNEL_READ, 'inventory:reserve'],
  },
  { name: 'demo operator (all scopes)', channel: 'web', scopes: ['*'] },
];

const PRODUCT_BATCH = 100;
const STOCK_BATCH = 5000;

/**
 * Opening stock: warehouses hold every SKU, each store about one SKU in six, a few units
 * each. Deterministic (a fixed-seed generator), so every demo has the same numbers.
 */
function openingStock(
  skus: readonly string[],
  locations: ReadonlyArray<Pick<Location, 'id' | 'type'>>,
): Array<{ sku: string; locationId: string; quantity: number; reference: string }> {
  let seed = 20261128;
  const next = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const lines = [];
  for (const location of locations) {
    for (const sku of skus) {
      const warehouse = location.type === 'warehouse';
      if (!warehouse && next() > 1 / 6) continue;
      const quantity = warehouse ? 50 + Math.floor(next() * 450) : 1 + Math.floor(next() * 12);
      lines.push({ sku, locationId: location.id, quantity, reference: 'demo opening stock' });
    }
  }
  return lines;
}

/** Seeds the demo retailer through the services (so every write emits its event). */
export async function seedDemo(
  hub: SeedTarget,
  ctx: Context,
  progress: (done: number, total: number, label: string) => void,
  options: { skuTarget?: number } = {},
): Promise<SeedReport> {
  const data = buildDemoRetailer(
    options.skuTarget === undefined ? {} : { skuTarget: options.skuTarget },
  );
  const stock = openingStock(
    data.products.flatMap((p) => p.skus.map((s) => s.sku)),
    data.locations,
  );
  const activity = buildDemoActivity(data.products, data.locations);
  const events = [...activity.customers, ...activity.orders, ...activity.posSales];
  const total =
    events.length +
    data.markets.length +
    data.locations.length +
    data.products.length +
    stock.length +
    DEMO_KEYS.length;
  let done = 0;
  const step = (n: number, label: string) => {
    done += n;
    progress(done, total, label);
  };
  await hub.services.markets.bulkUpsert(ctx, data.markets);
  step(data.markets.length, 'markets');
  await hub.services.locations.bulkUpsert(ctx, data.locations);
  step(data.locations.length, 'stores and warehouses');
  for (let i = 0; i < data.products.length; i += PRODUCT_BATCH) {
    const batch = data.products.slice(i, i + PRODUCT_BATCH);
    await hub.services.catalog.bulkUpsert(ctx, batch);
    step(batch.length, 'products');
  }
  for (let i = 0; i < stock.length; i += STOCK_BATCH) {
    const batch = stock.slice(i, i + STOCK_BATCH);
    await hub.services.inventory.receive(ctx, batch, 'all-or-nothing');
    step(batch.length, 'opening stock');
  }
  // What the channels send: customers (personal data tokenized at the edge), orders, POS
  // sales (some twice, from the nightly file too: the deduplication service drops those).
  let accepted = 0;
  let deduplicated = 0;
  for (let i = 0; i < events.length; i += 500) {
    const batch = events.slice(i, i + 500);
    const report = await hub.services.ingest.ingestBatch(ctx, batch);
    if (report.rejected.length > 0) {
      throw new Error(`demo events refused: ${JSON.stringify(report.rejected[0])}`);
    }
    accepted += report.accepted;
    deduplicated += report.deduplicated.length;
    step(batch.length, 'customers, orders and POS sales');
  }
  const keys: SeedReport['keys'] = [];
  for (const input of DEMO_KEYS) {
    const { key, secret } = await hub.services.access.create(input);
    keys.push({ name: key.name, channel: key.channel, scopes: key.scopes, secret });
    step(1, 'API keys');
  }
  return {
    markets: data.markets.length,
    stores: data.locations.filter((l) => l.type === 'store').length,
    warehouses: data.locations.filter((l) => l.type === 'warehouse').length,
    products: data.products.length,
    skus: data.products.reduce((n, p) => n + p.skus.length, 0),
    stockLines: stock.length,
    events: { accepted, deduplicated },
    keys,
  };
}

export { RETAILER_NAME };
