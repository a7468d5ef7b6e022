import { openEmbeddedBus } from '../../src/platform/bus/embedded.js';
import type { EventBus } from '../../src/platform/bus/bus.js';
import type { Storage } from '../../src/platform/db/storage.js';
import { NATS_URL, postgresTarget, sqliteTarget, type StorageTarget } from './targets.js';

export interface BusConfig {
  kind: 'embedded' | 'nats';
  /** NATS only: stream and wire subject prefix unique to one test. */
  stream?: string;
  prefix?: string;
}

export interface BusTarget {
  name: string;
  storage: StorageTarget;
  /** A fresh, isolated bus configuration (unique stream on NATS). */
  config(): BusConfig;
}

let counter = 0;
export function natsConfig(): BusConfig {
  const tag = `T${process.pid}x${Date.now().toString(36)}x${(counter++).toString(36)}`;
  return { kind: 'nats', stream: `NEXUS_${tag}`, prefix: `${tag.toLowerCase()}.evt` };
}

export async function openBus(config: BusConfig, storage: Storage): Promise<EventBus> {
  if (config.kind === 'embedded')
    return openEmbeddedBus(storage, { pollIntervalMs: 50, retryDelayMs: 20 });
  const { openNatsBus } = await import('../../src/platform/bus/nats.js');
  if (!NATS_URL) throw new Error('NEXUS_TEST_NATS_URL is not set');
  return openNatsBus({
    url: NATS_URL,
    stream: config.stream!,
    subjectPrefix: config.prefix!,
    name: 'nexus-test',
  });
}

/** Removes what a NATS test left on the server; the embedded bus lives in the test database. */
export async function disposeBusConfig(config: BusConfig): Promise<void> {
  if (config.kind !== 'nats' || !NATS_URL) return;
  const { connect } = await import('@nats-io/transport-node');
  const { jetstreamManager } = await import('@nats-io/jetstream');
  const nc = await connect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(config.stream!).catch(() => false);
  } finally {
    await nc.close();
  }
}

const embeddedOn = (storage: StorageTarget): BusTarget => ({
  name: `embedded bus on ${storage.name}`,
  storage,
  config: () => ({ kind: 'embedded' }),
});

/** Every bus adapter this run can reach, each with the storage it runs beside. */
export const busTargets: BusTarget[] = [
  embeddedOn(sqliteTarget),
  ...(process.env.NEXUS_TEST_DATABASE_URL ? [embeddedOn(postgresTarget)] : []),
  ...(NATS_URL && process.env.NEXUS_TEST_DATABASE_URL
    ? [{ name: 'nats jetstream with postgres', storage: postgresTarget, config: natsConfig }]
    : []),
  ...(NATS_URL
    ? [{ name: 'nats jetstream with sqlite', storage: sqliteTarget, config: natsConfig }]
    : []),
];
