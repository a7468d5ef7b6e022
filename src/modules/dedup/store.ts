import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../../platform/db/storage.js';

/** All SQL of the deduplication service (plain SQL: it runs inside every ingest transaction). */

export interface DedupKeyRow {
  rule: string;
  key_hash: string;
  first_event_id: string;
  first_source: string;
  first_seen_at: number;
  expires_at: number;
  duplicates: number;
  sources: string;
}

export interface DedupLogRow {
  id: string;
  at: number;
  rule: string;
  action: string;
  event_id: string;
  event_type: string;
  source: string;
  first_event_id: string | null;
  key_values: string;
}

export interface DedupReviewRow {
  id: string;
  at: number;
  rule: string;
  event_id: string;
  first_event_id: string;
  envelope: string;
  status: 'pending' | 'released' | 'rejected';
  decided_at: number | null;
  decided_by: string | null;
  note: string | null;
}

/**
 * Claims a fact for this event. True when it is the first within the window: no row yet, or
 * the row's window has passed (then the row starts over with this event). The primary key
 * makes two processes that claim the same fact at once agree: one inserts, the other waits
 * for it (PostgreSQL) or runs after it (SQLite) and finds the row.
 */
export async function claimFact(
  trx: Executor,
  row: Omit<DedupKeyRow, 'duplicates' | 'sources'>,
): Promise<boolean> {
  const sources = JSON.stringify([row.first_source]);
  const { rows } = await sql<{ first_event_id: string }>`insert into dedup_keys
    (rule, key_hash, first_event_id, first_source, first_seen_at, expires_at, duplicates, sources)
    values (${row.rule}, ${row.key_hash}, ${row.first_event_id}, ${row.first_source},
      ${row.first_seen_at}, ${row.expires_at}, 0, ${sources})
    on conflict (rule, key_hash) do update set first_event_id = excluded.first_event_id,
      first_source = excluded.first_source, first_seen_at = excluded.first_seen_at,
      expires_at = excluded.expires_at, duplicates = 0, sources = excluded.sources
    where dedup_keys.expires_at <= ${row.first_seen_at}
    returning first_event_id`.execute(trx);
  return rows.length === 1;
}

/** The fact as known, locked until commit on PostgreSQL (sources are appended under the lock). */
export async function lockFact(
  trx: Executor,
  rule: string,
  keyHash: string,
  postgres: boolean,
): Promise<DedupKeyRow | undefined> {
  const { rows } = await sql<DedupKeyRow>`select * from dedup_keys
    where rule = ${rule} and key_hash = ${keyHash}${postgres ? sql` for update` : sql``}`.execute(
    trx,
  );
  return rows[0];
}

export async function recordDuplicate(
  trx: Executor,
  rule: string,
  keyHash: string,
  sources: string[],
): Promise<void> {
  await sql`update dedup_keys set duplicates = duplicates + 1, sources = ${JSON.stringify(sources)}
    where rule = ${rule} and key_hash = ${keyHash}`.execute(trx);
}

export async function insertLog(trx: Executor, row: DedupLogRow): Promise<void> {
  await sql`insert into dedup_log (id, at, rule, action, event_id, event_type, source,
    first_event_id, key_values) values (${row.id}, ${row.at}, ${row.rule}, ${row.action},
    ${row.event_id}, ${row.event_type}, ${row.source}, ${row.first_event_id},
    ${row.key_values})`.execute(trx);
}

export async function listLog(
  db: Executor,
  filter: {
    rule?: string | undefined;
    action?: string | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<DedupLogRow[]> {
  const where: RawBuilder<unknown>[] = [sql`1 = 1`];
  if (filter.rule) where.push(sql`rule = ${filter.rule}`);
  if (filter.action) where.push(sql`action = ${filter.action}`);
  if (filter.after) where.push(sql`id > ${filter.after}`);
  const { rows } = await sql<DedupLogRow>`select * from dedup_log
    where ${sql.join(where, sql` and `)} order by id limit ${filter.limit}`.execute(db);
  return rows;
}

export async function insertReview(trx: Executor, row: DedupReviewRow): Promise<void> {
  await sql`insert into dedup_review (id, at, rule, event_id, first_event_id, envelope, status,
    decided_at, decided_by, note) values (${row.id}, ${row.at}, ${row.rule}, ${row.event_id},
    ${row.first_event_id}, ${row.envelope}, ${row.status}, ${row.decided_at}, ${row.decided_by},
    ${row.note})`.execute(trx);
}

export async function listReview(
  db: Executor,
  filter: { status?: string | undefined; after?: string | undefined; limit: number },
): Promise<DedupReviewRow[]> {
  const where: RawBuilder<unknown>[] = [sql`1 = 1`];
  if (filter.status) where.push(sql`status = ${filter.status}`);
  if (filter.after) where.push(sql`id > ${filter.after}`);
  const { rows } = await sql<DedupReviewRow>`select * from dedup_review
    where ${sql.join(where, sql` and `)} order by id limit ${filter.limit}`.execute(db);
  return rows;
}

export async function getReview(db: Executor, id: string): Promise<DedupReviewRow | undefined> {
  const { rows } = await sql<DedupReviewRow>`select * from dedup_review where id = ${id}`.execute(
    db,
  );
  return rows[0];
}

/** Moves a pending review to its decision; false when someone decided it first. */
export async function decideReview(
  trx: Executor,
  id: string,
  status: 'released' | 'rejected',
  by: string,
  note: string | null,
  at: number,
): Promise<boolean> {
  const result = await sql`update dedup_review set status = ${status}, decided_at = ${at},
    decided_by = ${by}, note = ${note} where id = ${id} and status = 'pending'`.execute(trx);
  return Number(result.numAffectedRows ?? 0n) === 1;
}

/** Keeps storage bounded: facts past their window, and log entries past retention. */
export async function purge(db: Executor, now: number, logBefore: number): Promise<void> {
  await sql`delete from dedup_keys where expires_at <= ${now}`.execute(db);
  await sql`delete from dedup_log where at < ${logBefore}`.execute(db);
  await sql`delete from dedup_review where status <> 'pending' and decided_at < ${logBefore}`.execute(
    db,
  );
}
