import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Delivery, Subscription } from '../src/platform/bus/bus.js';
import { openNatsBus, type NatsEventBus } from '../src/platform/bus/nats.js';
import { fixtures, startTestHub, type TestHub } from './support/hub.js';
import { NATS_URL, PG_URL, waitFor } from './support/targets.js';

const NATS_SERVER = '/usr/sbin/nats-server';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** A NATS server of this test's own (same binary as the machine's), so it can be stopped. */
async function startNats(port: number, storeDir: string): Promise<ChildProcess> {
  const child = spawn(
    NATS_SERVER,
    ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir],
    { stdio: 'ignore' },
  );
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      }),
  );
  return child;
}

async function stopNats(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

// Needs PostgreSQL and the nats-server binary; runs wherever the NATS suites run.
describe.runIf(PG_URL && NATS_URL)('NATS goes away and comes back', () => {
  let storeDir: string;
  let port: number;
  let nats: ChildProcess;
  let t: TestHub;
  let observer: NatsEventBus;
  let subscription: Subscription;
  const seen: Delivery[] = [];

  beforeAll(async () => {
    storeDir = mkdtempSync(join(tmpdir(), 'nexus-nats-'));
    port = await freePort();
    nats = await startNats(port, storeDir);
    const url = `nats://127.0.0.1:${port}`;
    t = await startTestHub('postgres', {
      bus: { kind: 'nats', url, stream: 'NEXUS_OUTAGE' },
      outbox: { maxBacklog: 30 },
    });
    observer = await openNatsBus({ url, stream: 'NEXUS_OUTAGE', name: 'outage-observer' });
    subscription = await observer.subscribe(
      { name: 'outage-observer', filter: 'nexus.evt.>' },
      (d) => {
        seen.push(d);
        return Promise.resolve();
      },
    );
  });
  afterAll(async () => {
    await subscription?.stop().catch(() => undefined);
    await observer?.abort().catch(() => undefined);
    await t?.dispose();
    if (nats && nats.exitCode === null) await stopNats(nats);
    rmSync(storeDir, { recursive: true, force: true });
  });

  it('keeps committing into the outbox, refuses writes past the backlog limit, then delivers everything in order', async () => {
    expect((await t.request('POST', '/v1/markets', { body: fixtures.market('DE') })).status).toBe(
      201,
    );
    await waitFor(() => seen.length === 1);

    await stopNats(nats);
    await waitFor(async () => (await t.request('GET', '/readyz', { key: null })).status === 503);
    const ready = await t.request('GET', '/readyz', { key: null });
    expect(ready.json).toMatchObject({ checks: { database: { ok: true }, bus: { ok: false } } });

    // Writes still commit: state and events wait in the outbox.
    for (let v = 2; v <= 25; v++) {
      const r = await t.request('PUT', '/v1/markets/DE', {
        body: fixtures.market('DE', { name: `DE v${v}` }),
      });
      expect(r.status).toBe(200);
    }
    const backlog = await t.request('GET', '/metrics', { key: null });
    expect(backlog.body).toMatch(/nexus_outbox_backlog 24\b/);

    // Past outbox.maxBacklog (30), writes are refused with 503 until the bus is back.
    for (let v = 26; v <= 32; v++) {
      await t.request('PUT', '/v1/markets/DE', {
        body: fixtures.market('DE', { name: `DE v${v}` }),
      });
    }
    await new Promise((r) => setTimeout(r, 1100)); // the gate counts the backlog once a second
    const refused = await t.request('PUT', '/v1/markets/DE', {
      body: fixtures.market('DE', { name: 'refused' }),
    });
    expect(refused.status).toBe(503);
    expect(refused.json).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });

    nats = await startNats(port, storeDir);
    await waitFor(() => seen.length === 32, { timeoutMs: 30_000 });
    const versions = seen.map((d) => (d.envelope.data as { version: number }).version);
    expect(versions).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    await waitFor(async () => (await t.request('GET', '/readyz', { key: null })).status === 200);
  });
});
