import type { FastifyInstance } from 'fastify';
import { HubMetrics } from './api/metrics.js';
import { purgeExpiredIdempotencyKeys } from './api/idempotency.js';
import { buildServer } from './api/server.js';
import { runCli, type HubFactory } from './cli/main.js';
import { CANONICAL_SCHEMAS } from './model/catalog.js';
import { EventEnvelope } from './model/schemas/event.js';
import type { InventoryLevelChanged } from './model/schemas/inventory.js';
import { EVENT_DATA_SCHEMAS } from './model/events.js';
import { NexusError } from './model/errors.js';
import { AccessService, accessRoutes } from './modules/access/index.js';
import { CatalogService, catalogRoutes } from './modules/catalog/index.js';
import { checkDedupRules, DedupService, dedupRoutes } from './modules/dedup/index.js';
import { IngestService, ingestRoutes } from './modules/ingest/index.js';
import {
  AvailabilityFeed,
  channelAvailability,
  InventoryService,
  ReservationExpiry,
  inventoryRoutes,
  type SiteDirectory,
} from './modules/inventory/index.js';
import { LocationsService, locationRoutes } from './modules/locations/index.js';
import {
  createWebhooks,
  WEBHOOK_SECRETS_KEY_INFO,
  type ChannelAvailabilitySource,
  type WebhooksService,
} from './modules/webhooks/index.js';
import {
  TokenizationService,
  tokenizationRoutes,
  type TokenizationMetrics,
} from './modules/tokenization/index.js';
import { MarketsService, marketRoutes } from './modules/markets/index.js';
import {
  buildAsyncApi,
  eventCatalogRoute,
  RegistryEventShaper,
  RegistryService,
  registryRoutes,
} from './modules/registry/index.js';
import type { EventBus } from './platform/bus/bus.js';
import { openEmbeddedBus } from './platform/bus/embedded.js';
import type { Config } from './platform/config.js';
import { migrateToLatest } from './platform/db/migrations.js';
import { openPostgres } from './platform/db/postgres.js';
import { openSqlite } from './platform/db/sqlite.js';
import type { Storage } from './platform/db/storage.js';
import { Housekeeping } from './platform/events/housekeeping.js';
import { OutboxRelay, type RelayOptions } from './platform/events/relay.js';
import { Transactor } from './platform/events/unit-of-work.js';
import { createLogger, type Logger } from './platform/logging.js';
import { Sealer } from './platform/sealing.js';
import { SchemaValidator } from './platform/validation.js';

export const VERSION = '0.1.0';

export interface Hub {
  config: Config;
  logger: Logger;
  storage: Storage;
  bus: EventBus;
  transactor: Transactor;
  relay: OutboxRelay;
  server: FastifyInstance;
  services: {
    access: AccessService;
    markets: MarketsService;
    locations: LocationsService;
    catalog: CatalogService;
    registry: RegistryService;
    ingest: IngestService;
    dedup: DedupService;
    inventory: InventoryService;
    webhooks: WebhooksService;
    tokenization: TokenizationService;
  };
  /** Live availability for server-sent-events clients (started by listen()). */
  availabilityFeed: AvailabilityFeed;
  /** Starts the relay and housekeeping and listens; returns the base URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

export interface HubOptions {
  logger?: Logger;
  relay?: Omit<RelayOptions, 'logger'>;
  /**
   * Check the dedup rules against the registered schemas at start (default true). Only
   * `nexus schema` turns it off: registering a type's schema is how a rule for it is mended.
   */
  checkDedupRules?: boolean;
}

/**
 * Tokenization's counts on the hub's counters. The per-value counter's children are kept per
 * (kind, class): looking labels up on every value would cost more than a convergent token.
 */
function tokenizationMetrics(metrics: HubMetrics): TokenizationMetrics {
  const children = new Map<string, { inc(): void }>();
  return {
    tokenized(kind, fieldClass) {
      const key = `${kind}/${fieldClass}`;
      let child = children.get(key);
      if (!child) children.set(key, (child = metrics.tokenizedValues.labels(kind, fieldClass)));
      child.inc();
    },
    audited(action, outcome, code) {
      metrics.tokenizationAudit.inc({ action, outcome, code: code ?? 'none' });
    },
  };
}

function openStorage(config: Config): Storage {
  return config.storage.kind === 'postgres'
    ? openPostgres({ url: config.storage.url, poolSize: config.storage.poolSize })
    : openSqlite({ file: config.storage.file, synchronous: config.storage.synchronous });
}

async function openBus(config: Config, storage: Storage): Promise<EventBus> {
  if (config.bus.kind === 'embedded') return openEmbeddedBus(storage);
  const { openNatsBus } = await import('./platform/bus/nats.js');
  return openNatsBus({
    url: config.bus.url,
    stream: config.bus.stream,
    subjectPrefix: config.bus.subjectPrefix,
    name: 'nexus-hub',
  });
}

/**
 * Webhook subscriptions with `availability` see a stock change as the live stream shows it to
 * the same channel: the inventory's `channelAvailability` over its cached locations and
 * channel policies (D36). The fan-out asks inside its transaction, so the location is looked
 * up on that transaction (on SQLite the root connection is the transaction's); the policy is
 * then as cached by that lookup, as for a reservation.
 */
export function webhookAvailability(sites: SiteDirectory): ChannelAvailabilitySource {
  return {
    async changeFor(envelope, { marketCode, channel }, db) {
      const data = envelope.data as InventoryLevelChanged;
      const site = (await sites.sitesOf([data.locationId], db)).get(data.locationId);
      const policy = sites.cachedPolicy(marketCode, channel);
      return channelAvailability(data, site, policy, channel, envelope.id);
    },
  };
}

/** Opens storage (migrating it), the bus, and wires every module. The one wiring point. */
export async function createHub(config: Config, options: HubOptions = {}): Promise<Hub> {
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const storage = openStorage(config);
  try {
    await storage.ping();
  } catch (error) {
    await storage.close().catch(() => undefined);
    throw new NexusError(
      'SERVICE_UNAVAILABLE',
      `cannot reach the database at ${storage.location}: ${String(error)}`,
    );
  }
  const migrated = await migrateToLatest(storage);
  if (migrated.error) {
    await storage.close();
    throw migrated.error instanceof Error
      ? migrated.error
      : new Error('migration failed', { cause: migrated.error });
  }
  const bus = await openBus(config, storage).catch(async (error: unknown) => {
    await storage.close();
    throw new NexusError('SERVICE_UNAVAILABLE', `cannot reach the event bus: ${String(error)}`);
  });

  // The canonical schemas are registered (idempotently) before anything can emit an event;
  // every event is then validated against its subject's latest registered version.
  const registry = new RegistryService(storage);
  const canonical = await registry
    .registerCanonical({ ...CANONICAL_SCHEMAS, ...EVENT_DATA_SCHEMAS })
    .catch(async (error: unknown) => {
      await bus.close();
      await storage.close();
      throw error;
    });
  // Dedup rules meet the schemas here: a rule for an unknown type, a key no event of the type
  // carries or one on randomly tokenized personal data would load and never fire (D28).
  if (options.checkDedupRules !== false) {
    await checkDedupRules(config.dedup.rules, {
      dataSchemas: (type) => registry.schemaVersions(type),
      tokenKinds: config.tokenization.kinds,
    }).catch(async (error: unknown) => {
      await bus.close();
      await storage.close();
      throw error;
    });
  }
  const eventCatalog = buildAsyncApi({
    version: VERSION,
    events: canonical.describe(Object.keys(EVENT_DATA_SCHEMAS)),
    envelope: EventEnvelope,
    ...(config.bus.kind === 'nats'
      ? { natsUrl: config.bus.url, subjectPrefix: config.bus.subjectPrefix }
      : {}),
  });
  const validator = new SchemaValidator();
  const appender = bus.appenderFor?.(storage) ?? null;
  const transactor = new Transactor(storage, canonical, validator, config.source, appender);
  const relay = new OutboxRelay(storage, bus, {
    batchSize: config.outbox.batchSize,
    lingerMs: config.outbox.relayLingerMs,
    ...options.relay,
    logger,
  });
  // With an appender events are on the stream at commit; the relay only polls for strays
  // (an outbox written before an upgrade).
  // Events this process put on the stream at commit (with an appender; the relay counts its own).
  let appended = 0;
  if (appender) transactor.onCommitted((events) => (appended += events.length));
  else transactor.onCommitted(() => relay.kick());

  const outboxBacklog = async () => {
    const row = await storage.db
      .selectFrom('outbox')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  };
  const metrics = new HubMetrics({
    outboxBacklog,
    eventsPublished: () => relay.status.published + appended,
    relayLeader: () => relay.status.leader,
  });

  // Personal data is tokenized at the edge. A missing or wrong master key stops the hub here,
  // with one line, before anything could be written under a key nobody can read back.
  const tokenization = await TokenizationService.open({
    storage,
    transactor,
    logger,
    settings: config.tokenization,
    ...(config.storage.kind === 'sqlite' ? { sqliteFile: config.storage.file } : {}),
    metrics: tokenizationMetrics(metrics),
  }).catch(async (error: unknown) => {
    await bus.close();
    await storage.close();
    throw error;
  });

  const access = new AccessService(storage.db);
  const markets = new MarketsService({ db: storage.db, transactor });
  const locations = new LocationsService({ db: storage.db, transactor, markets });
  const catalog = new CatalogService({ db: storage.db, transactor, markets });
  const inventory = new InventoryService({
    db: storage.db,
    dialect: storage.dialect,
    transactor,
    queue: {
      maxBatch: config.inventory.reservationBatch,
      concurrency:
        config.inventory.reservationConcurrency || (storage.dialect === 'postgres' ? 2 : 1),
    },
    snapshots: config.inventory.snapshotRows > 0 ? { limit: config.inventory.snapshotRows } : false,
    metrics,
  });
  const availabilityFeed = new AvailabilityFeed(bus, inventory.sites, {
    capacity: config.inventory.liveReplayCapacity,
    logger,
  });
  const expiry = new ReservationExpiry(inventory, {
    intervalMs: config.inventory.expiryIntervalMs,
    logger,
  });

  const dedup = new DedupService({
    db: storage.db,
    dialect: storage.dialect,
    transactor,
    rules: config.dedup.rules,
    enabled: config.dedup.enabled,
    metrics,
    logger,
  });
  // The edge: personal data tokenized, then transport and business duplicates caught.
  const ingest = new IngestService({
    db: storage.db,
    transactor,
    registry,
    tokenizer: tokenization,
    dedup,
  });
  // Subscribers get events in the schema versions they declared (checked against the registry
  // when they subscribe), as CloudEvents JSON or in Confluent's wire format.
  const shaper = new RegistryEventShaper(registry);
  const webhooks = createWebhooks({
    storage,
    bus,
    transactor,
    logger,
    metrics,
    // Signing secrets are sealed at rest under a key of their own, derived from the master key
    // the tokenization service checked above (D30).
    sealer: new Sealer(tokenization.deriveKey(WEBHOOK_SECRETS_KEY_INFO)),
    options: {
      source: config.source,
      shapers: { json: shaper, 'confluent-wire': shaper },
      checkSchemaVersions: (versions) => shaper.checkSchemaVersions(versions),
      // What a channel may sell, for subscribers that ask for it instead of raw events.
      availability: webhookAvailability(inventory.sites),
    },
  });
  // A database from before sealing holds clear secrets: seal them now, before this process
  // serves or sends anything.
  const sealedSecrets = await webhooks.service.sealStoredSecrets().catch(async (error: unknown) => {
    await bus.close();
    await storage.close();
    throw error;
  });
  if (sealedSecrets > 0) {
    logger.info(
      { subscriptions: sealedSecrets },
      'webhooks: sealed the signing secrets that were stored in clear',
    );
  }

  const readiness = {
    async check() {
      const database = await storage.ping().then(
        () => ({ ok: true }),
        (error: unknown) => ({ ok: false, detail: String(error) }),
      );
      const eventBus = await bus.ping().then(
        () => ({ ok: true }),
        (error: unknown) => ({ ok: false, detail: String(error) }),
      );
      return { database, bus: eventBus };
    },
  };

  // Backpressure: while the bus is away the outbox holds events; past the limit, writes wait.
  // Counted at most once a second, so the check costs nothing on the write path.
  let backlogCheckedAt = 0;
  let backlogRefusal: NexusError | null = null;
  const writeGate = async (): Promise<NexusError | null> => {
    const now = Date.now();
    if (now - backlogCheckedAt >= 1000) {
      backlogCheckedAt = now;
      const backlog = await outboxBacklog().catch(() => 0);
      backlogRefusal =
        backlog >= config.outbox.maxBacklog
          ? new NexusError(
              'SERVICE_UNAVAILABLE',
              `${backlog} events are waiting for the event bus; retry later`,
            )
          : null;
    }
    return backlogRefusal;
  };
  const dependencyFailure = async (): Promise<NexusError | null> =>
    storage.ping().then(
      () => null,
      () => new NexusError('SERVICE_UNAVAILABLE', 'the database is unreachable; retry later'),
    );

  const server = await buildServer({
    logger,
    db: storage.db,
    access,
    metrics,
    readiness,
    writeGate,
    dependencyFailure,
    version: VERSION,
    bodyLimit: config.http.bodyLimitBytes,
    routes: [
      (app) => accessRoutes(app, access),
      (app) => marketRoutes(app, markets),
      (app) => locationRoutes(app, locations),
      (app) => catalogRoutes(app, catalog),
      (app) => registryRoutes(app, registry, dependencyFailure),
      (app) => eventCatalogRoute(app, eventCatalog),
      (app) => ingestRoutes(app, ingest),
      (app) => dedupRoutes(app, dedup),
      (app) => inventoryRoutes(app, inventory, availabilityFeed),
      webhooks.routes,
      (app) => tokenizationRoutes(app, tokenization),
    ],
  });

  const housekeeping = new Housekeeping(
    storage,
    [
      () => purgeExpiredIdempotencyKeys(storage.db),
      () => dedup.purge(),
      // Finished webhook deliveries stay 30 days for the delivery log.
      () => webhooks.service.purge(30 * 24 * 60 * 60 * 1000),
    ],
    { logger },
  );

  return {
    config,
    logger,
    storage,
    bus,
    transactor,
    relay,
    server,
    services: {
      access,
      markets,
      locations,
      catalog,
      registry,
      ingest,
      dedup,
      inventory,
      webhooks: webhooks.service,
      tokenization,
    },
    availabilityFeed,
    async listen() {
      relay.start();
      housekeeping.start();
      expiry.start();
      await availabilityFeed.start();
      webhooks.start();
      return server.listen({ host: config.http.host, port: config.http.port });
    },
    async close() {
      housekeeping.stop();
      await expiry.stop();
      await availabilityFeed.stop();
      await server.close();
      await webhooks.stop();
      await tokenization.drain();
      await relay.stop();
      await bus.close();
      await storage.close();
    },
  };
}

/** Entry point of the `nexus` command (bin/nexus.js). */
export function main(argv: string[]): Promise<number> {
  const factory: HubFactory = createHub;
  return runCli(argv, factory);
}
