import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import type { Hub } from '../src/app.js';
import { systemContext } from '../src/platform/context.js';
import { fixtures, openQuietHub } from './support/hub.js';
import type { ReservePlan } from './support/reserve-child.js';
import { PG_URL, createPgDatabase, waitFor } from './support/targets.js';

async function seed(hub: Hub, locations: string[]): Promise<void> {
  const ctx = systemContext('seed');
  await hub.services.markets.create(ctx, fixtures.market('DE') as never);
  for (const id of locations)
    await hub.services.locations.create(ctx, fixtures.location(id) as never);
  await hub.services.catalog.create(
    ctx,
    fixtures.product('P-CRASH', [{ sku: 'CRASH-1' }]) as never,
  );
  await hub.services.inventory.receive(
    ctx,
    locations.map((locationId) => ({ sku: 'CRASH-1', locationId, quantity: 400 })),
  );
}

function runChild(plan: ReservePlan): Promise<NodeJS.Signals | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/reserve-child.ts', JSON.stringify(plan)],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      signal ? resolve(signal) : reject(new Error(`child exited ${code}: ${stderr}`)),
    );
  });
}

const targets: Array<{
  name: string;
  env: () => Promise<{ env: Record<string, string>; drop: () => Promise<void> }>;
}> = [
  {
    name: 'sqlite',
    env: () => {
      const dir = mkdtempSync(join(tmpdir(), 'nexus-crash-'));
      return Promise.resolve({
        env: { NEXUS_SQLITE_FILE: join(dir, 'nexus.db') },
        drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })),
      });
    },
  },
  ...(PG_URL
    ? [
        {
          name: 'postgres',
          env: async () => {
            const db = await createPgDatabase();
            // PostgreSQL hubs need a configured master key (tokenization).
            const key = Buffer.alloc(32, 7).toString('base64');
            return {
              env: { NEXUS_DATABASE_URL: db.url, NEXUS_MASTER_KEY: key },
              drop: () => db.drop(),
            };
          },
        },
      ]
    : []),
];

describe.each(targets)('inventory under SIGKILL: $name', (target) => {
  it('a hub killed in a burst of reservations leaves each one whole or absent, and never oversold', async () => {
    const { env, drop } = await target.env();
    const locations = ['K1', 'K2'];
    try {
      const seeding = await openQuietHub(env);
      await seed(seeding, locations);
      await seeding.close();

      const signal = await runChild({
        env,
        sku: 'CRASH-1',
        locationIds: locations,
        killAfterMs: 1500,
      });
      expect(signal).toBe('SIGKILL');

      const hub = await openQuietHub(env);
      try {
        const db = hub.storage.db;
        const { rows: reservations } = await sql<{
          id: string;
          quantity: number;
          location_id: string;
        }>`
            select id, quantity, location_id from inventory_reservations where status = 'active'`.execute(
          db,
        );
        expect(reservations.length).toBeGreaterThan(0);
        // Every reservation committed with its event, and no event without its reservation:
        // in the outbox, or already on the stream (SQLite appends at commit, D29).
        const reservationEvents = async (tables: string) => {
          const { rows } = await sql<{ envelope: string }>`select envelope from ${sql.raw(tables)}
            where envelope like '%inventory.reservation.created.v1%'`.execute(db);
          return new Set(
            rows.map((e) => (JSON.parse(e.envelope) as { data: { id: string } }).data.id),
          );
        };
        const ids = new Set(reservations.map((r) => r.id));
        expect(ids).toEqual(
          await reservationEvents(
            '(select envelope from outbox union all select envelope from bus_messages) e',
          ),
        );

        // The relay delivers what the dead process committed but did not publish.
        hub.relay.start();
        await waitFor(
          async () => {
            const { rows } = await sql<{ n: number }>`select count(*) as n from outbox`.execute(db);
            return Number(rows[0]!.n) === 0;
          },
          { timeoutMs: 15_000 },
        );
        expect(await reservationEvents('bus_messages')).toEqual(ids);

        // The invariant, and the record agrees with the reservations.
        for (const locationId of locations) {
          const { rows } = await sql<{ on_hand: number; reserved: number }>`
              select on_hand, reserved from inventory_levels
              where sku = 'CRASH-1' and location_id = ${locationId}`.execute(db);
          const level = rows[0]!;
          const held = reservations
            .filter((r) => r.location_id === locationId)
            .reduce((n, r) => n + Number(r.quantity), 0);
          expect(Number(level.reserved)).toBe(held);
          expect(Number(level.reserved)).toBeLessThanOrEqual(Number(level.on_hand));
          expect(Number(level.on_hand)).toBe(400);
        }
      } finally {
        await hub.close();
      }
    } finally {
      await drop();
    }
  }, 60_000);
});
