import { NexusError, type FieldError } from '../../model/errors.js';
import type { Market } from '../../model/schemas/market.js';
import { assertMayActFor, type Context } from '../../platform/context.js';
import { isForeignKeyViolation } from '../../platform/db/errors.js';
import type { Executor } from '../../platform/db/storage.js';
import type { Transactor } from '../../platform/events/unit-of-work.js';
import type { CollectionService, ListParams } from '../../platform/http/collection-routes.js';
import type { Page, Resource, UpsertResult } from '../../platform/resources.js';
import { marketFilters, markets } from './store.js';

/** What other modules may ask of markets. */
export interface MarketDirectory {
  /** Codes among `codes` that are not markets. */
  missing(codes: readonly string[]): Promise<string[]>;
  get(ctx: Context, code: string): Promise<Resource<Market>>;
}

export interface MarketsDeps {
  db: Executor;
  transactor: Transactor;
}

function checkMarket(market: Market, root = ''): FieldError[] {
  const errors: FieldError[] = [];
  if (!market.locales.includes(market.defaultLocale)) {
    errors.push({ pointer: `${root}/defaultLocale`, detail: 'must be one of locales' });
  }
  if (market.country !== market.code.slice(0, 2)) {
    errors.push({
      pointer: `${root}/country`,
      detail: `must match the market code's country ${market.code.slice(0, 2)}`,
    });
  }
  return errors;
}

function assertValid(items: readonly Market[], bulk: boolean): void {
  markets.validate(items, bulk);
  const errors = items.flatMap((m, i) => checkMarket(m, bulk ? `/items/${i}` : ''));
  if (errors.length > 0)
    throw new NexusError('VALIDATION_FAILED', `${errors[0]!.pointer} ${errors[0]!.detail}`, {
      errors,
    });
}

export class MarketsService implements CollectionService<Market>, MarketDirectory {
  constructor(private readonly deps: MarketsDeps) {}

  list(_ctx: Context, query: ListParams): Promise<Page<Resource<Market>>> {
    return markets.list(this.deps.db, {
      where: marketFilters(query.filters),
      limit: query.limit,
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    });
  }

  get(_ctx: Context, code: string): Promise<Resource<Market>> {
    return markets.get(this.deps.db, code);
  }

  missing(codes: readonly string[]): Promise<string[]> {
    return markets.missing(this.deps.db, codes);
  }

  create(ctx: Context, market: Market): Promise<Resource<Market>> {
    assertValid([market], false);
    assertMayActFor(ctx, market.code, `market '${market.code}'`);
    return this.deps.transactor.run(ctx, (uow) => markets.create(uow, market));
  }

  async put(
    ctx: Context,
    market: Market,
  ): Promise<{ resource: Resource<Market>; result: UpsertResult['result'] }> {
    assertValid([market], false);
    assertMayActFor(ctx, market.code, `market '${market.code}'`);
    return this.deps.transactor.run(ctx, (uow) => markets.put(uow, market));
  }

  bulkUpsert(ctx: Context, items: Market[]): Promise<UpsertResult[]> {
    assertValid(items, true);
    for (const m of items) assertMayActFor(ctx, m.code, `market '${m.code}'`);
    return this.deps.transactor.run(ctx, (uow) => markets.upsert(uow, items));
  }

  async remove(ctx: Context, code: string): Promise<void> {
    assertMayActFor(ctx, code, `market '${code}'`);
    try {
      await this.deps.transactor.run(ctx, (uow) => markets.remove(uow, code));
    } catch (error) {
      if (isForeignKeyViolation(error)) {
        throw new NexusError(
          'CONFLICT',
          `market '${code}' still has locations; move or delete them first`,
        );
      }
      throw error;
    }
  }
}
