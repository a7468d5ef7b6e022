// A hub process that dies by SIGKILL at a chosen point, for the outbox crash tests.
// Run as: node --import tsx test/support/crash-child.ts '<json>'
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import { openPostgres } from '../../src/platform/db/postgres.js';
import { openSqlite } from '../../src/platform/db/sqlite.js';
import { ConsumerGroup } from '../../src/platform/events/consumer.js';
import { OutboxRelay } from '../../src/platform/events/relay.js';
import { Transactor } from '../../src/platform/events/unit-of-work.js';
import { SchemaValidator } from '../../src/platform/validation.js';
import { openBus, type BusConfig } from './buses.js';

export interface CrashPlan {
  storage: { kind: 'sqlite' | 'postgres'; where: string };
  bus: BusConfig;
  mode: 'relay' | 'consumer';
  /** consumer mode: die after this many events were applied and committed. */
  crashAfter?: number;
  batchSize?: number;
}

export const TEST_EVENT = 'test.thing.changed.v1';
export const testSchemas = {
  lookup: (type: string) =>
    type === TEST_EVENT
      ? {
          schema: Type.Object({ n: Type.Integer() }, { additionalProperties: false }),
          dataschema: '/test',
        }
      : undefined,
};

/** The handler both the child and the parent run: it records each application, duplicates included. */
export const recordApplication = async (
  trx: Parameters<ConstructorParameters<typeof ConsumerGroup>[2]>[1]['trx'],
  eventId: string,
  n: number,
) => {
  await sql`insert into contract_applied (event_id, n) values (${eventId}, ${n})`.execute(trx);
};

async function main(plan: CrashPlan): Promise<void> {
  const storage =
    plan.storage.kind === 'sqlite'
      ? openSqlite({ file: plan.storage.where })
      : openPostgres({ url: plan.storage.where });
  const bus = await openBus(plan.bus, storage);
  const die = () => {
    process.kill(process.pid, 'SIGKILL');
  };
  if (plan.mode === 'relay') {
    const relay = new OutboxRelay(storage, bus, {
      batchSize: plan.batchSize ?? 20,
      afterPublish: die,
    });
    relay.start();
    return;
  }
  const transactor = new Transactor(storage, testSchemas, new SchemaValidator(), '/crash-child');
  let applied = 0;
  const group = new ConsumerGroup(
    { storage, bus, transactor },
    {
      name: 'crash-consumer',
      filter: 'nexus.evt.>',
      afterApply: () => {
        applied++;
        if (applied >= (plan.crashAfter ?? 1)) die();
      },
    },
    async (event, uow, delivery) =>
      recordApplication(uow.trx, delivery.eventId, (event.data as { n: number }).n),
  );
  group.start();
}

const arg = process.argv[2];
if (arg) {
  main(JSON.parse(arg) as CrashPlan).catch((error: unknown) => {
    console.error(error);
    process.exit(3);
  });
  // Exit on its own if the crash point never comes, so a broken test cannot hang CI.
  setTimeout(() => process.exit(4), 20_000).unref();
}
