import { Type, type TSchema } from '@sinclair/typebox';
import { Identifier, schemaId, Timestamp } from './schemas/common.js';
import { Customer } from './schemas/customer.js';
import { InventoryLevelChanged, Reservation } from './schemas/inventory.js';
import { LocationResource } from './schemas/location.js';
import { Order, PosSaleRecorded } from './schemas/order.js';
import { MarketResource } from './schemas/market.js';
import { ProductResource } from './schemas/product.js';
import { tokenFormOf } from './tokenized.js';

const Deleted = (name: string, key: string) =>
  Type.Object(
    {
      [key]: Type.String({ minLength: 1 }),
      version: Type.Integer({ minimum: 1, description: 'Version of the deleted resource' }),
    },
    { $id: schemaId(`${name}-deleted`, 1), title: `${name} deleted`, additionalProperties: false },
  );

/** A customer as events carry it: every personal data field a token (see tokenized.ts). */
export const CustomerTokenForm = tokenFormOf(Customer);
/** An order as events carry it: delivery addresses are tokens. */
export const OrderTokenForm = tokenFormOf(Order);

/** A customer's personal data was erased (crypto-shredded): ids and counts only, no personal data. */
export const CustomerErased = Type.Object(
  {
    customerId: Identifier('The erased customer'),
    erasedAt: Timestamp,
    tokenCount: Type.Integer({
      minimum: 0,
      description: 'Tokens of this customer made unresolvable; copies downstream should go too',
    }),
  },
  { $id: schemaId('customer-erased', 1), title: 'CustomerErased', additionalProperties: false },
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
  'order.placed.v1': OrderTokenForm,
  'customer.registered.v1': CustomerTokenForm,
  'customer.updated.v1': CustomerTokenForm,
  'customer.erased.v1': CustomerErased,
} as const satisfies Record<string, TSchema>;

export type EventType = keyof typeof EVENT_DATA_SCHEMAS;

/**
 * Event types that carry personal data, as channel adapters send them: `clear` is the schema
 * of the data before tokenization at the edge (the registered schema is its token form), and
 * `subject` a JSON Pointer to the id of the customer the data belongs to (absent for a guest).
 */
export const INBOUND_PERSONAL_DATA: Partial<
  Record<EventType, { clear: TSchema; subject: string }>
> = {
  'customer.registered.v1': { clear: Customer, subject: '/id' },
  'customer.updated.v1': { clear: Customer, subject: '/id' },
  'order.placed.v1': { clear: Order, subject: '/customerId' },
};
