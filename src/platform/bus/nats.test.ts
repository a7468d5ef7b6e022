import { createServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { Delivery, OutgoingMessage } from './bus.js';
import {
  durableName,
  openNatsBus,
  subjectMapping,
  type NatsBusOptions,
  type NatsEventBus,
} from './nats.js';

const NATS_URL = process.env.NEXUS_TEST_NATS_URL;
const TAG = `T${process.pid}${Date.now()}`;
const STREAM = `NEXUS_${TAG}`;
const PREFIX = `${TAG.toLowerCase()}.evt`;

let counter = 0;

/** A message about one entity; `market` keeps each test's messages apart in the shared stream. */
function message(market: string, n: number, type = 'product.updated.v1'): OutgoingMessage {
  const id = `evt-${TAG}-${market}-${n}-${counter++}`;
  const envelope = {
    specversion: '1.0',
    id,
    source: '/test',
    type,
    subject: 'product/P-1',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    dataschema: '/registry/subjects/x/versions/1',
    data: { n },
    market,
    partitionkey: 'product/P-1',
  };
  return {
    eventId: id,
    subject: `nexus.evt.${market}.${type}`,
    partitionKey: envelope.partitionkey,
    envelope: JSON.stringify(envelope),
  };
}

const dataN = (d: Delivery) => (d.envelope.data as { n: number }).n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** A TCP proxy in front of the NATS server whose connections a test can cut. */
async function cuttableProxy(target: string) {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let accepting = true;
  let swallow = false;
  const server = createServer((client) => {
    if (!accepting) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect(Number(port || 4222), hostname);
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      if (!swallow) client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `nats://127.0.0.1:${(server.address() as AddressInfo).port}`,
    /** Cuts every connection; new ones are refused until `accept(true)`. */
    cut(refuse = false) {
      accepting = !refuse;
      swallow = false;
      for (const socket of [...sockets]) socket.destroy();
    },
    /** From now on, what the server sends is lost on the way (until the next cut). */
    swallow() {
      swallow = true;
    },
    accept(on: boolean) {
      accepting = on;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of [...sockets]) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('subject mapping', () => {
  const m = subjectMapping('t1.evt');

  it('rewrites the port prefix on the wire and back', () => {
    expect(m.toWire('nexus.evt.DE.order.placed.v1')).toBe('t1.evt.DE.order.placed.v1');
    expect(m.fromWire('t1.evt.DE.order.placed.v1')).toBe('nexus.evt.DE.order.placed.v1');
    expect(() => m.toWire('other.DE.order.placed.v1')).toThrow(/nexus\.evt\./);
  });

  it('translates filters so that they select the same events', () => {
    expect(m.filterToWire('nexus.evt.>')).toBe('t1.evt.>');
    expect(m.filterToWire('nexus.evt.DE.>')).toBe('t1.evt.DE.>');
    expect(m.filterToWire('nexus.evt.*.inventory.>')).toBe('t1.evt.*.inventory.>');
    expect(m.filterToWire('>')).toBe('t1.evt.>');
    expect(m.filterToWire('nexus.>')).toBe('t1.evt.>');
    expect(m.filterToWire('*.*.DE.>')).toBe('t1.evt.DE.>');
    expect(m.filterToWire('other.evt.>')).toMatch(/^t1\.evt\.[a-z_]+$/);
    expect(m.filterToWire('nexus.evt')).toMatch(/^t1\.evt\.[a-z_]+$/);
  });

  it('makes NATS-safe durable names that stay distinct', () => {
    expect(durableName('inventory-projector')).toBe('inventory-projector');
    const a = durableName('orders.v1 relay>*');
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(durableName('orders_v1_relay__'));
  });
});

describe.skipIf(!NATS_URL)('NATS JetStream bus adapter', () => {
  const url = NATS_URL ?? '';
  const opened: NatsEventBus[] = [];
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  async function open(extra: Partial<NatsBusOptions> = {}): Promise<NatsEventBus> {
    const bus = await openNatsBus({
      url,
      stream: STREAM,
      subjectPrefix: PREFIX,
      name: `nexus-test-${TAG}`,
      ...extra,
    });
    opened.push(bus);
    return bus;
  }

  /** Subscribes and records what the handler saw. */
  async function collect(
    bus: NatsEventBus,
    name: string,
    filter: string,
    startAt?: 'earliest' | 'latest',
  ) {
    const seen: Delivery[] = [];
    const sub = await bus.subscribe({ name, filter, startAt }, (d) => {
      seen.push(d);
      return Promise.resolve();
    });
    return { seen, sub };
  }

  beforeAll(async () => {
    nc = await connect({ servers: url });
    jsm = await jetstreamManager(nc);
  });

  afterAll(async () => {
    for (const bus of opened) await bus.abort().catch(() => undefined);
    await jsm?.streams.delete(STREAM).catch(() => false);
    await nc?.close();
  });

  it('creates the stream with the requested subjects, file storage and windows', async () => {
    await open();
    const info = await jsm.streams.info(STREAM);
    expect(info.config.subjects).toEqual([`${PREFIX}.>`]);
    expect(info.config.storage).toBe('file');
    expect(info.config.duplicate_window).toBe(nanos(2 * 60_000));
    expect(info.config.max_age).toBe(nanos(7 * 24 * 3600_000));
  });

  it('stores an event id published twice once', async () => {
    const bus = await open();
    const first = message('DUP', 1);
    await bus.publish([first]);
    await bus.publish([first, message('DUP', 2)]);
    const info = await jsm.streams.info(STREAM, { subjects_filter: `${PREFIX}.DUP.>` });
    expect(info.state.subjects?.[`${PREFIX}.DUP.product.updated.v1`]).toBe(2);

    const { seen, sub } = await collect(bus, 'dedupe', 'nexus.evt.DUP.>');
    await waitFor(() => seen.length >= 2);
    await sleep(200);
    await sub.stop();
    expect(seen.map(dataN)).toEqual([1, 2]);
    expect(seen[0]).toMatchObject({
      eventId: first.eventId,
      subject: 'nexus.evt.DUP.product.updated.v1',
      partitionKey: 'product/P-1',
      redelivered: false,
    });
  });

  it('keeps array order as stream order for a concurrently published batch of 1,000', async () => {
    const bus = await open();
    const batch = Array.from({ length: 1000 }, (_, i) => message('ORD', i));
    await bus.publish(batch);
    const { seen, sub } = await collect(bus, 'order', 'nexus.evt.ORD.>');
    await waitFor(() => seen.length === 1000);
    await sub.stop();
    expect(seen.map(dataN)).toEqual(batch.map((_, i) => i));
    expect(seen.map((d) => d.eventId)).toEqual(batch.map((m) => m.eventId));
    // One batch, one publisher: the sequences are contiguous as well as increasing.
    seen.forEach((d, i) => expect(d.streamSeq).toBe(seen[0]!.streamSeq + i));
  });

  it('resumes at the first unacknowledged message after a crash, in order', async () => {
    const crashed = await open();
    await crashed.publish([1, 2, 3, 4, 5, 6].map((n) => message('CR', n)));
    const before: number[] = [];
    await crashed.subscribe({ name: 'crash.group', filter: 'nexus.evt.CR.>' }, (d) => {
      before.push(dataN(d));
      // The process "hangs" on message 3 and then dies.
      return dataN(d) === 3 ? new Promise<void>(() => undefined) : Promise.resolve();
    });
    await waitFor(() => before.includes(3));
    const durable = durableName('crash.group');
    // 3 is in the handler, 4..6 were pulled ahead: all handed out, none acknowledged.
    await waitFor(() => before.length === 3);
    // 1 and 2 are acknowledged together, a moment after they were consumed (D41).
    let pending = await jsm.consumers.info(STREAM, durable);
    for (let i = 0; i < 100 && pending.num_ack_pending > 4; i++) {
      await sleep(10);
      pending = await jsm.consumers.info(STREAM, durable);
    }
    expect(pending.num_ack_pending).toBe(4);
    expect(pending.ack_floor.stream_seq).toBeLessThan(pending.delivered.stream_seq);
    await crashed.abort();

    const restarted = await open();
    await restarted.publish([message('CR', 7)]);
    const { seen, sub } = await collect(restarted, 'crash.group', 'nexus.evt.CR.>');
    await waitFor(() => seen.length >= 5);
    await sleep(200);
    await sub.stop();
    expect(before).toEqual([1, 2, 3]);
    expect(seen.map(dataN)).toEqual([3, 4, 5, 6, 7]);
    expect(seen.map((d) => d.redelivered)).toEqual([true, true, true, true, false]);
    const after = await jsm.consumers.info(STREAM, durable);
    expect(after.num_ack_pending).toBe(0);
    expect(after.ack_floor.stream_seq).toBe(seen[4]!.streamSeq);
  });

  it("skips earlier messages for a new group that starts at 'latest'", async () => {
    const bus = await open();
    await bus.publish([message('LAT', 1), message('LAT', 2)]);
    const { seen, sub } = await collect(bus, 'latest', 'nexus.evt.LAT.>', 'latest');
    await bus.publish([message('LAT', 3)]);
    await waitFor(() => seen.length === 1);
    await sleep(200);
    await sub.stop();
    expect(seen.map(dataN)).toEqual([3]);
  });

  it('offers a failed message again after a pause, before any later one', async () => {
    const bus = await open();
    await bus.publish([1, 2, 3].map((n) => message('RTY', n)));
    const attempts: Array<{ n: number; redelivered: boolean; at: number }> = [];
    const sub = await bus.subscribe({ name: 'retry', filter: 'nexus.evt.RTY.>' }, (d) => {
      attempts.push({ n: dataN(d), redelivered: d.redelivered, at: Date.now() });
      const failures = attempts.filter((a) => a.n === 2).length;
      return dataN(d) === 2 && failures <= 2
        ? Promise.reject(new Error('not yet'))
        : Promise.resolve();
    });
    await waitFor(() => attempts.some((a) => a.n === 3));
    await sub.stop();
    expect(attempts.map((a) => a.n)).toEqual([1, 2, 2, 2, 3]);
    expect(attempts.map((a) => a.redelivered)).toEqual([false, false, true, true, false]);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(150);
  });

  it('holds slow messages past ack_wait so they are not redelivered out of order', async () => {
    const bus = await open({ ackWaitMs: 1_000 });
    await bus.publish([1, 2, 3, 4].map((n) => message('SLOW', n)));
    const seen: number[] = [];
    const sub = await bus.subscribe({ name: 'slow', filter: 'nexus.evt.SLOW.>' }, async (d) => {
      seen.push(dataN(d));
      if (dataN(d) === 1) await sleep(2_500);
    });
    await waitFor(() => seen.length === 1);
    await sleep(1_800);
    // Twice ack_wait into the handler: all four are still held, none was redelivered.
    const held = await jsm.consumers.info(STREAM, 'slow');
    expect(held.num_ack_pending).toBe(4);
    expect(held.num_redelivered).toBe(0);
    await waitFor(() => seen.length >= 4);
    await sleep(1_500);
    await sub.stop();
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it('resumes a group at its position when its filter changes', async () => {
    const bus = await open();
    await bus.publish([
      message('RF', 1, 'a.changed.v1'),
      message('RF', 2, 'b.changed.v1'),
      message('RF', 3, 'a.changed.v1'),
    ]);
    const first = await collect(bus, 'refilter', 'nexus.evt.RF.a.>');
    await waitFor(() => first.seen.length === 2);
    await first.sub.stop();
    await bus.publish([message('RF', 4, 'b.changed.v1'), message('RF', 5, 'a.changed.v1')]);
    const second = await collect(bus, 'refilter', 'nexus.evt.RF.>');
    await waitFor(() => second.seen.length === 2);
    await sleep(200);
    await second.sub.stop();
    expect(first.seen.map(dataN)).toEqual([1, 3]);
    expect(second.seen.map(dataN)).toEqual([4, 5]);
    const info = await jsm.consumers.info(STREAM, 'refilter');
    expect(info.config.filter_subject).toBe(`${PREFIX}.RF.>`);
  });

  it('acknowledges a run of consumed messages together, and all of them', async () => {
    const bus = await open();
    const durable = durableName('runs');
    // Core NATS sees the acknowledgements on their subjects, as the server receives them.
    const acks = nc.subscribe(`$JS.ACK.${STREAM}.${durable}.>`);
    let ackCount = 0;
    void (async () => {
      for await (const _ of acks) ackCount++;
    })();
    await bus.publish(Array.from({ length: 300 }, (_, i) => message('RUN', i + 1)));
    const { seen, sub } = await collect(bus, 'runs', 'nexus.evt.RUN.>');
    await waitFor(() => seen.length === 300);
    let info = await jsm.consumers.info(STREAM, durable);
    for (let i = 0; i < 100 && info.num_ack_pending > 0; i++) {
      await sleep(10);
      info = await jsm.consumers.info(STREAM, durable);
    }
    await sub.stop();
    acks.unsubscribe();
    expect(seen.map(dataN)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(info.num_ack_pending).toBe(0);
    expect(info.ack_floor.stream_seq).toBe(seen[299]!.streamSeq);
    expect(info.config.ack_policy).toBe(AckPolicy.All);
    // One per message before D41; now one per run (at most a quarter of max_ack_pending).
    expect(ackCount).toBeGreaterThan(0);
    expect(ackCount).toBeLessThan(30);
  });

  it('takes over a group made with one acknowledgement per message at its position', async () => {
    const bus = await open();
    await bus.publish([1, 2, 3, 4].map((n) => message('OLD', n)));
    const durable = durableName('older');
    // As an earlier version left it: explicit acknowledgements, 1 and 2 consumed.
    await jsm.consumers.add(STREAM, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      filter_subject: `${PREFIX}.OLD.>`,
      deliver_policy: DeliverPolicy.All,
    });
    const older = await jetstream(nc).consumers.get(STREAM, durable);
    for (const n of [1, 2]) {
      const m = await older.next();
      expect(m && (JSON.parse(m.string()) as { data: { n: number } }).data.n).toBe(n);
      await m!.ackAck();
    }
    const { seen, sub } = await collect(bus, 'older', 'nexus.evt.OLD.>');
    await waitFor(() => seen.length >= 2);
    await sleep(200);
    await sub.stop();
    expect(seen.map(dataN)).toEqual([3, 4]);
    const info = await jsm.consumers.info(STREAM, durable);
    expect(info.config.ack_policy).toBe(AckPolicy.All);
  });

  it('updates the settings of an existing stream instead of failing', async () => {
    await open({ duplicateWindowMs: 60_000, maxAge: 24 * 3600_000 });
    const info = await jsm.streams.info(STREAM);
    expect(info.config.duplicate_window).toBe(nanos(60_000));
    expect(info.config.max_age).toBe(nanos(24 * 3600_000));
  });

  it('keeps delivering in order, without gaps or repeats, across a dropped connection', async () => {
    const proxy = await cuttableProxy(url);
    try {
      const direct = await open();
      const viaProxy = await open({ url: proxy.url });
      await direct.publish(Array.from({ length: 200 }, (_, i) => message('NET', i + 1)));
      const seen: number[] = [];
      const sub = await viaProxy.subscribe(
        { name: 'net', filter: 'nexus.evt.NET.>' },
        async (d) => {
          seen.push(dataN(d));
          await sleep(10);
        },
      );
      await waitFor(() => seen.length >= 50);
      // Down for a while: the handler works through what it had pulled, its acks are lost.
      proxy.cut(true);
      await expect(viaProxy.ping()).rejects.toThrow();
      proxy.accept(true);
      await waitFor(() => seen.length >= 200, 20_000);
      // The client drops what is written while it is disconnected: publish once it is back.
      const back = Date.now() + 10_000;
      while (
        !(await viaProxy.ping().then(
          () => true,
          () => false,
        )) &&
        Date.now() < back
      ) {
        await sleep(100);
      }
      await viaProxy.publish(Array.from({ length: 10 }, (_, i) => message('NET', 201 + i)));
      await waitFor(() => seen.length >= 210);
      await sleep(300);
      await sub.stop();
      expect(seen).toEqual(Array.from({ length: 210 }, (_, i) => i + 1));
      const info = await jsm.consumers.info(STREAM, 'net');
      expect(info.num_ack_pending).toBe(0);
    } finally {
      await proxy.close();
    }
  });

  it('offers messages lost on the wire before newer ones once reconnected', async () => {
    const proxy = await cuttableProxy(url);
    try {
      const direct = await open();
      const viaProxy = await open({ url: proxy.url });
      const { seen, sub } = await collect(viaProxy, 'lost', 'nexus.evt.LOST.>');
      await direct.publish([1, 2, 3].map((n) => message('LOST', n)));
      await waitFor(() => seen.length === 3);
      proxy.swallow();
      await direct.publish([4, 5, 6].map((n) => message('LOST', n)));
      // The server has handed 4..6 to the subscription, which never got them.
      await sleep(300);
      const inTransit = await jsm.consumers.info(STREAM, 'lost');
      expect(inTransit.num_ack_pending).toBe(3);
      proxy.cut();
      const back = Date.now() + 10_000;
      while (
        !(await viaProxy.ping().then(
          () => true,
          () => false,
        )) &&
        Date.now() < back
      ) {
        await sleep(100);
      }
      await direct.publish([7, 8, 9].map((n) => message('LOST', n)));
      // Well before ack_wait (30 s) would have brought 4..6 back, behind 7..9.
      await waitFor(() => seen.length >= 9, 10_000);
      await sleep(200);
      await sub.stop();
      expect(seen.map(dataN)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(seen.slice(3, 6).every((d) => d.redelivered)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it('answers ping while connected and throws once closed', async () => {
    const bus = await open();
    await expect(bus.ping()).resolves.toBeUndefined();
    await bus.close();
    await expect(bus.ping()).rejects.toThrow();
  });
});
