import type { Channel } from '../../model/schemas/common.js';
import type { WEEKDAYS } from '../../model/schemas/location.js';
import { channelSafetyStock, serves, type ChannelPolicy } from './policy.js';
import type { Site } from './sites.js';
import type { LevelRow } from './store.js';

/** Stock of one SKU at one location as a channel sees it. */
export interface LocationAvailability {
  locationId: string;
  onHand: number;
  reserved: number;
  safetyStock: number;
  /** onHand - reserved - safetyStock (may be negative). */
  available: number;
  /** With a channel: what that channel may still sell here (never below zero). */
  availableToChannel?: number;
  channelSafetyStock?: number;
}

export interface SkuAvailability {
  sku: string;
  /** With a market and channel: the sum over the locations that serve them. */
  total?: number;
  locations: LocationAvailability[];
}

export interface AvailabilityScope {
  marketCode?: string | undefined;
  channel?: Channel | undefined;
  locationIds?: readonly string[] | undefined;
}

/**
 * Available to promise. Per location: on hand - reserved - safety stock. Per channel and
 * market: over the locations the channel's policy says serve it, each minus what it keeps
 * back from that channel. Pure: the caller reads the rows and the sites.
 */
export function availabilityOf(
  skus: readonly string[],
  rows: readonly LevelRow[],
  sites: ReadonlyMap<string, Site>,
  scope: AvailabilityScope,
  policy: ChannelPolicy | undefined,
): SkuAvailability[] {
  const bySku = new Map<string, LevelRow[]>();
  for (const row of rows) {
    const list = bySku.get(row.sku);
    if (list) list.push(row);
    else bySku.set(row.sku, [row]);
  }
  const only = scope.locationIds ? new Set(scope.locationIds) : null;
  return skus.map((sku) => {
    const locations: LocationAvailability[] = [];
    let total = 0;
    for (const row of bySku.get(sku) ?? []) {
      const site = sites.get(row.location_id);
      if (!site) continue;
      if (only && !only.has(site.id)) continue;
      if (scope.marketCode && site.marketCode !== scope.marketCode) continue;
      const onHand = Number(row.on_hand);
      const reserved = Number(row.reserved);
      const safetyStock = Number(row.safety_stock);
      const entry: LocationAvailability = {
        locationId: row.location_id,
        onHand,
        reserved,
        safetyStock,
        available: onHand - reserved - safetyStock,
      };
      if (policy) {
        if (!serves(policy, site)) continue;
        const keep = channelSafetyStock(policy, site);
        entry.channelSafetyStock = keep;
        entry.availableToChannel = Math.max(0, entry.available - keep);
        total += entry.availableToChannel;
      }
      locations.push(entry);
    }
    locations.sort((a, b) => (a.locationId < b.locationId ? -1 : 1));
    return policy ? { sku, total, locations } : { sku, locations };
  });
}

const EARTH_RADIUS_KM = 6371.0088;

/** Great-circle distance (haversine), in kilometres. */
export function distanceKm(
  a: { lat: number; lon: number },
  b: { lat: number; lon: number },
): number {
  const rad = Math.PI / 180;
  const dLat = (b.lat - a.lat) * rad;
  const dLon = (b.lon - a.lon) * rad;
  const h =
    Math.sin(dLat / 2) ** 2 +
    Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

type Weekday = (typeof WEEKDAYS)[number];
const formatters = new Map<string, Intl.DateTimeFormat>();

/** The weekday and HH:MM on the wall clock of a time zone. */
export function localClock(at: Date, timeZone: string): { day: Weekday; time: string } {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, format);
  }
  const parts = Object.fromEntries(format.formatToParts(at).map((p) => [p.type, p.value]));
  return {
    day: String(parts.weekday).toLowerCase().slice(0, 3) as Weekday,
    time: `${parts.hour}:${parts.minute}`,
  };
}

/**
 * When a site can still hand over an order placed now, today: it is open later today and the
 * order can be ready `leadMinutes` before closing. Returns the closing time, or null when it
 * cannot; a site without opening hours is taken as always open ('24:00').
 */
export function handOverToday(site: Site, at: Date, leadMinutes: number): string | null {
  if (site.openingHours.length === 0) return '24:00';
  const ready = localClock(new Date(at.getTime() + leadMinutes * 60_000), site.timeZone);
  const today = localClock(at, site.timeZone);
  if (ready.day !== today.day) return null;
  const slot = site.openingHours
    .filter((h) => h.day === today.day && h.closes > ready.time)
    .sort((a, b) => (a.closes < b.closes ? -1 : 1))[0];
  return slot ? slot.closes : null;
}
