import { NexusError, type FieldError } from '../../model/errors.js';
import { toMinor } from '../../model/money.js';
import type { Product } from '../../model/schemas/product.js';
import type { Context } from '../../platform/context.js';
import { isUniqueViolation } from '../../platform/db/errors.js';
import type { Executor } from '../../platform/db/storage.js';
import type { Transactor, UnitOfWork } from '../../platform/events/unit-of-work.js';
import type { CollectionService, ListParams } from '../../platform/http/collection-routes.js';
import type { Page, Resource, UpsertResult } from '../../platform/resources.js';
import type { MarketDirectory } from '../markets/index.js';
import {
  existingSkus,
  findGtinOwners,
  findSkuOwners,
  productFilters,
  products,
  replaceSkus,
} from './store.js';

/** What other modules may ask of the catalog. */
export interface SkuDirectory {
  /** SKU codes among `skus` that are not in the catalog. */
  missingSkus(skus: readonly string[]): Promise<string[]>;
}

export interface CatalogDeps {
  db: Executor;
  transactor: Transactor;
  markets: MarketDirectory;
}

const fail = (
  errors: FieldError[],
  code: 'VALIDATION_FAILED' | 'UNKNOWN_REFERENCE' | 'CONFLICT' = 'VALIDATION_FAILED',
) => new NexusError(code, `${errors[0]!.pointer} ${errors[0]!.detail}`, { errors });

export class CatalogService implements CollectionService<Product>, SkuDirectory {
  constructor(private readonly deps: CatalogDeps) {}

  list(_ctx: Context, query: ListParams): Promise<Page<Resource<Product>>> {
    return products.list(this.deps.db, {
      where: productFilters(query.filters),
      limit: query.limit,
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    });
  }

  get(_ctx: Context, id: string): Promise<Resource<Product>> {
    return products.get(this.deps.db, id);
  }

  async missingSkus(skus: readonly string[]): Promise<string[]> {
    const found = await existingSkus(this.deps.db, skus);
    return [...new Set(skus)].filter((s) => !found.has(s));
  }

  async create(ctx: Context, product: Product): Promise<Resource<Product>> {
    return this.write(ctx, [product], false, async (uow) => {
      const resource = await products.create(uow, product);
      await replaceSkus(uow.trx, [product]);
      return resource;
    });
  }

  put(
    ctx: Context,
    product: Product,
  ): Promise<{ resource: Resource<Product>; result: UpsertResult['result'] }> {
    return this.write(ctx, [product], false, async (uow) => {
      const outcome = await products.put(uow, product);
      if (outcome.result !== 'unchanged') await replaceSkus(uow.trx, [product]);
      return outcome;
    });
  }

  bulkUpsert(ctx: Context, items: Product[]): Promise<UpsertResult[]> {
    return this.write(ctx, items, true, async (uow) => {
      const results = await products.upsert(uow, items);
      const changed = new Set(results.filter((r) => r.result !== 'unchanged').map((r) => r.id));
      await replaceSkus(
        uow.trx,
        items.filter((p) => changed.has(p.id)),
      );
      return results;
    });
  }

  async remove(ctx: Context, id: string): Promise<void> {
    // skus rows go with the product (ON DELETE CASCADE).
    await this.deps.transactor.run(ctx, (uow) => products.remove(uow, id));
  }

  /**
   * Checks, then writes in one unit of work. A SKU code or GTIN that another product owns is
   * caught by the skus table's unique keys rather than looked up first: the common case costs
   * no extra query, and the rare conflict is explained afterwards with pointers.
   */
  private async write<R>(
    ctx: Context,
    items: Product[],
    bulk: boolean,
    work: (uow: UnitOfWork) => Promise<R>,
  ): Promise<R> {
    this.checkShape(items, bulk);
    await this.checkMarkets(items, bulk);
    try {
      return await this.deps.transactor.run(ctx, work);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      await this.explainOwnershipConflict(items, bulk);
      throw error;
    }
  }

  /** Within the request: SKU codes and GTINs unique, prices in the market's currency precision. */
  private checkShape(items: readonly Product[], bulk: boolean): void {
    products.validate(items, bulk);
    const errors: FieldError[] = [];
    const skuAt = new Map<string, string>();
    const gtinAt = new Map<string, string>();
    items.forEach((p, i) => {
      const root = bulk ? `/items/${i}` : '';
      p.skus.forEach((s, j) => {
        const at = `${root}/skus/${j}`;
        const seenSku = skuAt.get(s.sku);
        if (seenSku) errors.push({ pointer: `${at}/sku`, detail: `duplicate of ${seenSku}/sku` });
        skuAt.set(s.sku, at);
        if (s.gtin) {
          const seenGtin = gtinAt.get(s.gtin);
          if (seenGtin)
            errors.push({ pointer: `${at}/gtin`, detail: `duplicate of ${seenGtin}/gtin` });
          gtinAt.set(s.gtin, at);
        }
        s.prices?.forEach((price, k) => {
          try {
            toMinor(price.price, `${at}/prices/${k}/price/amount`);
          } catch (error) {
            if (error instanceof NexusError) errors.push(...error.errors);
            else throw error;
          }
        });
      });
    });
    if (errors.length > 0) throw fail(errors);
  }

  private async checkMarkets(items: readonly Product[], bulk: boolean): Promise<void> {
    const codes = items.flatMap((p) =>
      p.skus.flatMap((s) => s.prices?.map((x) => x.marketCode) ?? []),
    );
    const unknown = new Set(await this.deps.markets.missing(codes));
    if (unknown.size === 0) return;
    const errors: FieldError[] = [];
    items.forEach((p, i) =>
      p.skus.forEach((s, j) =>
        s.prices?.forEach((x, k) => {
          if (unknown.has(x.marketCode)) {
            errors.push({
              pointer: `${bulk ? `/items/${i}` : ''}/skus/${j}/prices/${k}/marketCode`,
              detail: `unknown market '${x.marketCode}'`,
            });
          }
        }),
      ),
    );
    throw fail(errors, 'UNKNOWN_REFERENCE');
  }

  /** Across the catalog a SKU belongs to one product and a GTIN to one SKU: say which clashed. */
  private async explainOwnershipConflict(items: readonly Product[], bulk: boolean): Promise<void> {
    const productOf = new Map(items.flatMap((p) => p.skus.map((s) => [s.sku, p.id] as const)));
    const skuOfGtin = new Map(
      items.flatMap((p) => p.skus.flatMap((s) => (s.gtin ? [[s.gtin, s.sku] as const] : []))),
    );
    const pointerOf = new Map<string, string>();
    items.forEach((p, i) =>
      p.skus.forEach((s, j) => pointerOf.set(s.sku, `${bulk ? `/items/${i}` : ''}/skus/${j}`)),
    );
    const errors: FieldError[] = [];
    for (const owner of await findSkuOwners(this.deps.db, [...productOf.keys()])) {
      if (owner.product_id !== productOf.get(owner.sku)) {
        errors.push({
          pointer: `${pointerOf.get(owner.sku)}/sku`,
          detail: `belongs to product '${owner.product_id}'`,
        });
      }
    }
    for (const owner of await findGtinOwners(this.deps.db, [...skuOfGtin.keys()])) {
      const claimant = owner.gtin === null ? undefined : skuOfGtin.get(owner.gtin);
      if (claimant !== undefined && claimant !== owner.sku) {
        errors.push({
          pointer: `${pointerOf.get(claimant)}/gtin`,
          detail: `already used by SKU '${owner.sku}'`,
        });
      }
    }
    if (errors.length > 0) throw fail(errors, 'CONFLICT');
    throw new NexusError('CONFLICT', 'a SKU code or GTIN in this request is held by another SKU');
  }
}
