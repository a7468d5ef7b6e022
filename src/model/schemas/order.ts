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

/**
 * A sale a store's till recorded, as store systems and nightly files report it. The business
 * key of a sale is (location, terminal, transaction number, business date): the same sale may
 * arrive from the store system and again from the nightly file under different message ids.
 */
export const PosSaleRecorded = Type.Object(
  {
    locationId: Identifier('Store where the sale was rung up'),
    terminalId: Type.String({ minLength: 1, maxLength: 64, description: 'Till or terminal' }),
    transactionNumber: Type.String({ minLength: 1, maxLength: 64 }),
    businessDate: Type.String({
      pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$',
      description: 'Trading day the store booked the sale on (YYYY-MM-DD)',
    }),
    occurredAt: Timestamp,
    currency: CurrencyCode,
    lines: Type.Array(
      Type.Object(
        {
          sku: Identifier('Stock keeping unit code'),
          quantity: Type.Integer({
            minimum: -100000,
            maximum: 100000,
            not: { const: 0 },
            description: 'Units sold; negative for a return',
          }),
          unitPrice: Money,
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 500 },
    ),
    total: Money,
  },
  { $id: schemaId('pos-sale-recorded', 1), title: 'PosSaleRecorded', additionalProperties: false },
);
export type PosSaleRecorded = Static<typeof PosSaleRecorded>;
