import BetterSqlite3 from 'better-sqlite3';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import type { EventBus } from '../src/platform/bus/bus.js';
import { Worker } from 'node:worker_threads';
import { now, request, summarize } from './lib.js';

export type Summary = ReturnType<typeof summarize>;

/**
 * Write through the API -> the event reaches a consumer on another bus connection.
 * Sequential: one write, wait for its event, next write. The client runs on its own thread;
 * latency is from just before the HTTP request to the moment the consumer's handler runs,
 * both read from the process-wide monotonic clock.
 */
export async function propagation(
  baseUrl: string,
  key: string,
  observerBus: EventBus,
  n: number,
): Promise<{ endToEnd: Summary; httpOnly: Summary }> {
  const arrivals = new Map<number, bigint>();
  let onArrival: (() => void) | null = null;
  const subscription = await observerBus.subscribe(
    { name: `bench-observer-${Date.now()}`, filter: 'nexus.evt.*.product.>', startAt: 'latest' },
    (delivery) => {
      const data = delivery.envelope.data as { id?: string; version?: number };
      if (data.id === 'PROP-1' && data.version !== undefined) {
        arrivals.set(data.version, process.hrtime.bigint());
        onArrival?.();
      }
      return Promise.resolve();
    },
  );
  // Version 1 exists before we measure, so write i is version i + 1.
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  await request(
    `${baseUrl}/v1/products/PROP-1`,
    'PUT',
    headers,
    JSON.stringify({
      id: 'PROP-1',
      name: { 'en-GB': 'Propagation probe' },
      brand: 'warm-0',
      skus: [{ sku: 'PROP-1-A' }],
    }),
  );
  await new Promise((r) => setTimeout(r, 300));

  const worker = new Worker(new URL('./put-worker.mjs', import.meta.url), {
    workerData: { url: baseUrl, key, n },
  });
  const endToEnd: number[] = [];
  const httpOnly: number[] = [];
  const toMs = (ns: bigint) => Number(ns) / 1e6;
  await new Promise<void>((resolve, reject) => {
    worker.on('error', reject);
    worker.on('message', (m: { i: number; sentAt: bigint; answeredAt: bigint }) => {
      const settle = () => {
        const arrived = arrivals.get(m.i + 1);
        if (arrived === undefined) return false;
        if (m.i > n / 10) {
          // the first tenth warms up JIT and caches
          endToEnd.push(toMs(arrived - m.sentAt));
          httpOnly.push(toMs(m.answeredAt - m.sentAt));
        }
        arrivals.delete(m.i + 1);
        onArrival = null;
        if (m.i === n) resolve();
        else worker.postMessage('next');
        return true;
      };
      if (!settle()) onArrival = () => void settle();
    });
  });
  await worker.terminate();
  await subscription.stop();
  return { endToEnd: summarize(endToEnd), httpOnly: summarize(httpOnly) };
}

/** One SQLite commit (WAL, synchronous=NORMAL, as the hub runs it): BEGIN, INSERT, COMMIT. */
export function rawSqliteCommit(file: string, n: number): Summary {
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('create table if not exists raw_commit (id integer primary key, payload text)');
  const insert = db.prepare('insert into raw_commit (payload) values (?)');
  const commit = db.transaction((payload: string) => insert.run(payload));
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    commit(`{"n":${i}}`);
    samples.push(now() - t0);
  }
  db.close();
  return summarize(samples);
}

/** One PostgreSQL commit of one INSERT over one connection (full durability: synchronous_commit on). */
export async function rawPostgresCommit(url: string, n: number): Promise<Summary> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(
    'create table if not exists raw_commit (id bigserial primary key, payload text)',
  );
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = now();
    await client.query('insert into raw_commit (payload) values ($1)', [`{"n":${i}}`]);
    samples.push(now() - t0);
  }
  await client.query('drop table raw_commit');
  await client.end();
  return summarize(samples);
}

/** JetStream publish (acked) on one connection -> delivered to a consumer on another. */
export async function rawJetStream(url: string, n: number): Promise<Summary> {
  const stream = `BENCH_RAW_${Date.now()}`;
  const subject = `benchraw.${Date.now()}`;
  const pub = await connect({ servers: url });
  const sub = await connect({ servers: url });
  const jsm = await jetstreamManager(pub);
  await jsm.streams.add({ name: stream, subjects: [subject] });
  await jsm.consumers.add(stream, {
    durable_name: 'raw',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
  });
  const consumer = await jetstream(sub).consumers.get(stream, 'raw');
  const messages = await consumer.consume({ max_messages: 256 });
  const waiting = new Map<number, (t: number) => void>();
  const reader = (async () => {
    for await (const m of messages) {
      waiting.get(Number(m.string()))?.(now());
      m.ack();
    }
  })();
  const js = jetstream(pub);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const seen = new Promise<number>((resolve) => waiting.set(i, resolve));
    const t0 = now();
    await js.publish(subject, String(i));
    const t1 = await seen;
    if (i > n / 10) samples.push(t1 - t0);
  }
  await messages.close();
  await reader;
  await jsm.streams.delete(stream);
  await pub.close();
  await sub.close();
  return summarize(samples);
}
