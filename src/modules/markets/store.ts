import { sql, type RawBuilder } from 'kysely';
import { Market } from '../../model/schemas/market.js';
import { DocumentCollection } from '../../platform/resources.js';
import { MARKET_EVENTS } from './events.js';

export const markets = new DocumentCollection<Market>({
  schema: Market,
  table: 'markets',
  kind: 'market',
  idField: 'code',
  idOf: (m) => m.code,
  columns: (m) => ({ status: m.status, currency: m.currency }),
  marketOf: (m) => m.code,
  events: MARKET_EVENTS,
});

export function marketFilters(filters: {
  status?: string | undefined;
  currency?: string | undefined;
}): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = [];
  if (filters.status) where.push(sql`status = ${filters.status}`);
  if (filters.currency) where.push(sql`currency = ${filters.currency}`);
  return where;
}
