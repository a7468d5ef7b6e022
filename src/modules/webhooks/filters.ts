import type { EventEnvelope } from '../../model/schemas/event.js';
import { SUBJECT_PREFIX, subjectMatches } from '../../platform/bus/bus.js';
import { AVAILABILITY_SOURCE_TYPE } from './availability.js';

/** Which events one subscription receives. */
export interface SubscriptionFilter {
  /** Event types; `*` in a pattern matches any characters: `product.*`, `*.v2`, `*`. */
  eventTypes: readonly string[] | null;
  /** A bus subject pattern, NATS wildcards: `nexus.evt.DE.>`, `nexus.evt.*.inventory.>`. */
  subjectFilter: string | null;
  /**
   * Markets whose events are delivered. Events without a market (the catalogue is global)
   * are not market-scoped and pass this filter; a subject filter can exclude them.
   */
  markets: readonly string[] | null;
  /**
   * An availability subscription: only `inventory.level.changed.v1` events of this market
   * (never market-less ones), of these SKUs and locations when given. Whether the channel
   * sells from the location is decided later, in the fan-out (see ChannelAvailabilitySource).
   */
  availability?: {
    marketCode: string;
    skus: ReadonlySet<string> | null;
    locationIds: ReadonlySet<string> | null;
  } | null;
}

const patterns = new Map<string, RegExp>();

/** `product.*` matches product.created.v1; `*` matches every type; no `*` means exact. */
export function eventTypeMatches(pattern: string, type: string): boolean {
  if (!pattern.includes('*')) return pattern === type;
  let regex = patterns.get(pattern);
  if (!regex) {
    const body = pattern
      .split('*')
      .map((part) => part.replace(/[.+?^${}()|[\]\\-]/g, '\\$&'))
      .join('.*');
    regex = new RegExp(`^${body}$`);
    if (patterns.size > 10_000) patterns.clear();
    patterns.set(pattern, regex);
  }
  return regex.test(type);
}

export function matchesEvent(
  filter: SubscriptionFilter,
  envelope: Pick<EventEnvelope, 'type' | 'market'> & { data?: unknown },
  subject: string,
): boolean {
  const availability = filter.availability;
  if (availability) {
    if (envelope.type !== AVAILABILITY_SOURCE_TYPE) return false;
    if (envelope.market !== availability.marketCode) return false;
    const data = (envelope.data ?? {}) as { sku?: unknown; locationId?: unknown };
    if (availability.skus && !availability.skus.has(String(data.sku))) return false;
    if (availability.locationIds && !availability.locationIds.has(String(data.locationId)))
      return false;
    return true;
  }
  if (filter.eventTypes && !filter.eventTypes.some((p) => eventTypeMatches(p, envelope.type)))
    return false;
  if (filter.subjectFilter && !subjectMatches(filter.subjectFilter, subject)) return false;
  if (filter.markets && envelope.market !== undefined && !filter.markets.includes(envelope.market))
    return false;
  return true;
}

/** Why a subject filter is unusable, or null: `nexus.evt.` and tokens, `>` only last. */
export function subjectFilterProblem(filter: string): string | null {
  if (!filter.startsWith(`${SUBJECT_PREFIX}.`)) return `must start with ${SUBJECT_PREFIX}.`;
  const tokens = filter.slice(SUBJECT_PREFIX.length + 1).split('.');
  if (tokens.some((t) => t.length === 0)) return 'has an empty token';
  if (tokens.some((t) => t !== '*' && t !== '>' && /[*>\s]/.test(t)))
    return "wildcards '*' and '>' must be whole tokens";
  if (tokens.slice(0, -1).includes('>')) return "'>' may only be the last token";
  return null;
}
