import { NexusError } from '../../model/errors.js';
import type { PersonalValue } from './values.js';
import type { Executor, Storage } from '../../platform/db/storage.js';
import { attemptInHalves } from '../../platform/halving.js';
import {
  erasureState,
  insertSharedRows,
  insertSubjectLinks,
  insertVaultRows,
  findRetired,
  type TokenKindName,
  type VaultRow,
} from './store.js';

/** A token issued in memory whose row is still to be written. */
export interface PendingToken {
  token: string;
  kind: TokenKindName;
  fieldClass: string;
  /**
   * The value, encoded and encrypted only when a row is written (a convergent token seen before
   * costs no encryption); null for FF1 tokens, whose value the token itself holds.
   */
  value: PersonalValue | null;
  /** FF1: the token's key version. Vault and convergent rows take the ciphertext's. */
  keyVersion: number;
  /** Convergent and FF1: the erasure epoch whose key made the token (D26); 0 for vault. */
  epoch: number;
}

/**
 * A request held a shared token that may not be issued (erased, or an FF1 token another epoch
 * holds). The writer told `onRetired` first; issuing again picks the next epoch's token.
 */
export class RetiredTokensError extends Error {
  constructor(readonly tokens: ReadonlyMap<string, number>) {
    super(`${tokens.size} shared token(s) may not be issued; issue again`);
    this.name = 'RetiredTokensError';
  }
}

/** Tokens issued for one customer (or none). */
export interface WriteRequest {
  tokens: readonly PendingToken[];
  subject: string | null;
}

interface Request extends WriteRequest {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** What `store` wrote, remembered once its transaction committed. */
interface Stored {
  refused: Set<string>;
  /** Shared tokens found retired (see findRetired); the requests holding one wrote nothing. */
  retired: Map<string, number>;
  skipped: Set<WriteRequest>;
  shared: Map<string, VaultRow>;
  links: Map<string, { subject: string; token: string; created_at: number }>;
  generation: number;
  now: number;
}

/** What `writeIn` did in the caller's transaction. */
export interface StoredInTransaction {
  /** Customers who were erased: nothing of theirs was written; their data must not be used. */
  erased: ReadonlySet<string>;
  /**
   * Shared tokens found retired (reported to `onRetired`). When not empty, requests holding
   * them wrote nothing: the caller rolls back and issues its tokens again.
   */
  retired: ReadonlyMap<string, number>;
  /** To call after the caller's transaction committed (never after a rollback). */
  committed: () => void;
}

export interface VaultWriterOptions {
  storage: Storage;
  /** Encrypts a pending token's value under the current key version. */
  encrypt: (pending: PendingToken) => { ciphertext: Buffer; keyVersion: number };
  now?: () => number;
  /** Most tokens written in one transaction. */
  maxBatch?: number;
  /** Told of shared tokens that may not be issued, before the requests holding them fail. */
  onRetired?: (tokens: ReadonlyMap<string, number>) => void;
  /** A retired token's value under the next `count` erasure epochs, looked up with it. */
  successors?: (pending: PendingToken, count: number) => PendingToken[];
}

/** Erasure epochs looked up beyond a retired one, in the same statement's transaction. */
const LOOKAHEAD = 32;

/**
 * How long a subject-less tokenization of already stored shared tokens may trust this
 * process's memory of them without asking the database whether an erasure happened since.
 */
const FRESH_MS = 1_000;
const MAX_REMEMBERED = 500_000;

/**
 * Writes issued tokens to the vault, group-committed: every tokenization that arrives while a
 * transaction is in flight waits, and the next transaction takes them all (the same pattern as
 * reservations, D19). A caller's promise settles after the commit, so a token is never handed
 * out (or published in an event) before its row exists.
 *
 * Per transaction: the erasure check (is any of the batch's customers erased? on PostgreSQL
 * under the shared erasure lock), the check that no shared token was erased (or, for FF1, is
 * held by another erasure epoch), random vault rows, shared (convergent, FF1) rows kept if they
 * exist, and customer links. Shared tokens
 * already stored are remembered per process until any erasure (the erasure generation moves),
 * so a returning customer's email costs an HMAC and no write.
 */
export class VaultWriter {
  private queue: Request[] = [];
  private scheduled = false;
  private flushing = false;
  /** Shared tokens stored since the last erasure, with the erasure epoch of their row. */
  private readonly known = new Map<string, number>();
  private readonly linked = new Set<string>();
  private generation = -1;
  private checkedAt = -Infinity;
  private readonly now: () => number;
  private readonly maxBatch: number;

  constructor(private readonly options: VaultWriterOptions) {
    this.now = options.now ?? Date.now;
    this.maxBatch = options.maxBatch ?? 4_096;
  }

  /**
   * Whether a subject-less shared token must still be written: false when this process
   * stored it (or saw it stored) since the last erasure, checked within the last second.
   */
  needsWrite(pending: PendingToken, subject: string | null): boolean {
    // The set lookup last: on a large set it is the expensive part (a cache miss or two).
    return (
      subject !== null ||
      pending.kind === 'vault' ||
      this.now() - this.checkedAt >= FRESH_MS ||
      this.known.get(pending.token) !== pending.epoch
    );
  }

  /** Resolves once every token is stored (or known to be); rejects with SUBJECT_ERASED. */
  write(tokens: readonly PendingToken[], subject: string | null): Promise<void> {
    if (tokens.length === 0) return Promise.resolve();
    if (tokens.every((t) => !this.needsWrite(t, subject))) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ tokens, subject, resolve, reject });
      this.schedule();
    });
  }

  /** Forgets what this process knows is stored (after an erasure here). */
  forget(): void {
    this.known.clear();
    this.linked.clear();
    this.checkedAt = -Infinity;
  }

  /** Waits until nothing is queued or in flight. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.flushing || this.scheduled) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    this.flushing = true;
    try {
      const batch: Request[] = [];
      let size = 0;
      while (this.queue.length > 0 && (batch.length === 0 || size < this.maxBatch)) {
        const request = this.queue.shift()!;
        batch.push(request);
        size += request.tokens.length;
      }
      await this.run(batch);
    } finally {
      this.flushing = false;
      if (this.queue.length > 0) this.schedule();
    }
  }

  /**
   * Writes tokens in the caller's transaction instead of a group commit of its own, so they
   * commit (or roll back) with what the caller writes: ingest stores a batch's tokens with its
   * events. The same checks and rows as a group commit; this process's memory of stored tokens
   * is updated only by `committed`.
   */
  async writeIn(trx: Executor, requests: readonly WriteRequest[]): Promise<StoredInTransaction> {
    const needed = requests.filter(
      (r) => r.tokens.length > 0 && r.tokens.some((t) => this.needsWrite(t, r.subject)),
    );
    if (needed.length === 0) {
      return { erased: new Set(), retired: new Map(), committed: () => undefined };
    }
    const stored = await this.store(trx, needed);
    return {
      erased: stored.refused,
      retired: stored.retired,
      committed: () => this.remember(stored),
    };
  }

  /**
   * One transaction for the batch. A failed one runs again in halves (attemptInHalves), so a
   * value that cannot be stored (it cannot be encrypted, the database refuses its row) fails
   * only its own caller.
   */
  private run(batch: readonly Request[]): Promise<void> {
    return attemptInHalves(
      batch,
      (part) => this.options.storage.transaction((trx) => this.store(trx, part)),
      (part, stored) => {
        this.remember(stored);
        for (const request of part) {
          if (stored.skipped.has(request)) {
            request.reject(new RetiredTokensError(stored.retired));
          } else if (request.subject !== null && stored.refused.has(request.subject)) {
            request.reject(
              new NexusError(
                'SUBJECT_ERASED',
                `customer '${request.subject}' was erased; personal data for them is not stored`,
              ),
            );
          } else {
            request.resolve();
          }
        }
      },
      (request, error) => request.reject(error),
    );
  }

  /**
   * The erasure check, the check that no shared token was retired, random vault rows, shared
   * rows kept if present and customer links, in `trx`. Requests of erased customers are skipped
   * (`refused`), and so are requests holding a retired token (`skipped`).
   */
  private async store(trx: Executor, batch: readonly WriteRequest[]): Promise<Stored> {
    const now = this.now();
    const subjects = [
      ...new Set(batch.map((r) => r.subject).filter((s): s is string => s !== null)),
    ];
    const shared = new Map<string, VaultRow>();
    const links = new Map<string, { subject: string; token: string; created_at: number }>();
    const state = await erasureState(trx, this.options.storage.dialect, subjects);
    if (state.generation !== this.generation) {
      this.known.clear();
      this.linked.clear();
      this.generation = state.generation;
    }
    const refused = state.erased;
    // Shared tokens this process has not stored since the last erasure may have been erased
    // since they were issued (in any process): looked up before anything is written.
    const unchecked = new Map<string, PendingToken>();
    // Two values of one batch with the same FF1 digits under different epochs: the first keeps them.
    const twins = new Map<string, number>();
    for (const request of batch) {
      if (request.subject !== null && refused.has(request.subject)) continue;
      for (const pending of request.tokens) {
        if (pending.kind === 'vault' || this.known.get(pending.token) === pending.epoch) continue;
        const first = unchecked.get(pending.token);
        if (first === undefined) unchecked.set(pending.token, pending);
        else if (first.epoch !== pending.epoch) twins.set(pending.token, first.epoch);
      }
    }
    const retired =
      unchecked.size > 0
        ? await findRetired(trx, [...unchecked.values()])
        : new Map<string, number>();
    for (const [token, epoch] of twins) if (!retired.has(token)) retired.set(token, epoch);
    // A value erased many times has many retired epochs: the next ones are looked up now, so a
    // process that never met them learns them in one round instead of one per epoch.
    if (retired.size > 0 && this.options.successors) {
      const ahead: PendingToken[] = [];
      for (const pending of unchecked.values()) {
        const holder = retired.get(pending.token);
        if (holder !== undefined && holder !== pending.epoch) {
          ahead.push(...this.options.successors(pending, LOOKAHEAD));
        }
      }
      if (ahead.length > 0) {
        for (const [token, holder] of await findRetired(trx, ahead)) {
          if (!retired.has(token)) retired.set(token, holder);
        }
      }
    }
    const skipped = new Set<WriteRequest>();
    if (retired.size > 0) {
      this.options.onRetired?.(retired);
      for (const request of batch) {
        const held = (t: PendingToken) => retired.has(t.token) && retired.get(t.token) !== t.epoch;
        if (request.tokens.some(held)) skipped.add(request);
      }
    }
    const vault: VaultRow[] = [];
    for (const request of batch) {
      if (request.subject !== null && refused.has(request.subject)) continue;
      if (skipped.has(request)) continue;
      for (const pending of request.tokens) {
        if (pending.kind === 'vault') {
          const { ciphertext, keyVersion } = this.options.encrypt(pending);
          vault.push(row(pending, ciphertext, keyVersion, request.subject, now));
          continue;
        }
        if (this.known.get(pending.token) !== pending.epoch && !shared.has(pending.token)) {
          const sealed = pending.value === null ? null : this.options.encrypt(pending);
          shared.set(
            pending.token,
            row(
              pending,
              sealed?.ciphertext ?? null,
              sealed?.keyVersion ?? pending.keyVersion,
              null,
              now,
            ),
          );
        }
        if (request.subject !== null) {
          const key = `${request.subject}\u0000${pending.token}`;
          if (!this.linked.has(key)) {
            links.set(key, { subject: request.subject, token: pending.token, created_at: now });
          }
        }
      }
    }
    if (vault.length > 0) await insertVaultRows(trx, vault);
    if (shared.size > 0) await insertSharedRows(trx, [...shared.values()]);
    if (links.size > 0) await insertSubjectLinks(trx, [...links.values()]);
    return { refused, retired, skipped, shared, links, generation: state.generation, now };
  }

  /** After a commit: the shared tokens and links it stored are known to be stored. */
  private remember(stored: Stored): void {
    // A commit that read an older erasure generation than this process has seen since may
    // hold rows an erasure removed meanwhile: nothing of it is remembered.
    if (stored.generation !== this.generation) return;
    const { shared, links } = stored;
    if (this.known.size + shared.size > MAX_REMEMBERED) this.known.clear();
    if (this.linked.size + links.size > MAX_REMEMBERED) this.linked.clear();
    for (const [token, row] of shared) this.known.set(token, row.epoch);
    for (const key of links.keys()) this.linked.add(key);
    this.checkedAt = stored.now;
  }
}

function row(
  pending: PendingToken,
  ciphertext: Buffer | null,
  keyVersion: number,
  subject: string | null,
  now: number,
): VaultRow {
  return {
    token: pending.token,
    kind: pending.kind,
    field_class: pending.fieldClass,
    key_version: keyVersion,
    ciphertext,
    subject,
    created_at: now,
    epoch: pending.epoch,
  };
}
