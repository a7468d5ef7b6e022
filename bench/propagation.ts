import BetterSqlite3 from 'better-sqlite3';
import { connect } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import pg from 'pg';
import type { Hub } from '../src/app.js';
import type { EventBus } from '../src/platform/bus/bus.js';
import { now, request, summarize } from './lib.js';

export type Summary = ReturnType<typeof summarize>;

/**
 * Write through the API -> the event reaches a consumer on another bus connection.
 * Sequential: one write, wait for its event, next write. Latency is measured from just before
 * the HTTP request to the moment the consumer's handler runs.
 */
export async function propagation(
  hub: Hub,
  observerBus: EventBus,
  baseUrl: string,
  key: string,
  n: number,
): Promise<{ endToEnd: Summary; httpOnly: Summary }> {
  const waiting = new Map<number, (t: number) => void>();
  const subscription = await observerBus.subscribe(
    { name: `bench-observer-${Date.now()}`, filter: 'nexus.evt.*.product.>', startAt: 'latest' },
    (delivery) => {
      const data = delivery.envelope.data as { id?: string; version?: number };
      if (data.id === 'PROP-1' && data.version !== undefined) waiting.get(data.version)?.(now());
      return Promise.resolve();
    },
  );
  const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
  const put = (brand: string) =>
    request(
      `${baseUrl}/v1/products/PROP-1`,
      'PUT',
      headers,
      JSON.stringify({
        id: 'PROP-1',
        name: { 'en-GB': 'Propagation probe' },
        brand,
        skus: [{ sku: 'PROP-1-A' }],
      }),
    );
  // Version 1 exists before we measure; the observer starts at the stream's end.
  await put('warm-0');
  await new Promise((r) => setTimeout(r, 300));
  const endToEnd: number[] = [];
  const httpOnly: number[] = [];
  for (let i = 1; i <= n; i++) {
    const version = i + 1;
    const seen = new Promise<number>((resolve) => waiting.set(version, resolve));
    const t0 = now();
    const response = await put(`brand-${i}`);
    httpOnly.push(now() - t0);
    if (response.status !== 200)
      throw new Error(`PUT answered ${response.status}: ${response.body}`);
    const t1 = await seen;
    waiting.delete(version);
    if (i > n / 10) endToEnd.push(t1 - t0); // the first tenth warms up JIT and caches
  }
  await subscription.stop();
  return { endToEnd: summarize(endToEnd), httpOnly: summarize(httpOnly.slice(Math.floor(n / 10))) };
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
