import { sql } from 'kysely';
import type { EventEnvelope } from '../../model/schemas/event.js';
import { insertRows } from '../db/bulk.js';
import type { Storage } from '../db/storage.js';
import type { BusMessageTable } from '../db/tables.js';
import {
  subjectMatches,
  type ConsumerOptions,
  type Delivery,
  type EventBus,
  type OutgoingMessage,
  type Subscription,
  type TailOptions,
} from './bus.js';

export interface EmbeddedBusOptions {
  /** How often a subscription looks for messages published by another process. */
  pollIntervalMs?: number;
  /** Pause before a failed message is offered again. */
  retryDelayMs?: number;
  batchSize?: number;
}

/**
 * The embedded bus: the stream is a table in the hub's own database (bus_messages), group
 * positions another (bus_consumers). Publishers in this process wake subscribers directly,
 * so delivery follows the commit within the same tick; polling covers other processes.
 */
export function openEmbeddedBus(storage: Storage, options: EmbeddedBusOptions = {}): EventBus {
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const retryDelayMs = options.retryDelayMs ?? 200;
  const batchSize = options.batchSize ?? 500;
  const wakers = new Set<() => void>();
  const subscriptions = new Set<Subscription>();
  const db = storage.db;

  async function publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const now = Date.now();
    // SQLite allows 32,766 bound parameters per statement; 5 per row keeps chunks well under.
    for (let i = 0; i < messages.length; i += 1000) {
      const rows = messages
        .slice(i, i + 1000)
        .map((m) => [m.eventId, m.subject, m.partitionKey, m.envelope, now]);
      await insertRows(
        db,
        'insert into bus_messages (event_id, subject, partition_key, envelope, published_at)',
        5,
        rows,
        'on conflict (event_id) do nothing',
      );
    }
    wakers.forEach((wake) => wake());
  }

  type Row = BusMessageTable & { seq: number };

  /** Plain SQL on the per-event path (as in the relay): far less garbage than the builder. */
  async function readAfter(position: number): Promise<Row[]> {
    const { rows } = await sql<Row>`
      select seq, event_id, subject, partition_key, envelope, published_at from bus_messages
      where seq > ${position} order by seq limit ${batchSize}`.execute(db);
    return rows;
  }

  const toDelivery = (row: Row): Delivery => ({
    eventId: row.event_id,
    subject: row.subject,
    partitionKey: row.partition_key,
    envelope: JSON.parse(row.envelope) as EventEnvelope,
    streamSeq: row.seq,
    redelivered: false,
  });

  async function lastSeq(): Promise<number> {
    const last = await db
      .selectFrom('bus_messages')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    return Number(last?.seq ?? 0);
  }

  /**
   * Runs a reader loop: `sleep` ends early when this process publishes (or at stop), so
   * delivery follows the commit within the same tick; otherwise the loop polls.
   */
  function reader(
    run: (loop: { stopped: () => boolean; sleep: (ms: number) => Promise<void> }) => Promise<void>,
  ): Subscription {
    let stopped = false;
    let pending = false;
    let wake: () => void = () => undefined;
    const waker = () => {
      pending = true;
      wake();
    };
    wakers.add(waker);
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        if (pending || stopped) {
          pending = false;
          resolve();
          return;
        }
        const timer = setTimeout(done, ms);
        function done() {
          clearTimeout(timer);
          wake = () => undefined;
          pending = false;
          resolve();
        }
        wake = done;
      });
    const loop = run({ stopped: () => stopped, sleep });
    const subscription: Subscription = {
      async stop() {
        stopped = true;
        wake();
        wakers.delete(waker);
        await loop;
        subscriptions.delete(subscription);
      },
    };
    subscriptions.add(subscription);
    return subscription;
  }

  async function subscribe(
    consumer: ConsumerOptions,
    handler: (delivery: Delivery) => Promise<void>,
  ): Promise<Subscription> {
    let position = await loadPosition(consumer);
    return reader(async ({ stopped, sleep }) => {
      while (!stopped()) {
        try {
          const rows = await readAfter(position);
          let consumed = position;
          for (const row of rows) {
            if (stopped()) break;
            if (subjectMatches(consumer.filter, row.subject)) {
              const delivery = toDelivery(row);
              for (;;) {
                try {
                  await handler(delivery);
                  break;
                } catch {
                  if (stopped()) break;
                  delivery.redelivered = true;
                  await new Promise((r) => setTimeout(r, retryDelayMs));
                }
              }
              if (stopped()) break;
            }
            consumed = row.seq;
          }
          if (consumed > position) {
            position = consumed;
            await savePosition(consumer.name, position);
          }
          if (rows.length < batchSize) await sleep(pollIntervalMs);
        } catch {
          // The database is unreachable or busy: keep the position and try again shortly.
          await sleep(retryDelayMs);
        }
      }
    });
  }

  async function tail(
    options: TailOptions,
    handler: (delivery: Delivery) => void,
  ): Promise<Subscription> {
    let position = options.after === 'now' ? await lastSeq() : options.after;
    return reader(async ({ stopped, sleep }) => {
      while (!stopped()) {
        try {
          const rows = await readAfter(position);
          for (const row of rows) {
            if (stopped()) break;
            position = row.seq;
            if (subjectMatches(options.filter, row.subject)) handler(toDelivery(row));
          }
          if (rows.length < batchSize) await sleep(pollIntervalMs);
        } catch {
          // Unreachable database: keep the position and look again shortly.
          await sleep(retryDelayMs);
        }
      }
    });
  }

  async function loadPosition(consumer: ConsumerOptions): Promise<number> {
    const existing = await db
      .selectFrom('bus_consumers')
      .select(['position', 'filter'])
      .where('name', '=', consumer.name)
      .executeTakeFirst();
    if (existing) {
      if (existing.filter !== consumer.filter) {
        await db
          .updateTable('bus_consumers')
          .set({ filter: consumer.filter, updated_at: Date.now() })
          .where('name', '=', consumer.name)
          .execute();
      }
      return existing.position;
    }
    const start = consumer.startAt === 'latest' ? await lastSeq() : 0;
    await db
      .insertInto('bus_consumers')
      .values({
        name: consumer.name,
        filter: consumer.filter,
        position: start,
        updated_at: Date.now(),
      })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    return start;
  }

  async function savePosition(name: string, position: number): Promise<void> {
    await sql`update bus_consumers set position = ${position}, updated_at = ${Date.now()}
      where name = ${name}`.execute(db);
  }

  return {
    kind: 'embedded',
    publish,
    subscribe,
    tail,
    ping: () => storage.ping(),
    async close() {
      await Promise.all([...subscriptions].map((s) => s.stop()));
    },
  };
}
