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
  const key = `${style}\u0000${head}\u0000${columns}\u0000${rows.length}\u0000${tail}`;
  let text = texts.get(key);
  if (text === undefined) {
    const tuples: string[] = [];
    let n = 0;
    for (let r = 0; r < rows.length; r++) {
      const marks: string[] = [];
      for (let c = 0; c < columns; c++) marks.push(style === 'numbered' ? `$${++n}` : '?');
      tuples.push(`(${marks.join(', ')})`);
    }
    text = `${head} values ${tuples.join(', ')}${tail ? ` ${tail}` : ''}`;
    if (texts.size > 2000) texts.clear();
    texts.set(key, text);
  }
  const parameters: unknown[] = [];
  for (const row of rows) {
    if (row.length !== columns)
      throw new Error(`insertRows: a row has ${row.length} values, not ${columns}`);
    for (const value of row) parameters.push(value);
  }
  return db.executeQuery<R>(CompiledQuery.raw(text, parameters));
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
  let text = texts.get(key);
  if (text === undefined) {
    let n = leading.length;
    const marks = values.map(() => (style === 'numbered' ? `$${++n}` : '?'));
    let h = head;
    if (style === 'numbered') {
      let i = 0;
      h = head.replace(/\?/g, () => `$${++i}`);
    }
    text = `${h} (${marks.join(', ')})${tail ? ` ${tail}` : ''}`;
    if (texts.size > 2000) texts.clear();
    texts.set(key, text);
  }
  return db.executeQuery<R>(CompiledQuery.raw(text, [...leading, ...values]));
}
