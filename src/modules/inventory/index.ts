/**
 * Inventory: the authoritative stock record per SKU and location, its movement ledger,
 * reservations (group-committed), transfers, POS sales, availability per channel and live
 * availability streams.
 */
export {
  InventoryService,
  ReservationQueue,
  toLevel,
  type InventoryDeps,
  type LineResult,
  type ReserveOutcome,
  type PosSaleResult,
  type Transfer,
} from './service.js';
export { inventoryRoutes } from './routes.js';
export { AvailabilityFeed, channelAvailability, type AvailabilityChange } from './live.js';
export { ReservationExpiry } from './expiry.js';
export { INVENTORY_EVENTS } from './events.js';
export { ChannelPolicy } from './policy.js';
export { SiteDirectory, type Site } from './sites.js';
