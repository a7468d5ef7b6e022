import { sql, type RawBuilder } from 'kysely';
import { insertRows, withInList } from '../../platform/db/bulk.js';
import type { Executor } from '../../platform/db/storage.js';

/**
 * All SQL of the deduplication service (plain SQL: it runs inside every ingest transaction;
 * the per-event statements are multi-row, one per batch).
 */

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

const FACT_INSERT =
  'insert into dedup_keys (rule, key_hash, first_event_id, first_source, first_seen_at, expires_at, duplicates, sources)';
/** Rows per multi-row statement: at most 9 parameters each, far below either database's limit. */
const CHUNK = 500;

function* chunks<T>(items: readonly T[]): Generator<readonly T[]> {
  for (let i = 0; i < items.length; i += CHUNK) yield items.slice(i, i + CHUNK);
}

export type NewFact = Omit<DedupKeyRow, 'duplicates' | 'sources'>;

/** The FACT_INSERT values of a fact with these duplicates and sources. */
const factValues = (row: NewFact, duplicates: number, sources: readonly string[]) => [
  row.rule,
  row.key_hash,
  row.first_event_id,
  row.first_source,
  row.first_seen_at,
  row.expires_at,
  duplicates,
  JSON.stringify(sources),
];

/**
 * Claims facts for a batch of events, one multi-row statement per 500. A fact is claimed (its
 * `rule` and `key_hash` come back) when it is the first within the window: no row yet, or the
 * row's window has passed at `first_seen_at` (then the row starts over with this event). The
 * primary key makes two processes that claim the same fact at once agree: one inserts, the
 * other waits for it (PostgreSQL) or runs after it (SQLite) and finds the row. Each (rule,
 * key_hash) may appear once (PostgreSQL refuses to touch a row twice in one statement); rows
 * go in key order so two processes claiming overlapping batches lock in the same order.
 */
export async function claimFacts(trx: Executor, rows: readonly NewFact[]): Promise<Set<string>> {
  const sorted = [...rows].sort((a, b) => compareKeys(a.rule, a.key_hash, b.rule, b.key_hash));
  const claimed = new Set<string>();
  for (const chunk of chunks(sorted)) {
    const result = await insertRows<{ rule: string; key_hash: string }>(
      trx,
      FACT_INSERT,
      8,
      chunk.map((row) => factValues(row, 0, [row.first_source])),
      `on conflict (rule, key_hash) do update set first_event_id = excluded.first_event_id,
      first_source = excluded.first_source, first_seen_at = excluded.first_seen_at,
      expires_at = excluded.expires_at, duplicates = 0, sources = excluded.sources
      where dedup_keys.expires_at <= excluded.first_seen_at returning rule, key_hash`,
    );
    for (const row of result.rows) claimed.add(factKey(row.rule, row.key_hash));
  }
  return claimed;
}

/** The map key of a fact in the functions here. */
export const factKey = (rule: string, keyHash: string): string => `${rule}\u0000${keyHash}`;

const compareKeys = (ruleA: string, hashA: string, ruleB: string, hashB: string): number =>
  ruleA < ruleB ? -1 : ruleA > ruleB ? 1 : hashA < hashB ? -1 : hashA > hashB ? 1 : 0;

/**
 * The facts as known, by `factKey`, locked until commit on PostgreSQL (sources are appended
 * under the lock), in key order.
 */
export async function lockFacts(
  trx: Executor,
  facts: ReadonlyArray<{ rule: string; keyHash: string }>,
  postgres: boolean,
): Promise<Map<string, DedupKeyRow>> {
  const byRule = new Map<string, string[]>();
  for (const { rule, keyHash } of facts) {
    const hashes = byRule.get(rule) ?? [];
    hashes.push(keyHash);
    byRule.set(rule, hashes);
  }
  const found = new Map<string, DedupKeyRow>();
  for (const rule of [...byRule.keys()].sort()) {
    const hashes = [...new Set(byRule.get(rule))].sort();
    for (const chunk of chunks(hashes)) {
      const { rows } = await withInList<DedupKeyRow>(
        trx,
        'select * from dedup_keys where rule = ? and key_hash in',
        chunk,
        postgres ? 'order by key_hash for update' : '',
        [rule],
      );
      for (const row of rows) found.set(factKey(row.rule, row.key_hash), row);
    }
  }
  return found;
}

/**
 * Adds `repeats` to each fact's duplicate count and replaces its sources. An upsert of the
 * locked rows (every column from the row as read): one statement for the batch, where an
 * UPDATE per fact would be a round trip each.
 */
export async function recordDuplicates(
  trx: Executor,
  facts: ReadonlyArray<{ row: DedupKeyRow; repeats: number; sources: readonly string[] }>,
): Promise<void> {
  const sorted = [...facts].sort((a, b) =>
    compareKeys(a.row.rule, a.row.key_hash, b.row.rule, b.row.key_hash),
  );
  for (const chunk of chunks(sorted)) {
    await insertRows(
      trx,
      FACT_INSERT,
      8,
      chunk.map(({ row, repeats, sources }) => factValues(row, repeats, sources)),
      `on conflict (rule, key_hash) do update set
      duplicates = dedup_keys.duplicates + excluded.duplicates, sources = excluded.sources`,
    );
  }
}

export async function insertLogs(trx: Executor, rows: readonly DedupLogRow[]): Promise<void> {
  for (const chunk of chunks(rows)) {
    await insertRows(
      trx,
      'insert into dedup_log (id, at, rule, action, event_id, event_type, source, first_event_id, key_values)',
      9,
      chunk.map((row) => [
        row.id,
        row.at,
        row.rule,
        row.action,
        row.event_id,
        row.event_type,
        row.source,
        row.first_event_id,
        row.key_values,
      ]),
    );
  }
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

export async function insertReviews(trx: Executor, rows: readonly DedupReviewRow[]): Promise<void> {
  for (const chunk of chunks(rows)) {
    await insertRows(
      trx,
      'insert into dedup_review (id, at, rule, event_id, first_event_id, envelope, status, decided_at, decided_by, note)',
      10,
      chunk.map((row) => [
        row.id,
        row.at,
        row.rule,
        row.event_id,
        row.first_event_id,
        row.envelope,
        row.status,
        row.decided_at,
        row.decided_by,
        row.note,
      ]),
    );
  }
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
