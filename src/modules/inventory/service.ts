import type { TSchema } from '@sinclair/typebox';
import { NexusError, type ErrorCode, type FieldError } from '../../model/errors.js';
import { uuidv7 } from '../../model/ids.js';
import type { Channel } from '../../model/schemas/common.js';
import type { InventoryLevel, Reservation } from '../../model/schemas/inventory.js';
import {
  assertMayActFor,
  mayActFor,
  outsideMarkets,
  type Context,
} from '../../platform/context.js';
import { isRetryableConflict, isUniqueViolation } from '../../platform/db/errors.js';
import { attemptInHalves } from '../../platform/halving.js';
import type { Dialect, Executor } from '../../platform/db/storage.js';
import type { Transactor } from '../../platform/events/unit-of-work.js';
import { decodeCursor, pageOf, type Page } from '../../platform/resources.js';
import { SchemaValidator } from '../../platform/validation.js';
import {
  AdjustLine,
  CountLine,
  PosSale,
  type PosSaleRecord,
  ReceiveLine,
  ReceiveTransferBody,
  ReservationIdLine,
  ReserveLine,
  SafetyStockLine,
  TransferLine,
  type Mode,
} from './commands.js';
import { ChannelPolicy, channelSafetyStock, serves } from './policy.js';
import { SiteDirectory } from './sites.js';
import { LevelSnapshots, type SnapshotOptions } from './snapshots.js';
import {
  failure,
  figures,
  isFailure,
  itemKey,
  StockSession,
  toReservation,
  type LineFailure,
  type WorkingLevel,
} from './stock-session.js';
import {
  availabilityOf,
  distanceKm,
  handOverToday,
  type AvailabilityScope,
  type SkuAvailability,
} from './availability.js';
import {
  claimPosSales,
  cycleCountAccuracy,
  deleteChannelPolicy,
  inTransitTo,
  levelsAtLocation,
  levelsOfSkus,
  listMovements,
  listPosSales,
  listReservations,
  putChannelPolicy,
  type MovementRow,
  dueReservations,
  existingSkus,
  findReservations,
  getReservation,
  getTransfer,
  insertTransfers,
  lockReservations,
  lockTransfers,
  receiveTransfer,
  settlePosSales,
  type ItemKey,
  type LevelRow,
  type PosSaleRow,
  type ReservationRow,
  type TransferRow,
} from './store.js';

export type LineResult<R> =
  | { index: number; status: 'applied'; result: R }
  | { index: number; status: 'failed'; code: string; detail: string; available?: number };

/** The typed outcome of a reservation: granted, or how many units could have been had. */
export type ReserveOutcome =
  | { status: 'reserved'; reservation: Reservation }
  | { status: 'insufficient'; requested: number; available: number; detail: string };

export interface Transfer {
  id: string;
  sku: string;
  fromLocationId: string;
  toLocationId: string;
  quantity: number;
  receivedQuantity?: number;
  status: 'in-transit' | 'received';
  reference?: string;
  shippedAt: string;
  receivedAt?: string;
}

export interface PosSaleResult {
  saleId: string;
  status: 'applied' | 'duplicate' | 'rejected';
  code?: string;
  detail?: string;
  /** Applied, and took stock below zero at a location that allows it. */
  flagged?: boolean;
}

export interface InventoryDeps {
  db: Executor;
  dialect: Dialect;
  transactor: Transactor;
  sites?: SiteDirectory;
  queue?: ReservationQueueOptions;
  /** Snapshot batches (D31, PostgreSQL); `false` sends every reservation through the lock. */
  snapshots?: SnapshotOptions | false;
  metrics?: InventoryMetrics;
}

/** What the inventory counts (api/metrics.ts implements it with Prometheus counters). */
export interface InventoryMetrics {
  reservationBatches: { inc(labels: { path: 'snapshot' | 'lock' | 'stale' }): void };
}

/** Default holds by what a reservation is for (seconds; null = until committed or released). */
const DEFAULT_TTL: Record<string, number | null> = {
  cart: 900,
  'pickup-hold': 48 * 3600,
  order: null,
  transfer: null,
};

const actorOf = (ctx: Context) => `${ctx.actor.kind}:${ctx.actor.id}`;

/** The one item a single-item line touches. */
const theItem = (line: ItemKey): ItemKey[] => [{ sku: line.sku, locationId: line.locationId }];

export function toLevel(row: LevelRow): InventoryLevel {
  return {
    sku: row.sku,
    locationId: row.location_id,
    ...figures(row),
    version: Math.max(1, Number(row.version)),
    updatedAt: new Date(Number(row.updated_at)).toISOString(),
  };
}

export interface Movement {
  id: string;
  sku: string;
  locationId: string;
  reason: string;
  delta: number;
  onHandAfter: number;
  reservedAfter: number;
  counted?: number;
  variance?: number;
  reference?: string;
  note?: string;
  flagged?: string;
  actor: string;
  channel?: string;
  occurredAt: string;
  recordedAt: string;
}

function toMovement(row: MovementRow): Movement {
  const m: Movement = {
    id: row.id,
    sku: row.sku,
    locationId: row.location_id,
    reason: row.reason,
    delta: Number(row.delta),
    onHandAfter: Number(row.on_hand_after),
    reservedAfter: Number(row.reserved_after),
    actor: row.actor,
    occurredAt: new Date(Number(row.occurred_at)).toISOString(),
    recordedAt: new Date(Number(row.recorded_at)).toISOString(),
  };
  if (row.counted !== null) m.counted = Number(row.counted);
  if (row.variance !== null) m.variance = Number(row.variance);
  if (row.reference !== null) m.reference = row.reference;
  if (row.note !== null) m.note = row.note;
  if (row.flagged !== null) m.flagged = row.flagged;
  if (row.channel !== null) m.channel = row.channel;
  return m;
}

function toTransfer(row: TransferRow): Transfer {
  const t: Transfer = {
    id: row.id,
    sku: row.sku,
    fromLocationId: row.from_location,
    toLocationId: row.to_location,
    quantity: Number(row.quantity),
    status: row.status as Transfer['status'],
    shippedAt: new Date(Number(row.shipped_at)).toISOString(),
  };
  if (row.received_quantity !== null) t.receivedQuantity = Number(row.received_quantity);
  if (row.reference !== null) t.reference = row.reference;
  if (row.received_at !== null) t.receivedAt = new Date(Number(row.received_at)).toISOString();
  return t;
}

function toPosSaleRecord(row: PosSaleRow): PosSaleRecord {
  const sale = JSON.parse(row.doc) as PosSale;
  const record: PosSaleRecord = {
    saleId: row.sale_id,
    locationId: row.location_id,
    occurredAt: new Date(Number(row.occurred_at)).toISOString(),
    receivedAt: new Date(Number(row.received_at)).toISOString(),
    lines: sale.lines,
    status: row.status as PosSaleRecord['status'],
    flagged: row.flagged !== null,
  };
  if (row.terminal !== null) record.terminal = row.terminal;
  if (row.reason !== null) {
    // Stored as `<CODE>: <detail>` (posSales); split back into what the POST answered.
    const parts = /^([A-Z][A-Z0-9_]*): ([\s\S]*)$/.exec(row.reason);
    if (parts) {
      record.code = parts[1]!;
      record.detail = parts[2]!;
    } else {
      record.detail = row.reason;
    }
  }
  if (row.movement_ids !== null) record.movementIds = JSON.parse(row.movement_ids) as string[];
  return record;
}

/** The POS sale log's cursor: the business time and id of the last sale on the page. */
const posSaleKey = (row: PosSaleRow) => `${Number(row.occurred_at)}:${row.sale_id}`;

function decodePosSaleCursor(cursor: string): { occurredAt: number; saleId: string } {
  const key = decodeCursor(cursor);
  const colon = key.indexOf(':');
  const occurredAt = Number(key.slice(0, colon));
  if (colon < 1 || !Number.isSafeInteger(occurredAt) || colon === key.length - 1) {
    throw new NexusError('VALIDATION_FAILED', 'cursor is not one this API handed out', {
      errors: [{ pointer: '/cursor', detail: 'invalid cursor', in: 'query' }],
    });
  }
  return { occurredAt, saleId: key.slice(colon + 1) };
}

/**
 * A key limited to markets acts for them only; without a market named, the call would span
 * all markets (a figure over every market is not theirs to read either).
 */
function assertMarket(ctx: Context, marketCode: string | undefined): void {
  if (ctx.markets === undefined) return;
  if (marketCode === undefined) {
    throw new NexusError(
      'FORBIDDEN_SCOPE',
      `this key may act only for ${ctx.markets.join(', ')}: name one of them`,
    );
  }
  assertMayActFor(ctx, marketCode, `market '${marketCode}'`);
}

/** A whole call failed in all-or-nothing mode: one problem with a pointer per failed line. */
function allOrNothingError(
  failures: Array<{ index: number; failure: LineFailure }>,
  bulk: boolean,
) {
  const errors: FieldError[] = failures.map((f) => ({
    pointer: bulk ? `/lines/${f.index}` : '/',
    detail: f.failure.detail,
  }));
  const first = failures[0]!.failure;
  const code = failures.every((f) => f.failure.code === first.code) ? first.code : 'CONFLICT';
  return new NexusError(code, first.detail, {
    errors,
    ...(first.available !== undefined && failures.length === 1
      ? { extensions: { available: first.available } }
      : {}),
  });
}

interface LinePlan<L, R> {
  /** The items a line touches. */
  keys: (line: L) => ItemKey[];
  /** Create empty stock rows for items that have none (a receipt at a new location). */
  create: boolean;
  /** Runs inside the transaction before any line (locks, lookups); returns per-line state. */
  prepare?: (session: StockSession, lines: readonly L[]) => Promise<void>;
  /** Runs after the lines' rows are loaded, before the first line applies. */
  afterLoad?: (session: StockSession) => Promise<void>;
  apply: (session: StockSession, line: L, index: number) => R | LineFailure;
}

/**
 * The inventory: one authoritative stock record per SKU and location, its movement ledger,
 * reservations and transfers. Every command runs as one transaction that locks the rows it
 * touches, checks each line against the invariants (0 <= reserved <= on hand; on hand >= 0
 * unless the location allows negative stock), writes each changed row once and emits
 * `inventory.level.changed.v1` (before and after) with the ledger entries, in the same commit.
 */
export class InventoryService {
  readonly sites: SiteDirectory;
  private readonly validator: SchemaValidator = new SchemaValidator();

  private readonly queue: ReservationQueue;
  /** PostgreSQL: the rows this process last committed, for batches that skip the lock (D31). */
  private readonly snapshots: LevelSnapshots | null;

  constructor(private readonly deps: InventoryDeps) {
    this.sites = deps.sites ?? new SiteDirectory(deps.db);
    this.queue = new ReservationQueue(this, deps.queue);
    this.snapshots =
      deps.dialect === 'postgres' && deps.snapshots !== false
        ? new LevelSnapshots(deps.snapshots)
        : null;
  }

  // ---- commands on stock -------------------------------------------------------------------

  adjust(ctx: Context, lines: AdjustLine[], mode: Mode = 'all-or-nothing', bulk = true) {
    this.check(AdjustLine, lines, bulk);
    return this.run(ctx, lines, mode, bulk, {
      keys: theItem,
      create: true,
      apply: (s, l) => {
        const level = s.level(l.sku, l.locationId)!;
        const moved = s.move(level, {
          reason: l.reason,
          delta: l.delta,
          actor: actorOf(ctx),
          channel: ctx.channel,
          reference: l.reference,
          note: l.note,
          occurredAt: l.occurredAt === undefined ? undefined : Date.parse(l.occurredAt),
        });
        return isFailure(moved) ? moved : toLevel(level.row);
      },
    });
  }

  receive(ctx: Context, lines: ReceiveLine[], mode: Mode = 'all-or-nothing', bulk = true) {
    this.check(ReceiveLine, lines, bulk);
    return this.adjust(
      ctx,
      lines.map((l) => ({
        sku: l.sku,
        locationId: l.locationId,
        delta: l.quantity,
        reason: 'receipt' as const,
        ...(l.reference === undefined ? {} : { reference: l.reference }),
        ...(l.note === undefined ? {} : { note: l.note }),
      })),
      mode,
      bulk,
    );
  }

  /**
   * Sets on hand to what was counted. The difference against the book is the variance, kept in
   * the ledger for the inventory-accuracy KPI; a count that matches the book is recorded too.
   */
  count(ctx: Context, lines: CountLine[], mode: Mode = 'all-or-nothing', bulk = true) {
    this.check(CountLine, lines, bulk);
    return this.run(ctx, lines, mode, bulk, {
      keys: theItem,
      create: true,
      apply: (s, l) => {
        const level = s.level(l.sku, l.locationId)!;
        const moved = s.move(level, {
          reason: 'cycle-count',
          delta: l.counted - level.row.on_hand,
          counted: l.counted,
          actor: actorOf(ctx),
          channel: ctx.channel,
          reference: l.reference,
          note: l.note,
          occurredAt: l.occurredAt === undefined ? undefined : Date.parse(l.occurredAt),
        });
        return isFailure(moved)
          ? moved
          : { ...toLevel(level.row), variance: moved.variance ?? 0, counted: l.counted };
      },
    });
  }

  setSafetyStock(
    ctx: Context,
    lines: SafetyStockLine[],
    mode: Mode = 'all-or-nothing',
    bulk = true,
  ) {
    this.check(SafetyStockLine, lines, bulk);
    return this.run(ctx, lines, mode, bulk, {
      keys: theItem,
      create: true,
      apply: (s, l) => {
        const level = s.level(l.sku, l.locationId)!;
        s.setSafetyStock(level, l.safetyStock);
        return toLevel(level.row);
      },
    });
  }

  /** Ships units out of one location; they are in transit until received at the other. */
  transfer(ctx: Context, lines: TransferLine[], mode: Mode = 'all-or-nothing', bulk = true) {
    this.check(TransferLine, lines, bulk);
    const same = lines.findIndex((l) => l.fromLocationId === l.toLocationId);
    // All or nothing, such a line fails the call before anything is read; per line it fails
    // alone (in apply) and the other lines still apply.
    if (same >= 0 && mode === 'all-or-nothing') {
      const pointer = bulk ? `/lines/${same}/toLocationId` : '/toLocationId';
      throw new NexusError('VALIDATION_FAILED', `${pointer} must differ from fromLocationId`, {
        errors: [{ pointer, detail: 'must differ from fromLocationId' }],
      });
    }
    const transfers: TransferRow[] = [];
    return this.run(ctx, lines, mode, bulk, {
      // Both ends are checked as references; only the sending end's row is changed now.
      keys: (l) => [
        { sku: l.sku, locationId: l.fromLocationId },
        { sku: l.sku, locationId: l.toLocationId },
      ],
      create: true,
      apply: (s, l) => {
        if (l.fromLocationId === l.toLocationId)
          return failure('VALIDATION_FAILED', 'toLocationId must differ from fromLocationId');
        const id = uuidv7();
        const level = s.level(l.sku, l.fromLocationId)!;
        const moved = s.move(level, {
          reason: 'transfer-out',
          delta: -l.quantity,
          actor: actorOf(ctx),
          channel: ctx.channel,
          reference: `transfer:${id}`,
          protectReserved: true,
        });
        if (isFailure(moved)) return moved;
        const row: TransferRow = {
          id,
          sku: l.sku,
          from_location: l.fromLocationId,
          to_location: l.toLocationId,
          quantity: l.quantity,
          received_quantity: null,
          status: 'in-transit',
          reference: l.reference ?? null,
          shipped_at: s.now,
          received_at: null,
        };
        transfers.push(row);
        return toTransfer(row);
      },
      finish: async (s) => {
        if (transfers.length > 0) await insertTransfers(s.uow.trx, transfers);
      },
    });
  }

  /** Books a transfer in at its destination; units that did not arrive are recorded as shrink. */
  async receiveTransfer(ctx: Context, id: string, body: ReceiveTransferBody): Promise<Transfer> {
    this.validator.assert(ReceiveTransferBody, body, 'VALIDATION_FAILED', '');
    const results = await this.run(ctx, [{ id }], 'all-or-nothing', false, {
      keys: () => [],
      create: true,
      prepare: async (s) => {
        const [row] = await lockTransfers(s.uow.trx, this.deps.dialect, [id]);
        if (!row) throw new NexusError('NOT_FOUND', `transfer '${id}' does not exist`);
        if (row.status !== 'in-transit') {
          throw new NexusError('CONFLICT', `transfer '${id}' was received already`);
        }
        const shipped = Number(row.quantity);
        const received = body.receivedQuantity ?? shipped;
        if (received > shipped) {
          throw new NexusError(
            'VALIDATION_FAILED',
            `/receivedQuantity is more than the ${shipped} shipped`,
            {
              errors: [
                { pointer: '/receivedQuantity', detail: `more than the ${shipped} shipped` },
              ],
            },
          );
        }
        await s.load([{ sku: row.sku, locationId: row.to_location }], true);
        const level = s.level(row.sku, row.to_location)!;
        assertMayActFor(ctx, level.site.marketCode, `location '${row.to_location}'`);
        const common = { actor: actorOf(ctx), channel: ctx.channel, reference: `transfer:${id}` };
        if (received > 0) s.move(level, { ...common, reason: 'transfer-in', delta: received });
        if (received < shipped) {
          // Lost on the way: the ledger shows it as shrink at the destination, in and out.
          s.move(level, { ...common, reason: 'transfer-in', delta: shipped - received });
          s.move(level, {
            ...common,
            reason: 'shrink',
            delta: -(shipped - received),
            note: 'not received from transfer',
          });
        }
        await receiveTransfer(s.uow.trx, id, received, s.now);
      },
      apply: () => null,
    });
    if (results[0]?.status === 'failed') throw new NexusError('INTERNAL', results[0].detail);
    const row = await getTransfer(this.deps.db, id);
    return toTransfer(row!);
  }

  async getTransfer(ctx: Context, id: string): Promise<Transfer> {
    const row = await getTransfer(this.deps.db, id);
    if (!row) throw new NexusError('NOT_FOUND', `transfer '${id}' does not exist`);
    await this.assertMayActAt(ctx, [row.from_location, row.to_location]);
    return toTransfer(row);
  }

  // ---- reservations ------------------------------------------------------------------------

  /**
   * Reserves one line through the reservation queue (group commit). Not enough stock is a
   * typed outcome; an unknown SKU or location is an error.
   */
  async reserve(ctx: Context, line: ReserveLine): Promise<ReserveOutcome> {
    this.validator.assert(ReserveLine, line, 'VALIDATION_FAILED', '');
    await this.assertMayActAt(ctx, [line.locationId]);
    const withChannel: ReserveLine = { ...line, channel: line.channel ?? ctx.channel ?? 'web' };
    const result = await this.queue.submit(withChannel, actorOf(ctx));
    if (result.status === 'applied') return { status: 'reserved', reservation: result.result };
    if (result.code === 'INSUFFICIENT_STOCK') {
      return {
        status: 'insufficient',
        requested: line.quantity,
        available: result.available ?? 0,
        detail: result.detail,
      };
    }
    throw new NexusError(result.code as ErrorCode, result.detail);
  }

  /**
   * Reserves lines in one transaction. The reservation queue batches single reservations from
   * many callers through here (per-line mode); bulk callers choose the mode.
   */
  async reserveLines(
    ctx: Context,
    lines: ReserveLine[],
    mode: Mode = 'all-or-nothing',
    bulk = true,
    actors?: readonly string[],
    checked = false,
  ): Promise<Array<LineResult<Reservation>>> {
    if (!checked) {
      this.check(ReserveLine, lines, bulk);
      refuseRepeatedIds(lines, bulk);
    }
    const ids = [...new Set(lines.flatMap((l) => (l.id === undefined ? [] : [l.id])))];
    for (let attempt = 1; ; attempt++) {
      let unknownSkus = new Set<string>();
      try {
        return await this.run(ctx, lines, mode, bulk, {
          keys: theItem,
          create: false,
          afterLoad: async (s) => {
            // Client-chosen ids are read once the items' rows are locked: a reserve of the same
            // line that committed meanwhile held the same lock, so it is seen here (D34).
            if (ids.length > 0) s.knowReservations(await findReservations(s.uow.trx, ids));
            // An item without a stock row: either the SKU is unknown or it has no stock there.
            const missing = lines.filter((l) => !s.level(l.sku, l.locationId)).map((l) => l.sku);
            if (missing.length === 0) return;
            const known = await existingSkus(s.uow.trx, [...new Set(missing)]);
            unknownSkus = new Set(missing.filter((sku) => !known.has(sku)));
          },
          apply: (s, l, i) =>
            unknownSkus.has(l.sku)
              ? failure('UNKNOWN_REFERENCE', `unknown SKU '${l.sku}'`)
              : this.reserveOne(s, ctx, l, actors?.[i] ?? actorOf(ctx)),
        });
      } catch (error) {
        // Another transaction made one of these ids for a different item (a different row lock,
        // so neither saw the other's): this one's insert failed and nothing of it stayed. Run
        // again: the id is read now and the line answered from it.
        if (ids.length === 0 || !isUniqueViolation(error) || attempt >= 3) throw error;
      }
    }
  }

  /** The queue's batch on the locking path, per line (the lines were checked on submit). */
  async reserveLinesLocked(
    ctx: Context,
    lines: ReserveLine[],
    actors: readonly string[],
  ): Promise<Array<LineResult<Reservation>>> {
    const results = await this.reserveLines(ctx, lines, 'per-line', true, actors, true);
    this.deps.metrics?.reservationBatches.inc({ path: 'lock' });
    return results;
  }

  private reserveOne(
    s: StockSession,
    ctx: Context,
    l: ReserveLine,
    actor: string,
  ): Reservation | LineFailure {
    const channel: Channel = l.channel ?? ctx.channel ?? 'web';
    // A retry (or a concurrent twin in this batch) of a reserve with a client-chosen id.
    const existing = l.id === undefined ? undefined : s.reservation(l.id);
    if (existing) return replayOf(s, existing, l, channel);
    const level = s.level(l.sku, l.locationId);
    if (!level) {
      return failure(
        'INSUFFICIENT_STOCK',
        `${l.sku} at ${l.locationId}: ${l.quantity} requested, 0 available to ${channel}`,
        0,
      );
    }
    const policy = this.sites.cachedPolicy(level.site.marketCode, channel);
    const ttl =
      l.ttlSeconds ?? (l.reference ? DEFAULT_TTL[l.reference.type] : DEFAULT_TTL.cart) ?? null;
    const reserved = s.reserve(level, {
      quantity: l.quantity,
      channel,
      channelSafetyStock: channelSafetyStock(policy, level.site),
      marketCode: l.marketCode,
      reference: l.reference,
      expiresAt: ttl === null || ttl === 0 ? null : s.now + ttl * 1000,
      actor,
      id: l.id,
    });
    return isFailure(reserved) ? reserved : s.show(reserved);
  }

  commit(ctx: Context, lines: ReservationIdLine[], mode: Mode = 'all-or-nothing', bulk = true) {
    return this.settleReservations(ctx, lines, mode, bulk, 'committed');
  }

  release(ctx: Context, lines: ReservationIdLine[], mode: Mode = 'all-or-nothing', bulk = true) {
    return this.settleReservations(ctx, lines, mode, bulk, 'released');
  }

  private settleReservations(
    ctx: Context,
    lines: ReservationIdLine[],
    mode: Mode,
    bulk: boolean,
    status: 'committed' | 'released',
  ): Promise<Array<LineResult<Reservation>>> {
    this.check(ReservationIdLine, lines, bulk);
    const found = new Map<string, ReservationRow>();
    return this.run(ctx, lines, mode, bulk, {
      keys: () => [],
      create: false,
      prepare: async (s) => {
        found.clear();
        const rows = await lockReservations(
          s.uow.trx,
          this.deps.dialect,
          lines.map((l) => l.reservationId),
        );
        rows.forEach((r) => found.set(r.id, { ...r, quantity: Number(r.quantity) }));
        await s.load(
          rows.map((r) => ({ sku: r.sku, locationId: r.location_id })),
          false,
        );
      },
      apply: (s, l) => {
        const row = found.get(l.reservationId);
        if (!row) return failure('NOT_FOUND', `reservation '${l.reservationId}' does not exist`);
        // Expired is one answer whether or not the sweep has run yet: a commit of a hold past
        // its expiry, or any step on a hold the sweep expired. A release of a lapsed hold the
        // sweep has not reached still releases it: the caller gives the units back, which is
        // what the sweep would do a moment later.
        const lapsed =
          row.status === 'expired' ||
          (row.status === 'active' &&
            status === 'committed' &&
            row.expires_at !== null &&
            row.expires_at <= s.now);
        if (lapsed) {
          return failure(
            'RESERVATION_EXPIRED',
            `reservation '${row.id}' expired` +
              (row.expires_at === null ? '' : ` at ${new Date(row.expires_at).toISOString()}`),
          );
        }
        if (row.status !== 'active') {
          return failure(
            'RESERVATION_NOT_ACTIVE',
            `reservation '${row.id}' is ${row.status}${row.status_reason ? ` (${row.status_reason})` : ''}`,
          );
        }
        const level = s.level(row.sku, row.location_id)!;
        if (!mayActFor(ctx, level.site.marketCode)) {
          return failure(
            'FORBIDDEN_SCOPE',
            outsideMarkets(ctx, level.site.marketCode, `location '${row.location_id}'`).message,
          );
        }
        s.settle(level, row, status, l.reason ?? null, actorOf(ctx));
        return s.show(row);
      },
    });
  }

  /**
   * Expires active reservations whose time has passed, giving their units back. Safe to run in
   * every hub process at once: each reservation is locked and re-checked, so a commit racing
   * the expiry either wins (and the expiry skips it) or finds it expired.
   */
  async expireDue(now = Date.now(), limit = 500): Promise<number> {
    const ids = await dueReservations(this.deps.db, now, limit);
    if (ids.length === 0) return 0;
    let expired = 0;
    const ctx = {
      requestId: uuidv7(),
      actor: { kind: 'system' as const, id: 'reservation-expiry' },
      scopes: new Set(['*']),
    };
    const found = new Map<string, ReservationRow>();
    await this.run(ctx, ids, 'per-line', true, {
      keys: () => [],
      create: false,
      prepare: async (s) => {
        found.clear();
        const rows = await lockReservations(s.uow.trx, this.deps.dialect, ids);
        rows.forEach((r) => found.set(r.id, { ...r, quantity: Number(r.quantity) }));
        await s.load(
          rows.map((r) => ({ sku: r.sku, locationId: r.location_id })),
          false,
        );
      },
      apply: (s, id) => {
        const row = found.get(id);
        if (!row || row.status !== 'active' || row.expires_at === null || row.expires_at > s.now) {
          return failure('RESERVATION_NOT_ACTIVE', `reservation '${id}' is no longer due`);
        }
        s.settle(
          s.level(row.sku, row.location_id)!,
          row,
          'expired',
          'lapsed',
          'system:reservation-expiry',
        );
        expired++;
        return null;
      },
    });
    return expired;
  }

  async getReservation(ctx: Context, id: string): Promise<Reservation> {
    const row = await getReservation(this.deps.db, id);
    if (!row) throw new NexusError('NOT_FOUND', `reservation '${id}' does not exist`);
    await this.assertMayActAt(ctx, [row.location_id]);
    return toReservation({ ...row, quantity: Number(row.quantity) });
  }

  // ---- POS ---------------------------------------------------------------------------------

  /**
   * Sales a store's POS reports, also ones it took while offline. Each sale applies once (its
   * own id deduplicates replays), sales apply in the order they happened, a sale applies whole
   * or not at all, and stock goes below zero only where the location allows it (flagged). A
   * rejected sale is kept with its reason and applies when the POS sends it again later.
   */
  async posSales(ctx: Context, locationId: string, sales: PosSale[]): Promise<PosSaleResult[]> {
    this.check(PosSale, sales, true);
    const site = await this.sites.site(locationId);
    if (!site) {
      throw new NexusError('UNKNOWN_REFERENCE', `location '${locationId}' does not exist`, {
        errors: [
          { pointer: '/locationId', detail: `unknown location '${locationId}'`, in: 'path' },
        ],
      });
    }
    assertMayActFor(ctx, site.marketCode, `location '${locationId}'`);
    const seen = new Set<string>();
    sales.forEach((sale, i) => {
      if (seen.has(sale.saleId)) {
        throw new NexusError('VALIDATION_FAILED', `/lines/${i}/saleId is repeated in this batch`, {
          errors: [{ pointer: `/lines/${i}/saleId`, detail: 'repeated in this batch' }],
        });
      }
      seen.add(sale.saleId);
    });
    const known = await existingSkus(this.deps.db, [
      ...new Set(sales.flatMap((s) => s.lines.map((l) => l.sku))),
    ]);
    // Stable sort: sales that happened earlier apply first, whatever order the batch has.
    const ordered = sales
      .map((sale, index) => ({ sale, index, at: Date.parse(sale.occurredAt) }))
      .sort((a, b) => a.at - b.at || a.index - b.index);
    const results: PosSaleResult[] = new Array<PosSaleResult>(sales.length);
    const posCtx: Context = { ...ctx, channel: 'pos' };
    await this.transaction(posCtx, async (s) => {
      const receivedAt = s.now;
      const claimRows: PosSaleRow[] = ordered.map(({ sale, at }) => ({
        location_id: locationId,
        sale_id: sale.saleId,
        occurred_at: at,
        received_at: receivedAt,
        lines: sale.lines.length,
        terminal: sale.terminal ?? null,
        status: 'pending',
        reason: null,
        flagged: null,
        movement_ids: null,
        doc: JSON.stringify(sale),
      }));
      const claimed = await claimPosSales(s.uow.trx, claimRows);
      const keys = [...known].map((sku) => ({ sku, locationId }));
      await s.load(keys, true);
      const settled: PosSaleRow[] = [];
      for (const [i, { sale, index, at }] of ordered.entries()) {
        if (!claimed.has(sale.saleId)) {
          results[index] = { saleId: sale.saleId, status: 'duplicate' };
          continue;
        }
        const problem = this.checkSale(s, sale, known, locationId);
        if (problem) {
          results[index] = {
            saleId: sale.saleId,
            status: 'rejected',
            code: problem.code,
            detail: problem.detail,
          };
          settled.push({
            ...claimRows[i]!,
            status: 'rejected',
            reason: `${problem.code}: ${problem.detail}`,
          });
          continue;
        }
        let flag: string | null = null;
        const movementIds: string[] = [];
        for (const line of sale.lines) {
          const level = s.level(line.sku, locationId)!;
          const moved = s.move(level, {
            reason: line.quantity > 0 ? 'sale' : 'return',
            delta: -line.quantity,
            actor: actorOf(posCtx),
            channel: 'pos',
            reference: `pos:${sale.saleId}`,
            note: sale.terminal === undefined ? undefined : `terminal ${sale.terminal}`,
            occurredAt: at,
          });
          if (isFailure(moved)) continue;
          movementIds.push(moved.id);
          flag ??= moved.flagged;
        }
        results[index] =
          flag !== null
            ? { saleId: sale.saleId, status: 'applied', flagged: true }
            : { saleId: sale.saleId, status: 'applied' };
        settled.push({
          ...claimRows[i]!,
          status: 'applied',
          flagged: flag,
          movement_ids: JSON.stringify(movementIds),
        });
      }
      await settlePosSales(s.uow.trx, settled);
    });
    return results;
  }

  /** Whether a whole sale fits: every SKU known, and no line takes stock below what is allowed. */
  private checkSale(
    s: StockSession,
    sale: PosSale,
    known: ReadonlySet<string>,
    locationId: string,
  ): LineFailure | null {
    const perSku = new Map<string, number>();
    for (const line of sale.lines) {
      if (!known.has(line.sku)) return failure('UNKNOWN_REFERENCE', `unknown SKU '${line.sku}'`);
      perSku.set(line.sku, (perSku.get(line.sku) ?? 0) + line.quantity);
    }
    for (const [sku, sold] of perSku) {
      const level = s.level(sku, locationId)!;
      if (sold > 0 && level.row.on_hand - sold < 0 && !level.site.allowNegativeStock) {
        const has = Math.max(0, level.row.on_hand);
        return failure(
          'INSUFFICIENT_STOCK',
          `${sku}: ${sold} sold, ${has} on hand; location ${locationId} does not allow negative stock`,
          has,
        );
      }
    }
    return null;
  }

  /**
   * The sales a location's POS sent, as kept: applied ones (flagged when they took stock below
   * zero) and rejected ones with their reason, newest first by when they happened.
   */
  async posSaleLog(
    ctx: Context,
    locationId: string,
    query: {
      status?: PosSaleRecord['status'];
      flagged?: boolean;
      terminal?: string;
      since?: string;
      until?: string;
      cursor?: string;
      limit: number;
    },
  ): Promise<Page<PosSaleRecord>> {
    const site = await this.sites.site(locationId);
    if (!site) throw new NexusError('NOT_FOUND', `location '${locationId}' does not exist`);
    // Keys may be limited to markets (there are no per-location keys): a location's sales are
    // read under its market, as availability is.
    assertMayActFor(ctx, site.marketCode, `location '${locationId}'`);
    const time = (name: 'since' | 'until') => {
      const value = query[name];
      if (value === undefined) return undefined;
      const ms = Date.parse(value);
      // A leap second (23:59:60) is a valid date-time that Date cannot read.
      if (Number.isNaN(ms)) {
        throw new NexusError('VALIDATION_FAILED', `${name} is not a time this API can read`, {
          errors: [{ pointer: `/${name}`, detail: 'unreadable time', in: 'query' }],
        });
      }
      return ms;
    };
    const rows = await listPosSales(this.deps.db, {
      locationId,
      status: query.status,
      flagged: query.flagged,
      terminal: query.terminal,
      since: time('since'),
      until: time('until'),
      before: query.cursor === undefined ? undefined : decodePosSaleCursor(query.cursor),
      limit: query.limit + 1,
    });
    return pageOf(rows, query.limit, posSaleKey, toPosSaleRecord);
  }

  // ---- queries ----------------------------------------------------------------------------

  /** One SKU at every location that holds a row for it, with units in transit to each. */
  async item(ctx: Context, sku: string) {
    const [rows, transit, known] = await Promise.all([
      levelsOfSkus(this.deps.db, [sku]),
      inTransitTo(this.deps.db, [sku]),
      existingSkus(this.deps.db, [sku]),
    ]);
    if (!known.has(sku)) throw new NexusError('NOT_FOUND', `SKU '${sku}' does not exist`);
    const inTransit = new Map(transit.map((t) => [t.to_location, t.quantity]));
    const sites =
      ctx.markets === undefined
        ? null
        : await this.sites.sitesOf(new Set(rows.map((r) => r.location_id)));
    return {
      sku,
      // A key limited to markets sees the stock of their locations only.
      levels: rows
        .filter((r) => {
          const site = sites?.get(r.location_id);
          return sites === null || (site !== undefined && mayActFor(ctx, site.marketCode));
        })
        .map((r) => ({ ...toLevel(r), inTransit: inTransit.get(r.location_id) ?? 0 }))
        .sort((a, b) => (a.locationId < b.locationId ? -1 : 1)),
    };
  }

  async levelsAt(ctx: Context, locationId: string, limit: number, cursor?: string) {
    const site = await this.sites.site(locationId);
    if (!site) throw new NexusError('NOT_FOUND', `location '${locationId}' does not exist`);
    assertMayActFor(ctx, site.marketCode, `location '${locationId}'`);
    const after = cursor === undefined ? undefined : decodeCursor(cursor);
    const rows = await levelsAtLocation(this.deps.db, locationId, after, limit + 1);
    return pageOf(rows, limit, (r) => r.sku, toLevel);
  }

  /**
   * Available to promise for many SKUs at once (500 SKUs x every location in one call): per
   * location, and with a market and channel the total that channel may sell there.
   */
  async availability(
    _ctx: Context,
    skus: readonly string[],
    scope: AvailabilityScope,
  ): Promise<SkuAvailability[]> {
    const unique = [...new Set(skus)];
    const sites = await this.sites.all();
    const byId = new Map(sites.map((site) => [site.id, site]));
    const policy =
      scope.channel !== undefined && scope.marketCode !== undefined
        ? await this.sites.policy(scope.marketCode, scope.channel)
        : undefined;
    // Read only the rows the answer can hold: a market's locations (that serve the channel),
    // not every location's stock of these SKUs.
    const locationIds =
      scope.locationIds ??
      (scope.marketCode === undefined
        ? undefined
        : sites
            .filter((s) => s.marketCode === scope.marketCode && (!policy || serves(policy, s)))
            .map((s) => s.id));
    if (locationIds?.length === 0) return availabilityOf(unique, [], byId, scope, policy);
    const rows = await levelsOfSkus(this.deps.db, unique, locationIds);
    return availabilityOf(unique, rows, byId, scope, policy);
  }

  /**
   * Stores within `radiusKm` of a point that can hand all these items over today (pickup
   * capability, open long enough, every item available to the channel), nearest first.
   */
  async pickupOptions(
    _ctx: Context,
    query: {
      near: { lat: number; lon: number };
      radiusKm: number;
      items: ReadonlyArray<{ sku: string; quantity: number }>;
      channel: Channel;
      leadMinutes: number;
      at?: Date;
      limit: number;
    },
  ) {
    const at = query.at ?? new Date();
    const candidates = (await this.sites.all())
      .filter((s) => s.active && s.capabilities.has('pickup'))
      .map((site) => ({ site, distanceKm: distanceKm(query.near, site) }))
      .filter((c) => c.distanceKm <= query.radiusKm)
      .sort((a, b) => a.distanceKm - b.distanceKm);
    if (candidates.length === 0) return [];
    const skus = [...new Set(query.items.map((i) => i.sku))];
    const rows = await levelsOfSkus(
      this.deps.db,
      skus,
      candidates.map((c) => c.site.id),
    );
    const byKey = new Map(rows.map((r) => [itemKey(r.sku, r.location_id), r]));
    const options = [];
    for (const { site, distanceKm: km } of candidates) {
      const closesAt = handOverToday(site, at, query.leadMinutes);
      if (closesAt === null) continue;
      const policy = await this.sites.policy(site.marketCode, query.channel);
      if (!serves(policy, site)) continue;
      const keep = channelSafetyStock(policy, site);
      const items = [];
      let enough = true;
      for (const wanted of query.items) {
        const row = byKey.get(itemKey(wanted.sku, site.id));
        const available = row
          ? Math.max(
              0,
              Number(row.on_hand) - Number(row.reserved) - Number(row.safety_stock) - keep,
            )
          : 0;
        if (available < wanted.quantity) {
          enough = false;
          break;
        }
        items.push({ sku: wanted.sku, available });
      }
      if (!enough) continue;
      options.push({
        locationId: site.id,
        name: site.name,
        distanceKm: Math.round(km * 100) / 100,
        closesAt,
        timeZone: site.timeZone,
        items,
      });
      if (options.length >= query.limit) break;
    }
    return options;
  }

  async movements(
    ctx: Context,
    filter: { sku?: string; locationId?: string; reason?: string; limit: number; cursor?: string },
  ) {
    await this.assertListedWithin(ctx, filter.locationId);
    const afterSeq = filter.cursor === undefined ? undefined : Number(decodeCursor(filter.cursor));
    if (afterSeq !== undefined && !Number.isSafeInteger(afterSeq)) {
      // A cursor this API never handed out (ours are ledger positions): say so, not page 1.
      throw new NexusError('VALIDATION_FAILED', 'cursor is not one this API handed out', {
        errors: [{ pointer: '/cursor', detail: 'invalid cursor', in: 'query' }],
      });
    }
    const rows = await listMovements(this.deps.db, {
      sku: filter.sku,
      locationId: filter.locationId,
      reason: filter.reason,
      afterSeq,
      limit: filter.limit + 1,
    });
    return pageOf(rows, filter.limit, (r) => String(r.seq), toMovement);
  }

  async reservations(
    ctx: Context,
    filter: {
      sku?: string;
      locationId?: string;
      status?: string;
      referenceId?: string;
      limit: number;
      cursor?: string;
    },
  ) {
    await this.assertListedWithin(ctx, filter.locationId);
    const rows = await listReservations(this.deps.db, {
      sku: filter.sku,
      locationId: filter.locationId,
      status: filter.status,
      referenceId: filter.referenceId,
      after: filter.cursor === undefined ? undefined : decodeCursor(filter.cursor),
      limit: filter.limit + 1,
    });
    return pageOf(
      rows,
      filter.limit,
      (r) => r.id,
      (r) => toReservation({ ...r, quantity: Number(r.quantity) }),
    );
  }

  /**
   * Inventory accuracy from cycle counts: the share of counts that found the book exactly
   * right, and the units the book was off relative to the units it claimed.
   */
  async accuracy(ctx: Context, sinceMs: number, marketCode?: string) {
    assertMarket(ctx, marketCode);
    const row = await cycleCountAccuracy(this.deps.db, sinceMs, marketCode);
    return {
      since: new Date(sinceMs).toISOString(),
      ...(marketCode === undefined ? {} : { marketCode }),
      counts: row.counts,
      exactCounts: row.exact,
      /** Share of counts where the book matched the shelf. */
      recordAccuracy: row.counts === 0 ? null : row.exact / row.counts,
      absoluteVariance: row.absolute_variance,
      /** 1 - |variance| / units the book claimed, over all counts. */
      unitAccuracy:
        row.book_units === 0 ? null : Math.max(0, 1 - row.absolute_variance / row.book_units),
    };
  }

  // ---- channel policies --------------------------------------------------------------------

  async channelPolicies(ctx: Context): Promise<ChannelPolicy[]> {
    this.sites.invalidate();
    return (await this.sites.explicitPolicies()).filter((p) => mayActFor(ctx, p.marketCode));
  }

  async channelPolicy(ctx: Context, marketCode: string, channel: Channel): Promise<ChannelPolicy> {
    assertMarket(ctx, marketCode);
    this.sites.invalidate();
    return this.sites.policy(marketCode, channel);
  }

  async putChannelPolicy(ctx: Context, policy: ChannelPolicy): Promise<ChannelPolicy> {
    this.validator.assert(ChannelPolicy, policy, 'VALIDATION_FAILED', '');
    assertMarket(ctx, policy.marketCode);
    await this.deps.transactor.run(ctx, (uow) =>
      putChannelPolicy(uow.trx, {
        market_code: policy.marketCode,
        channel: policy.channel,
        doc: JSON.stringify(policy),
        updated_at: Date.now(),
      }),
    );
    this.sites.invalidate();
    return policy;
  }

  async deleteChannelPolicy(ctx: Context, marketCode: string, channel: Channel): Promise<void> {
    assertMarket(ctx, marketCode);
    const removed = await this.deps.transactor.run(ctx, (uow) =>
      deleteChannelPolicy(uow.trx, marketCode, channel),
    );
    this.sites.invalidate();
    if (removed === 0) {
      throw new NexusError('NOT_FOUND', `no channel policy for ${channel} in ${marketCode}`);
    }
  }

  // ---- the machinery -----------------------------------------------------------------------

  private check(schema: TSchema, lines: readonly unknown[], bulk: boolean): void {
    if (lines.length === 0) {
      throw new NexusError('VALIDATION_FAILED', '/lines must not be empty', {
        errors: [{ pointer: '/lines', detail: 'must not be empty' }],
      });
    }
    lines.forEach((line, i) =>
      this.validator.assert(schema, line, 'VALIDATION_FAILED', bulk ? `/lines/${i}` : ''),
    );
  }

  /** One unit of work around a stock session, retried when PostgreSQL reports a deadlock. */
  async transaction<T>(ctx: Context, work: (session: StockSession) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      let session: StockSession | undefined;
      try {
        const value = await this.deps.transactor.run(ctx, async (uow) => {
          session = new StockSession(
            uow,
            this.deps.dialect,
            this.sites,
            this.snapshots ?? undefined,
          );
          const result = await work(session);
          await session.flush();
          return result;
        });
        // Committed: what the rows now hold is the next snapshot batch's starting point.
        if (session) this.snapshots?.record(session.rows());
        return value;
      } catch (error) {
        if (!isRetryableConflict(error) || attempt >= 5) throw error;
        await new Promise((r) => setTimeout(r, 2 ** attempt + Math.random() * 10));
      } finally {
        session?.end();
      }
    }
  }

  /**
   * The reservation queue's batch without a lock (PostgreSQL, D31): when this process holds a
   * snapshot of every item and every line can be granted from it, the batch is decided on the
   * snapshots and written as one statement (its own transaction, one round trip) whose level
   * updates are guarded by the versions read; it first waits for this process's transactions
   * on the items to end. Returns null when the batch must take the locking path instead: an
   * item without a snapshot or contended; a line that cannot be granted (a refusal is only
   * ever given under the lock); or a snapshot that proved stale (nothing was written then).
   */
  async reserveFromSnapshots(
    ctx: Context,
    lines: readonly ReserveLine[],
    actors: readonly string[],
  ): Promise<Array<LineResult<Reservation>> | null> {
    const snapshots = this.snapshots;
    if (!snapshots) return null;
    const keys = lines.map((l) => ({ sku: l.sku, locationId: l.locationId }));
    const sites = await this.sites.sitesOf(keys.map((k) => k.locationId));
    if (keys.some((k) => !sites.has(k.locationId))) return null;
    if (snapshots.take(keys, Date.now()) === null) return null;
    // The batch's connection first, before it takes any hold: a locking transaction of this
    // process waits for snapshot batches on its items while it holds a pooled connection, so
    // a batch holding an item and then waiting for a connection could wait for ever on a
    // pool full of such transactions (it did: a pool of 10, commits racing reservations).
    return this.deps.db.connection().execute(async (connection) => {
      // A batch of this process writing these items now leaves the next snapshot when it
      // commits: waiting for it costs less than waiting on its lock in the database. take and
      // hold go together, with no await between, so no other batch takes the items meanwhile.
      let rows = snapshots.take(keys, Date.now());
      while (rows === 'busy') {
        await snapshots.whenIdle(keys);
        rows = snapshots.take(keys, Date.now());
      }
      if (!rows) return null;
      const taken = rows;
      const release = snapshots.holdForSnapshot(keys);
      let session: StockSession | undefined;
      try {
        const results = await this.deps.transactor.runAsOneStatement(
          ctx,
          async (uow) => {
            session = new StockSession(uow, this.deps.dialect, this.sites);
            session.adopt(taken, sites);
            const out: Array<LineResult<Reservation>> = [];
            for (let index = 0; index < lines.length; index++) {
              const outcome = this.reserveOne(session, ctx, lines[index]!, actors[index]!);
              if (isFailure(outcome)) return null;
              out.push({ index, status: 'applied', result: outcome });
            }
            await session.flush();
            return out;
          },
          connection,
        );
        if (results && session) {
          snapshots.record(session.rows());
          this.deps.metrics?.reservationBatches.inc({ path: 'snapshot' });
        }
        return results;
      } catch (error) {
        // A line's client-chosen id exists already (a retry; this path does not read ids):
        // the statement failed whole, and the lock path reads the reservation and answers
        // (D34).
        if (isUniqueViolation(error)) return null;
        // A row changed since its snapshot (40001 from the guard): nothing was written, and
        // the lock path reads the row as it is.
        if (!isRetryableConflict(error)) throw error;
        snapshots.stale(keys, Date.now());
        this.deps.metrics?.reservationBatches.inc({ path: 'stale' });
        return null;
      } finally {
        release();
      }
    });
  }

  /**
   * Checks every line's references, then applies the lines in order in one transaction. In
   * all-or-nothing mode the first failed line fails the call (nothing is written); per line,
   * a failed line changes nothing and the others apply.
   */
  private async run<L, R>(
    ctx: Context,
    lines: readonly L[],
    mode: Mode,
    bulk: boolean,
    plan: LinePlan<L, R> & { finish?: (s: StockSession) => Promise<void> },
  ): Promise<Array<LineResult<R>>> {
    const keysPerLine = lines.map(plan.keys);
    await this.assertMayActAt(
      ctx,
      keysPerLine.flat().map((k) => k.locationId),
    );
    const unknown = await this.unknownReferences(keysPerLine, plan.create);
    const failures: Array<{ index: number; failure: LineFailure }> = [];
    unknown.forEach((f, index) => failures.push({ index, failure: f }));
    if (mode === 'all-or-nothing' && failures.length > 0) throw allOrNothingError(failures, bulk);

    return this.transaction(ctx, async (s) => {
      const results: Array<LineResult<R>> = [];
      const lineFailures = [...failures];
      if (plan.prepare) await plan.prepare(s, lines);
      const keys = lines.flatMap((l, i) => (unknown.has(i) ? [] : plan.keys(l)));
      await s.load(keys, plan.create);
      if (plan.afterLoad) await plan.afterLoad(s);
      lines.forEach((line, index) => {
        const before = unknown.get(index);
        if (before) {
          results.push({ index, status: 'failed', ...describe(before) });
          return;
        }
        const outcome = plan.apply(s, line, index);
        if (isFailure(outcome)) {
          lineFailures.push({ index, failure: outcome });
          results.push({ index, status: 'failed', ...describe(outcome) });
        } else {
          results.push({ index, status: 'applied', result: outcome });
        }
      });
      if (mode === 'all-or-nothing' && lineFailures.length > 0) {
        throw allOrNothingError(
          lineFailures.sort((a, b) => a.index - b.index),
          bulk,
        );
      }
      if (plan.finish) await plan.finish(s);
      return results;
    });
  }

  /** Lines naming a SKU or location that does not exist, by line index. */
  /**
   * A key limited to markets acts only at locations in them (D35): a call naming a location of
   * another market is refused whole, before anything is read or written. Unknown locations are
   * left to the lines' own checks. Unlimited keys (and the hub itself) skip the lookup.
   */
  private async assertMayActAt(ctx: Context, locationIds: Iterable<string>): Promise<void> {
    if (ctx.markets === undefined) return;
    const sites = await this.sites.sitesOf(new Set(locationIds));
    for (const site of sites.values()) {
      assertMayActFor(ctx, site.marketCode, `location '${site.id}'`);
    }
  }

  /**
   * Ledger and reservation lists span every location unless one is named: a key limited to
   * markets names one of its locations (paging a filtered-after-the-fact list would hand out
   * short or empty pages).
   */
  private async assertListedWithin(ctx: Context, locationId: string | undefined): Promise<void> {
    if (ctx.markets === undefined) return;
    if (locationId === undefined) {
      throw new NexusError(
        'FORBIDDEN_SCOPE',
        `this key may act only for ${ctx.markets.join(', ')}: name a locationId of those markets`,
      );
    }
    await this.assertMayActAt(ctx, [locationId]);
  }

  private async unknownReferences(
    keysPerLine: ItemKey[][],
    checkSkus: boolean,
  ): Promise<Map<number, LineFailure>> {
    const out = new Map<number, LineFailure>();
    const locations = new Set(keysPerLine.flat().map((k) => k.locationId));
    if (locations.size === 0) return out;
    const sites = await this.sites.sitesOf(locations);
    // Reservations skip the SKU lookup: an item without a stock row cannot be reserved anyway,
    // and the hot path saves a query (unknown SKUs are told apart from empty ones below).
    const skus = checkSkus
      ? await existingSkus(this.deps.db, [...new Set(keysPerLine.flat().map((k) => k.sku))])
      : null;
    keysPerLine.forEach((keys, index) => {
      for (const k of keys) {
        if (!sites.has(k.locationId)) {
          out.set(index, failure('UNKNOWN_REFERENCE', `unknown location '${k.locationId}'`));
          return;
        }
        if (skus && !skus.has(k.sku)) {
          out.set(index, failure('UNKNOWN_REFERENCE', `unknown SKU '${k.sku}'`));
          return;
        }
      }
    });
    return out;
  }
}

/**
 * A reserve naming a reservation that exists: the same line gets the reservation as it is
 * now (whatever its status) and nothing is written; a different line is a conflict. The hold's
 * expiry is not compared (ttlSeconds counts from the call), nor the market when the line
 * leaves it to the location.
 */
function replayOf(
  s: StockSession,
  row: ReservationRow,
  l: ReserveLine,
  channel: Channel,
): Reservation | LineFailure {
  const differs: string[] = [];
  if (row.sku !== l.sku) differs.push('sku');
  if (row.location_id !== l.locationId) differs.push('locationId');
  if (row.quantity !== l.quantity) differs.push('quantity');
  if (row.channel !== channel) differs.push('channel');
  if (
    row.reference_type !== (l.reference?.type ?? null) ||
    row.reference_id !== (l.reference?.id ?? null)
  )
    differs.push('reference');
  if (l.marketCode !== undefined && row.market_code !== l.marketCode) differs.push('marketCode');
  if (differs.length === 0) return s.show(row);
  return failure(
    'RESERVATION_ID_CONFLICT',
    `reservation '${row.id}' exists for ${row.quantity} of ${row.sku} at ${row.location_id} ` +
      `(${row.channel}); this line differs in ${differs.join(', ')}`,
  );
}

/** One bulk call names each client-chosen id once. */
function refuseRepeatedIds(lines: readonly ReserveLine[], bulk: boolean): void {
  const seen = new Set<string>();
  lines.forEach((l, i) => {
    if (l.id === undefined) return;
    if (seen.has(l.id)) {
      const pointer = bulk ? `/lines/${i}/id` : '/id';
      throw new NexusError('VALIDATION_FAILED', `${pointer} is repeated in this call`, {
        errors: [{ pointer, detail: 'repeated in this call' }],
      });
    }
    seen.add(l.id);
  });
}

function describe(f: LineFailure): { code: string; detail: string; available?: number } {
  return f.available === undefined
    ? { code: f.code, detail: f.detail }
    : { code: f.code, detail: f.detail, available: f.available };
}

export type { WorkingLevel };

interface WaitingReservation {
  line: ReserveLine;
  actor: string;
  resolve(result: LineResult<Reservation>): void;
  reject(error: unknown): void;
}

export interface ReservationQueueOptions {
  /** Most reservations decided in one transaction. */
  maxBatch?: number;
  /** Transactions in flight at once (PostgreSQL: more than one helps when SKUs are spread). */
  concurrency?: number;
}

/**
 * Group commit for reservations. One transaction per reservation holds a hot SKU's row lock
 * through a whole commit, so a popular item serialises on fsyncs; instead, every reservation
 * that arrives while a transaction is in flight waits, and the next transaction takes them
 * all: it locks their rows in key order, grants in arrival order while stock lasts, writes each
 * row once, inserts all reservations and events with one statement each, and answers every
 * caller only after the commit. Throughput then grows with load instead of collapsing.
 */
export class ReservationQueue {
  private waiting: WaitingReservation[] = [];
  private inFlight = 0;
  /** Batches scheduled that have not taken their requests yet. */
  private starting = 0;
  private readonly maxBatch: number;
  private readonly concurrency: number;

  constructor(
    private readonly service: InventoryService,
    options: ReservationQueueOptions = {},
  ) {
    this.maxBatch = options.maxBatch ?? 256;
    this.concurrency = options.concurrency ?? 1;
  }

  submit(line: ReserveLine, actor: string): Promise<LineResult<Reservation>> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ line, actor, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.concurrency && this.waiting.length > 0) {
      this.inFlight++;
      this.starting++;
      // Start on the next turn of the event loop: requests that arrive meanwhile join the
      // batch, and callers in a tight loop (SQLite answers synchronously) cannot starve I/O
      // and timers with an endless chain of promise callbacks.
      setImmediate(() => {
        const share = Math.ceil(this.waiting.length / this.starting);
        this.starting--;
        const batch = this.takeShare(Math.min(this.maxBatch, share));
        if (batch.length === 0) {
          // The batches that started with this one took every request.
          this.inFlight--;
          return;
        }
        void this.runBatch(batch).finally(() => {
          this.inFlight--;
          this.pump();
        });
      });
    }
  }

  /**
   * About `size` waiting requests for a batch, whole items at a time: batches starting
   * together split the waiting requests between them by item (D38), so on PostgreSQL they run
   * side by side on different rows, while all of a hot item's requests still ride in one batch
   * (its rows would make a second one wait). Arrival order holds within each item.
   */
  private takeShare(size: number): WaitingReservation[] {
    if (size >= this.waiting.length) return this.waiting.splice(0, this.maxBatch);
    const items = new Set<string>();
    const batch: WaitingReservation[] = [];
    const rest: WaitingReservation[] = [];
    for (const w of this.waiting) {
      const item = itemKey(w.line.sku, w.line.locationId);
      if (!items.has(item) && batch.length < size) items.add(item);
      (items.has(item) && batch.length < this.maxBatch ? batch : rest).push(w);
    }
    this.waiting = rest;
    return batch;
  }

  private runBatch(batch: WaitingReservation[]): Promise<void> {
    const ctx: Context = {
      requestId: uuidv7(),
      actor: { kind: 'system', id: 'reservation-queue' },
      scopes: new Set(['*']),
    };
    // A failed transaction rolled back whole: its halves run again on their own, so one
    // caller's failing line (a trigger, a constraint) fails that caller only.
    return attemptInHalves(
      batch,
      async (part) => {
        const lines = part.map((w) => w.line);
        const actors = part.map((w) => w.actor);
        return (
          (await this.service.reserveFromSnapshots(ctx, lines, actors)) ??
          (await this.service.reserveLinesLocked(ctx, lines, actors))
        );
      },
      (part, results) => results.forEach((r, i) => part[i]!.resolve({ ...r, index: 0 })),
      (waiting, error) => waiting.reject(error),
    );
  }
}
