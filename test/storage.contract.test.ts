import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateToLatest, MIGRATION_NAMES } from '../src/platform/db/migrations.js';
import { openPostgres } from '../src/platform/db/postgres.js';
import { openSqlite } from '../src/platform/db/sqlite.js';
import type { Leadership, Storage } from '../src/platform/db/storage.js';
import { PG_URL, postgresTarget, storageTargets, type OpenedStorage } from './support/targets.js';

describe.each(storageTargets)('storage contract: $name', (target) => {
  let opened: OpenedStorage;
  beforeAll(async () => {
    opened = await target.open();
  });
  afterAll(async () => {
    await opened.dispose();
  });

  it('has applied every migration, and migrating again is a no-op', async () => {
    const again = await migrateToLatest(opened.storage);
    expect(again.error).toBeUndefined();
    expect(again.results).toEqual([]);
    const applied = await sql<{
      name: string;
    }>`select name from kysely_migration order by name`.execute(opened.storage.db);
    expect(applied.rows.map((r) => r.name)).toEqual(MIGRATION_NAMES);
  });

  it('pings', async () => {
    await expect(opened.storage.ping()).resolves.toBeUndefined();
  });

  it('commits a transaction as a whole and rolls back on error', async () => {
    const { storage } = opened;
    const row = (id: string) => ({
      event_id: id,
      subject: 's',
      partition_key: 'k',
      envelope: '{}',
      created_at: 1,
      published_at: null,
    });
    await storage.transaction(async (trx) => {
      await trx.insertInto('outbox').values(row('a')).execute();
      await trx.insertInto('outbox').values(row('b')).execute();
    });
    await expect(
      storage.transaction(async (trx) => {
        await trx.insertInto('outbox').values(row('c')).execute();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const ids = await storage.db.selectFrom('outbox').select('event_id').orderBy('seq').execute();
    expect(ids.map((r) => r.event_id)).toEqual(['a', 'b']);
  });

  it('assigns increasing sequence numbers in insert order', async () => {
    const { storage } = opened;
    const rows = await storage.db
      .selectFrom('outbox')
      .select(['seq', 'event_id'])
      .orderBy('seq')
      .execute();
    expect(rows[0]!.seq).toBeLessThan(rows[1]!.seq);
    expect(typeof rows[0]!.seq).toBe('number');
  });

  it('keeps 64-bit epoch milliseconds as numbers', async () => {
    const { storage } = opened;
    const now = Date.now();
    await storage.db
      .updateTable('outbox')
      .set({ published_at: now })
      .where('event_id', '=', 'a')
      .execute();
    const row = await storage.db
      .selectFrom('outbox')
      .select('published_at')
      .where('event_id', '=', 'a')
      .executeTakeFirstOrThrow();
    expect(row.published_at).toBe(now);
  });

  it('grants leadership of a name to one holder at a time', async () => {
    const { storage } = opened;
    const first = await storage.tryLeadership('contract-lock');
    expect(first).not.toBeNull();
    expect(await storage.tryLeadership('contract-lock')).toBeNull();
    await first!.release();
    const second = await storage.tryLeadership('contract-lock');
    expect(second).not.toBeNull();
    await second!.release();
  });

  it('enforces unique keys', async () => {
    const { storage } = opened;
    const message = {
      event_id: 'unique-a',
      subject: 's',
      partition_key: 'k',
      envelope: '{}',
      published_at: 1,
    };
    await storage.db.insertInto('bus_messages').values(message).execute();
    await expect(storage.db.insertInto('bus_messages').values(message).execute()).rejects.toThrow();
  });
});

describe.each(storageTargets)('leadership across processes: $name', (target) => {
  const openSecond = (where: string): Storage => {
    if (target.name === 'sqlite') return openSqlite({ file: where });
    return openPostgres({ url: where });
  };

  it('refuses a second storage on the database while the first holds it, and hands over when it releases', async () => {
    const opened = await target.open();
    const other = openSecond(opened.where);
    try {
      const held = await opened.storage.tryLeadership('relay');
      expect(held).not.toBeNull();
      expect(await other.tryLeadership('relay')).toBeNull();
      // Names are independent.
      const consumer = await other.tryLeadership('consumer:webhooks');
      expect(consumer).not.toBeNull();
      await held!.release();
      const taken = await other.tryLeadership('relay');
      expect(taken).not.toBeNull();
      expect(await opened.storage.tryLeadership('relay')).toBeNull();
      await taken!.release();
      await consumer!.release();
    } finally {
      await other.close();
      await opened.dispose();
    }
  });

  it('hands over at once when the holding process is killed', async () => {
    const opened = await target.open();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'test/support/leader-child.ts',
        JSON.stringify({ kind: target.name, where: opened.where, name: 'relay' }),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const said = await new Promise<string>((resolve, reject) => {
        child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
        child.once('exit', (code) => reject(new Error(`leader child exited with ${code}`)));
      });
      expect(said).toBe('held');
      expect(await opened.storage.tryLeadership('relay')).toBeNull();
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      // No lease to run out: the lock went with the process (PostgreSQL notices the closed
      // session a moment later, so allow a few claims).
      let taken: Leadership | null = null;
      for (let attempt = 0; attempt < 50 && !taken; attempt++) {
        taken = await opened.storage.tryLeadership('relay');
        if (!taken) await new Promise((r) => setTimeout(r, 100));
      }
      expect(taken).not.toBeNull();
      await taken!.release();
    } finally {
      child.kill('SIGKILL');
      await opened.dispose();
    }
  });
});

describe.each(storageTargets)('signals between processes: $name', (target) => {
  it('tells the other processes of a commit that signalled, nothing of a rollback, and once more after a lost session', async () => {
    const opened = await target.open();
    const other =
      target.name === 'sqlite'
        ? openSqlite({ file: opened.where })
        : openPostgres({ url: opened.where });
    try {
      let heard = 0;
      const stop = other.onSignal('erasure', () => heard++);
      const signalled = () =>
        opened.storage.transaction((trx) => opened.storage.signal(trx, 'erasure'));
      if (target.name === 'sqlite') {
        // Nothing crosses processes on SQLite: signalling is a no-op, and nobody hears it.
        await signalled();
        await new Promise((r) => setTimeout(r, 100));
        expect(heard).toBe(0);
        stop();
        return;
      }
      // The listening session starts with the first listener: signal until it hears one.
      for (let i = 0; i < 100 && heard === 0; i++) {
        await signalled();
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(heard).toBeGreaterThan(0);
      const before = heard;
      await signalled();
      for (let i = 0; i < 100 && heard === before; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(heard).toBe(before + 1);
      await expect(
        opened.storage.transaction(async (trx) => {
          await opened.storage.signal(trx, 'erasure');
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      await new Promise((r) => setTimeout(r, 300));
      expect(heard).toBe(before + 1);
      // The listening session dies: signals sent meanwhile are lost, so the session that
      // replaces it (here for a leadership claim) tells its listeners once.
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      try {
        // The session's last statement was its LISTEN (nothing else runs on it here).
        await admin.query(
          `select pg_terminate_backend(pid) from pg_stat_activity
           where datname = $1 and query like 'LISTEN%'`,
          [new URL(opened.where).pathname.slice(1)],
        );
      } finally {
        await admin.end();
      }
      await new Promise((r) => setTimeout(r, 200));
      const claim = await other.tryLeadership('after-reconnect');
      expect(claim).not.toBeNull();
      for (let i = 0; i < 100 && heard === before + 1; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(heard).toBe(before + 2);
      await claim!.release();
      stop();
    } finally {
      await other.close();
      await opened.dispose();
    }
  });
});

describe.runIf(PG_URL)('storage on PostgreSQL', () => {
  it('fails a transaction whose server connection dies between statements, and carries on', async () => {
    const opened = await postgresTarget.open();
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      // The backend is killed while the transaction's client is checked out and idle: that
      // client's error must reach the transaction, not the process.
      await expect(
        opened.storage.transaction(async (trx) => {
          const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
          await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
          await new Promise((r) => setTimeout(r, 200));
          await sql`select 1`.execute(trx);
        }),
      ).rejects.toThrow();
      await expect(opened.storage.ping()).resolves.toBeUndefined();
    } finally {
      await admin.end();
      await opened.dispose();
    }
  });
  it('leaves room on stock pages for in-place updates (D32)', async () => {
    const opened = await postgresTarget.open();
    try {
      const { rows } = await sql<{ options: string[] | null }>`select reloptions as options
        from pg_class where relname = 'inventory_levels'`.execute(opened.storage.db);
      expect(rows[0]?.options).toContain('fillfactor=50');
    } finally {
      await opened.dispose();
    }
  });
});
