import type { Channel } from '../../model/schemas/common.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Executor } from '../../platform/db/storage.js';

/** The `type` of an availability delivery's body (and its Nexus-Event-Type header). */
export const AVAILABILITY_TYPE = 'inventory.availability.changed';
/** The hub event an availability subscription is fed from. */
export const AVAILABILITY_SOURCE_TYPE = 'inventory.level.changed.v1';
/** Bound on `skus` and `locationIds` of one subscription. */
export const AVAILABILITY_MAX_ITEMS = 1000;

/** What an availability subscription asks for: one channel's view of one market's stock. */
export interface AvailabilitySettings {
  marketCode: string;
  channel: Channel;
  /** Only these SKUs (absent: every SKU). */
  skus?: string[];
  /** Only these locations (absent: every location that serves the channel). */
  locationIds?: string[];
}

/**
 * Availability as a channel sees it, supplied from outside (app.ts: the inventory's
 * `channelAvailability` over its cached locations and channel policies, the function the
 * live stream uses). The fan-out asks it inside its transaction, on `db`, for each
 * `inventory.level.changed.v1` event of the subscription's market that passed its SKU and
 * location filters. It answers the fields of the change as the channel sees it, sent as the
 * body after `type`, or null when the channel does not sell from the event's location: then
 * no delivery is recorded at all.
 */
export interface ChannelAvailabilitySource {
  changeFor(
    envelope: EventEnvelope,
    settings: Pick<AvailabilitySettings, 'marketCode' | 'channel'>,
    db: Executor,
  ): Promise<object | null>;
}

/** The body of an availability delivery: the type first, then the change's fields. */
export function availabilityBody(change: object): string {
  return JSON.stringify({ type: AVAILABILITY_TYPE, ...change });
}
