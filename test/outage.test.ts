import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtures, startTestHub, type TestHub } from './support/hub.js';
import { PG_URL, waitFor } from './support/targets.js';

/** Runs SQL as the superuser on the maintenance database. */
async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

describe.runIf(PG_URL)('the database goes away and comes back (PostgreSQL)', () => {
  let t: TestHub;
  let database: string;

  beforeAll(async () => {
    t = await startTestHub('postgres');
    database = new URL(t.hub.storage.location).pathname.slice(1);
  });
  afterAll(async () => {
    await admin(`alter database ${database} allow_connections true`).catch(() => undefined);
    await t.dispose();
  });

  it('answers 503 on /readyz and on writes while it is gone, and recovers without a restart', async () => {
    expect((await t.request('POST', '/v1/markets', { body: fixtures.market('DE') })).status).toBe(
      201,
    );

    await admin(`alter database ${database} allow_connections false`);
    await admin(
      `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${database}'`,
    );

    const ready = await t.request('GET', '/readyz', { key: null });
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({ status: 'not-ready', checks: { database: { ok: false } } });

    const write = await t.request('PUT', '/v1/markets/DE', {
      body: fixtures.market('DE', { name: 'Deutschland' }),
    });
    expect(write.status).toBe(503);
    expect(write.json).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });

    await admin(`alter database ${database} allow_connections true`);
    await waitFor(async () => (await t.request('GET', '/readyz', { key: null })).status === 200);
    const again = await t.request('PUT', '/v1/markets/DE', {
      body: fixtures.market('DE', { name: 'Deutschland' }),
    });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ name: 'Deutschland', version: 2 });
  });
});
