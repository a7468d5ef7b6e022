import { sql, type Generated } from 'kysely';
import { insertRows, withInList } from '../../platform/db/bulk.js';
import type { Dialect, Executor } from '../../platform/db/storage.js';

/**
 * All SQL of the tokenization module. Tables are created by migration 0009_tokenization.
 *
 * Erasure and tokenization in a customer's context serialise on one PostgreSQL advisory lock
 * (tokenization takes it shared, erasure exclusive), so a tokenization that committed after an
 * erasure's check could not leave the erased customer's data behind. SQLite runs one write
 * transaction at a time anyway.
 */

export type TokenKindName = 'vault' | 'convergent' | 'fpe';

// Type aliases, not interfaces: kysely's withTables wants indexable record types.
export type KeyRow = {
  version: number;
  is_current: number;
  key_check: string;
  created_at: number;
};

export type VaultRow = {
  token: string;
  kind: TokenKindName;
  field_class: string;
  /** Vault and convergent rows: the key version of the ciphertext; FF1 rows: the token's. */
  key_version: number;
  ciphertext: Uint8Array | null;
  /** The customer a vault token belongs to; null for shared (convergent, FF1) rows. */
  subject: string | null;
  created_at: number;
  /** Shared rows: the erasure epoch whose key made the token (D26); 0 for vault rows. */
  epoch: number;
};

export type SubjectLinkRow = { subject: string; token: string; created_at: number };
export type TombstoneRow = { token: string; subject: string; erased_at: number };
export type ErasureRow = { seq: number; subject: string; erased_at: number; token_count: number };

export type AuditAction = 'tokenize' | 'detokenize' | 'erase' | 'rotate' | 'reencrypt';
export type AuditRow = {
  seq: number;
  at: number;
  actor: string;
  action: AuditAction;
  token: string | null;
  subject: string | null;
  field_class: string | null;
  reason: string | null;
  /** ok, refused (the caller may not, or the token does not resolve) or failed (our fault). */
  outcome: 'ok' | 'refused' | 'failed';
  code: string | null;
  count: number | null;
  request_id: string | null;
};
export type NewAuditRow = Omit<AuditRow, 'seq'>;

type TokenTables = {
  token_keys: KeyRow;
  token_vault: VaultRow;
  token_subjects: SubjectLinkRow;
  token_tombstones: TombstoneRow;
  token_erasures: Omit<ErasureRow, 'seq'> & { seq: Generated<number> };
  token_audit: Omit<AuditRow, 'seq'> & { seq: Generated<number> };
};

const tables = (db: Executor) => db.withTables<TokenTables>();

/** The advisory lock that orders erasures against tokenizations (PostgreSQL). */
const ERASURE_LOCK = 1_316_254_783_001;
/** Rows per multi-row INSERT: at most 7 parameters each, far below either database's limit. */
const CHUNK = 500;

function* chunks<T>(items: readonly T[], size = CHUNK): Generator<readonly T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

const toBuffer = (value: unknown): Buffer | null =>
  value === null || value === undefined
    ? null
    : Buffer.isBuffer(value)
      ? value
      : Buffer.from(value as Uint8Array);

// --- key versions ------------------------------------------------------------------------

export async function listKeyVersions(db: Executor): Promise<KeyRow[]> {
  const rows = await tables(db).selectFrom('token_keys').selectAll().orderBy('version').execute();
  return rows.map((row) => ({
    ...row,
    version: Number(row.version),
    is_current: Number(row.is_current),
    created_at: Number(row.created_at),
  }));
}

/** Version 1, current, on the first start; nothing when another process got there first. */
export async function insertFirstKeyVersion(
  db: Executor,
  keyCheck: string,
  now: number,
): Promise<void> {
  await tables(db)
    .insertInto('token_keys')
    .values({ version: 1, is_current: 1, key_check: keyCheck, created_at: now })
    .onConflict((oc) => oc.column('version').doNothing())
    .execute();
}

/** Adds the next version and makes it current (in the caller's transaction). */
export async function addKeyVersion(db: Executor, keyCheck: string, now: number): Promise<number> {
  const top = await tables(db)
    .selectFrom('token_keys')
    .select((eb) => eb.fn.max('version').as('version'))
    .executeTakeFirst();
  const version = Number(top?.version ?? 0) + 1;
  await tables(db).updateTable('token_keys').set({ is_current: 0 }).execute();
  await tables(db)
    .insertInto('token_keys')
    .values({ version, is_current: 1, key_check: keyCheck, created_at: now })
    .execute();
  return version;
}

// --- erasure state -----------------------------------------------------------------------

/**
 * The erasure generation (highest erasure seq: it changes with every erasure, in any process)
 * and which of `subjects` are erased. On PostgreSQL it also takes the erasure lock shared for
 * the rest of the transaction.
 */
export async function erasureState(
  db: Executor,
  dialect: Dialect,
  subjects: readonly string[],
): Promise<{ generation: number; erased: Set<string> }> {
  const lock = dialect === 'postgres' ? sql`pg_advisory_xact_lock_shared(${ERASURE_LOCK})` : sql`1`;
  const match =
    subjects.length === 0
      ? sql`false`
      : sql`e.subject in (${sql.join(subjects.map((subject) => sql`${subject}`))})`;
  const { rows } = await sql<{ generation: number | string; subject: string | null }>`
    select (select coalesce(max(seq), 0) from token_erasures) as generation, e.subject as subject
    from (select ${lock} as locked) l left join token_erasures e on ${match}`.execute(db);
  const erased = new Set<string>();
  for (const row of rows) if (row.subject !== null) erased.add(row.subject);
  return { generation: Number(rows[0]?.generation ?? 0), erased };
}

/** Takes the erasure lock exclusively for the rest of the transaction (PostgreSQL). */
export async function lockForErasure(db: Executor, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${ERASURE_LOCK})`.execute(db);
}

// --- writing tokens ----------------------------------------------------------------------

const vaultValues = (row: VaultRow) => [
  row.token,
  row.kind,
  row.field_class,
  row.key_version,
  row.ciphertext,
  row.subject,
  row.created_at,
  row.epoch,
];
const VAULT_INSERT =
  'insert into token_vault (token, kind, field_class, key_version, ciphertext, subject, created_at, epoch)';

/** New random vault tokens: never seen before, so a plain insert. */
export async function insertVaultRows(db: Executor, rows: readonly VaultRow[]): Promise<void> {
  for (const chunk of chunks(rows)) {
    await insertRows(db, VAULT_INSERT, 8, chunk.map(vaultValues));
  }
}

/**
 * Convergent and FF1 rows: the same token may be issued again (by any process), so existing
 * rows are kept. Returns the tokens this call inserted.
 */
export async function insertSharedRows(db: Executor, rows: readonly VaultRow[]): Promise<string[]> {
  const inserted: string[] = [];
  for (const chunk of chunks(rows)) {
    const result = await insertRows<{ token: string }>(
      db,
      VAULT_INSERT,
      8,
      chunk.map(vaultValues),
      'on conflict (token) do nothing returning token',
    );
    for (const row of result.rows) inserted.push(row.token);
  }
  return inserted;
}

/** Links shared tokens to the customers they were issued for (links that exist are kept). */
export async function insertSubjectLinks(
  db: Executor,
  links: readonly SubjectLinkRow[],
): Promise<void> {
  for (const chunk of chunks(links)) {
    await insertRows(
      db,
      'insert into token_subjects (subject, token, created_at)',
      3,
      chunk.map((link) => [link.subject, link.token, link.created_at]),
      'on conflict (subject, token) do nothing',
    );
  }
}

/** A retired shared token: erased (for every value), or held by this erasure epoch's value. */
export const ERASED = -1;

/**
 * Which of these shared tokens may not be issued (D26), each with why: ERASED for tombstoned
 * ones (an erasure made them unresolvable, for good), else the epoch of the row that holds an
 * FF1 token for another epoch (FF1 under two epochs' keys can map two values to the same
 * digits; the row says whose they are).
 */
export async function findRetired(
  db: Executor,
  candidates: ReadonlyArray<{ token: string; kind: TokenKindName; epoch: number }>,
): Promise<Map<string, number>> {
  const retired = new Map<string, number>();
  const erased = await findTombstones(
    db,
    candidates.map((c) => c.token),
  );
  for (const token of erased) retired.set(token, ERASED);
  const fpe = new Map(candidates.filter((c) => c.kind === 'fpe').map((c) => [c.token, c.epoch]));
  for (const chunk of chunks([...fpe.keys()])) {
    const { rows } = await withInList<{ token: string; epoch: number | string }>(
      db,
      'select token, epoch from token_vault where token in',
      chunk,
    );
    for (const row of rows) {
      const epoch = Number(row.epoch);
      if (epoch !== fpe.get(row.token) && !retired.has(row.token)) retired.set(row.token, epoch);
    }
  }
  return retired;
}

// --- reading tokens ----------------------------------------------------------------------

export async function findVaultRows(db: Executor, tokens: readonly string[]): Promise<VaultRow[]> {
  const found: VaultRow[] = [];
  for (const chunk of chunks(tokens)) {
    const { rows } = await withInList<VaultRow>(
      db,
      'select token, kind, field_class, key_version, ciphertext, subject, created_at, epoch from token_vault where token in',
      chunk,
    );
    for (const row of rows) {
      found.push({
        ...row,
        epoch: Number(row.epoch),
        key_version: Number(row.key_version),
        created_at: Number(row.created_at),
        ciphertext: toBuffer(row.ciphertext),
      });
    }
  }
  return found;
}

export async function findTombstones(
  db: Executor,
  tokens: readonly string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  for (const chunk of chunks(tokens)) {
    const { rows } = await withInList<{ token: string }>(
      db,
      'select token from token_tombstones where token in',
      chunk,
    );
    for (const row of rows) found.add(row.token);
  }
  return found;
}

// --- erasure -----------------------------------------------------------------------------

export async function findErasure(db: Executor, subject: string): Promise<ErasureRow | undefined> {
  const row = await tables(db)
    .selectFrom('token_erasures')
    .selectAll()
    .where('subject', '=', subject)
    .executeTakeFirst();
  return row && { ...row, seq: Number(row.seq), erased_at: Number(row.erased_at) };
}

/**
 * Crypto-shreds a customer inside the caller's transaction (after `lockForErasure`): deletes
 * their vault rows and the shared rows linked to them, tombstones every one of those tokens and
 * records the erasure. Returns how many tokens were made unresolvable.
 */
export async function eraseSubject(db: Executor, subject: string, now: number): Promise<number> {
  const own = await tables(db)
    .deleteFrom('token_vault')
    .where('subject', '=', subject)
    .returning('token')
    .execute();
  const linked = await tables(db)
    .deleteFrom('token_subjects')
    .where('subject', '=', subject)
    .returning('token')
    .execute();
  const shared = linked.map((row) => row.token);
  for (const chunk of chunks(shared)) {
    await withInList(db, 'delete from token_vault where subject is null and token in', chunk);
  }
  const tokens = [...new Set([...own.map((row) => row.token), ...shared])];
  for (const chunk of chunks(tokens)) {
    await insertRows(
      db,
      'insert into token_tombstones (token, subject, erased_at)',
      3,
      chunk.map((token) => [token, subject, now]),
      'on conflict (token) do nothing',
    );
  }
  await tables(db)
    .insertInto('token_erasures')
    .values({ subject, erased_at: now, token_count: tokens.length })
    .execute();
  return tokens.length;
}

// --- re-encryption -----------------------------------------------------------------------

/** Rows with a ciphertext under another key version than `current`, in token order. */
export async function rowsToReencrypt(
  db: Executor,
  current: number,
  after: string | null,
  limit: number,
): Promise<VaultRow[]> {
  let query = tables(db)
    .selectFrom('token_vault')
    .selectAll()
    .where('key_version', '<>', current)
    .where('ciphertext', 'is not', null)
    .orderBy('token')
    .limit(limit);
  if (after !== null) query = query.where('token', '>', after);
  const rows = await query.execute();
  return rows.map((row) => ({
    ...row,
    epoch: Number(row.epoch),
    key_version: Number(row.key_version),
    created_at: Number(row.created_at),
    ciphertext: toBuffer(row.ciphertext),
  }));
}

/** Replaces a ciphertext if the row is still under `from` (else another job moved it). */
export async function replaceCiphertext(
  db: Executor,
  token: string,
  from: number,
  to: number,
  ciphertext: Uint8Array,
): Promise<boolean> {
  const result = await tables(db)
    .updateTable('token_vault')
    .set({ ciphertext, key_version: to })
    .where('token', '=', token)
    .where('key_version', '=', from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** Rows holding a ciphertext, per key version. */
export async function ciphertextsPerVersion(db: Executor): Promise<Map<number, number>> {
  const rows = await tables(db)
    .selectFrom('token_vault')
    .select(['key_version', (eb) => eb.fn.countAll<number | string>().as('n')])
    .where('ciphertext', 'is not', null)
    .groupBy('key_version')
    .execute();
  return new Map(rows.map((row) => [Number(row.key_version), Number(row.n)]));
}

// --- audit -------------------------------------------------------------------------------

const AUDIT_INSERT =
  'insert into token_audit (at, actor, action, token, subject, field_class, reason, outcome, code, count, request_id)';

/** Appends audit rows; there is no update or delete (the database refuses both). */
export async function appendAudit(db: Executor, rows: readonly NewAuditRow[]): Promise<void> {
  for (const chunk of chunks(rows, 250)) {
    await insertRows(
      db,
      AUDIT_INSERT,
      11,
      chunk.map((r) => [
        r.at,
        r.actor,
        r.action,
        r.token,
        r.subject,
        r.field_class,
        r.reason,
        r.outcome,
        r.code,
        r.count,
        r.request_id,
      ]),
    );
  }
}

export interface AuditQuery {
  action?: AuditAction | undefined;
  actor?: string | undefined;
  token?: string | undefined;
  subject?: string | undefined;
  since?: number | undefined;
  until?: number | undefined;
  /** Rows older than this seq (the previous page's cursor). */
  before?: number | undefined;
  limit: number;
}

/** Newest first. */
export async function listAudit(db: Executor, query: AuditQuery): Promise<AuditRow[]> {
  let select = tables(db)
    .selectFrom('token_audit')
    .selectAll()
    .orderBy('seq', 'desc')
    .limit(query.limit + 1);
  if (query.action) select = select.where('action', '=', query.action);
  if (query.actor) select = select.where('actor', '=', query.actor);
  if (query.token) select = select.where('token', '=', query.token);
  if (query.subject) select = select.where('subject', '=', query.subject);
  if (query.since !== undefined) select = select.where('at', '>=', query.since);
  if (query.until !== undefined) select = select.where('at', '<', query.until);
  if (query.before !== undefined) select = select.where('seq', '<', query.before);
  const rows = await select.execute();
  return rows.map((row) => ({
    ...row,
    seq: Number(row.seq),
    at: Number(row.at),
    count: row.count === null ? null : Number(row.count),
  }));
}
