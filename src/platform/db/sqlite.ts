import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql, type SqliteDatabase } from 'kysely';
import type { Executor, Leadership, Storage, Tx } from './storage.js';
import type { PlatformTables } from './tables.js';

export interface SqliteOptions {
  /** File path, or ':memory:' for a throwaway database. */
  file: string;
  /**
   * NORMAL (default) survives a process crash with nothing lost in WAL mode; FULL also
   * survives power loss at the cost of an fsync per commit.
   */
  synchronous?: 'NORMAL' | 'FULL';
}

/**
 * kysely prepares every statement on every execution; preparing costs more than running a
 * small statement, so keep prepared statements by SQL text (bounded, least recently used out).
 * Safe because kysely runs one statement at a time on this single connection.
 */
function withStatementCache(raw: BetterSqlite3.Database, capacity = 1000): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => raw.close(),
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql);
      } else {
        statement = raw.prepare(sql);
        if (cache.size >= capacity) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, statement);
      return statement;
    },
  };
}

/**
 * better-sqlite3 is synchronous: SQLite's automatic WAL checkpoint, which copies pages back
 * and syncs the database file, would stall the event loop for milliseconds every few hundred
 * commits. A worker thread with its own connection checkpoints instead (PASSIVE: it never
 * blocks writers), so the hub's thread only ever appends to the WAL. Under a write load that
 * never pauses, PASSIVE checkpoints never finish and the WAL would grow without bound (seen:
 * 7 GB in a reservation benchmark); past `maxWalFrames` (64 MB of 4 KB pages) the worker asks
 * the hub's connection to run one TRUNCATE checkpoint between two transactions (a pause of
 * tens of milliseconds). It must be that connection: a deferred transaction that finds another
 * connection holding the write lock fails with SQLITE_BUSY instead of waiting.
 */
function startCheckpointer(file: string, intervalMs = 500, maxWalFrames = 16384): Worker {
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const Database = require(workerData.driver);
     const db = new Database(workerData.file);
     db.pragma('busy_timeout = 1000');
     const checkpoint = () => {
       try {
         const [state] = db.pragma('wal_checkpoint(PASSIVE)');
         // Under a sustained write load PASSIVE checkpoints never catch up and the WAL only
         // grows: past the limit, ask the hub's own connection to start it over.
         if (state && state.log > workerData.maxWalFrames) parentPort.postMessage('truncate');
       } catch {}
     };
     const timer = setInterval(checkpoint, workerData.intervalMs);
     parentPort.once('close', () => { clearInterval(timer); checkpoint(); db.close(); });`,
    { eval: true, workerData: { driver, file, intervalMs, maxWalFrames } },
  );
  worker.unref();
  return worker;
}

/** The embedded default: one SQLite file in WAL mode, one connection owned by this process. */
export function openSqlite(options: SqliteOptions): Storage {
  const file = options.file === ':memory:' ? ':memory:' : resolve(options.file);
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const raw = new BetterSqlite3(file);
  raw.pragma('journal_mode = WAL');
  raw.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
  raw.pragma('foreign_keys = ON');
  raw.pragma('busy_timeout = 5000');
  // A multi-row statement inside a transaction keeps a statement journal (to undo just that
  // statement); on disk it copies every page the statement touches to a temporary file, which
  // doubled the cost of the multi-row inserts (vault rows, outbox). It is bounded by one
  // statement's pages, so memory is the right place.
  raw.pragma('temp_store = MEMORY');
  const checkpointer = file === ':memory:' ? null : startCheckpointer(file);
  if (checkpointer) raw.pragma('wal_autocheckpoint = 0');
  // A checkpointer that dies (it could not open the file, say) must not end the hub with an
  // uncaught 'error': SQLite's own checkpoints on this connection take over instead.
  checkpointer?.on('error', () => {
    try {
      raw.pragma('wal_autocheckpoint = 1000');
    } catch {
      // The connection is closed already.
    }
  });
  const db: Executor = new Kysely<PlatformTables>({
    dialect: new SqliteDialect({ database: withStatementCache(raw) }),
  });
  let truncating = false;
  checkpointer?.on('message', () => {
    if (truncating) return;
    truncating = true;
    // Through kysely: its connection lock puts the checkpoint between two transactions.
    void sql`pragma wal_checkpoint(TRUNCATE)`
      .execute(db)
      .catch(() => undefined)
      .finally(() => (truncating = false));
  });
  const leaders = new LeaderLocks(file);

  return {
    dialect: 'sqlite',
    location: file,
    db,
    transaction: <T>(fn: (trx: Tx) => Promise<T>) => db.transaction().execute(fn),
    async ping() {
      raw.prepare('select 1').get();
      return Promise.resolve();
    },
    tryLeadership: (name: string) => Promise.resolve(leaders.claim(name)),
    onOutboxSignal: () => () => undefined,
    signal: () => Promise.resolve(),
    onSignal: () => () => undefined,
    async close() {
      leaders.releaseAll();
      await checkpointer?.terminate();
      await db.destroy();
    },
  };
}

/**
 * Leadership across every process that opens the database file (two hub processes on one
 * embedded file must not both run the relay or a consumer group). Each name is an exclusive
 * SQLite transaction held open on a lock file beside the database (`<file>-lock-<name>`):
 * SQLite's own file locks, which the operating system drops when the process dies, so a
 * crashed holder hands over at the next claim with no lease to expire and no heartbeat
 * writes, as PostgreSQL's session advisory locks do. Claims never wait (busy timeout 0).
 * A throwaway ':memory:' database is this process's alone: an in-process flag is enough.
 */
class LeaderLocks {
  private readonly held = new Map<
    string,
    { lock: BetterSqlite3.Database | null; lost: () => void }
  >();

  constructor(private readonly file: string) {}

  claim(name: string): Leadership | null {
    if (this.held.has(name)) return null;
    let lock: BetterSqlite3.Database | null = null;
    if (this.file !== ':memory:') {
      lock = new BetterSqlite3(lockFileOf(this.file, name), { timeout: 0 });
      try {
        // The journal in memory: nothing is ever written, so no journal file beside the lock.
        // (While another connection holds the lock, even this pragma is refused as busy.)
        lock.pragma('journal_mode = MEMORY');
        lock.exec('begin exclusive');
      } catch (error) {
        lock.close();
        if (isBusy(error)) return null;
        throw error;
      }
    }
    let resolveLost!: () => void;
    const lost = new Promise<void>((r) => (resolveLost = r));
    this.held.set(name, { lock, lost: resolveLost });
    return {
      lost,
      release: () => {
        this.release(name);
        return Promise.resolve();
      },
    };
  }

  releaseAll(): void {
    for (const name of [...this.held.keys()]) this.release(name);
  }

  private release(name: string): void {
    const entry = this.held.get(name);
    if (!entry) return;
    this.held.delete(name);
    // Closing the connection ends its transaction and drops the file lock.
    entry.lock?.close();
    entry.lost();
  }
}

/** `<file>-lock-<name>`, the name reduced to characters safe in a file name. */
export function lockFileOf(file: string, name: string): string {
  return `${file}-lock-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}
