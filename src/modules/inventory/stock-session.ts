import type { ErrorCode } from '../../model/errors.js';
import { uuidv7 } from '../../model/ids.js';
import type { Channel } from '../../model/schemas/common.js';
import type {
  InventoryLevelChanged,
  InventoryMovementReason,
  LevelChangeCause,
  Reservation,
  StockFigures,
} from '../../model/schemas/inventory.js';
import type { Dialect } from '../../platform/db/storage.js';
import type { UnitOfWork } from '../../platform/events/unit-of-work.js';
import { INVENTORY_EVENTS, itemPartition } from './events.js';
import type { Site, SiteDirectory } from './sites.js';
import type { LevelSnapshots } from './snapshots.js';
import {
  activeReservationsOf,
  ensureLevels,
  insertMovements,
  insertReservations,
  lockLevels,
  updateReservations,
  writeLevels,
  type ItemKey,
  type LevelRow,
  type MovementRow,
  type ReservationRow,
} from './store.js';
import { isoTime } from '../../model/time.js';

/** Why one line of a command was not applied; in all-or-nothing mode it fails the whole call. */
export interface LineFailure {
  failed: true;
  code: ErrorCode;
  detail: string;
  /** INSUFFICIENT_STOCK: the units that could be had. */
  available?: number;
}

export const failure = (code: ErrorCode, detail: string, available?: number): LineFailure =>
  available === undefined
    ? { failed: true, code, detail }
    : { failed: true, code, detail, available };

export const isFailure = (value: unknown): value is LineFailure =>
  typeof value === 'object' && value !== null && 'failed' in value;

export const itemKey = (sku: string, locationId: string): string => `${sku}\u0000${locationId}`;

/** One SKU at one location as this transaction sees and changes it. */
export interface WorkingLevel {
  readonly key: ItemKey;
  readonly site: Site;
  row: LevelRow;
  readonly before: StockFigures;
  readonly causes: LevelChangeCause[];
  negative: boolean;
}

export const figures = (row: Pick<LevelRow, 'on_hand' | 'reserved' | 'safety_stock'>) => ({
  onHand: row.on_hand,
  reserved: row.reserved,
  safetyStock: row.safety_stock,
  available: row.on_hand - row.reserved - row.safety_stock,
});

const sameFigures = (a: StockFigures, b: StockFigures) =>
  a.onHand === b.onHand && a.reserved === b.reserved && a.safetyStock === b.safetyStock;

export function toReservation(row: ReservationRow): Reservation {
  const r: Reservation = {
    id: row.id,
    sku: row.sku,
    locationId: row.location_id,
    quantity: row.quantity,
    channel: row.channel as Channel,
    status: row.status as Reservation['status'],
    createdAt: isoTime(row.created_at),
    updatedAt: isoTime(row.updated_at),
  };
  if (row.market_code !== null) r.marketCode = row.market_code;
  if (row.reference_type !== null && row.reference_id !== null) {
    r.reference = {
      type: row.reference_type as NonNullable<Reservation['reference']>['type'],
      id: row.reference_id,
    };
  }
  if (row.status_reason !== null) r.statusReason = row.status_reason;
  if (row.expires_at !== null) r.expiresAt = isoTime(row.expires_at);
  return r;
}

const RESERVATION_EVENT = {
  active: INVENTORY_EVENTS.reservationCreated,
  committed: INVENTORY_EVENTS.reservationCommitted,
  released: INVENTORY_EVENTS.reservationReleased,
  expired: INVENTORY_EVENTS.reservationExpired,
} as const;

export interface MovementInput {
  reason: InventoryMovementReason;
  delta: number;
  actor: string;
  channel?: string | undefined;
  reference?: string | undefined;
  note?: string | undefined;
  counted?: number;
  occurredAt?: number | undefined;
  /** Decisions (a transfer out) may not take units that reservations hold; facts may. */
  protectReserved?: boolean;
}

/**
 * The stock rows one transaction works on, locked (PostgreSQL) for its duration. Commands
 * change the rows in memory through the methods below, which enforce the invariants line by
 * line; flush() then writes every changed row once, the ledger, the reservations and the
 * events, all in the caller's unit of work.
 */
export class StockSession {
  readonly now = Date.now();
  private readonly levels = new Map<string, WorkingLevel>();
  private readonly movements: MovementRow[] = [];
  private readonly created: ReservationRow[] = [];
  private readonly transitions: ReservationRow[] = [];
  private readonly shortfalls = new Set<string>();
  /** Reservations by id that a reserve with a client-chosen id may meet: read or made here. */
  private readonly byId = new Map<string, ReservationRow>();
  /** Reservations as the API and events show them, made once per row and state. */
  private readonly shown = new WeakMap<ReservationRow, { status: string; view: Reservation }>();

  /** Releases of this session's claims on items in `snapshots`. */
  private readonly holds: Array<() => void> = [];

  constructor(
    readonly uow: UnitOfWork,
    private readonly dialect: Dialect,
    private readonly sites: SiteDirectory,
    /** This process's snapshots (PostgreSQL): the locks this session takes keep them off. */
    private readonly snapshots?: LevelSnapshots,
  ) {}

  /** Ends the session's claims on items; call when its transaction has ended, either way. */
  end(): void {
    this.holds.splice(0).forEach((release) => release());
  }

  /**
   * Locks the rows of these items (creating empty ones first when `create`); items without a
   * row (when not creating) stay absent. Every key's location must be known to the directory.
   */
  async load(keys: readonly ItemKey[], create: boolean): Promise<void> {
    const wanted = new Map<string, ItemKey>();
    for (const k of keys) {
      const id = itemKey(k.sku, k.locationId);
      if (!this.levels.has(id)) wanted.set(id, k);
    }
    if (wanted.size === 0) return;
    const list = [...wanted.values()];
    if (this.snapshots) this.holds.push(await this.snapshots.holdForLock(list));
    if (create) await ensureLevels(this.uow.trx, list, this.now);
    const rows = await lockLevels(this.uow.trx, this.dialect, list);
    const sites = await this.sites.sitesOf(
      list.map((k) => k.locationId),
      this.uow.trx,
    );
    this.adopt(rows, sites);
  }

  /**
   * Takes rows as read elsewhere, without locking them: the snapshot path (D31), whose writes
   * are guarded by the versions read here. `load` ends here too, with rows it holds locked.
   */
  adopt(rows: readonly LevelRow[], sites: ReadonlyMap<string, Site>): void {
    for (const row of rows) {
      const site = sites.get(row.location_id);
      if (!site) continue;
      const level = {
        ...row,
        on_hand: Number(row.on_hand),
        reserved: Number(row.reserved),
        safety_stock: Number(row.safety_stock),
        version: Number(row.version),
      };
      this.levels.set(itemKey(row.sku, row.location_id), {
        key: { sku: row.sku, locationId: row.location_id },
        site,
        row: level,
        before: figures(level),
        causes: [],
        negative: false,
      });
    }
  }

  /**
   * Every row this session read, as it stands once flush() has run, for the snapshots (which
   * keep copies of their own).
   */
  rows(): LevelRow[] {
    return [...this.levels.values()].map((l) => l.row);
  }

  level(sku: string, locationId: string): WorkingLevel | undefined {
    return this.levels.get(itemKey(sku, locationId));
  }

  /** A change of on-hand stock, recorded in the ledger. */
  move(level: WorkingLevel, input: MovementInput): MovementRow | LineFailure {
    const row = level.row;
    const onHand = row.on_hand + input.delta;
    if (input.delta < 0) {
      if (input.protectReserved && onHand < row.reserved) {
        const free = Math.max(0, row.on_hand - row.reserved);
        return failure(
          'INSUFFICIENT_STOCK',
          `${level.key.sku} at ${level.key.locationId}: ${-input.delta} requested, ${free} not reserved`,
          free,
        );
      }
      if (onHand < 0 && !level.site.allowNegativeStock) {
        const has = Math.max(0, row.on_hand);
        return failure(
          'INSUFFICIENT_STOCK',
          `${level.key.sku} at ${level.key.locationId}: ${-input.delta} needed, ${has} on hand; ` +
            `location ${level.key.locationId} does not allow negative stock`,
          has,
        );
      }
    }
    row.on_hand = onHand;
    // Units that reservations held are gone: the newest reservations are released at flush.
    if (row.reserved > Math.max(0, onHand))
      this.shortfalls.add(itemKey(level.key.sku, level.key.locationId));
    if (onHand < 0) level.negative = true;
    const movement: MovementRow = {
      id: uuidv7(),
      sku: level.key.sku,
      location_id: level.key.locationId,
      reason: input.reason,
      delta: input.delta,
      on_hand_after: onHand,
      reserved_after: row.reserved,
      counted: input.counted ?? null,
      variance: input.counted === undefined ? null : input.delta,
      reference: input.reference ?? null,
      note: input.note ?? null,
      // Flagged when it takes units and leaves the stock below zero; a return or receipt into
      // stock that is below zero gives units back and is not what the flag points at.
      flagged: onHand < 0 && input.delta < 0 ? 'negative-stock' : null,
      actor: input.actor,
      channel: input.channel ?? null,
      occurred_at: input.occurredAt ?? this.now,
      recorded_at: this.now,
    };
    this.movements.push(movement);
    level.causes.push({
      kind: 'movement',
      reason: input.reason,
      quantity: input.delta,
      id: movement.id,
    });
    return movement;
  }

  setSafetyStock(level: WorkingLevel, safetyStock: number): void {
    const delta = safetyStock - level.row.safety_stock;
    if (delta === 0) return;
    level.row.safety_stock = safetyStock;
    level.causes.push({ kind: 'safety-stock', reason: 'safety-stock', quantity: delta });
  }

  /** Reservations read for this session (the rows a reserve's client-chosen ids name). */
  knowReservations(rows: readonly ReservationRow[]): void {
    for (const row of rows) this.byId.set(row.id, { ...row, quantity: Number(row.quantity) });
  }

  /** The reservation with this id, if read for this session or made in it. */
  reservation(id: string): ReservationRow | undefined {
    return this.byId.get(id);
  }

  /** Holds units for a channel, if it can have them: never more than on hand (invariant). */
  reserve(
    level: WorkingLevel,
    input: {
      quantity: number;
      channel: Channel;
      channelSafetyStock: number;
      marketCode?: string | undefined;
      reference?: Reservation['reference'];
      expiresAt: number | null;
      actor: string;
      /** A client-chosen id (the caller checked it is not taken); else a new UUIDv7. */
      id?: string | undefined;
    },
  ): ReservationRow | LineFailure {
    const row = level.row;
    const available = row.on_hand - row.reserved - row.safety_stock - input.channelSafetyStock;
    if (input.quantity > available || !level.site.active) {
      const could = level.site.active ? Math.max(0, available) : 0;
      return failure(
        'INSUFFICIENT_STOCK',
        `${level.key.sku} at ${level.key.locationId}: ${input.quantity} requested, ${could} available to ${input.channel}`,
        could,
      );
    }
    row.reserved += input.quantity;
    const reservation: ReservationRow = {
      id: input.id ?? uuidv7(),
      sku: level.key.sku,
      location_id: level.key.locationId,
      quantity: input.quantity,
      channel: input.channel,
      market_code: input.marketCode ?? level.site.marketCode,
      reference_type: input.reference?.type ?? null,
      reference_id: input.reference?.id ?? null,
      status: 'active',
      status_reason: null,
      expires_at: input.expiresAt,
      actor: input.actor,
      created_at: this.now,
      updated_at: this.now,
    };
    this.created.push(reservation);
    this.byId.set(reservation.id, reservation);
    level.causes.push({
      kind: 'reservation',
      reason: 'active',
      quantity: input.quantity,
      id: reservation.id,
    });
    return reservation;
  }

  /**
   * Ends an active reservation: committed turns its units into a sale (on hand and reserved
   * both go down), released and expired give them back to stock.
   */
  settle(
    level: WorkingLevel,
    reservation: ReservationRow,
    status: 'committed' | 'released' | 'expired',
    reason: string | null,
    actor: string,
  ): void {
    level.row.reserved -= reservation.quantity;
    reservation.status = status;
    reservation.status_reason = reason;
    reservation.updated_at = this.now;
    this.transitions.push(reservation);
    level.causes.push({
      kind: 'reservation',
      reason: status,
      quantity: -reservation.quantity,
      id: reservation.id,
    });
    if (status === 'committed') {
      const sale = this.move(level, {
        reason: 'sale',
        delta: -reservation.quantity,
        actor,
        channel: reservation.channel,
        reference: `reservation:${reservation.id}`,
      });
      // reserved <= on hand held before, so the sale of reserved units always fits.
      if (isFailure(sale))
        throw new Error(`invariant: commit of ${reservation.id} failed: ${sale.detail}`);
    }
  }

  /** The reservation as callers and events see it (shared by both: built once). */
  show(row: ReservationRow): Reservation {
    const cached = this.shown.get(row);
    if (cached && cached.status === row.status) return cached.view;
    const view = toReservation(row);
    this.shown.set(row, { status: row.status, view });
    return view;
  }

  /** Writes everything this transaction changed and emits its events. */
  async flush(): Promise<void> {
    await this.releaseShortfalls();
    // A count that matches the book is in the ledger, but the level did not change.
    const changed = [...this.levels.values()].filter(
      (l) => l.causes.length > 0 && !sameFigures(l.before, figures(l.row)),
    );
    for (const l of changed) {
      l.row.version += 1;
      l.row.updated_at = this.now;
    }
    // Rows nothing in this transaction reads again: written with its events, in one go.
    writeLevels(
      this.uow.inserts,
      changed.map((l) => l.row),
    );
    insertMovements(this.uow.inserts, this.movements);
    insertReservations(this.uow.inserts, this.created);
    const byStatus = new Map<string, ReservationRow[]>();
    for (const r of this.transitions) {
      const group = `${r.status}\u0000${r.status_reason ?? ''}`;
      byStatus.set(group, [...(byStatus.get(group) ?? []), r]);
    }
    for (const group of byStatus.values()) {
      const first = group[0]!;
      await updateReservations(
        this.uow.trx,
        group.map((r) => r.id),
        first.status,
        first.status_reason,
        this.now,
      );
    }
    const changedAt = isoTime(this.now);
    for (const r of [...this.created, ...this.transitions]) {
      const level = this.levels.get(itemKey(r.sku, r.location_id))!;
      this.uow.emit({
        type: RESERVATION_EVENT[r.status as keyof typeof RESERVATION_EVENT],
        subject: `reservation/${r.id}`,
        partitionKey: itemPartition(r.sku, r.location_id),
        market: level.site.marketCode,
        channel: r.channel as Channel,
        data: this.show(r),
      });
    }
    for (const l of changed) {
      const data: InventoryLevelChanged = {
        sku: l.key.sku,
        locationId: l.key.locationId,
        marketCode: l.site.marketCode,
        before: l.before,
        after: figures(l.row),
        version: l.row.version,
        changedAt,
        causes: l.causes,
      };
      if (l.negative) data.flags = ['negative-stock'];
      this.uow.emit({
        type: INVENTORY_EVENTS.levelChanged,
        subject: `inventory/${l.key.sku}@${l.key.locationId}`,
        partitionKey: itemPartition(l.key.sku, l.key.locationId),
        market: l.site.marketCode,
        data,
      });
    }
  }

  /** Stock fell below what reservations hold: release the newest until they fit again. */
  private async releaseShortfalls(): Promise<void> {
    for (const id of this.shortfalls) {
      const level = this.levels.get(id)!;
      if (level.row.reserved <= Math.max(0, level.row.on_hand)) continue;
      const active = await activeReservationsOf(this.uow.trx, level.key, this.dialect);
      const settled = new Set(this.transitions.map((r) => r.id));
      for (const r of active) {
        if (level.row.reserved <= Math.max(0, level.row.on_hand)) break;
        if (settled.has(r.id)) continue;
        this.settle(level, r, 'released', 'stock-shortfall', 'system:inventory');
      }
    }
  }
}
