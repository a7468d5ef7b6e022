import { sql } from 'kysely';
import type { EventEnvelope } from '../../model/schemas/event.js';
import { insertRows } from '../db/bulk.js';
import type { Executor, Storage } from '../db/storage.js';
import type { BusMessageTable } from '../db/tables.js';
import {
  subjectMatches,
  type ConsumerOptions,
  type Delivery,
  type EventBus,
  type OutgoingMessage,
  type Subscription,
  type StreamAppender,
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

  /** `onConflict` '' makes a repeated event id an error (appends), else it is dropped. */
  async function insertMessages(
    executor: Executor,
    messages: readonly OutgoingMessage[],
    onConflict: string,
  ): Promise<void> {
    const now = Date.now();
    // SQLite allows 32,766 bound parameters per statement; 5 per row keeps chunks well under.
    for (let i = 0; i < messages.length; i += 1000) {
      const rows = messages
        .slice(i, i + 1000)
        .map((m) => [m.eventId, m.subject, m.partitionKey, m.envelope, now]);
      await insertRows(
        executor,
        'insert into bus_messages (event_id, subject, partition_key, envelope, published_at)',
        5,
        rows,
        onConflict,
      );
    }
  }

  const wakeAll = () => wakers.forEach((wake) => wake());

  async function publish(messages: readonly OutgoingMessage[]): Promise<void> {
    if (messages.length === 0) return;
    await insertMessages(db, messages, 'on conflict (event_id) do nothing');
    wakeAll();
  }

  // SQLite takes one writer at a time, so stream seqs drawn inside write transactions follow
  // commit order and a reader reading past its position never skips a later commit. On
  // PostgreSQL seqs are drawn before commit and could, so there the relay moves events.
  function appenderFor(outbox: Storage): StreamAppender | null {
    if (outbox !== storage || storage.dialect !== 'sqlite') return null;
    return {
      append: (trx, messages) => insertMessages(trx, messages, ''),
      committed: wakeAll,
    };
  }

  /**
   * The relay's path when the outbox is in this database: the oldest rows are copied onto the
   * stream in seq order and deleted, atomically, so nothing is read into this process or
   * written twice, and a crash leaves either both or neither.
   */
  async function takeFromOutbox(
    outbox: Storage,
    limit: number,
    beforeCommit?: () => Promise<void> | void,
  ): Promise<number | null> {
    if (outbox !== storage) return null;
    const now = Date.now();
    let moved: number;
    if (storage.dialect === 'postgres') {
      // One statement is its own transaction: one round trip per call, where a check for
      // pending rows plus begin, move and commit took four (the relay runs after every commit).
      // Only fault injection needs a transaction around it, to stop between move and commit.
      moved = beforeCommit
        ? await storage.transaction(async (trx) => {
            const n = await movePostgres(trx, limit, now);
            await beforeCommit();
            return n;
          })
        : await movePostgres(db, limit, now);
    } else {
      // Most calls find nothing (with an appender the outbox stays empty): no transaction then.
      const { rows: pending } = await sql`select seq from outbox order by seq limit 1`.execute(db);
      if (pending.length === 0) return 0;
      moved = await storage.transaction(async (trx) => {
        // SQLite has one writer: the two statements see the same oldest rows.
        await sql`insert into bus_messages (event_id, subject, partition_key, envelope, published_at)
          select event_id, subject, partition_key, envelope, ${now} from outbox where true
          order by seq limit ${limit} on conflict (event_id) do nothing`.execute(trx);
        const result = await sql`delete from outbox
          where seq in (select seq from outbox order by seq limit ${limit})`.execute(trx);
        await beforeCommit?.();
        return Number(result.numAffectedRows ?? 0n);
      });
    }
    if (moved > 0) wakeAll();
    return moved;
  }

  /** Rows enter bus_messages in the order the ordered SELECT yields them: their seq order. */
  async function movePostgres(executor: Executor, limit: number, now: number): Promise<number> {
    const { rows } = await sql<{ n: number }>`
      with moved as (
        delete from outbox where seq in (select seq from outbox order by seq limit ${limit})
        returning seq, event_id, subject, partition_key, envelope),
      copied as (
        insert into bus_messages (event_id, subject, partition_key, envelope, published_at)
        select event_id, subject, partition_key, envelope, ${now} from moved order by seq
        on conflict (event_id) do nothing)
      select count(*)::int as n from moved`.execute(executor);
    return Number(rows[0]?.n ?? 0);
  }

  type Row = BusMessageTable & { seq: number };

  /** Plain SQL on the per-event path (as in the relay): far less garbage than the builder. */
  async function readAfter(position: number): Promise<Row[]> {
    const { rows } = await sql<Row>`
      select seq, event_id, subject, partition_key, envelope, published_at from bus_messages
      where seq > ${position} order by seq limit ${batchSize}`.execute(db);
    return rows;
  }

  // The envelope is parsed when a handler first reads it: a group that skips most events by
  // subject (webhook fan-out without a subscriber for them) then parses none of them; it
  // was 5% of the hub's CPU under a reservation load through HTTP.
  const toDelivery = (row: Row): Delivery => {
    let envelope: EventEnvelope | undefined;
    return {
      eventId: row.event_id,
      subject: row.subject,
      partitionKey: row.partition_key,
      get envelope() {
        return (envelope ??= JSON.parse(row.envelope) as EventEnvelope);
      },
      streamSeq: row.seq,
      redelivered: false,
    };
  };

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
    appenderFor,
    takeFromOutbox,
    subscribe,
    tail,
    ping: () => storage.ping(),
    async close() {
      await Promise.all([...subscriptions].map((s) => s.stop()));
    },
  };
}
