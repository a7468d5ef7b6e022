import { sql, type RawBuilder } from 'kysely';
import { Product } from '../../model/schemas/product.js';
import type { Executor } from '../../platform/db/storage.js';
import { DocumentCollection } from '../../platform/resources.js';
import { PRODUCT_EVENTS } from './events.js';

// Type aliases, not interfaces: kysely's withTables wants an indexable record type.
type SkuTable = { sku: string; product_id: string; gtin: string | null; status: string };
type CatalogTables = { skus: SkuTable };

const skuDb = (db: Executor) => db.withTables<CatalogTables>();

export const products = new DocumentCollection<Product>({
  schema: Product,
  table: 'products',
  kind: 'product',
  idField: 'id',
  idOf: (p) => p.id,
  columns: (p) => ({ status: p.status, brand: p.brand ?? null, category: p.category ?? null }),
  marketOf: () => undefined,
  events: PRODUCT_EVENTS,
});

/** Parameters per IN list, far under both dialects' limits. */
const IN_CHUNK = 5000;

async function inChunks<T>(
  values: readonly string[],
  query: (chunk: string[]) => Promise<T[]>,
): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < values.length; i += IN_CHUNK)
    out.push(...(await query(values.slice(i, i + IN_CHUNK))));
  return out;
}

/** Current owners of these SKU codes. */
export function findSkuOwners(
  db: Executor,
  skus: readonly string[],
): Promise<Array<{ sku: string; product_id: string }>> {
  return inChunks(skus, (chunk) =>
    skuDb(db).selectFrom('skus').select(['sku', 'product_id']).where('sku', 'in', chunk).execute(),
  );
}

/** SKUs that currently carry these GTINs. */
export function findGtinOwners(
  db: Executor,
  gtins: readonly string[],
): Promise<Array<{ gtin: string | null; sku: string }>> {
  return inChunks(gtins, (chunk) =>
    skuDb(db).selectFrom('skus').select(['gtin', 'sku']).where('gtin', 'in', chunk).execute(),
  );
}

/**
 * Makes the SKU index of these products match their documents. Plain SQL: every product
 * write runs it, and the query builder's garbage shows in tail latency.
 */
export async function replaceSkus(db: Executor, changed: readonly Product[]): Promise<void> {
  if (changed.length === 0) return;
  await inChunks(
    changed.map((p) => p.id),
    async (chunk) => {
      await sql`delete from skus where product_id in (${sql.join(chunk)})`.execute(db);
      return [];
    },
  );
  const rows = changed.flatMap((p) =>
    p.skus.map((s) => sql`(${s.sku}, ${p.id}, ${s.gtin ?? null}, ${s.status})`),
  );
  for (let i = 0; i < rows.length; i += 2000) {
    await sql`insert into skus (sku, product_id, gtin, status)
      values ${sql.join(rows.slice(i, i + 2000))}`.execute(db);
  }
}

export interface ProductFilters {
  status?: string | undefined;
  brand?: string | undefined;
  category?: string | undefined;
  sku?: string | undefined;
  gtin?: string | undefined;
}

export function productFilters(filters: ProductFilters): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = [];
  if (filters.status) where.push(sql`status = ${filters.status}`);
  if (filters.brand) where.push(sql`brand = ${filters.brand}`);
  // Category is a path: 'shoes' also finds 'shoes/running'.
  if (filters.category) {
    where.push(sql`(category = ${filters.category} or category like ${`${filters.category}/%`})`);
  }
  if (filters.sku) where.push(sql`id in (select product_id from skus where sku = ${filters.sku})`);
  if (filters.gtin)
    where.push(sql`id in (select product_id from skus where gtin = ${filters.gtin})`);
  return where;
}

/** Which of these SKU codes exist (for other modules through the service). */
export async function existingSkus(db: Executor, skus: readonly string[]): Promise<Set<string>> {
  const rows = await inChunks(skus, (chunk) =>
    skuDb(db).selectFrom('skus').select('sku').where('sku', 'in', chunk).execute(),
  );
  return new Set(rows.map((r) => r.sku));
}
