import { sql, type RawBuilder } from 'kysely';
import { insertRows, type InsertBatch } from '../../platform/db/bulk.js';
import type { Dialect, Executor } from '../../platform/db/storage.js';

/**
 * All SQL of the inventory module. Plain SQL throughout: these statements run on the hottest
 * path of the hub (every reservation), where the query builder's garbage shows in latency,
 * and the few dialect differences (row locks) are explicit here.
 */

export interface LevelRow {
  sku: string;
  location_id: string;
  on_hand: number;
  reserved: number;
  safety_stock: number;
  version: number;
  updated_at: number;
}

export interface MovementRow {
  id: string;
  sku: string;
  location_id: string;
  reason: string;
  delta: number;
  on_hand_after: number;
  reserved_after: number;
  counted: number | null;
  variance: number | null;
  reference: string | null;
  note: string | null;
  flagged: string | null;
  actor: string;
  channel: string | null;
  occurred_at: number;
  recorded_at: number;
}

export interface ReservationRow {
  id: string;
  sku: string;
  location_id: string;
  quantity: number;
  channel: string;
  market_code: string | null;
  reference_type: string | null;
  reference_id: string | null;
  status: string;
  status_reason: string | null;
  expires_at: number | null;
  actor: string;
  created_at: number;
  updated_at: number;
}

export interface TransferRow {
  id: string;
  sku: string;
  from_location: string;
  to_location: string;
  quantity: number;
  received_quantity: number | null;
  status: string;
  reference: string | null;
  shipped_at: number;
  received_at: number | null;
}

export interface LocationRow {
  id: string;
  market_code: string;
  type: string;
  status: string;
  capabilities: string;
  lat: number;
  lon: number;
  doc: string;
}

export interface PosSaleRow {
  location_id: string;
  sale_id: string;
  occurred_at: number;
  received_at: number;
  lines: number;
  terminal: string | null;
  /** pending (only inside the transaction that decides it), applied or rejected. */
  status: string;
  /** Why a sale was rejected: `<CODE>: <detail>`. */
  reason: string | null;
  /** The movement flag (`negative-stock`) when an applied sale took stock below zero. */
  flagged: string | null;
  /** JSON array of the ids of the movements an applied sale produced. */
  movement_ids: string | null;
  doc: string;
}

/** Row values per statement: 2-3 parameters each stays far under SQLite's 32,766 limit. */
const CHUNK = 2000;

function chunks<T>(items: readonly T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export interface ItemKey {
  sku: string;
  locationId: string;
}

const keyTuples = (keys: readonly ItemKey[]) =>
  sql.join(keys.map((k) => sql`(${k.sku}, ${k.locationId})`));

/** Creates zero rows for items that have none yet, so the next statement can lock them. */
const LEVEL_INSERT =
  'insert into inventory_levels (sku, location_id, on_hand, reserved, safety_stock, version, updated_at)';

export async function ensureLevels(trx: Executor, keys: readonly ItemKey[], now: number) {
  for (const part of chunks(keys, 1000)) {
    await insertRows(
      trx,
      LEVEL_INSERT,
      7,
      part.map((k) => [k.sku, k.locationId, 0, 0, 0, 0, now]),
      'on conflict (sku, location_id) do nothing',
    );
  }
}

/**
 * Reads the rows of these items; on PostgreSQL also locks them until commit, in key order,
 * so two transactions that touch overlapping items never deadlock. SQLite transactions are
 * serialised by the single connection already.
 */
export async function lockLevels(
  trx: Executor,
  dialect: Dialect,
  keys: readonly ItemKey[],
): Promise<LevelRow[]> {
  if (dialect === 'postgres') {
    // The keys as two array parameters joined to the table: PostgreSQL plans a list of row
    // values `(sku, location_id) in ((..), ..)` as one OR branch per key, which cost about
    // 0.9 s per 2,000 keys (a bulk call of 3,000 lines spent 2.6 s here); the join, 30 ms.
    const unique = new Map(keys.map((k) => [`${k.sku}\u0000${k.locationId}`, k]));
    const skus = [...unique.values()].map((k) => k.sku);
    const locations = [...unique.values()].map((k) => k.locationId);
    const { rows } = await sql<LevelRow>`select l.sku, l.location_id, l.on_hand, l.reserved,
      l.safety_stock, l.version, l.updated_at from inventory_levels l
      join unnest(${skus}::text[], ${locations}::text[]) as k(sku, location_id)
        on l.sku = k.sku and l.location_id = k.location_id
      order by l.sku, l.location_id for update of l`.execute(trx);
    return rows;
  }
  const sorted = [...keys].sort((a, b) =>
    a.sku === b.sku ? compare(a.locationId, b.locationId) : compare(a.sku, b.sku),
  );
  const out: LevelRow[] = [];
  for (const part of chunks(sorted)) {
    const { rows } = await sql<LevelRow>`select sku, location_id, on_hand, reserved, safety_stock,
      version, updated_at from inventory_levels where (sku, location_id) in (${keyTuples(part)})
      order by sku, location_id`.execute(trx);
    out.push(...rows);
  }
  return out;
}

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Adds the new state of rows read in this transaction (they exist: see ensureLevels) to the
 * transaction's final inserts. Each row's version is one above the version read, and the write
 * is guarded by it: a row that changed since it was read (possible only for rows read without
 * a lock, D31) fails the whole write.
 */
export function writeLevels(inserts: InsertBatch, rows: readonly LevelRow[]): void {
  for (const part of chunks(rows, 1000)) {
    inserts.add(
      LEVEL_INSERT,
      7,
      part.map((r) => [
        r.sku,
        r.location_id,
        r.on_hand,
        r.reserved,
        r.safety_stock,
        r.version,
        r.updated_at,
      ]),
      `on conflict (sku, location_id) do update set on_hand = excluded.on_hand,
        reserved = excluded.reserved, safety_stock = excluded.safety_stock,
        version = excluded.version, updated_at = excluded.updated_at
        where inventory_levels.version = excluded.version - 1`,
      { everyRow: true },
    );
  }
}

/** Adds ledger rows to the transaction's final inserts. */
export function insertMovements(inserts: InsertBatch, rows: readonly MovementRow[]): void {
  for (const part of chunks(rows, 1000)) {
    inserts.add(
      `insert into inventory_movements (id, sku, location_id, reason, delta, on_hand_after,
        reserved_after, counted, variance, reference, note, flagged, actor, channel, occurred_at,
        recorded_at)`,
      16,
      part.map((m) => [
        m.id,
        m.sku,
        m.location_id,
        m.reason,
        m.delta,
        m.on_hand_after,
        m.reserved_after,
        m.counted,
        m.variance,
        m.reference,
        m.note,
        m.flagged,
        m.actor,
        m.channel,
        m.occurred_at,
        m.recorded_at,
      ]),
    );
  }
}

/** Adds new reservations to the transaction's final inserts. */
export function insertReservations(inserts: InsertBatch, rows: readonly ReservationRow[]): void {
  for (const part of chunks(rows, 1000)) {
    inserts.add(
      `insert into inventory_reservations (id, sku, location_id, quantity, channel, market_code,
        reference_type, reference_id, status, status_reason, expires_at, actor, created_at,
        updated_at)`,
      14,
      part.map((r) => [
        r.id,
        r.sku,
        r.location_id,
        r.quantity,
        r.channel,
        r.market_code,
        r.reference_type,
        r.reference_id,
        r.status,
        r.status_reason,
        r.expires_at,
        r.actor,
        r.created_at,
        r.updated_at,
      ]),
    );
  }
}

const RESERVATION_COLUMNS = sql`id, sku, location_id, quantity, channel, market_code,
  reference_type, reference_id, status, status_reason, expires_at, actor, created_at, updated_at`;

/** Reads reservations; on PostgreSQL locks them, so a commit and an expiry cannot both win. */
export async function lockReservations(
  trx: Executor,
  dialect: Dialect,
  ids: readonly string[],
): Promise<ReservationRow[]> {
  const lock = dialect === 'postgres' ? sql` for update` : sql``;
  const out: ReservationRow[] = [];
  for (const part of chunks([...ids].sort(compare))) {
    const { rows } = await sql<ReservationRow>`select ${RESERVATION_COLUMNS}
      from inventory_reservations where id in (${sql.join(part)}) order by id${lock}`.execute(trx);
    out.push(...rows);
  }
  return out;
}

/**
 * Reads reservations without locking them: a reserve with a client-chosen id answers with the
 * row as committed. Read after the item's row is locked, so a reserve of the same line that
 * committed meanwhile is seen (READ COMMITTED reads anew per statement).
 */
export async function findReservations(
  db: Executor,
  ids: readonly string[],
): Promise<ReservationRow[]> {
  const out: ReservationRow[] = [];
  for (const part of chunks(ids)) {
    const { rows } = await sql<ReservationRow>`select ${RESERVATION_COLUMNS}
      from inventory_reservations where id in (${sql.join(part)})`.execute(db);
    out.push(...rows);
  }
  return out;
}

export async function getReservation(
  db: Executor,
  id: string,
): Promise<ReservationRow | undefined> {
  const { rows } = await sql<ReservationRow>`select ${RESERVATION_COLUMNS}
    from inventory_reservations where id = ${id}`.execute(db);
  return rows[0];
}

export async function listReservations(
  db: Executor,
  filter: {
    sku?: string | undefined;
    locationId?: string | undefined;
    status?: string | undefined;
    referenceId?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<ReservationRow[]> {
  const where: RawBuilder<unknown>[] = [sql`1 = 1`];
  if (filter.sku) where.push(sql`sku = ${filter.sku}`);
  if (filter.locationId) where.push(sql`location_id = ${filter.locationId}`);
  if (filter.status) where.push(sql`status = ${filter.status}`);
  if (filter.referenceId) where.push(sql`reference_id = ${filter.referenceId}`);
  if (filter.after) where.push(sql`id > ${filter.after}`);
  const { rows } = await sql<ReservationRow>`select ${RESERVATION_COLUMNS}
    from inventory_reservations where ${sql.join(where, sql` and `)}
    order by id limit ${filter.limit}`.execute(db);
  return rows;
}

export async function updateReservations(
  trx: Executor,
  ids: readonly string[],
  status: string,
  reason: string | null,
  now: number,
): Promise<void> {
  for (const part of chunks(ids)) {
    await sql`update inventory_reservations set status = ${status}, status_reason = ${reason},
      updated_at = ${now} where id in (${sql.join(part)})`.execute(trx);
  }
}

/** Active reservations past their expiry, oldest first: the expiry sweep's work list. */
export async function dueReservations(db: Executor, now: number, limit: number) {
  const { rows } = await sql<{ id: string }>`select id from inventory_reservations
    where status = 'active' and expires_at is not null and expires_at <= ${now}
    order by expires_at limit ${limit}`.execute(db);
  return rows.map((r) => r.id);
}

/** Active reservations of one item, newest first (released first when stock falls short). */
export async function activeReservationsOf(trx: Executor, key: ItemKey, dialect: Dialect) {
  const lock = dialect === 'postgres' ? sql` for update` : sql``;
  const { rows } = await sql<ReservationRow>`select ${RESERVATION_COLUMNS}
    from inventory_reservations where sku = ${key.sku} and location_id = ${key.locationId}
    and status = 'active' order by created_at desc, id desc${lock}`.execute(trx);
  return rows;
}

export async function loadLocations(db: Executor): Promise<LocationRow[]> {
  const { rows } = await sql<LocationRow>`select id, market_code, type, status, capabilities,
    lat, lon, doc from locations`.execute(db);
  return rows;
}

export async function existingSkus(db: Executor, skus: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (const part of chunks(skus)) {
    const { rows } = await sql<{
      sku: string;
    }>`select sku from skus where sku in (${sql.join(part)})`.execute(db);
    rows.forEach((r) => found.add(r.sku));
  }
  return found;
}

export async function levelsOfSkus(
  db: Executor,
  skus: readonly string[],
  locationIds?: readonly string[],
): Promise<LevelRow[]> {
  const out: LevelRow[] = [];
  const where = locationIds ? sql` and location_id in (${sql.join(locationIds)})` : sql``;
  for (const part of chunks(skus, 1000)) {
    const { rows } = await sql<LevelRow>`select sku, location_id, on_hand, reserved, safety_stock,
      version, updated_at from inventory_levels where sku in (${sql.join(part)})${where}`.execute(
      db,
    );
    out.push(...rows);
  }
  return out;
}

export async function levelsAtLocation(
  db: Executor,
  locationId: string,
  after: string | undefined,
  limit: number,
): Promise<LevelRow[]> {
  const { rows } = await sql<LevelRow>`select sku, location_id, on_hand, reserved, safety_stock,
    version, updated_at from inventory_levels where location_id = ${locationId}
    ${after === undefined ? sql`` : sql`and sku > ${after}`} order by sku limit ${limit}`.execute(
    db,
  );
  return rows;
}

export async function listMovements(
  db: Executor,
  filter: {
    sku?: string | undefined;
    locationId?: string | undefined;
    reason?: string | undefined;
    afterSeq?: number | undefined;
    limit: number;
  },
): Promise<Array<MovementRow & { seq: number }>> {
  const where: RawBuilder<unknown>[] = [sql`1 = 1`];
  if (filter.sku) where.push(sql`sku = ${filter.sku}`);
  if (filter.locationId) where.push(sql`location_id = ${filter.locationId}`);
  if (filter.reason) where.push(sql`reason = ${filter.reason}`);
  if (filter.afterSeq !== undefined) where.push(sql`seq > ${filter.afterSeq}`);
  const { rows } = await sql<MovementRow & { seq: number }>`select * from inventory_movements
    where ${sql.join(where, sql` and `)} order by seq limit ${filter.limit}`.execute(db);
  return rows;
}

export interface AccuracyRow {
  counts: number;
  exact: number;
  absolute_variance: number;
  book_units: number;
}

/**
 * Inventory accuracy from cycle counts since `since`: how many counts found the book exactly
 * right, and the total absolute variance against the units the book claimed.
 */
export async function cycleCountAccuracy(
  db: Executor,
  since: number,
  marketCode?: string,
): Promise<AccuracyRow> {
  const market =
    marketCode === undefined
      ? sql``
      : sql` and location_id in (select id from locations where market_code = ${marketCode})`;
  const { rows } = await sql<AccuracyRow>`select count(*) as counts,
      coalesce(sum(case when variance = 0 then 1 else 0 end), 0) as exact,
      coalesce(sum(abs(variance)), 0) as absolute_variance,
      coalesce(sum(abs(counted - variance)), 0) as book_units
    from inventory_movements where reason = 'cycle-count' and recorded_at >= ${since}${market}`.execute(
    db,
  );
  const row = rows[0]!;
  return {
    counts: Number(row.counts),
    exact: Number(row.exact),
    absolute_variance: Number(row.absolute_variance),
    book_units: Number(row.book_units),
  };
}

export async function insertTransfers(trx: Executor, rows: readonly TransferRow[]): Promise<void> {
  for (const part of chunks(rows, 1000)) {
    const values = part.map(
      (t) => sql`(${t.id}, ${t.sku}, ${t.from_location}, ${t.to_location}, ${t.quantity},
        ${t.received_quantity}, ${t.status}, ${t.reference}, ${t.shipped_at}, ${t.received_at})`,
    );
    await sql`insert into inventory_transfers (id, sku, from_location, to_location, quantity,
      received_quantity, status, reference, shipped_at, received_at)
      values ${sql.join(values)}`.execute(trx);
  }
}

export async function lockTransfers(
  trx: Executor,
  dialect: Dialect,
  ids: readonly string[],
): Promise<TransferRow[]> {
  const lock = dialect === 'postgres' ? sql` for update` : sql``;
  const { rows } = await sql<TransferRow>`select * from inventory_transfers
    where id in (${sql.join([...ids].sort(compare))}) order by id${lock}`.execute(trx);
  return rows;
}

export async function receiveTransfer(
  trx: Executor,
  id: string,
  received: number,
  now: number,
): Promise<void> {
  await sql`update inventory_transfers set status = 'received', received_quantity = ${received},
    received_at = ${now} where id = ${id}`.execute(trx);
}

export async function getTransfer(db: Executor, id: string): Promise<TransferRow | undefined> {
  const { rows } = await sql<TransferRow>`select * from inventory_transfers
    where id = ${id}`.execute(db);
  return rows[0];
}

/** Units shipped to a location and not yet received there. */
export async function inTransitTo(db: Executor, skus: readonly string[]) {
  if (skus.length === 0) return [];
  const { rows } = await sql<{ sku: string; to_location: string; quantity: number }>`
    select sku, to_location, sum(quantity) as quantity from inventory_transfers
    where status = 'in-transit' and sku in (${sql.join(skus)})
    group by sku, to_location`.execute(db);
  return rows.map((r) => ({ ...r, quantity: Number(r.quantity) }));
}

/**
 * Claims POS sales by their own ids. Returns the ids this transaction may apply: new ones,
 * and ones rejected before (a corrected replay). A sale applied before is not returned, also
 * when the same batch is being applied concurrently by another process (the unique key and
 * the row lock make the second transaction wait for the first and then see it applied).
 */
export async function claimPosSales(
  trx: Executor,
  rows: readonly PosSaleRow[],
): Promise<Set<string>> {
  const claimed = new Set<string>();
  if (rows.length === 0) return claimed;
  const locationId = rows[0]!.location_id;
  for (const part of chunks(rows, 1000)) {
    const values = part.map(
      (r) => sql`(${r.location_id}, ${r.sale_id}, ${r.occurred_at}, ${r.received_at}, ${r.lines},
        ${r.terminal}, 'pending', null, ${r.doc})`,
    );
    const inserted = await sql<{ sale_id: string }>`insert into inventory_pos_sales
      (location_id, sale_id, occurred_at, received_at, lines, terminal, status, reason, doc)
      values ${sql.join(values)} on conflict (location_id, sale_id) do nothing
      returning sale_id`.execute(trx);
    inserted.rows.forEach((r) => claimed.add(r.sale_id));
    const retried = await sql<{ sale_id: string }>`update inventory_pos_sales
      set status = 'pending', reason = null
      where location_id = ${locationId} and status = 'rejected'
      and sale_id in (${sql.join(part.map((r) => r.sale_id))}) returning sale_id`.execute(trx);
    retried.rows.forEach((r) => claimed.add(r.sale_id));
  }
  return claimed;
}

/**
 * Writes each claimed sale as decided: status, reason, flag and movements, and the sale as it
 * was sent this time (a rejected sale sent again may have been corrected, and the log must
 * show the sale that applied, not the one first refused).
 */
export async function settlePosSales(trx: Executor, rows: readonly PosSaleRow[]): Promise<void> {
  for (const r of rows) {
    await sql`update inventory_pos_sales set occurred_at = ${r.occurred_at},
      received_at = ${r.received_at}, lines = ${r.lines}, terminal = ${r.terminal},
      status = ${r.status}, reason = ${r.reason}, flagged = ${r.flagged},
      movement_ids = ${r.movement_ids}, doc = ${r.doc}
      where location_id = ${r.location_id} and sale_id = ${r.sale_id}`.execute(trx);
  }
}

export interface PosSaleFilter {
  locationId: string;
  status?: string | undefined;
  /** true: only sales that took stock below zero; false: only the others. */
  flagged?: boolean | undefined;
  terminal?: string | undefined;
  /** Business time (occurred_at), from `since` inclusive to `until` exclusive. */
  since?: number | undefined;
  until?: number | undefined;
  /** Keyset: the last sale of the previous page (the log runs newest first). */
  before?: { occurredAt: number; saleId: string } | undefined;
  limit: number;
}

/** One location's sales, newest first by the time they happened (index inventory_pos_sales_time). */
export async function listPosSales(db: Executor, filter: PosSaleFilter): Promise<PosSaleRow[]> {
  const where: RawBuilder<unknown>[] = [sql`location_id = ${filter.locationId}`];
  if (filter.status !== undefined) where.push(sql`status = ${filter.status}`);
  if (filter.flagged !== undefined) {
    where.push(filter.flagged ? sql`flagged is not null` : sql`flagged is null`);
  }
  if (filter.terminal !== undefined) where.push(sql`terminal = ${filter.terminal}`);
  if (filter.since !== undefined) where.push(sql`occurred_at >= ${filter.since}`);
  if (filter.until !== undefined) where.push(sql`occurred_at < ${filter.until}`);
  if (filter.before !== undefined) {
    // Spelled out rather than as a row comparison so both planners see a range on the index.
    const { occurredAt, saleId } = filter.before;
    where.push(sql`occurred_at <= ${occurredAt}
      and (occurred_at < ${occurredAt} or sale_id < ${saleId})`);
  }
  const { rows } = await sql<PosSaleRow>`select location_id, sale_id, occurred_at, received_at,
    lines, terminal, status, reason, flagged, movement_ids, doc from inventory_pos_sales
    where ${sql.join(where, sql` and `)}
    order by occurred_at desc, sale_id desc limit ${filter.limit}`.execute(db);
  return rows;
}

export interface ChannelPolicyRow {
  market_code: string;
  channel: string;
  doc: string;
  updated_at: number;
}

export async function loadChannelPolicies(db: Executor): Promise<ChannelPolicyRow[]> {
  const { rows } = await sql<ChannelPolicyRow>`select market_code, channel, doc, updated_at
    from inventory_channel_policies`.execute(db);
  return rows;
}

export async function putChannelPolicy(trx: Executor, row: ChannelPolicyRow): Promise<void> {
  await sql`insert into inventory_channel_policies (market_code, channel, doc, updated_at)
    values (${row.market_code}, ${row.channel}, ${row.doc}, ${row.updated_at})
    on conflict (market_code, channel) do update set doc = excluded.doc,
    updated_at = excluded.updated_at`.execute(trx);
}

export async function deleteChannelPolicy(
  trx: Executor,
  marketCode: string,
  channel: string,
): Promise<number> {
  const result = await sql`delete from inventory_channel_policies
    where market_code = ${marketCode} and channel = ${channel}`.execute(trx);
  return Number(result.numAffectedRows ?? 0n);
}
