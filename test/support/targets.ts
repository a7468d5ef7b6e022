import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { migrateToLatest } from '../../src/platform/db/migrations.js';
import { openPostgres } from '../../src/platform/db/postgres.js';
import { openSqlite } from '../../src/platform/db/sqlite.js';
import type { Storage } from '../../src/platform/db/storage.js';

/** Set by scripts/test.mjs when the service answers (or required by CI). */
export const PG_URL = process.env.NEXUS_TEST_DATABASE_URL;
export const NATS_URL = process.env.NEXUS_TEST_NATS_URL;

export interface OpenedStorage {
  storage: Storage;
  /** sqlite: the file; postgres: the URL of the database made for this test. */
  where: string;
  dispose(): Promise<void>;
}

export interface StorageTarget {
  name: 'sqlite' | 'postgres';
  open(): Promise<OpenedStorage>;
}

let counter = 0;
const uniqueName = () =>
  `nexus_t_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`;

export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!PG_URL) throw new Error('NEXUS_TEST_DATABASE_URL is not set');
  const name = uniqueName();
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      await client.query(`drop database if exists ${name} with (force)`);
      await client.end();
    },
  };
}

export const sqliteTarget: StorageTarget = {
  name: 'sqlite',
  async open() {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-test-'));
    const file = join(dir, 'nexus.db');
    const storage = openSqlite({ file });
    await migrateToLatest(storage);
    return {
      storage,
      where: file,
      async dispose() {
        await storage.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

export const postgresTarget: StorageTarget = {
  name: 'postgres',
  async open() {
    const database = await createPgDatabase();
    const storage = openPostgres({ url: database.url });
    await migrateToLatest(storage);
    return {
      storage,
      where: database.url,
      async dispose() {
        await storage.close();
        await database.drop();
      },
    };
  },
};

/** Every storage adapter this run can reach: SQLite always, PostgreSQL when configured. */
export const storageTargets: StorageTarget[] = PG_URL
  ? [sqliteTarget, postgresTarget]
  : [sqliteTarget];

export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  { timeoutMs = 10_000, intervalMs = 10 } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
