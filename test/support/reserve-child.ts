// A hub process that reserves stock as fast as it can and dies by SIGKILL in the middle of it.
// Run as: node --import tsx test/support/reserve-child.ts '<json>'
import { createHub } from '../../src/app.js';
import { loadConfig } from '../../src/platform/config.js';
import { systemContext } from '../../src/platform/context.js';
import { createLogger } from '../../src/platform/logging.js';

export interface ReservePlan {
  env: Record<string, string>;
  sku: string;
  locationIds: string[];
  /** Die this long after the burst started. */
  killAfterMs: number;
}

async function main(plan: ReservePlan): Promise<void> {
  const config = loadConfig({
    env: plan.env,
    overrides: (raw) => {
      raw.log = { level: 'silent' };
    },
  });
  const hub = await createHub(config, { logger: createLogger({ level: 'silent' }) });
  const inventory = hub.services.inventory;
  const ctx = systemContext('reserve-child', { channel: 'web' });
  setTimeout(() => process.kill(process.pid, 'SIGKILL'), plan.killAfterMs);
  // 64 callers in a loop, each reserving 1-3 units at a random location.
  let n = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      for (;;) {
        const locationId = plan.locationIds[n++ % plan.locationIds.length]!;
        await inventory.reserve(ctx, {
          sku: plan.sku,
          locationId,
          quantity: 1 + (n % 3),
          ttlSeconds: 0,
        });
      }
    }),
  );
}

const arg = process.argv[2];
if (arg) {
  main(JSON.parse(arg) as ReservePlan).catch((error: unknown) => {
    console.error(error);
    process.exit(3);
  });
  setTimeout(() => process.exit(4), 20_000).unref();
}
