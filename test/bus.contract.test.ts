import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  eventSubject,
  type Delivery,
  type EventBus,
  type OutgoingMessage,
} from '../src/platform/bus/bus.js';
import { buildEnvelope } from '../src/platform/events/outbox.js';
import { busTargets, disposeBusConfig, openBus, type BusConfig } from './support/buses.js';
import { waitFor, type OpenedStorage } from './support/targets.js';

function message(n: number, type = 'product.updated.v1', market = 'DE'): OutgoingMessage {
  const envelope = buildEnvelope(
    { type, subject: `product/P-${n % 3}`, market, data: { n } },
    { source: '/test', dataschema: '/registry/subjects/x/versions/1' },
  );
  return {
    eventId: envelope.id,
    subject: eventSubject(envelope),
    partitionKey: envelope.partitionkey,
    envelope: JSON.stringify(envelope),
  };
}

const dataN = (d: Delivery) => (d.envelope.data as { n: number }).n;

describe.each(busTargets)('bus contract: $name', (target) => {
  let opened: OpenedStorage;
  let config: BusConfig;
  let bus: EventBus;

  beforeEach(async () => {
    opened = await target.storage.open();
    config = target.config();
    bus = await openBus(config, opened.storage);
  });
  afterEach(async () => {
    await bus.close();
    await disposeBusConfig(config);
    await opened.dispose();
  });

  it('delivers published messages in publish order with increasing stream positions', async () => {
    const messages = Array.from({ length: 300 }, (_, i) => message(i));
    await bus.publish(messages.slice(0, 150));
    await bus.publish(messages.slice(150));
    const seen: Delivery[] = [];
    const sub = await bus.subscribe({ name: 'order', filter: 'nexus.evt.>' }, (d) => {
      seen.push(d);
      return Promise.resolve();
    });
    await waitFor(() => seen.length === 300);
    await sub.stop();
    expect(seen.map(dataN)).toEqual(messages.map((_, i) => i));
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]!.streamSeq).toBeGreaterThan(seen[i - 1]!.streamSeq);
    expect(seen[0]!.subject).toBe('nexus.evt.DE.product.updated.v1');
    expect(seen[0]!.envelope.specversion).toBe('1.0');
  });

  it('tails from now or from a stream position, filtered, without a group', async () => {
    await bus.publish([message(1), message(2), message(3, 'market.updated.v1')]);
    const fromNow: Delivery[] = [];
    const live = await bus.tail({ filter: 'nexus.evt.*.product.>', after: 'now' }, (d) =>
      fromNow.push(d),
    );
    await bus.publish([message(4), message(5, 'market.updated.v1'), message(6)]);
    await waitFor(() => fromNow.length === 2);
    expect(fromNow.map(dataN)).toEqual([4, 6]);

    // A reconnecting reader resumes after the last position it saw (Last-Event-ID).
    const resumed: Delivery[] = [];
    const again = await bus.tail({ filter: 'nexus.evt.>', after: fromNow[0]!.streamSeq }, (d) =>
      resumed.push(d),
    );
    await waitFor(() => resumed.length === 2);
    expect(resumed.map(dataN)).toEqual([5, 6]);
    await bus.publish([message(7)]);
    await waitFor(() => resumed.length === 3 && fromNow.length === 3);
    expect(resumed.map(dataN)).toEqual([5, 6, 7]);
    await live.stop();
    await again.stop();
  });

  it('drops a re-published event id', async () => {
    const m = message(1);
    await bus.publish([m]);
    await bus.publish([m, message(2)]);
    const seen: number[] = [];
    const sub = await bus.subscribe({ name: 'dedupe', filter: 'nexus.evt.>' }, (d) => {
      seen.push(dataN(d));
      return Promise.resolve();
    });
    await waitFor(() => seen.length >= 2);
    await new Promise((r) => setTimeout(r, 200));
    await sub.stop();
    expect(seen).toEqual([1, 2]);
  });

  it('stores each event once, in order, when a batch repeats some already published', async () => {
    // A relay that crashed between publishing and deleting sends a batch again, possibly with
    // new events around the old ones: at the ends, in the middle, both.
    const base = 900;
    const once = Array.from({ length: 12 }, (_, i) => message(base + i + 1));
    const m = (n: number) => once[n - 1]!;
    await bus.publish([m(1), m(2), m(3), m(4), m(5)]);
    await bus.publish([m(6), m(3), m(7), m(8)]);
    await bus.publish([m(2), m(9), m(10)]);
    await bus.publish([m(11), m(12), m(5)]);
    const seen: number[] = [];
    const sub = await bus.subscribe({ name: 'repeats', filter: 'nexus.evt.>' }, (d) => {
      if (dataN(d) > base) seen.push(dataN(d) - base);
      return Promise.resolve();
    });
    await waitFor(() => seen.length >= 12);
    await new Promise((r) => setTimeout(r, 200));
    await sub.stop();
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('filters by market and by entity with NATS wildcards', async () => {
    await bus.publish([
      message(1, 'product.updated.v1', 'DE'),
      message(2, 'market.updated.v1', 'DE'),
      message(3, 'product.updated.v1', 'SE'),
    ]);
    const byMarket: number[] = [];
    const byEntity: number[] = [];
    const a = await bus.subscribe({ name: 'by-market', filter: 'nexus.evt.DE.>' }, (d) => {
      byMarket.push(dataN(d));
      return Promise.resolve();
    });
    const b = await bus.subscribe({ name: 'by-entity', filter: 'nexus.evt.*.product.>' }, (d) => {
      byEntity.push(dataN(d));
      return Promise.resolve();
    });
    await waitFor(() => byMarket.length === 2 && byEntity.length === 2);
    await Promise.all([a.stop(), b.stop()]);
    expect(byMarket).toEqual([1, 2]);
    expect(byEntity).toEqual([1, 3]);
  });

  it('offers a failed message again before any later one', async () => {
    await bus.publish([message(1), message(2), message(3)]);
    const seen: Array<[number, boolean]> = [];
    let failures = 0;
    const sub = await bus.subscribe({ name: 'retry', filter: 'nexus.evt.>' }, (d) => {
      seen.push([dataN(d), d.redelivered]);
      if (dataN(d) === 2 && failures < 2) {
        failures++;
        return Promise.reject(new Error('not yet'));
      }
      return Promise.resolve();
    });
    await waitFor(() => seen.some(([n]) => n === 3));
    await sub.stop();
    expect(seen.map(([n]) => n)).toEqual([1, 2, 2, 2, 3]);
    expect(seen[2]![1]).toBe(true);
  });

  it('resumes a durable group where it stopped', async () => {
    await bus.publish([message(1), message(2)]);
    const first: number[] = [];
    const sub1 = await bus.subscribe({ name: 'durable', filter: 'nexus.evt.>' }, (d) => {
      first.push(dataN(d));
      return Promise.resolve();
    });
    await waitFor(() => first.length === 2);
    await sub1.stop();
    await bus.publish([message(3), message(4)]);
    const second: number[] = [];
    const sub2 = await bus.subscribe({ name: 'durable', filter: 'nexus.evt.>' }, (d) => {
      second.push(dataN(d));
      return Promise.resolve();
    });
    await waitFor(() => second.length === 2);
    await new Promise((r) => setTimeout(r, 100));
    await sub2.stop();
    expect(second).toEqual([3, 4]);
  });

  it("starts a new group at the stream's end when asked for 'latest'", async () => {
    await bus.publish([message(1)]);
    const seen: number[] = [];
    const sub = await bus.subscribe(
      { name: 'latest', filter: 'nexus.evt.>', startAt: 'latest' },
      (d) => {
        seen.push(dataN(d));
        return Promise.resolve();
      },
    );
    await new Promise((r) => setTimeout(r, 100));
    await bus.publish([message(2)]);
    await waitFor(() => seen.length === 1);
    await sub.stop();
    expect(seen).toEqual([2]);
  });

  it('keeps independent positions for independent groups', async () => {
    await bus.publish([message(1), message(2)]);
    const a: number[] = [];
    const b: number[] = [];
    const subA = await bus.subscribe({ name: 'group-a', filter: 'nexus.evt.>' }, (d) => {
      a.push(dataN(d));
      return Promise.resolve();
    });
    await waitFor(() => a.length === 2);
    const subB = await bus.subscribe({ name: 'group-b', filter: 'nexus.evt.>' }, (d) => {
      b.push(dataN(d));
      return Promise.resolve();
    });
    await waitFor(() => b.length === 2);
    await Promise.all([subA.stop(), subB.stop()]);
    expect(a).toEqual([1, 2]);
    expect(b).toEqual([1, 2]);
  });

  it('answers ping', async () => {
    await expect(bus.ping()).resolves.toBeUndefined();
  });
});
