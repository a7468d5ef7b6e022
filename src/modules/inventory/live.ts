import type { Channel } from '../../model/schemas/common.js';
import type { InventoryLevelChanged } from '../../model/schemas/inventory.js';
import type { Delivery, EventBus, Subscription } from '../../platform/bus/bus.js';
import type { Logger } from '../../platform/logging.js';
import { INVENTORY_EVENTS } from './events.js';
import { channelSafetyStock, serves, type ChannelPolicy } from './policy.js';
import type { Site, SiteDirectory } from './sites.js';

/** What a live client receives: the stock of one SKU at one location as its channel sees it. */
export interface AvailabilityChange {
  sku: string;
  locationId: string;
  marketCode: string;
  channel: Channel;
  /** What the channel may sell here now (never below zero). */
  available: number;
  onHand: number;
  reserved: number;
  safetyStock: number;
  channelSafetyStock: number;
  version: number;
  changedAt: string;
  eventId: string;
}

/**
 * A stock change as one channel sees it, or null when that channel does not sell from the
 * change's location in the policy's market (unknown or inactive location, another market, a
 * type or capability the policy leaves out, an excluded location). The one place this is
 * computed: the live stream and availability webhooks both call it, so they cannot disagree.
 */
export function channelAvailability(
  data: InventoryLevelChanged,
  site: Site | undefined,
  policy: ChannelPolicy,
  channel: Channel,
  eventId: string,
): AvailabilityChange | null {
  if (!site || data.marketCode !== policy.marketCode || !serves(policy, site)) return null;
  const keep = channelSafetyStock(policy, site);
  return {
    sku: data.sku,
    locationId: data.locationId,
    marketCode: data.marketCode,
    channel,
    available: Math.max(0, data.after.available - keep),
    onHand: data.after.onHand,
    reserved: data.after.reserved,
    safetyStock: data.after.safetyStock,
    channelSafetyStock: keep,
    version: data.version,
    changedAt: data.changedAt,
    eventId,
  };
}

export interface LiveFilter {
  marketCode: string;
  channel: Channel;
  skus?: ReadonlySet<string>;
  locationIds?: ReadonlySet<string>;
}

/** A live client: gets each matching change with the bus position it can resume after. */
export type LiveListener = (seq: number, change: AvailabilityChange) => void;

const LEVEL_FILTER = `nexus.evt.*.${INVENTORY_EVENTS.levelChanged}`;

/**
 * Availability changes, live, for every server-sent-events client of this hub process. One
 * bus reader feeds all clients and keeps the last `capacity` changes in memory, so a client
 * that reconnects with Last-Event-ID is served from memory when it was away briefly; one
 * that was away longer gets its own bus reader from where it left off (the bus keeps days).
 * Positions are the bus's stream sequence, the same in every hub process on that bus.
 */
export class AvailabilityFeed {
  private readonly ring: Delivery[] = [];
  private readonly listeners = new Set<(d: Delivery) => void>();
  private subscription: Subscription | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly sites: SiteDirectory,
    private readonly options: { capacity?: number; logger?: Logger } = {},
  ) {}

  async start(): Promise<void> {
    if (this.subscription) return;
    const capacity = this.options.capacity ?? 10_000;
    this.subscription = await this.bus.tail({ filter: LEVEL_FILTER, after: 'now' }, (d) => {
      this.ring.push(d);
      if (this.ring.length > capacity) this.ring.splice(0, this.ring.length - capacity);
      for (const listener of this.listeners) listener(d);
    });
  }

  async stop(): Promise<void> {
    await this.subscription?.stop();
    this.subscription = null;
    this.listeners.clear();
  }

  /**
   * Starts delivering to `listener`: first what happened after `lastSeq` (when given), then
   * live. Returns the function that stops it.
   */
  async subscribe(
    filter: LiveFilter,
    lastSeq: number | undefined,
    listener: LiveListener,
  ): Promise<() => Promise<void>> {
    // Shaping may have to look a new location up; a chain per client keeps the order.
    let chain = Promise.resolve();
    const forward = (d: Delivery) => {
      chain = chain
        .then(async () => {
          const change = await this.shape(d, filter);
          if (change) listener(d.streamSeq, change);
        })
        .catch((error: unknown) =>
          this.options.logger?.warn({ err: error }, 'live feed: a change could not be shaped'),
        );
    };
    const first = this.ring[0];
    if (lastSeq === undefined || (first !== undefined && lastSeq >= first.streamSeq - 1)) {
      // Replay from memory and go live in one synchronous step: nothing can slip between.
      if (lastSeq !== undefined) {
        for (const d of this.ring) if (d.streamSeq > lastSeq) forward(d);
      }
      this.listeners.add(forward);
      return () => {
        this.listeners.delete(forward);
        return Promise.resolve();
      };
    }
    const own = await this.bus.tail({ filter: LEVEL_FILTER, after: lastSeq }, forward);
    return () => own.stop();
  }

  /** The change as the filter's channel sees it, or null when it is not for this client. */
  private async shape(d: Delivery, filter: LiveFilter): Promise<AvailabilityChange | null> {
    const data = d.envelope.data as InventoryLevelChanged;
    if (data.marketCode !== filter.marketCode) return null;
    if (filter.skus && !filter.skus.has(data.sku)) return null;
    if (filter.locationIds && !filter.locationIds.has(data.locationId)) return null;
    const site = await this.sites.site(data.locationId);
    if (!site) return null;
    const policy = await this.sites.policy(filter.marketCode, filter.channel);
    return channelAvailability(data, site, policy, filter.channel, d.eventId);
  }
}
