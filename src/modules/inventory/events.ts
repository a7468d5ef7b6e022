/** Events of the inventory module; their data schemas are in model/events.ts. */
export const INVENTORY_EVENTS = {
  levelChanged: 'inventory.level.changed.v1',
  reservationCreated: 'inventory.reservation.created.v1',
  reservationCommitted: 'inventory.reservation.committed.v1',
  reservationReleased: 'inventory.reservation.released.v1',
  reservationExpired: 'inventory.reservation.expired.v1',
} as const;

/** Every event about one SKU at one location shares this key, so they stay in commit order. */
export const itemPartition = (sku: string, locationId: string): string =>
  `inventory/${sku}@${locationId}`;
