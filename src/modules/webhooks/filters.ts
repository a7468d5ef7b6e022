import type { EventEnvelope } from '../../model/schemas/event.js';
import { SUBJECT_PREFIX, subjectMatches } from '../../platform/bus/bus.js';

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
  envelope: Pick<EventEnvelope, 'type' | 'market'>,
  subject: string,
): boolean {
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
