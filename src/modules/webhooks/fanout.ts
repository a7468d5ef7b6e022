import { uuidv7 } from '../../model/ids.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Executor } from '../../platform/db/storage.js';
import { eventSubject } from '../../platform/bus/bus.js';
import type { EventHandler } from '../../platform/events/consumer.js';
import { matchesEvent, type SubscriptionFilter } from './filters.js';
import { activeSubscriptions, insertDeliveries, type SubscriptionRow } from './store.js';

/** The consumer group that turns hub events into webhook deliveries. */
export const FANOUT_GROUP = { name: 'webhooks', filter: 'nexus.evt.>' } as const;

export function filterOf(row: SubscriptionRow): SubscriptionFilter {
  return {
    eventTypes: row.event_types === null ? null : (JSON.parse(row.event_types) as string[]),
    subjectFilter: row.subject_filter,
    markets: row.markets === null ? null : (JSON.parse(row.markets) as string[]),
  };
}

/**
 * The fan-out handler: inside the consumer group's transaction, one delivery row per active
 * subscription whose filters match. The rows commit with the group's inbox entry, so an event
 * is matched exactly once however often the bus hands it over. `matched` is called when rows
 * were written (the caller wakes the dispatcher once the transaction committed).
 */
export function fanOutHandler(matched: () => void): EventHandler {
  // Parsed filters, keyed by subscription and checked against the stored text.
  const parsed = new Map<string, { source: string; filter: SubscriptionFilter }>();
  return async (envelope, uow) => {
    const subscriptions = await activeSubscriptions(uow.trx);
    if (subscriptions.length === 0) return;
    const subject = eventSubject(envelope);
    const now = Date.now();
    let text: string | undefined;
    const rows = [];
    for (const subscription of subscriptions) {
      const source = `${subscription.event_types}\n${subscription.subject_filter}\n${subscription.markets}`;
      let cached = parsed.get(subscription.id);
      if (cached?.source !== source) {
        cached = { source, filter: filterOf(subscription) };
        if (parsed.size > 10_000) parsed.clear();
        parsed.set(subscription.id, cached);
      }
      if (!matchesEvent(cached.filter, envelope, subject)) continue;
      text ??= JSON.stringify(envelope);
      rows.push({
        id: uuidv7(),
        subscription_id: subscription.id,
        event_id: envelope.id,
        event_type: envelope.type,
        subject,
        envelope: text,
        status: 'pending' as const,
        attempts: 0,
        retry_from: 0,
        next_attempt_at: now,
        last_status_code: null,
        last_error: null,
        created_at: now,
        updated_at: now,
      });
    }
    if (rows.length === 0) return;
    await insertDeliveries(uow.trx, rows);
    matched();
  };
}

/**
 * Whether any active subscription wants an event, from a snapshot of the subscriptions at most
 * `ttlMs` old (`invalidate` after a change in this process). The fan-out group skips events no
 * subscription wants without a transaction: most hub events (every reservation) have no
 * subscriber, and an inbox row each would cost more than the reservation itself. A
 * subscription made through another hub process therefore sees events from at most `ttlMs`
 * after it was made.
 */
export class SubscriptionSnapshot {
  private filters: SubscriptionFilter[] = [];
  private loadedAt = -Infinity;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly db: Executor,
    private readonly ttlMs = 1000,
  ) {}

  invalidate(): void {
    this.loadedAt = -Infinity;
  }

  /** `envelope` is read only when some subscription may want the event (parsing costs). */
  async wants(subject: string, envelope: () => EventEnvelope): Promise<boolean> {
    if (Date.now() - this.loadedAt >= this.ttlMs) {
      this.loading ??= activeSubscriptions(this.db)
        .then((rows) => {
          this.filters = rows.map(filterOf);
          this.loadedAt = Date.now();
        })
        .finally(() => (this.loading = null));
      await this.loading;
    }
    if (this.filters.length === 0) return false;
    const event = envelope();
    return this.filters.some((filter) => matchesEvent(filter, event, subject));
  }
}
