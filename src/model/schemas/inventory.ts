import { Type, type Static } from '@sinclair/typebox';
import { Channel, Identifier, MarketCode, Timestamp, schemaId } from './common.js';

export const INVENTORY_MOVEMENT_REASONS = [
  'sale',
  'receipt',
  'return',
  'damage',
  'shrink',
  'transfer-out',
  'transfer-in',
  'cycle-count',
  'correction',
] as const;
export const RESERVATION_REFERENCE_TYPES = ['cart', 'order', 'pickup-hold', 'transfer'] as const;
export const RESERVATION_STATUSES = ['active', 'committed', 'released', 'expired'] as const;

/** Why the on-hand quantity of a SKU at a location changed. */
export const InventoryMovementReason = Type.Union(
  INVENTORY_MOVEMENT_REASONS.map((r) => Type.Literal(r)),
  { description: 'Reason for a change of on-hand stock' },
);
export type InventoryMovementReason = Static<typeof InventoryMovementReason>;

/** Stock of one SKU at one location: on hand, reserved, safety stock and what is available. */
export const InventoryLevel = Type.Object(
  {
    sku: Identifier('Stock keeping unit code'),
    locationId: Identifier('Location holding the stock'),
    onHand: Type.Integer({
      description: 'Physical units; below zero only where the location allows negative stock',
    }),
    reserved: Type.Integer({ minimum: 0, description: 'Units held by active reservations' }),
    safetyStock: Type.Integer({ minimum: 0, description: 'Units kept back from selling' }),
    available: Type.Integer({
      description: 'Computed: onHand - reserved - safetyStock; may be negative',
    }),
    version: Type.Integer({ minimum: 1, description: 'Increases by one with every change' }),
    updatedAt: Timestamp,
  },
  { $id: schemaId('inventory-level', 1), title: 'InventoryLevel', additionalProperties: false },
);
export type InventoryLevel = Static<typeof InventoryLevel>;

/** What a reservation holds stock for: a cart, an order, a pickup hold or a transfer. */
export const ReservationReference = Type.Object(
  {
    type: Type.Union(RESERVATION_REFERENCE_TYPES.map((t) => Type.Literal(t))),
    id: Type.String({ minLength: 1, maxLength: 200 }),
  },
  { additionalProperties: false },
);
export type ReservationReference = Static<typeof ReservationReference>;

/** A hold on units of one SKU at one location, until committed, released or expired. */
export const Reservation = Type.Object(
  {
    id: Identifier('Reservation id'),
    sku: Identifier('Stock keeping unit code'),
    locationId: Identifier('Location holding the stock'),
    quantity: Type.Integer({ minimum: 1 }),
    channel: Channel,
    marketCode: Type.Optional(MarketCode),
    reference: Type.Optional(ReservationReference),
    status: Type.Union(RESERVATION_STATUSES.map((s) => Type.Literal(s))),
    statusReason: Type.Optional(
      Type.String({
        maxLength: 500,
        description: 'Why it was released or expired, e.g. cancelled or stock-shortfall',
      }),
    ),
    expiresAt: Type.Optional(Timestamp),
    createdAt: Timestamp,
    updatedAt: Type.Optional(Timestamp),
  },
  { $id: schemaId('reservation', 1), title: 'Reservation', additionalProperties: false },
);
export type Reservation = Static<typeof Reservation>;

/** On hand, reserved, safety stock and available at one moment. */
export const StockFigures = Type.Object(
  {
    onHand: Type.Integer(),
    reserved: Type.Integer({ minimum: 0 }),
    safetyStock: Type.Integer({ minimum: 0 }),
    available: Type.Integer({ description: 'onHand - reserved - safetyStock' }),
  },
  { additionalProperties: false },
);
export type StockFigures = Static<typeof StockFigures>;

export const LEVEL_CHANGE_KINDS = ['movement', 'reservation', 'safety-stock'] as const;

/** One cause of a level change: a ledger movement, a reservation step or a new safety stock. */
export const LevelChangeCause = Type.Object(
  {
    kind: Type.Union(LEVEL_CHANGE_KINDS.map((k) => Type.Literal(k))),
    /** Movement reason (sale, receipt, ...) or reservation status (active, committed, ...). */
    reason: Type.String({ minLength: 1, maxLength: 40 }),
    /** Signed change of onHand (movement), reserved (reservation) or safetyStock. */
    quantity: Type.Integer(),
    id: Type.Optional(Type.String({ description: 'Movement or reservation id' })),
  },
  { additionalProperties: false },
);
export type LevelChangeCause = Static<typeof LevelChangeCause>;

/**
 * Data of `inventory.level.changed.v1`: the stock of one SKU at one location before and after
 * one committed transaction, with every cause that transaction applied in order.
 */
export const InventoryLevelChanged = Type.Object(
  {
    sku: Identifier('Stock keeping unit code'),
    locationId: Identifier('Location holding the stock'),
    marketCode: MarketCode,
    before: StockFigures,
    after: StockFigures,
    version: Type.Integer({ minimum: 1 }),
    changedAt: Timestamp,
    causes: Type.Array(LevelChangeCause, { minItems: 1 }),
    flags: Type.Optional(
      Type.Array(Type.Literal('negative-stock'), {
        description: 'negative-stock: on hand went below zero where the location allows it',
      }),
    ),
  },
  {
    $id: schemaId('inventory-level-changed', 1),
    title: 'InventoryLevelChanged',
    additionalProperties: false,
  },
);
export type InventoryLevelChanged = Static<typeof InventoryLevelChanged>;
