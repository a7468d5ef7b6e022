import type { Kysely, Transaction } from 'kysely';
import type { PlatformTables } from './tables.js';

export type Dialect = 'sqlite' | 'postgres';

/** A transaction (or the root connection) that store functions run their SQL on. */
export type Executor = Kysely<PlatformTables>;
export type Tx = Transaction<PlatformTables>;

/** Held while this process is the single active instance of something (relay, consumer). */
export interface Leadership {
  /** Resolves when leadership is lost (connection died); never rejects. */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

/**
 * The storage port. Adapters: SQLite (embedded default) and PostgreSQL. Both pass the same
 * contract suite in test/storage.contract.test.ts.
 */
export interface Storage {
  readonly dialect: Dialect;
  /** Where the data lives, for people: a file path or a URL without its password. */
  readonly location: string;
  readonly db: Executor;
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T>;
  /** Throws when the database cannot be reached. */
  ping(): Promise<void>;
  /** Try to become the one active holder of `name` across all processes sharing the database. */
  tryLeadership(name: string): Promise<Leadership | null>;
  /**
   * Called when any process committed outbox rows (PostgreSQL: LISTEN on the channel a trigger
   * on the outbox notifies; SQLite: never, the in-process Transactor wakes the relay itself).
   */
  onOutboxSignal(listener: () => void): () => void;
  close(): Promise<void>;
}
