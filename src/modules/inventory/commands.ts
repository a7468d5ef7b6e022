import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Channel, Identifier, MarketCode, Timestamp } from '../../model/schemas/common.js';
import { ReservationReference } from '../../model/schemas/inventory.js';

/**
 * The inputs of every inventory command, as JSON Schema: the API validates requests with them
 * and the service validates every caller's lines with them (CLI, other modules).
 */

const Sku = Identifier('Stock keeping unit code');
const LocationId = Identifier('Location id');
const Note = Type.String({ maxLength: 500 });
const Reference = Type.String({
  minLength: 1,
  maxLength: 200,
  description: 'Document this change belongs to: delivery note, order, count sheet',
});
const Quantity = Type.Integer({ minimum: 1, maximum: 1_000_000_000 });

/** Reasons a caller may give for a plain adjustment (counts and transfers have their own commands). */
export const ADJUSTMENT_REASONS = [
  'sale',
  'receipt',
  'return',
  'damage',
  'shrink',
  'correction',
] as const;

export const AdjustLine = Type.Object(
  {
    sku: Sku,
    locationId: LocationId,
    delta: Type.Integer({
      minimum: -1_000_000_000,
      maximum: 1_000_000_000,
      not: { const: 0 },
      description: 'Units added (positive) or taken (negative)',
    }),
    reason: Type.Union(ADJUSTMENT_REASONS.map((r) => Type.Literal(r))),
    reference: Type.Optional(Reference),
    note: Type.Optional(Note),
    occurredAt: Type.Optional(Timestamp),
  },
  { additionalProperties: false },
);
export type AdjustLine = Static<typeof AdjustLine>;

export const CountLine = Type.Object(
  {
    sku: Sku,
    locationId: LocationId,
    counted: Type.Integer({ minimum: 0, maximum: 1_000_000_000, description: 'Units counted' }),
    reference: Type.Optional(Reference),
    note: Type.Optional(Note),
    occurredAt: Type.Optional(Timestamp),
  },
  { additionalProperties: false },
);
export type CountLine = Static<typeof CountLine>;

export const ReceiveLine = Type.Object(
  {
    sku: Sku,
    locationId: LocationId,
    quantity: Quantity,
    reference: Type.Optional(Reference),
    note: Type.Optional(Note),
  },
  { additionalProperties: false },
);
export type ReceiveLine = Static<typeof ReceiveLine>;

export const SafetyStockLine = Type.Object(
  {
    sku: Sku,
    locationId: LocationId,
    safetyStock: Type.Integer({ minimum: 0, maximum: 1_000_000 }),
  },
  { additionalProperties: false },
);
export type SafetyStockLine = Static<typeof SafetyStockLine>;

export const TransferLine = Type.Object(
  {
    sku: Sku,
    fromLocationId: LocationId,
    toLocationId: LocationId,
    quantity: Quantity,
    reference: Type.Optional(Reference),
  },
  { additionalProperties: false },
);
export type TransferLine = Static<typeof TransferLine>;

export const ReceiveTransferBody = Type.Object(
  {
    receivedQuantity: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 1_000_000_000,
        description: 'Units that arrived (default: all shipped); a shortfall is recorded as shrink',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ReceiveTransferBody = Static<typeof ReceiveTransferBody>;

/** Longest hold a reservation may have: 30 days. */
export const MAX_TTL_SECONDS = 30 * 24 * 3600;

/**
 * A reservation id the client chooses, so that a retry cannot hold the units twice: the hub's
 * identifier alphabet, 8 to 64 characters (a UUID fits; a very short id is refused, as ids
 * are shared by every caller of the hub and "1" from two clients would meet).
 */
export const ClientReservationId = Type.String({
  pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$',
  description:
    'Client-chosen reservation id (8-64 of A-Z a-z 0-9 . _ : -, e.g. a UUID): a reserve with an ' +
    'id that exists returns that reservation as it is now and changes nothing when the line is ' +
    'the same (sku, locationId, quantity, channel, reference, marketCode if given), and is 409 ' +
    'RESERVATION_ID_CONFLICT when it is not. Default: the hub makes one (UUIDv7).',
  examples: ['0192f0c4-7a3e-7c1b-9d52-3f1e8a6b4c21', 'web-DE:cart-7731:line-2'],
});

export const ReserveLine = Type.Object(
  {
    id: Type.Optional(ClientReservationId),
    sku: Sku,
    locationId: LocationId,
    quantity: Quantity,
    channel: Type.Optional(Channel),
    marketCode: Type.Optional(MarketCode),
    reference: Type.Optional(ReservationReference),
    ttlSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_TTL_SECONDS,
        description:
          'Seconds until the hold lapses by itself; 0 = never. Default: 900 for a cart, ' +
          '48 h for a pickup hold, never for an order or a transfer.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type ReserveLine = Static<typeof ReserveLine>;

export const ReservationIdLine = Type.Object(
  {
    reservationId: Type.String({ minLength: 1, maxLength: 64 }),
    reason: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);
export type ReservationIdLine = Static<typeof ReservationIdLine>;

export const PosSale = Type.Object(
  {
    saleId: Type.String({ minLength: 1, maxLength: 128, description: 'The POS own sale id' }),
    occurredAt: Timestamp,
    terminal: Type.Optional(Type.String({ maxLength: 64 })),
    lines: Type.Array(
      Type.Object(
        {
          sku: Sku,
          quantity: Type.Integer({
            minimum: -1_000_000,
            maximum: 1_000_000,
            not: { const: 0 },
            description: 'Units sold; negative for a return at the till',
          }),
        },
        { additionalProperties: false },
      ),
      { minItems: 1, maxItems: 500 },
    ),
  },
  { additionalProperties: false },
);
export type PosSale = Static<typeof PosSale>;

/** What the store records of a POS sale (`pending` exists only inside the deciding transaction). */
export const POS_SALE_STATUSES = ['applied', 'rejected'] as const;

/** A POS sale as the hub kept it: the sale log of a location. */
export const PosSaleRecord = Type.Object({
  saleId: Type.String(),
  locationId: Type.String(),
  terminal: Type.Optional(Type.String()),
  occurredAt: Type.String({ format: 'date-time', description: 'When the sale happened (POS)' }),
  receivedAt: Type.String({
    format: 'date-time',
    description: 'When the hub received the sale as last sent (a rejected sale may be resent)',
  }),
  lines: Type.Array(Type.Object({ sku: Type.String(), quantity: Type.Integer() })),
  status: Type.Union(POS_SALE_STATUSES.map((s) => Type.Literal(s))),
  code: Type.Optional(Type.String({ description: 'Rejected: the stable error code' })),
  detail: Type.Optional(Type.String({ description: 'Rejected: why' })),
  flagged: Type.Boolean({
    description: 'Applied, and took stock below zero at a location that allows it',
  }),
  movementIds: Type.Optional(
    Type.Array(Type.String(), { description: 'Applied: the ledger movements it produced' }),
  ),
});
export type PosSaleRecord = Static<typeof PosSaleRecord>;

export const MODES = ['all-or-nothing', 'per-line'] as const;
export type Mode = (typeof MODES)[number];

/** A bulk body: lines, and whether one failed line fails them all. */
export const bulkOf = <T extends TSchema>(line: T, maxItems: number) =>
  Type.Object(
    {
      mode: Type.Optional(
        Type.Union(
          MODES.map((m) => Type.Literal(m)),
          {
            default: 'all-or-nothing',
            description:
              'all-or-nothing: any failed line fails the call and nothing is applied; ' +
              'per-line: every line that can be applied is, and each line has its result',
          },
        ),
      ),
      lines: Type.Array(line, { minItems: 1, maxItems }),
    },
    { additionalProperties: false },
  );

export const LineResult = Type.Object({
  index: Type.Integer(),
  status: Type.Union([Type.Literal('applied'), Type.Literal('failed')]),
  code: Type.Optional(Type.String()),
  detail: Type.Optional(Type.String()),
  available: Type.Optional(Type.Integer()),
  result: Type.Optional(Type.Unknown()),
});
