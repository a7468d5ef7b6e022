import type { Kysely, Transaction } from 'kysely';
import type { PlatformTables } from './tables.js';

export type Dialect = 'sqlite' | 'postgres';

/** What one hub process may tell the others through the database (Storage.signal). */
export type SignalName = 'erasure';

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
  /**
   * Tells every other process on the database, when `executor`'s transaction commits (never
   * if it rolls back), that something named happened: PostgreSQL NOTIFY. SQLite: nothing (a
   * process learns what another one did on the file only by reading it).
   */
  signal(executor: Executor, name: SignalName): Promise<void>;
  /**
   * Called when a process signalled `name` (this one too), and after a lost connection to the
   * database came back, since a signal may have been missed meanwhile. SQLite: never.
   */
  onSignal(name: SignalName, listener: () => void): () => void;
  close(): Promise<void>;
}
