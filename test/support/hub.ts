import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHub, type Hub } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/platform/config.js';
import { createLogger } from '../../src/platform/logging.js';
import { createPgDatabase, NATS_URL } from './targets.js';

export interface TestHub {
  hub: Hub;
  /** An operator key with every scope. */
  adminKey: string;
  request(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    options?: {
      body?: unknown;
      key?: string | null;
      headers?: Record<string, string>;
      raw?: string;
    },
  ): Promise<{
    status: number;
    headers: Record<string, string | string[] | number | undefined>;
    json: unknown;
    body: string;
  }>;
  /** Closes the hub and starts it again on the same database and configuration. */
  restart(): Promise<void>;
  dispose(): Promise<void>;
}

/** A hub on the storage and bus `env` names, silent, on a free port; not started. */
export const openQuietHub = (env: Record<string, string>): Promise<Hub> =>
  createHub(
    loadConfig({
      env,
      overrides: (raw) => {
        raw.log = { level: 'silent' };
        raw.http = { port: 0 };
      },
    }),
    { logger: createLogger({ level: 'silent' }) },
  );

export type HubShape = 'sqlite' | 'postgres' | 'postgres+nats';

/** A whole hub (migrated storage, bus, relay, HTTP server) on a fresh database. */
export async function startTestHub(
  shape: HubShape,
  extra: Partial<Record<string, unknown>> = {},
): Promise<TestHub> {
  let cleanup: () => Promise<void>;
  const env: NodeJS.ProcessEnv = {};
  let stream: string | undefined;
  if (shape === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'nexus-hub-'));
    env.NEXUS_SQLITE_FILE = join(dir, 'nexus.db');
    cleanup = () => Promise.resolve(rmSync(dir, { recursive: true, force: true }));
  } else {
    const database = await createPgDatabase();
    env.NEXUS_DATABASE_URL = database.url;
    // PostgreSQL hubs need a configured master key (tokenization); one per test database.
    env.NEXUS_MASTER_KEY = randomBytes(32).toString('base64');
    cleanup = () => database.drop();
    if (shape === 'postgres+nats') {
      env.NEXUS_NATS_URL = NATS_URL;
      stream = `NEXUS_HUBTEST_${process.pid}_${Date.now().toString(36)}`;
    }
  }
  const config: Config = loadConfig({
    env,
    overrides: (raw) => {
      raw.http = { port: 0 };
      raw.log = { level: 'silent' };
      // Own stream and wire prefix: test hubs share the machine's NATS server, and JetStream
      // refuses two streams over the same subjects.
      if (stream)
        Object.assign(raw.bus as object, { stream, subjectPrefix: `${stream.toLowerCase()}.evt` });
      Object.assign(raw, extra);
    },
  });
  // A hub that refuses to start (a test of exactly that) leaves no database behind.
  let hub = await createHub(config, { logger: createLogger({ level: 'silent' }) }).catch(
    async (error: unknown) => {
      await cleanup();
      throw error;
    },
  );
  hub.relay.start();
  const { secret } = await hub.services.access.create({
    name: 'test admin',
    channel: 'web',
    scopes: ['*'],
  });

  return {
    get hub() {
      return hub;
    },
    adminKey: secret,
    async request(method, url, options = {}) {
      const key = options.key === undefined ? secret : options.key;
      const headers: Record<string, string> = { ...(options.headers ?? {}) };
      if (key !== null) headers.authorization = `Bearer ${key}`;
      let payload: string | undefined;
      if (options.raw !== undefined) payload = options.raw;
      else if (options.body !== undefined) payload = JSON.stringify(options.body);
      if (payload !== undefined) headers['content-type'] ??= 'application/json';
      const response = await hub.server.inject({
        method,
        url,
        headers,
        ...(payload === undefined ? {} : { payload }),
      });
      let json: unknown = undefined;
      try {
        json = response.body ? (JSON.parse(response.body) as unknown) : undefined;
      } catch {
        json = undefined;
      }
      return { status: response.statusCode, headers: response.headers, json, body: response.body };
    },
    async restart() {
      await hub.close();
      hub = await createHub(config, { logger: createLogger({ level: 'silent' }) });
      hub.relay.start();
    },
    async dispose() {
      await hub.close();
      if (stream && NATS_URL) {
        const { connect } = await import('@nats-io/transport-node');
        const { jetstreamManager } = await import('@nats-io/jetstream');
        const nc = await connect({ servers: NATS_URL });
        await (await jetstreamManager(nc)).streams.delete(stream).catch(() => false);
        await nc.close();
      }
      await cleanup();
    },
  };
}

export const hubShapes: HubShape[] = [
  'sqlite',
  ...(process.env.NEXUS_TEST_DATABASE_URL ? (['postgres'] as const) : []),
  ...(process.env.NEXUS_TEST_DATABASE_URL && NATS_URL ? (['postgres+nats'] as const) : []),
];

/** Fixtures that satisfy the canonical schemas. */
export const fixtures = {
  market: (code = 'DE', overrides: Record<string, unknown> = {}) => ({
    code,
    name: `Market ${code}`,
    country: code.slice(0, 2),
    currency: code === 'SE' ? 'SEK' : code === 'GB' ? 'GBP' : 'EUR',
    defaultLocale: 'en-GB',
    locales: ['en-GB'],
    timeZone: 'Europe/Berlin',
    channels: ['web', 'app', 'pos'],
    ...overrides,
  }),
  location: (id: string, marketCode = 'DE', overrides: Record<string, unknown> = {}) => ({
    id,
    name: `Store ${id}`,
    type: 'store',
    marketCode,
    geo: { lat: 52.52, lon: 13.405 },
    timeZone: 'Europe/Berlin',
    capabilities: ['pickup', 'returns'],
    capacity: { ordersPerHour: 20 },
    ...overrides,
  }),
  product: (
    id: string,
    skus: Array<{ sku: string; gtin?: string }>,
    overrides: Record<string, unknown> = {},
  ) => ({
    id,
    name: { 'en-GB': `Product ${id}` },
    skus: skus.map((s) => ({ ...s })),
    ...overrides,
  }),
};
