import { NexusError, type FieldError } from '../../model/errors.js';
import type { Location } from '../../model/schemas/location.js';
import { assertMayActFor, type Context } from '../../platform/context.js';
import type { Executor } from '../../platform/db/storage.js';
import type { Transactor } from '../../platform/events/unit-of-work.js';
import type { CollectionService, ListParams } from '../../platform/http/collection-routes.js';
import type { Page, Resource, UpsertResult } from '../../platform/resources.js';
import type { MarketDirectory } from '../markets/index.js';
import { locationFilters, locations } from './store.js';

/** What other modules may ask of locations. */
export interface LocationDirectory {
  missing(ids: readonly string[]): Promise<string[]>;
  getMany(ids: readonly string[]): Promise<Map<string, Resource<Location>>>;
}

export interface LocationsDeps {
  db: Executor;
  transactor: Transactor;
  markets: MarketDirectory;
}

export class LocationsService implements CollectionService<Location>, LocationDirectory {
  constructor(private readonly deps: LocationsDeps) {}

  list(_ctx: Context, query: ListParams): Promise<Page<Resource<Location>>> {
    return locations.list(this.deps.db, {
      where: locationFilters(query.filters),
      limit: query.limit,
      ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
    });
  }

  get(_ctx: Context, id: string): Promise<Resource<Location>> {
    return locations.get(this.deps.db, id);
  }

  missing(ids: readonly string[]): Promise<string[]> {
    return locations.missing(this.deps.db, ids);
  }

  getMany(ids: readonly string[]): Promise<Map<string, Resource<Location>>> {
    return locations.getMany(this.deps.db, ids);
  }

  async create(ctx: Context, location: Location): Promise<Resource<Location>> {
    await this.check([location], false);
    await this.assertMayChange(ctx, [location]);
    return this.deps.transactor.run(ctx, (uow) => locations.create(uow, location));
  }

  async put(
    ctx: Context,
    location: Location,
  ): Promise<{ resource: Resource<Location>; result: UpsertResult['result'] }> {
    await this.check([location], false);
    await this.assertMayChange(ctx, [location]);
    return this.deps.transactor.run(ctx, (uow) => locations.put(uow, location));
  }

  async bulkUpsert(ctx: Context, items: Location[]): Promise<UpsertResult[]> {
    await this.check(items, true);
    await this.assertMayChange(ctx, items);
    return this.deps.transactor.run(ctx, (uow) => locations.upsert(uow, items));
  }

  async remove(ctx: Context, id: string): Promise<void> {
    if (ctx.markets !== undefined) {
      const existing = (await this.getMany([id])).get(id);
      if (existing) assertMayActFor(ctx, existing.marketCode, `location '${id}'`);
    }
    await this.deps.transactor.run(ctx, (uow) => locations.remove(uow, id));
  }

  /**
   * A key limited to markets keeps to their locations: what it writes is in them, and so is
   * what it overwrites (it cannot move a store out of another market into its own).
   */
  private async assertMayChange(ctx: Context, items: readonly Location[]): Promise<void> {
    if (ctx.markets === undefined) return;
    for (const l of items) assertMayActFor(ctx, l.marketCode, `location '${l.id}'`);
    const existing = await this.getMany(items.map((l) => l.id));
    for (const [id, resource] of existing) {
      assertMayActFor(ctx, resource.marketCode, `location '${id}'`);
    }
  }

  /** Rules the schema cannot state: the market exists, opening hours make sense. */
  private async check(items: readonly Location[], bulk: boolean): Promise<void> {
    locations.validate(items, bulk);
    const root = (i: number) => (bulk ? `/items/${i}` : '');
    const errors: FieldError[] = [];
    const unknown = new Set(await this.deps.markets.missing(items.map((l) => l.marketCode)));
    items.forEach((l, i) => {
      if (unknown.has(l.marketCode))
        errors.push({
          pointer: `${root(i)}/marketCode`,
          detail: `unknown market '${l.marketCode}'`,
        });
      l.openingHours?.forEach((h, j) => {
        if (h.closes <= h.opens) {
          errors.push({
            pointer: `${root(i)}/openingHours/${j}/closes`,
            detail: 'must be later than opens',
          });
        }
      });
    });
    if (errors.length === 0) return;
    const code = errors.some((e) => e.pointer.endsWith('/marketCode'))
      ? 'UNKNOWN_REFERENCE'
      : 'VALIDATION_FAILED';
    throw new NexusError(code, `${errors[0]!.pointer} ${errors[0]!.detail}`, { errors });
  }
}
