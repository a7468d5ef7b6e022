// A hub process that churns the stock of one SKU for a while: reserves (some holds lapse within
// the run, some are sent twice with the same id, as a client retries after a lost answer),
// commits, releases, and commits holds late enough to race their expiry. Prints what
// it was told (its tally) as one JSON line and exits. Several run at once on one PostgreSQL.
// Run as: node --import tsx test/support/churn-child.ts '<json>'
import { randomUUID } from 'node:crypto';
import { createHub } from '../../src/app.js';
import { mulberry32 } from '../../src/cli/demo-data.js';
import { NexusError } from '../../src/model/errors.js';
import { loadConfig } from '../../src/platform/config.js';
import { systemContext } from '../../src/platform/context.js';
import { createLogger } from '../../src/platform/logging.js';

export interface ChurnPlan {
  env: Record<string, string>;
  sku: string;
  locationIds: string[];
  callers: number;
  durationMs: number;
  /** Makes each process's choices differ, reproducibly. */
  seed: number;
}

/** What the process was told, by outcome; the parent checks the database against the sums. */
export interface ChurnTally {
  granted: number;
  grantedUnits: number;
  refused: number;
  committedUnits: Record<string, number>;
  released: number;
  /** Commits refused because the hold had lapsed (expired, or about to be). */
  lateCommits: number;
  /** Reserves sent again with the same id: each must answer with the same hold. */
  retried: number;
  snapshotBatches: number;
  lockBatches: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(plan: ChurnPlan): Promise<void> {
  const config = loadConfig({
    env: plan.env,
    overrides: (raw) => {
      raw.log = { level: 'silent' };
      raw.http = { port: 0 };
      // The expiry sweep runs in every process, racing the others and the late commits.
      raw.inventory = { expiryIntervalMs: 100 };
    },
  });
  const hub = await createHub(config, { logger: createLogger({ level: 'silent' }) });
  await hub.listen(); // starts the expiry sweep
  const inventory = hub.services.inventory;
  const ctx = systemContext('churn-child', { channel: 'web' });
  const tally: ChurnTally = {
    granted: 0,
    grantedUnits: 0,
    refused: 0,
    committedUnits: Object.fromEntries(plan.locationIds.map((id) => [id, 0])),
    released: 0,
    lateCommits: 0,
    retried: 0,
    snapshotBatches: 0,
    lockBatches: 0,
  };
  const until = Date.now() + plan.durationMs;
  await Promise.all(
    Array.from({ length: plan.callers }, async (_, caller) => {
      const next = mulberry32(plan.seed * 1000 + caller);
      while (Date.now() < until) {
        const locationId = plan.locationIds[Math.floor(next() * plan.locationIds.length)]!;
        const quantity = 1 + Math.floor(next() * 3);
        const lapses = next() < 0.3;
        const line = {
          sku: plan.sku,
          locationId,
          quantity,
          ttlSeconds: lapses ? 1 : 0,
          ...(next() < 0.25 ? { id: randomUUID() } : {}),
        };
        const outcome = await inventory.reserve(ctx, line);
        if (outcome.status === 'insufficient') {
          tally.refused++;
          await pause(2);
          continue;
        }
        tally.granted++;
        tally.grantedUnits += quantity;
        const { id } = outcome.reservation;
        if (line.id !== undefined) {
          // The answer was lost: the client sends the same reserve again.
          const again = await inventory.reserve(ctx, line);
          if (again.status !== 'reserved' || again.reservation.id !== id) {
            throw new NexusError('INTERNAL', `a retry got ${JSON.stringify(again)}`);
          }
          tally.retried++;
        }
        const choice = next();
        if (lapses) {
          // Commit around the moment the hold lapses: before it, or refused after it.
          await pause(900 + Math.floor(next() * 250));
        }
        if (choice < 0.45) {
          const [result] = await inventory.commit(ctx, [{ reservationId: id }], 'per-line', false);
          if (result?.status === 'applied') tally.committedUnits[locationId]! += quantity;
          else if (
            result?.code === 'RESERVATION_EXPIRED' ||
            result?.code === 'RESERVATION_NOT_ACTIVE'
          ) {
            tally.lateCommits++;
          } else throw new NexusError('INTERNAL', `commit failed: ${JSON.stringify(result)}`);
        } else if (choice < 0.75 && !lapses) {
          const [result] = await inventory.release(ctx, [{ reservationId: id }], 'per-line', false);
          if (result?.status !== 'applied') {
            throw new NexusError('INTERNAL', `release failed: ${JSON.stringify(result)}`);
          }
          tally.released++;
        }
        // Otherwise the hold stays: active to the end, or lapsing into the sweep.
      }
    }),
  );
  const metrics = (await hub.server.inject({ method: 'GET', url: '/metrics' })).body;
  const count = (path: string) =>
    Number(
      new RegExp(`nexus_inventory_reservation_batches_total\\{path="${path}"\\} (\\d+)`).exec(
        metrics,
      )?.[1] ?? 0,
    );
  tally.snapshotBatches = count('snapshot');
  tally.lockBatches = count('lock');
  await hub.close();
  process.stdout.write(`${JSON.stringify(tally)}\n`);
}

const arg = process.argv[2];
if (arg) {
  main(JSON.parse(arg) as ChurnPlan).catch((error: unknown) => {
    console.error(error);
    process.exit(3);
  });
}
