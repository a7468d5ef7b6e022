import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHub, type Hub } from '../src/app.js';
import type { Delivery, Subscription } from '../src/platform/bus/bus.js';
import { createLogger } from '../src/platform/logging.js';
import { fixtures, startTestHub, type TestHub } from './support/hub.js';
import { NATS_URL, PG_URL, waitFor } from './support/targets.js';

// Two hub instances with their own pools, database sessions and NATS connections, sharing one
// PostgreSQL database and one JetStream stream: what several hub processes see of each other.
describe.runIf(PG_URL && NATS_URL)('several hubs on one PostgreSQL and one NATS', () => {
  let first: TestHub;
  let second: Hub;
  let observer: Subscription;
  const seen: Delivery[] = [];

  const put = (hub: Hub, key: string, brand: string) =>
    hub.server.inject({
      method: 'PUT',
      url: '/v1/products/SHARED',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      payload: JSON.stringify(fixtures.product('SHARED', [{ sku: 'SHARED-1' }], { brand })),
    });

  beforeAll(async () => {
    first = await startTestHub('postgres+nats');
    second = await createHub(first.hub.config, { logger: createLogger({ level: 'silent' }) });
    second.relay.start();
    observer = await second.bus.subscribe(
      { name: 'multi-observer', filter: 'nexus.evt.>' },
      (d) => {
        seen.push(d);
        return Promise.resolve();
      },
    );
  });
  afterAll(async () => {
    await observer.stop();
    await second.close();
    await first.dispose();
  });

  it('has exactly one active relay, and every write from either hub arrives once, in order', async () => {
    await waitFor(() => first.hub.relay.status.leader || second.relay.status.leader);
    expect(
      [first.hub.relay.status.leader, second.relay.status.leader].filter(Boolean),
    ).toHaveLength(1);

    for (let v = 1; v <= 30; v++) {
      const response = await put(v % 2 ? first.hub : second, first.adminKey, `b${v}`);
      expect(response.statusCode).toBeLessThan(300);
    }
    await waitFor(() => seen.length === 30);
    expect(seen.map((d) => (d.envelope.data as { version: number }).version)).toEqual(
      Array.from({ length: 30 }, (_, i) => i + 1),
    );
    expect(new Set(seen.map((d) => d.eventId)).size).toBe(30);
  });

  it('hands the relay over when the leading hub goes away', async () => {
    const leader = first.hub.relay.status.leader ? first.hub.relay : second.relay;
    const standby = leader === first.hub.relay ? second.relay : first.hub.relay;
    const writeThrough = leader === first.hub.relay ? second : first.hub;
    await leader.stop();
    await waitFor(() => standby.status.leader, { timeoutMs: 5000 });
    const response = await put(writeThrough, first.adminKey, 'after-handover');
    expect(response.statusCode).toBe(200);
    await waitFor(() => seen.length === 31);
    expect((seen[30]!.envelope.data as { version: number }).version).toBe(31);
  });
});
