import { Type, type Static } from '@sinclair/typebox';
import {
  Channel,
  CurrencyCode,
  Identifier,
  MarketCode,
  Money,
  resourceOf,
  Timestamp,
  schemaId,
} from './common.js';
import { PersonalAddress } from './customer.js';

export const ORDER_STATUSES = [
  'placed',
  'confirmed',
  'partially-fulfilled',
  'fulfilled',
  'cancelled',
  'returned',
] as const;

/** Delivery of a line to the customer's address by carrier. */
export const ShipToAddressDelivery = Type.Object(
  { mode: Type.Literal('ship-to-address'), address: PersonalAddress },
  { additionalProperties: false },
);

/** Collection of a line by the customer at a store. */
export const PickupInStoreDelivery = Type.Object(
  {
    mode: Type.Literal('pickup-in-store'),
    locationId: Identifier('Location where the customer collects the line'),
  },
  { additionalProperties: false },
);

/** Same-day delivery of a line to an address, optionally within a promised time window. */
export const SameDayDelivery = Type.Object(
  {
    mode: Type.Literal('same-day'),
    address: PersonalAddress,
    window: Type.Optional(
      Type.Object(
        { from: Timestamp, to: Timestamp },
        { additionalProperties: false, description: 'Promised delivery window' },
      ),
    ),
  },
  { additionalProperties: false },
);

/** How a line reaches the customer, discriminated by `mode`. */
export const Delivery = Type.Union(
  [ShipToAddressDelivery, PickupInStoreDelivery, SameDayDelivery],
  {
    description: 'Discriminated by mode',
  },
);
export type Delivery = Static<typeof Delivery>;

/** One line of an order: a quantity of one SKU with its price and delivery. */
export const OrderLine = Type.Object(
  {
    lineId: Identifier('Line id, unique within the order'),
    sku: Identifier('Stock keeping unit code'),
    quantity: Type.Integer({ minimum: 1, maximum: 100000 }),
    unitPrice: Money,
    lineTotal: Money,
    delivery: Delivery,
  },
  { additionalProperties: false },
);
export type OrderLine = Static<typeof OrderLine>;

/** Order totals; every amount is in the order currency. */
export const OrderTotals = Type.Object(
  { subtotal: Money, shipping: Money, tax: Money, grandTotal: Money },
  { additionalProperties: false },
);
export type OrderTotals = Static<typeof OrderTotals>;

/** An id of this order in another system (web shop, POS, marketplace, ERP). */
export const ExternalReference = Type.Object(
  {
    system: Type.String({ minLength: 1, maxLength: 100 }),
    id: Type.String({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false },
);
export type ExternalReference = Static<typeof ExternalReference>;

/** A customer order placed in one market through one channel. */
export const Order = Type.Object(
  {
    id: Identifier('Order id'),
    marketCode: MarketCode,
    channel: Channel,
    customerId: Type.Optional(Identifier('Customer id; absent for guest orders')),
    currency: CurrencyCode,
    placedAt: Timestamp,
    status: Type.Union(
      ORDER_STATUSES.map((s) => Type.Literal(s)),
      { default: 'placed' },
    ),
    lines: Type.Array(OrderLine, { minItems: 1, maxItems: 1000 }),
    totals: OrderTotals,
    externalReferences: Type.Optional(Type.Array(ExternalReference, { maxItems: 20 })),
  },
  { $id: schemaId('order', 1), title: 'Order', additionalProperties: false },
);
export type Order = Static<typeof Order>;

/** A stored order with its server-maintained fields. */
export const OrderResource = resourceOf(Order, 'order', 'Order');
export type OrderResource = Static<typeof OrderResource>;
