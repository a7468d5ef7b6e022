import type { Hub } from '../src/app.js';
import { outboxDrained } from './hubs.js';
import { now, rate, request } from './lib.js';

export interface IngestResult {
  shape: string;
  skus: number;
  products: number;
  committedPerSecond: number;
  publishedPerSecond: number;
}

/** Bulk-upserts a catalog through the HTTP API; measures SKUs/s committed and SKUs/s on the bus. */
export async function ingest(
  hub: Hub,
  baseUrl: string,
  key: string,
  shape: string,
  products = 4000,
): Promise<IngestResult> {
  const skusPerProduct = 5;
  const batch = 500;
  const items = Array.from({ length: products }, (_, i) => ({
    id: `B-${i}`,
    name: { 'en-GB': `Bench product ${i}`, 'de-DE': `Testprodukt ${i}` },
    brand: 'Bench',
    category: i % 2 ? 'shoes/running' : 'apparel/tops',
    attributes: { gender: 'unisex', material: 'mesh' },
    skus: Array.from({ length: skusPerProduct }, (_, s) => ({
      sku: `B-${i}-${s}`,
      attributes: { size: String(38 + s), colour: 'black' },
    })),
  }));
  const start = now();
  for (let i = 0; i < items.length; i += batch) {
    const response = await request(
      `${baseUrl}/v1/products/bulk`,
      'POST',
      { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      JSON.stringify({ items: items.slice(i, i + batch) }),
    );
    if (response.status !== 200)
      throw new Error(`bulk upsert answered ${response.status}: ${response.body}`);
  }
  const committed = now() - start;
  await outboxDrained(hub);
  const published = now() - start;
  const skus = products * skusPerProduct;
  const result = {
    shape,
    skus,
    products,
    committedPerSecond: skus / (committed / 1000),
    publishedPerSecond: skus / (published / 1000),
  };
  console.error(
    `  ingest ${shape}: ${rate(result.committedPerSecond)} SKUs/s committed, ${rate(result.publishedPerSecond)} SKUs/s on the bus`,
  );
  return result;
}
