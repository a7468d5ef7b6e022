import { sql } from 'kysely';
import pg from 'pg';
import { createHub, type Hub } from '../src/app.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logging.js';

/** The services the benchmarks run against (this machine's by default). */
export const BENCH_PG =
  process.env.NEXUS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const BENCH_NATS = process.env.NEXUS_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';

/** A hub for a benchmark: quiet logs, a free port, its own JetStream stream when given. */
export async function openBenchHub(env: Record<string, string>, stream?: string): Promise<Hub> {
  const config = loadConfig({
    // PostgreSQL hubs need a configured master key (tokenization); a fixed one for benchmarks.
    env: env.NEXUS_DATABASE_URL
      ? { NEXUS_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), ...env }
      : env,
    overrides: (raw) => {
      raw.http = { port: 0 };
      raw.log = { level: 'warn' };
      if (stream) (raw.bus as Record<string, unknown>).stream = stream;
      if (process.env.NEXUS_BENCH_RESERVATION_CONCURRENCY) {
        raw.inventory = {
          reservationConcurrency: Number(process.env.NEXUS_BENCH_RESERVATION_CONCURRENCY),
        };
      }
    },
  });
  return createHub(config, { logger: createLogger({ level: 'warn' }) });
}

/** A fresh PostgreSQL database for `run`, dropped afterwards. */
export async function withPgDatabase<T>(
  prefix: string,
  run: (url: string) => Promise<T>,
): Promise<T> {
  const name = `${prefix}_${Date.now()}`;
  const admin = new pg.Client({ connectionString: BENCH_PG });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = new URL(BENCH_PG);
  url.pathname = `/${name}`;
  try {
    return await run(url.toString());
  } finally {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

/**
 * Resolves once the hub's outbox is empty: every committed event is on the bus (at commit for
 * SQLite's embedded stream, D29; when the relay has moved or published it otherwise).
 */
export async function outboxDrained(hub: Hub, pollMs = 1): Promise<void> {
  for (;;) {
    const { rows } = await sql<{ n: number }>`select count(*) as n from outbox`.execute(
      hub.storage.db,
    );
    if (Number(rows[0]?.n ?? 0) === 0) return;
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
