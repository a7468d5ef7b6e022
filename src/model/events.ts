import { Type, type TSchema } from '@sinclair/typebox';
import { schemaId } from './schemas/common.js';
import { InventoryLevelChanged, Reservation } from './schemas/inventory.js';
import { LocationResource } from './schemas/location.js';
import { Order, PosSaleRecorded } from './schemas/order.js';
import { MarketResource } from './schemas/market.js';
import { ProductResource } from './schemas/product.js';

const Deleted = (name: string, key: string) =>
  Type.Object(
    {
      [key]: Type.String({ minLength: 1 }),
      version: Type.Integer({ minimum: 1, description: 'Version of the deleted resource' }),
    },
    { $id: schemaId(`${name}-deleted`, 1), title: `${name} deleted`, additionalProperties: false },
  );

/**
 * Every event type the hub emits, with the schema its `data` must match. The hub registers
 * each under the event type as subject at start; `dataschema` in an envelope names the
 * registered version (`/registry/subjects/<type>/versions/<n>`).
 */
export const EVENT_DATA_SCHEMAS = {
  'market.created.v1': MarketResource,
  'market.updated.v1': MarketResource,
  'market.deleted.v1': Deleted('market', 'code'),
  'location.created.v1': LocationResource,
  'location.updated.v1': LocationResource,
  'location.deleted.v1': Deleted('location', 'id'),
  'product.created.v1': ProductResource,
  'product.updated.v1': ProductResource,
  'product.deleted.v1': Deleted('product', 'id'),
  'inventory.level.changed.v1': InventoryLevelChanged,
  'inventory.reservation.created.v1': Reservation,
  'inventory.reservation.committed.v1': Reservation,
  'inventory.reservation.released.v1': Reservation,
  'inventory.reservation.expired.v1': Reservation,
  // Business facts that channel adapters and legacy feeds send through /v1/events.
  'pos.sale.recorded.v1': PosSaleRecorded,
  'order.placed.v1': Order,
} as const satisfies Record<string, TSchema>;

export type EventType = keyof typeof EVENT_DATA_SCHEMAS;
