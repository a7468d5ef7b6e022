import { sql, type RawBuilder } from 'kysely';
import type { Executor } from './storage.js';

/**
 * Reference data (markets, locations, products) is stored the same way in every module: the
 * canonical JSON document, a version that increases with each change, timestamps, and a few
 * plain columns that lists filter on. These helpers hold that one pattern; each module's
 * store names its table and columns.
 */
export interface DocumentRow {
  id: string;
  doc: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface DocumentWrite {
  id: string;
  /** Canonical JSON (see canonicalJson): equal documents give equal text. */
  doc: string;
  /** Filter columns, same names in every row of one call. */
  columns: Record<string, string | number | null>;
}

export interface WriteResult {
  id: string;
  version: number;
  created_at: number;
  updated_at: number;
}

/**
 * JSON with object keys sorted, so an unchanged document re-sent in any key order is equal.
 * Written out directly rather than through a JSON.stringify replacer: bulk feeds serialise
 * every document, and building sorted copies of each object first costs several times more.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out +=
        (i > 0 ? ',' : '') +
        (item === undefined || typeof item === 'function' ? 'null' : canonicalJson(item));
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  if (typeof (record as { toJSON?: unknown }).toJSON === 'function')
    return canonicalJson(JSON.parse(JSON.stringify(record)));
  let out = '{';
  let first = true;
  for (const key of Object.keys(record).sort()) {
    const item = record[key];
    if (item === undefined || typeof item === 'function') continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(item)}`;
    first = false;
  }
  return `${out}}`;
}

/** Bound parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535. */
const MAX_PARAMS = 30_000;

/**
 * Inserts new documents and updates changed ones in one statement per chunk. A document whose
 * canonical text is unchanged is not touched and not returned: re-sending a full catalog feed
 * produces no new versions and no events for what did not change.
 */
export async function upsertDocuments(
  db: Executor,
  table: string,
  rows: readonly DocumentWrite[],
  now: number,
): Promise<WriteResult[]> {
  if (rows.length === 0) return [];
  const extra = Object.keys(rows[0]!.columns);
  const perRow = 5 + extra.length;
  const chunk = Math.max(1, Math.floor(MAX_PARAMS / perRow));
  const results: WriteResult[] = [];
  const t = sql.table(table);
  const columnList = sql.join(
    ['id', 'doc', 'version', 'created_at', 'updated_at', ...extra].map((c) => sql.ref(c)),
  );
  const updates = sql.join(
    ['doc', 'updated_at', ...extra].map((c) => sql`${sql.ref(c)} = excluded.${sql.ref(c)}`),
  );
  for (let i = 0; i < rows.length; i += chunk) {
    const values = sql.join(
      rows
        .slice(i, i + chunk)
        .map(
          (r) =>
            sql`(${sql.join([r.id, r.doc, 1, now, now, ...extra.map((c) => r.columns[c] ?? null)])})`,
        ),
    );
    const result = await sql<WriteResult>`
      insert into ${t} (${columnList}) values ${values}
      on conflict (id) do update set ${updates}, version = ${t}.version + 1
      where ${t}.doc <> excluded.doc
      returning id, version, created_at, updated_at`.execute(db);
    results.push(...result.rows);
  }
  return results;
}

export async function getDocuments(
  db: Executor,
  table: string,
  ids: readonly string[],
): Promise<DocumentRow[]> {
  const rows: DocumentRow[] = [];
  for (let i = 0; i < ids.length; i += MAX_PARAMS) {
    const slice = ids.slice(i, i + MAX_PARAMS);
    const result = await sql<DocumentRow>`
      select id, doc, version, created_at, updated_at from ${sql.table(table)}
      where id in (${sql.join(slice)})`.execute(db);
    rows.push(...result.rows);
  }
  return rows;
}

export async function deleteDocument(
  db: Executor,
  table: string,
  id: string,
): Promise<number | null> {
  const result = await sql<{ version: number }>`
    delete from ${sql.table(table)} where id = ${id} returning version`.execute(db);
  return result.rows[0]?.version ?? null;
}

export interface ListQuery {
  where: RawBuilder<unknown>[];
  /** Return rows with id greater than this (keyset pagination). */
  after?: string;
  limit: number;
}

/** One page in id order, plus whether more rows follow. */
export async function listDocuments(
  db: Executor,
  table: string,
  query: ListQuery,
): Promise<{ rows: DocumentRow[]; more: boolean }> {
  const conditions = [...query.where];
  if (query.after !== undefined) conditions.push(sql`id > ${query.after}`);
  const where = conditions.length > 0 ? sql`where ${sql.join(conditions, sql` and `)}` : sql``;
  const result = await sql<DocumentRow>`
    select id, doc, version, created_at, updated_at from ${sql.table(table)}
    ${where} order by id limit ${query.limit + 1}`.execute(db);
  const more = result.rows.length > query.limit;
  return { rows: more ? result.rows.slice(0, query.limit) : result.rows, more };
}

/** Inserts one document unless its id exists; null when it does. */
export async function insertDocument(
  db: Executor,
  table: string,
  row: DocumentWrite,
  now: number,
): Promise<WriteResult | null> {
  const extra = Object.keys(row.columns);
  const columnList = sql.join(
    ['id', 'doc', 'version', 'created_at', 'updated_at', ...extra].map((c) => sql.ref(c)),
  );
  const values = sql.join([
    row.id,
    row.doc,
    1,
    now,
    now,
    ...extra.map((c) => row.columns[c] ?? null),
  ]);
  const result = await sql<WriteResult>`
    insert into ${sql.table(table)} (${columnList}) values (${values})
    on conflict (id) do nothing
    returning id, version, created_at, updated_at`.execute(db);
  return result.rows[0] ?? null;
}
