/**
 * Outbound webhooks: subscribers receive hub events by signed HTTP POST, retried with backoff,
 * with a delivery log and manual redelivery. Wired by app.ts through createWebhooks().
 */
import type { FastifyInstance } from 'fastify';
import type { EventBus } from '../../platform/bus/bus.js';
import type { Storage } from '../../platform/db/storage.js';
import { ConsumerGroup } from '../../platform/events/consumer.js';
import type { Transactor } from '../../platform/events/unit-of-work.js';
import type { Logger } from '../../platform/logging.js';
import type { Sealer } from '../../platform/sealing.js';
import { WebhookDispatcher, type DispatcherOptions, type WebhookMetrics } from './dispatcher.js';
import type { ChannelAvailabilitySource } from './availability.js';
import { FANOUT_GROUP, fanOutHandler, SubscriptionSnapshot } from './fanout.js';
import { webhookRoutes } from './routes.js';
import { WebhooksService } from './service.js';
import { JsonEventShaper, type EventShapers, type SchemaVersionsCheck } from './shaper.js';

export { WebhooksService, PING_TYPE } from './service.js';
export type {
  Attempt,
  Delivery,
  DeliveryDetail,
  Subscription,
  SubscriptionInput,
} from './service.js';
export {
  WebhookDispatcher,
  DEFAULT_DISPATCHER_OPTIONS,
  backoffDelay,
  type DispatcherOptions,
  type WebhookMetrics,
} from './dispatcher.js';
export {
  JsonEventShaper,
  WEBHOOK_FORMATS,
  type EventShaper,
  type EventShapers,
  type SchemaVersionsCheck,
  type ShapeOptions,
  type ShapedPayload,
  type WebhookFormat,
} from './shaper.js';
export {
  SIGNATURE_HEADER,
  computeSignature,
  generateWebhookSecret,
  signatureHeader,
  verifyWebhookSignature,
} from './signature.js';
export {
  WEBHOOK_SECRET_UNREADABLE,
  WEBHOOK_SECRETS_KEY_INFO,
  WebhookSecretUnreadableError,
} from './secrets.js';
export { eventTypeMatches, matchesEvent, type SubscriptionFilter } from './filters.js';
export {
  AVAILABILITY_MAX_ITEMS,
  AVAILABILITY_SOURCE_TYPE,
  AVAILABILITY_TYPE,
  type AvailabilitySettings,
  type ChannelAvailabilitySource,
} from './availability.js';
export { webhookRoutes } from './routes.js';

export interface WebhooksOptions {
  /** Dispatcher tuning (timeout 10 s, 12 attempts, backoff from 10 s, ...). */
  dispatch?: Partial<DispatcherOptions>;
  /**
   * Shapers by format. `json` defaults to {@link JsonEventShaper}; `confluent-wire` is
   * refused on create until a shaper for it is given here.
   */
  shapers?: EventShapers;
  /**
   * Checks that the schema versions a subscription declares exist (app.ts: the registry);
   * without it only their form is checked.
   */
  checkSchemaVersions?: SchemaVersionsCheck;
  /**
   * Availability as a channel sees it, for subscriptions with `availability` (app.ts: the
   * inventory's channel view). Without it such subscriptions receive nothing.
   */
  availability?: ChannelAvailabilitySource;
  /** CloudEvents source of synthetic events (webhook.ping). Default '//nexus/hub'. */
  source?: string;
  /** How long the previous secret keeps signing after a rotation. Default 24 h. */
  rotationOverlapMs?: number;
  /** Retries of the fan-out handler before an event goes to the dead-letter store. */
  fanOutMaxAttempts?: number;
}

export interface WebhooksDeps {
  storage: Storage;
  bus: EventBus;
  transactor: Transactor;
  /**
   * Seals signing secrets at rest: app.ts builds it on the key the tokenization service derives
   * from the master key for {@link WEBHOOK_SECRETS_KEY_INFO}. Every hub process sharing a
   * database must use the same master key.
   */
  sealer: Sealer;
  logger?: Logger;
  metrics?: WebhookMetrics;
  options?: WebhooksOptions;
}

export interface Webhooks {
  service: WebhooksService;
  dispatcher: WebhookDispatcher;
  fanOut: ConsumerGroup;
  routes: (app: FastifyInstance) => void;
  /** Starts the fan-out consumer group (active in one process) and this process's dispatcher. */
  start(): void;
  stop(): Promise<void>;
}

export function createWebhooks(deps: WebhooksDeps): Webhooks {
  const options = deps.options ?? {};
  const shapers: EventShapers = { json: new JsonEventShaper(), ...options.shapers };
  const dispatcher = new WebhookDispatcher(
    {
      storage: deps.storage,
      shapers,
      sealer: deps.sealer,
      logger: deps.logger,
      metrics: deps.metrics,
    },
    options.dispatch,
  );
  const snapshot = new SubscriptionSnapshot(deps.storage.db);
  const service = new WebhooksService({
    changed: () => snapshot.invalidate(),
    db: deps.storage.db,
    sealer: deps.sealer,
    shapers,
    kick: () => dispatcher.kick(),
    source: options.source ?? '//nexus/hub',
    checkSchemaVersions: options.checkSchemaVersions,
    availability: options.availability !== undefined,
    ...(options.rotationOverlapMs === undefined
      ? {}
      : { rotationOverlapMs: options.rotationOverlapMs }),
  });
  // Set by the handler inside the transaction; the dispatcher is woken once it committed
  // (afterApply runs after the commit, before the ack). Other processes find the rows by polling.
  let matched = false;
  const fanOut = new ConsumerGroup(
    { storage: deps.storage, bus: deps.bus, transactor: deps.transactor },
    {
      ...FANOUT_GROUP,
      ...(options.fanOutMaxAttempts === undefined
        ? {}
        : { maxAttempts: options.fanOutMaxAttempts }),
      ...(deps.logger ? { logger: deps.logger } : {}),
      skip: async (delivery) => !(await snapshot.wants(delivery.subject, () => delivery.envelope)),
      afterApply: () => {
        if (!matched) return;
        matched = false;
        dispatcher.kick();
      },
    },
    fanOutHandler(() => {
      matched = true;
    }, options.availability),
  );
  return {
    service,
    dispatcher,
    fanOut,
    routes: (app) => webhookRoutes(app, service),
    start() {
      fanOut.start();
      dispatcher.start();
    },
    async stop() {
      await fanOut.stop();
      await dispatcher.stop();
    },
  };
}
