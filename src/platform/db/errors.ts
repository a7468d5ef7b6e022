/** Driver-neutral checks on constraint errors (SQLite: better-sqlite3 codes; PostgreSQL: SQLSTATE). */
function codeOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null && 'code' in error
    ? String(error.code)
    : undefined;
}

export const isForeignKeyViolation = (error: unknown): boolean =>
  codeOf(error) === 'SQLITE_CONSTRAINT_FOREIGNKEY' || codeOf(error) === '23503';

export const isUniqueViolation = (error: unknown): boolean =>
  ['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY', '23505'].includes(
    codeOf(error) ?? '',
  );

/**
 * PostgreSQL gave up on a transaction that a retry may well complete: a deadlock between
 * transactions that lock rows in different orders, or a serialization failure.
 */
export const isRetryableConflict = (error: unknown): boolean =>
  ['40P01', '40001'].includes(codeOf(error) ?? '');
