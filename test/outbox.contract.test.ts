import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventBus } from '../src/platform/bus/bus.js';
import { systemContext } from '../src/platform/context.js';
import { ConsumerGroup } from '../src/platform/events/consumer.js';
import { OutboxRelay } from '../src/platform/events/relay.js';
import { Transactor } from '../src/platform/events/unit-of-work.js';
import { SchemaValidator } from '../src/platform/validation.js';
import { busTargets, disposeBusConfig, openBus, type BusConfig } from './support/buses.js';
import {
  recordApplication,
  TEST_EVENT,
  testSchemas,
  type CrashPlan,
} from './support/crash-child.js';
import { waitFor, type OpenedStorage } from './support/targets.js';

function runChild(
  plan: CrashPlan,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/crash-child.ts', JSON.stringify(plan)],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
}

describe.each(busTargets)('transactional outbox: $name', (target) => {
  let opened: OpenedStorage;
  let config: BusConfig;
  let bus: EventBus;
  let transactor: Transactor;

  beforeEach(async () => {
    opened = await target.storage.open();
    config = target.config();
    bus = await openBus(config, opened.storage);
    transactor = new Transactor(opened.storage, testSchemas, new SchemaValidator(), '/contract');
    const id =
      opened.storage.dialect === 'postgres'
        ? 'bigserial primary key'
        : 'integer primary key autoincrement';
    await sql
      .raw(`create table contract_applied (id ${id}, event_id text not null, n integer not null)`)
      .execute(opened.storage.db);
  });
  afterEach(async () => {
    await bus.close();
    await disposeBusConfig(config);
    await opened.dispose();
  });

  const commitEvents = async (count: number) => {
    for (let n = 0; n < count; n++) {
      await transactor.run(systemContext('test'), (uow) => {
        uow.emit({ type: TEST_EVENT, subject: `thing/${n % 5}`, data: { n } });
        return Promise.resolve();
      });
    }
  };
  const unpublished = async () =>
    Number(
      (
        await opened.storage.db
          .selectFrom('outbox')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('published_at', 'is', null)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const applications = async () =>
    (
      await sql<{
        event_id: string;
        n: number;
      }>`select event_id, n from contract_applied order by id`.execute(opened.storage.db)
    ).rows;

  it('commits state and event together, or neither', async () => {
    await expect(
      transactor.run(systemContext('test'), async (uow) => {
        uow.emit({ type: TEST_EVENT, subject: 'thing/x', data: { n: 1 } });
        await sql`insert into contract_applied (event_id, n) values ('state', 1)`.execute(uow.trx);
        throw new Error('business rule failed after the write');
      }),
    ).rejects.toThrow('business rule');
    expect(await unpublished()).toBe(0);
    expect(await applications()).toEqual([]);
  });

  it('refuses an event that does not match its schema, leaving nothing half-applied', async () => {
    await expect(
      transactor.run(systemContext('test'), async (uow) => {
        await sql`insert into contract_applied (event_id, n) values ('state', 1)`.execute(uow.trx);
        uow.emit({ type: TEST_EVENT, subject: 'thing/x', data: { n: 'one' } });
      }),
    ).rejects.toMatchObject({ code: 'SCHEMA_VIOLATION', errors: [{ pointer: '/data/n' }] });
    await expect(
      transactor.run(systemContext('test'), (uow) => {
        uow.emit({ type: 'unknown.type.v1', subject: 'thing/x', data: {} });
        return Promise.resolve();
      }),
    ).rejects.toMatchObject({ code: 'SCHEMA_VIOLATION' });
    expect(await unpublished()).toBe(0);
    expect(await applications()).toEqual([]);
  });

  it('loses nothing and applies nothing twice when the relay and then a consumer are killed mid-way', async () => {
    const total = 50;
    await commitEvents(total);
    const storagePlan = { kind: opened.storage.dialect, where: opened.where };

    // 1. A relay process publishes its first batch and is SIGKILLed before marking it sent.
    const relayCrash = await runChild({
      storage: storagePlan,
      bus: config,
      mode: 'relay',
      batchSize: 20,
    });
    expect(relayCrash.signal, relayCrash.stderr).toBe('SIGKILL');
    expect(await unpublished()).toBe(total);

    // 2. A new relay publishes everything again; the bus drops the 20 it already has.
    const relay = new OutboxRelay(opened.storage, bus, { batchSize: 20 });
    expect(await relay.drain()).toBe(total);
    expect(await unpublished()).toBe(0);

    // 3. A consumer process applies 10 events and is SIGKILLed after the 10th commit, before its ack.
    const consumerCrash = await runChild({
      storage: storagePlan,
      bus: config,
      mode: 'consumer',
      crashAfter: 10,
    });
    expect(consumerCrash.signal, consumerCrash.stderr).toBe('SIGKILL');
    expect(await applications()).toHaveLength(10);

    // 4. The group resumes here: redelivered events find their inbox rows and are skipped.
    const group = new ConsumerGroup(
      { storage: opened.storage, bus, transactor },
      { name: 'crash-consumer', filter: 'nexus.evt.>' },
      async (event, uow, delivery) =>
        recordApplication(uow.trx, delivery.eventId, (event.data as { n: number }).n),
    );
    group.start();
    await waitFor(async () => (await applications()).length >= total, { timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 300));
    await group.stop();

    const applied = await applications();
    expect(applied).toHaveLength(total);
    expect(new Set(applied.map((a) => a.event_id)).size).toBe(total);
    expect(applied.map((a) => a.n)).toEqual(Array.from({ length: total }, (_, n) => n));
    expect(group.stats.duplicates).toBeGreaterThanOrEqual(1);
  });

  it('parks an event that keeps failing in the dead-letter store and moves on', async () => {
    await commitEvents(3);
    const relay = new OutboxRelay(opened.storage, bus);
    await relay.drain();
    let fixed = false;
    const group = new ConsumerGroup(
      { storage: opened.storage, bus, transactor },
      { name: 'picky', filter: 'nexus.evt.>', maxAttempts: 2, backoffMs: 5 },
      async (event, uow, delivery) => {
        const n = (event.data as { n: number }).n;
        if (n === 1 && !fixed) throw new Error('cannot handle n=1');
        await recordApplication(uow.trx, delivery.eventId, n);
      },
    );
    group.start();
    await waitFor(async () => (await applications()).length === 2);
    await group.stop();
    expect((await applications()).map((a) => a.n)).toEqual([0, 2]);
    const dead = await opened.storage.db.selectFrom('dead_letters').selectAll().execute();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({
      consumer: 'picky',
      error: 'cannot handle n=1',
      attempts: 2,
      status: 'open',
    });
    expect(JSON.parse(dead[0]!.envelope)).toMatchObject({ data: { n: 1 } });

    // The cause is fixed and an operator asks for a replay (POST /v1/dead-letters/:id/replay):
    // the group's active instance applies the event once and closes the letter.
    fixed = true;
    await opened.storage.db
      .updateTable('dead_letters')
      .set({ status: 'replay-requested' })
      .execute();
    group.start();
    await waitFor(async () => (await applications()).length === 3, { timeoutMs: 5000 });
    await waitFor(async () => {
      const letter = await opened.storage.db
        .selectFrom('dead_letters')
        .selectAll()
        .executeTakeFirstOrThrow();
      return letter.status === 'replayed';
    });
    await group.stop();
    expect((await applications()).map((a) => a.n)).toEqual([0, 2, 1]);
  });

  it('lets one process at a time be the active instance of a group', async () => {
    await commitEvents(5);
    await new OutboxRelay(opened.storage, bus).drain();
    const make = () =>
      new ConsumerGroup(
        { storage: opened.storage, bus, transactor },
        { name: 'single', filter: 'nexus.evt.>' },
        async (event, uow, d) =>
          recordApplication(uow.trx, d.eventId, (event.data as { n: number }).n),
      );
    const a = make();
    const b = make();
    a.start();
    b.start();
    await waitFor(async () => (await applications()).length === 5);
    expect([a.active, b.active].filter(Boolean)).toHaveLength(1);
    await Promise.all([a.stop(), b.stop()]);
  });
});
