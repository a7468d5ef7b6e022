import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Hub } from '../src/app.js';
import { systemContext } from '../src/platform/context.js';
import type { ChurnPlan, ChurnTally } from './support/churn-child.js';
import { fixtures, openQuietHub } from './support/hub.js';
import { PG_URL, createPgDatabase } from './support/targets.js';

const SKU = 'CHURN-1';
const LOCATIONS = ['M1', 'M2'];
const STOCK = 120;

async function seed(hub: Hub): Promise<void> {
  const ctx = systemContext('seed');
  await hub.services.markets.create(ctx, fixtures.market('DE') as never);
  for (const id of LOCATIONS)
    await hub.services.locations.create(ctx, fixtures.location(id) as never);
  await hub.services.catalog.create(ctx, fixtures.product('P-CHURN', [{ sku: SKU }]) as never);
  await hub.services.inventory.receive(
    ctx,
    LOCATIONS.map((locationId) => ({ sku: SKU, locationId, quantity: STOCK })),
  );
}

function runChild(plan: ChurnPlan): Promise<ChurnTally> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/churn-child.ts', JSON.stringify(plan)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(stdout) as ChurnTally)
        : reject(new Error(`child exited ${code}: ${stderr}`)),
    );
  });
}

// Several hub processes on one PostgreSQL, each with its own reservation queue, snapshot cache
// (D31) and expiry sweep, churning the same few units: reserves racing each other across
// processes, commits racing the sweeps of every process, releases. The record must come out
// exactly as the processes were told.
describe.runIf(PG_URL)('inventory shared by several hub processes (PostgreSQL)', () => {
  it('never oversells, and the record, the ledger and the holds agree with what every process was told', async () => {
    const db = await createPgDatabase();
    const env = {
      NEXUS_DATABASE_URL: db.url,
      NEXUS_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
    };
    try {
      const seeding = await openQuietHub(env);
      await seed(seeding);
      await seeding.close();

      const tallies = await Promise.all(
        [1, 2, 3].map((seed) =>
          runChild({ env, sku: SKU, locationIds: LOCATIONS, callers: 24, durationMs: 4000, seed }),
        ),
      );

      const hub = await openQuietHub(env);
      try {
        // Holds that lapsed in the last moments of the run: the sweep of this hub settles them.
        await new Promise((resolve) => setTimeout(resolve, 1100));
        await hub.services.inventory.expireDue();
        const trx = hub.storage.db;
        const sum = (pick: (t: ChurnTally) => number) => tallies.reduce((n, t) => n + pick(t), 0);

        // The run was a contest: stock ran out and came back (commits, releases, expiries), and
        // every process took both paths: snapshot batches, and the lock when another process
        // had written the row it held.
        expect(sum((t) => t.refused)).toBeGreaterThan(0);
        expect(sum((t) => t.grantedUnits)).toBeGreaterThan(LOCATIONS.length * STOCK);
        expect(sum((t) => t.lateCommits)).toBeGreaterThan(0);
        expect(sum((t) => t.retried)).toBeGreaterThan(0);
        for (const t of tallies) {
          expect(t.granted).toBeGreaterThan(0);
          expect(t.lockBatches).toBeGreaterThan(0);
        }

        const { rows: holds } = await sql<{
          location_id: string;
          status: string;
          units: string;
          n: string;
        }>`select location_id, status, sum(quantity) as units, count(*) as n
           from inventory_reservations group by location_id, status`.execute(trx);
        const units = (locationId: string, status: string) =>
          Number(
            holds.find((h) => h.location_id === locationId && h.status === status)?.units ?? 0,
          );
        const count = (status: string) =>
          holds.filter((h) => h.status === status).reduce((n, h) => n + Number(h.n), 0);
        // Every grant a process was told about exists once (a retried reserve holds nothing
        // twice), and nothing else does.
        expect(count('active') + count('committed') + count('released') + count('expired')).toBe(
          sum((t) => t.granted),
        );
        expect(count('released')).toBe(sum((t) => t.released));

        for (const locationId of LOCATIONS) {
          const { rows } = await sql<{ on_hand: string; reserved: string }>`
            select on_hand, reserved from inventory_levels
            where sku = ${SKU} and location_id = ${locationId}`.execute(trx);
          const level = { onHand: Number(rows[0]!.on_hand), reserved: Number(rows[0]!.reserved) };
          const committed = sum((t) => t.committedUnits[locationId]!);
          // Sold exactly what the processes were told was sold, never more than there was.
          expect(units(locationId, 'committed')).toBe(committed);
          expect(level.onHand).toBe(STOCK - committed);
          // The invariant, and reserved is exactly the holds still active.
          expect(level.reserved).toBe(units(locationId, 'active'));
          expect(level.reserved).toBeGreaterThanOrEqual(0);
          expect(level.reserved).toBeLessThanOrEqual(level.onHand);

          // The ledger adds up to the record, and its last entry shows the record.
          const { rows: ledger } = await sql<{ delta: string; on_hand_after: string }>`
            select delta, on_hand_after from inventory_movements
            where sku = ${SKU} and location_id = ${locationId} order by seq`.execute(trx);
          expect(ledger.reduce((n, m) => n + Number(m.delta), 0)).toBe(level.onHand);
          expect(Number(ledger.at(-1)!.on_hand_after)).toBe(level.onHand);
        }
      } finally {
        await hub.close();
      }
    } finally {
      await db.drop();
    }
  }, 90_000);
});
