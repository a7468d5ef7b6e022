import { sql, type RawBuilder } from 'kysely';
import { Location } from '../../model/schemas/location.js';
import { DocumentCollection } from '../../platform/resources.js';
import { LOCATION_EVENTS } from './events.js';

export const locations = new DocumentCollection<Location>({
  schema: Location,
  table: 'locations',
  kind: 'location',
  idField: 'id',
  idOf: (l) => l.id,
  // Capabilities as ',pickup,ship,' so one LIKE finds a capability without JSON functions.
  columns: (l) => ({
    market_code: l.marketCode,
    type: l.type,
    status: l.status,
    capabilities: `,${l.capabilities.join(',')},`,
    lat: l.geo.lat,
    lon: l.geo.lon,
  }),
  marketOf: (l) => l.marketCode,
  events: LOCATION_EVENTS,
});

export interface LocationFilters {
  marketCode?: string | undefined;
  type?: string | undefined;
  status?: string | undefined;
  capability?: string | undefined;
}

export function locationFilters(filters: LocationFilters): RawBuilder<unknown>[] {
  const where: RawBuilder<unknown>[] = [];
  if (filters.marketCode) where.push(sql`market_code = ${filters.marketCode}`);
  if (filters.type) where.push(sql`type = ${filters.type}`);
  if (filters.status) where.push(sql`status = ${filters.status}`);
  if (filters.capability) where.push(sql`capabilities like ${`%,${filters.capability},%`}`);
  return where;
}
