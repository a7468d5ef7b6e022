import { CompiledQuery, sql, type QueryResult } from 'kysely';
import type { Executor } from './storage.js';

/**
 * Multi-row statements without the query builder. The per-event paths (outbox, reservations,
 * the relay) write dozens of rows per statement; building those as kysely fragments and
 * compiling them costs more CPU than SQLite takes to run them. Here the SQL text is made once
 * per dialect, statement and row count and reused (so SQLite's statement cache hits too),
 * and the parameters go straight to the driver.
 */
const texts = new Map<string, string>();
const dialects = new WeakMap<Executor, 'numbered' | 'question'>();

function placeholderStyle(db: Executor): 'numbered' | 'question' {
  let style = dialects.get(db);
  if (!style) {
    style = sql`select ${1}`.compile(db).sql.includes('$1') ? 'numbered' : 'question';
    dialects.set(db, style);
  }
  return style;
}

/** `(?, ?), (?, ?)` or `($1, $2), ($3, $4)`: `rows` tuples of `columns` marks. */
function tuples(style: 'numbered' | 'question', columns: number, rows: number): string {
  const out: string[] = [];
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const marks: string[] = [];
    for (let c = 0; c < columns; c++) marks.push(style === 'numbered' ? `$${++n}` : '?');
    out.push(`(${marks.join(', ')})`);
  }
  return out.join(', ');
}

function cachedText(key: string, make: () => string): string {
  let text = texts.get(key);
  if (text === undefined) {
    text = make();
    if (texts.size > 2000) texts.clear();
    texts.set(key, text);
  }
  return text;
}

function flatten(columns: number, rows: readonly (readonly unknown[])[], into: unknown[]): void {
  for (const row of rows) {
    if (row.length !== columns)
      throw new Error(`insertRows: a row has ${row.length} values, not ${columns}`);
    for (const value of row) into.push(value);
  }
}

/**
 * Runs `<head> values (...), (...) <tail>` with one tuple of `columns` parameters per row.
 * `head` and `tail` are trusted SQL text (never user input).
 */
export function insertRows<R = unknown>(
  db: Executor,
  head: string,
  columns: number,
  rows: readonly (readonly unknown[])[],
  tail = '',
): Promise<QueryResult<R>> {
  const style = placeholderStyle(db);
  const text = cachedText(
    `${style}\u0000${head}\u0000${columns}\u0000${rows.length}\u0000${tail}`,
    () => `${head} values ${tuples(style, columns, rows.length)}${tail ? ` ${tail}` : ''}`,
  );
  const parameters: unknown[] = [];
  flatten(columns, rows, parameters);
  return db.executeQuery<R>(CompiledQuery.raw(text, parameters));
}

interface PendingInsert {
  head: string;
  columns: number;
  rows: readonly (readonly unknown[])[];
  tail: string;
  everyRow: boolean;
}

export interface InsertOptions {
  /**
   * Every row must be written (an upsert whose `do update ... where` guard fails writes
   * nothing for that row): if one is not, the whole batch fails and nothing of it stays, with
   * a serialization failure (SQLSTATE 40001) on PostgreSQL. This is how a write made without
   * holding a lock checks that the rows are still what it read (D31).
   */
  everyRow?: boolean;
}

/** A guarded batch found rows changed since they were read (SQLite; PostgreSQL raises 40001). */
export class RowsChangedError extends Error {
  override readonly name = 'RowsChangedError';
  readonly code = '40001';

  constructor(head: string, written: number, expected: number) {
    super(`a row changed since it was read: ${written} of ${expected} rows matched (${head})`);
  }
}

/**
 * Multi-row inserts gathered during a transaction and written together at its end. On
 * PostgreSQL they go as one statement (data-modifying CTEs), one round trip instead of one
 * each, which is time a hot row stays locked (D29); SQLite runs them one after the other.
 * Heads are `insert into <table> (<columns>)`, trusted SQL text.
 * The inserts must not depend on each other: one statement sees one snapshot.
 */
export class InsertBatch {
  private parts: PendingInsert[] = [];

  add(
    head: string,
    columns: number,
    rows: readonly (readonly unknown[])[],
    tail = '',
    options: InsertOptions = {},
  ): void {
    if (rows.length > 0)
      this.parts.push({ head, columns, rows, tail, everyRow: options.everyRow === true });
  }

  async run(db: Executor): Promise<void> {
    const parts = this.parts;
    this.parts = [];
    if (parts.length === 0) return;
    if (placeholderStyle(db) === 'question') {
      for (const p of parts) {
        const result = await insertRows(db, p.head, p.columns, p.rows, p.tail);
        const written = Number(result.numAffectedRows ?? 0n);
        if (p.everyRow && written !== p.rows.length)
          throw new RowsChangedError(p.head, written, p.rows.length);
      }
      return;
    }
    // PostgreSQL: each insert's rows travel as one JSON parameter, typed by the table's own
    // row type (json_populate_recordset), so the statement text stays a few hundred bytes
    // whatever the row count: parsing and planning a VALUES list of hundreds of parameters
    // cost more than inserting the rows. Guarded parts return a row per row written, and the
    // statement ends by checking their counts (nexus_expect_rows raises on a shortfall, which
    // undoes every part).
    const guarded = parts.flatMap((p, i) => (p.everyRow ? [i] : []));
    const key =
      parts.map((p) => `${p.head}\u0000${p.tail}\u0000${p.everyRow}`).join('\u0001') +
      (guarded.length > 0 ? '\u0001guarded' : '');
    const text = cachedText(key, () => {
      const statements = parts.map((p, i) => {
        const { table, columns } = targetOf(p.head);
        const list = columns.join(', ');
        return `insert into ${table} (${list}) select ${list} from json_populate_recordset(null::${table}, $${i + 1})${p.tail ? ` ${p.tail}` : ''}${p.everyRow ? ' returning 1' : ''}`;
      });
      if (guarded.length > 0) {
        const checks = guarded.map(
          (i, n) =>
            `nexus_expect_rows((select count(*) from w${i}), $${parts.length + n + 1}::bigint)`,
        );
        return `with ${statements.map((st, i) => `w${i} as (${st})`).join(', ')} select ${checks.join(', ')}`;
      }
      const last = statements.pop()!;
      return statements.length === 0
        ? last
        : `with ${statements.map((st, i) => `w${i} as (${st})`).join(', ')} ${last}`;
    });
    const parameters: unknown[] = parts.map((p) => {
      const { columns } = targetOf(p.head);
      if (columns.length !== p.columns)
        throw new Error(`InsertBatch: ${p.head} names ${columns.length} columns, not ${p.columns}`);
      return JSON.stringify(
        p.rows.map((row) => {
          if (row.length !== p.columns)
            throw new Error(`insertRows: a row has ${row.length} values, not ${p.columns}`);
          const record: Record<string, unknown> = {};
          for (let c = 0; c < columns.length; c++) record[columns[c]!] = row[c];
          return record;
        }),
      );
    });
    for (const i of guarded) parameters.push(parts[i]!.rows.length);
    await db.executeQuery(CompiledQuery.raw(text, parameters));
  }
}

const targets = new Map<string, { table: string; columns: string[] }>();

/** The table and column names of `insert into <table> (<a>, <b>, ...)`. */
function targetOf(head: string): { table: string; columns: string[] } {
  let target = targets.get(head);
  if (!target) {
    const match = /^\s*insert\s+into\s+(\w+)\s*\(([^)]*)\)\s*$/i.exec(head);
    if (!match) throw new Error(`InsertBatch: cannot read the target of '${head}'`);
    target = { table: match[1]!, columns: match[2]!.split(',').map((c) => c.trim()) };
    targets.set(head, target);
  }
  return target;
}

/** `<head> (?, ?, ...) <tail>` for an IN list of `values`, text reused per count. */
export function withInList<R = unknown>(
  db: Executor,
  head: string,
  values: readonly unknown[],
  tail = '',
  leading: readonly unknown[] = [],
): Promise<QueryResult<R>> {
  const style = placeholderStyle(db);
  const key = `in\u0000${style}\u0000${head}\u0000${leading.length}\u0000${values.length}\u0000${tail}`;
  const text = cachedText(key, () => {
    let n = leading.length;
    const marks = values.map(() => (style === 'numbered' ? `$${++n}` : '?'));
    let h = head;
    if (style === 'numbered') {
      let i = 0;
      h = head.replace(/\?/g, () => `$${++i}`);
    }
    return `${h} (${marks.join(', ')})${tail ? ` ${tail}` : ''}`;
  });
  return db.executeQuery<R>(CompiledQuery.raw(text, [...leading, ...values]));
}
