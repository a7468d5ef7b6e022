import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import type { Executor, Leadership, SignalName, Storage, Tx } from './storage.js';
import type { PlatformTables } from './tables.js';

export interface PostgresOptions {
  url: string;
  poolSize?: number;
}

const OUTBOX_CHANNEL = 'nexus_outbox';
const signalChannel = (name: SignalName) => `nexus_signal_${name}`;

/**
 * int8 (epoch millis, sequence numbers) parsed as JS numbers: every value we store stays far
 * below 2^53. Scoped to our pools rather than set on pg's global type table.
 */
const parseInt8 = (value: string): number => Number(value);
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20
      ? parseInt8
      : (pg.types.getTypeParser as (oid: number, format?: string) => unknown)(
          oid,
          format,
        )) as typeof pg.types.getTypeParser,
};

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable database URL>';
  }
}

/** Advisory lock keys are 64-bit: derive one from the name so names stay readable in code. */
function lockKey(name: string): bigint {
  return createHash('sha256').update(`nexus:${name}`).digest().readBigInt64BE(0);
}

/** Server shape: PostgreSQL shared by any number of hub processes. */
export function openPostgres(options: PostgresOptions): Storage {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize ?? 10,
    types,
    connectionTimeoutMillis: 5_000,
  });
  // An idle client that loses its server emits 'error' on the pool; readiness reports it.
  pool.on('error', () => undefined);
  // A client the pool has handed out has no listener of the pool's: if its server goes away
  // between two statements (a transaction doing its JavaScript, a restart, a failover), the
  // client's 'error' would be an uncaught exception and end the process. The statement that
  // uses the client next fails instead, and the pool drops the client when it comes back.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db: Executor = new Kysely<PlatformTables>({ dialect: new PostgresDialect({ pool }) });

  // One dedicated session carries LISTEN and the session-level advisory locks of leadership:
  // if the process dies, the server drops the session and with it every lock it held.
  let session: Promise<pg.Client> | null = null;
  // Listeners by channel: the outbox's, and the signals of `onSignal`.
  const channels = new Map<string, Set<() => void>>();
  let connections = 0;
  const leases = new Map<string, () => void>();
  const claiming = new Set<string>();

  function getSession(): Promise<pg.Client> {
    if (session) return session;
    const opening = (async () => {
      const client = new pg.Client({ connectionString: options.url, types });
      client.on('error', () => dropSession(client));
      client.on('end', () => dropSession(client));
      client.on('notification', (message) =>
        channels.get(message.channel)?.forEach((listener) => listener()),
      );
      await client.connect();
      for (const [channel, listeners] of channels) {
        if (listeners.size > 0) await client.query(`LISTEN ${channel}`);
      }
      // A session that replaces a lost one may have missed notifications: tell everyone
      // once, as if each had been signalled (a relay looks, a cache forgets).
      if (connections++ > 0) channels.forEach((listeners) => listeners.forEach((l) => l()));
      return client;
    })();
    session = opening;
    opening.catch(() => {
      if (session === opening) session = null;
    });
    return opening;
  }

  // One query at a time on the session: leadership claims from several groups arrive together,
  // and pg is deprecating queries issued while another is running on the same client.
  let sessionQueue: Promise<unknown> = Promise.resolve();
  function onSession<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    const run = sessionQueue.then(async () => work(await getSession()));
    sessionQueue = run.catch(() => undefined);
    return run;
  }

  function dropSession(client: pg.Client): void {
    // A session that never connected has nothing to drop (getSession clears it itself).
    session
      ?.then((current) => {
        if (current !== client) return;
        session = null;
        for (const lose of leases.values()) lose();
        leases.clear();
      })
      .catch(() => undefined);
  }

  function listen(channel: string, listener: () => void): () => void {
    let listeners = channels.get(channel);
    if (!listeners) channels.set(channel, (listeners = new Set()));
    const first = listeners.size === 0;
    listeners.add(listener);
    if (first) {
      void onSession((client) => client.query(`LISTEN ${channel}`)).catch(() => undefined);
    }
    return () => listeners.delete(listener);
  }

  return {
    dialect: 'postgres',
    location: redactUrl(options.url),
    db,
    transaction: <T>(fn: (trx: Tx) => Promise<T>) => db.transaction().execute(fn),
    async ping() {
      await sql`select 1`.execute(db);
    },
    async tryLeadership(name: string): Promise<Leadership | null> {
      // Advisory locks are re-entrant within one session, so this process must also refuse a
      // second holder itself; `claiming` covers the await below.
      if (leases.has(name) || claiming.has(name)) return null;
      claiming.add(name);
      try {
        const key = lockKey(name).toString();
        const { client, result } = await onSession(async (client) => ({
          client,
          result: await client.query<{ ok: boolean }>(
            'select pg_try_advisory_lock($1::bigint) as ok',
            [key],
          ),
        }));
        if (!result.rows[0]?.ok) return null;
        let resolveLost!: () => void;
        const lost = new Promise<void>((r) => (resolveLost = r));
        leases.set(name, resolveLost);
        return {
          lost,
          async release() {
            if (!leases.delete(name)) return;
            resolveLost();
            await onSession(async (current) =>
              current === client
                ? client.query('select pg_advisory_unlock($1::bigint)', [key])
                : undefined,
            ).catch(() => undefined);
          },
        };
      } finally {
        claiming.delete(name);
      }
    },
    onOutboxSignal: (listener: () => void) => listen(OUTBOX_CHANNEL, listener),
    async signal(executor: Executor, name: SignalName) {
      await sql`select pg_notify(${signalChannel(name)}, '')`.execute(executor);
    },
    onSignal: (name: SignalName, listener: () => void) => listen(signalChannel(name), listener),
    async close() {
      for (const lose of leases.values()) lose();
      leases.clear();
      const current = session;
      session = null;
      if (current) await current.then((c) => c.end()).catch(() => undefined);
      await db.destroy();
    },
  };
}
