import { uuidv7 } from '../../model/ids.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Executor } from '../../platform/db/storage.js';
import { eventSubject } from '../../platform/bus/bus.js';
import type { EventHandler } from '../../platform/events/consumer.js';
import {
  AVAILABILITY_SOURCE_TYPE,
  AVAILABILITY_TYPE,
  availabilityBody,
  type AvailabilitySettings,
  type ChannelAvailabilitySource,
} from './availability.js';
import { matchesEvent, type SubscriptionFilter } from './filters.js';
import { activeSubscriptions, insertDeliveries, type SubscriptionRow } from './store.js';

/** The consumer group that turns hub events into webhook deliveries. */
export const FANOUT_GROUP = { name: 'webhooks', filter: 'nexus.evt.>' } as const;

export function filterOf(row: SubscriptionRow): SubscriptionFilter {
  if (row.availability !== null) {
    const settings = JSON.parse(row.availability) as AvailabilitySettings;
    return {
      eventTypes: [AVAILABILITY_SOURCE_TYPE],
      subjectFilter: null,
      markets: [settings.marketCode],
      availability: {
        marketCode: settings.marketCode,
        skus: settings.skus ? new Set(settings.skus) : null,
        locationIds: settings.locationIds ? new Set(settings.locationIds) : null,
      },
    };
  }
  return {
    eventTypes: row.event_types === null ? null : (JSON.parse(row.event_types) as string[]),
    subjectFilter: row.subject_filter,
    markets: row.markets === null ? null : (JSON.parse(row.markets) as string[]),
  };
}

const sourceOf = (row: SubscriptionRow) =>
  `${row.event_types}\n${row.subject_filter}\n${row.markets}\n${row.availability}`;

/**
 * The fan-out handler: inside the consumer group's transaction, one delivery row per active
 * subscription whose filters match. The rows commit with the group's inbox entry, so an event
 * is matched exactly once however often the bus hands it over. `matched` is called when rows
 * were written (the caller wakes the dispatcher once the transaction committed).
 *
 * An availability subscription's delivery is shaped here, by `availability`: a change at a
 * location its channel does not sell from gets no row at all, and the body is stored with the
 * row, so retries and redeliveries send what the channel saw when the stock changed. Without
 * a source, availability subscriptions receive nothing.
 */
export function fanOutHandler(
  matched: () => void,
  availability?: ChannelAvailabilitySource,
): EventHandler {
  // Parsed filters, keyed by subscription and checked against the stored text.
  const parsed = new Map<
    string,
    { source: string; filter: SubscriptionFilter; settings: AvailabilitySettings | null }
  >();
  return async (envelope, uow) => {
    const subscriptions = await activeSubscriptions(uow.trx);
    if (subscriptions.length === 0) return;
    const subject = eventSubject(envelope);
    const now = Date.now();
    let text: string | undefined;
    const rows = [];
    // One answer per channel for this event: several subscriptions may share a channel.
    const changes = new Map<string, Promise<object | null>>();
    for (const subscription of subscriptions) {
      const source = sourceOf(subscription);
      let cached = parsed.get(subscription.id);
      if (cached?.source !== source) {
        cached = {
          source,
          filter: filterOf(subscription),
          settings:
            subscription.availability === null
              ? null
              : (JSON.parse(subscription.availability) as AvailabilitySettings),
        };
        if (parsed.size > 10_000) parsed.clear();
        parsed.set(subscription.id, cached);
      }
      if (!matchesEvent(cached.filter, envelope, subject)) continue;
      let payload: string | null = null;
      const settings = cached.settings;
      if (settings) {
        if (!availability) continue;
        const key = `${settings.marketCode}/${settings.channel}`;
        let change = changes.get(key);
        if (!change) {
          change = availability.changeFor(envelope, settings, uow.trx);
          changes.set(key, change);
        }
        const seen = await change;
        if (!seen) continue;
        payload = availabilityBody(seen);
      }
      text ??= JSON.stringify(envelope);
      rows.push({
        id: uuidv7(),
        subscription_id: subscription.id,
        event_id: envelope.id,
        event_type: payload === null ? envelope.type : AVAILABILITY_TYPE,
        subject,
        envelope: text,
        payload,
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
