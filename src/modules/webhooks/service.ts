import { NexusError, notFound, type FieldError } from '../../model/errors.js';
import { uuidv7 } from '../../model/ids.js';
import { CHANNELS } from '../../model/schemas/common.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import { eventSubject } from '../../platform/bus/bus.js';
import type { Context } from '../../platform/context.js';
import type { Executor } from '../../platform/db/storage.js';
import { decodeCursor, encodeCursor, type Page } from '../../platform/resources.js';
import type { Sealer } from '../../platform/sealing.js';
import { AVAILABILITY_MAX_ITEMS, type AvailabilitySettings } from './availability.js';
import { subjectFilterProblem } from './filters.js';
import {
  WEBHOOK_FORMATS,
  type EventShapers,
  type SchemaVersionsCheck,
  type WebhookFormat,
} from './shaper.js';
import { WebhookSecrets } from './secrets.js';
import { generateWebhookSecret } from './signature.js';
import {
  deleteSubscription,
  getDelivery,
  getSubscription,
  insertDeliveries,
  insertSubscription,
  listAttempts,
  listDeliveries,
  listSubscriptions,
  purgeFinished,
  redeliver,
  sealClearSecrets,
  updateSubscription,
  type AttemptRow,
  type DeliveryRow,
  type DeliveryStatus,
  type SubscriptionRow,
  type SubscriptionStatus,
} from './store.js';

/** What a client sends to create or replace a subscription. */
export interface SubscriptionInput {
  url: string;
  description?: string | undefined;
  /** Event type patterns (`inventory.level.changed.v1`, `product.*`, `*`). */
  eventTypes?: string[] | null | undefined;
  /** A bus subject pattern (`nexus.evt.DE.>`); with eventTypes, both must match. */
  subjectFilter?: string | null | undefined;
  /** Only events of these markets (events without a market are delivered too). */
  markets?: string[] | null | undefined;
  status?: SubscriptionStatus | undefined;
  /** Event type -> registered schema version the subscriber understands. */
  schemaVersions?: Record<string, number> | null | undefined;
  format?: WebhookFormat | undefined;
  /**
   * Availability as one channel sees it: one `inventory.availability.changed` delivery per
   * stock change in the market at a location the channel sells from. Stands alone: not with
   * eventTypes, subjectFilter, schemaVersions or a format other than json.
   */
  availability?: AvailabilitySettings | null | undefined;
}

export interface Subscription {
  id: string;
  url: string;
  description: string;
  eventTypes: string[] | null;
  subjectFilter: string | null;
  markets: string[] | null;
  status: SubscriptionStatus;
  /** Why the hub paused it (410 Gone), or null. */
  statusReason: string | null;
  schemaVersions: Record<string, number> | null;
  format: WebhookFormat;
  availability: AvailabilitySettings | null;
  /** Until when requests also carry a signature made with the secret before the last rotation. */
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Delivery {
  id: string;
  subscriptionId: string;
  eventId: string;
  eventType: string;
  subject: string;
  status: DeliveryStatus;
  attempts: number;
  /** When the next attempt is due; null once it succeeded or is dead. */
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Attempt {
  attempt: number;
  at: string;
  durationMs: number;
  statusCode: number | null;
  error: string | null;
  /** The first 1 KB of the subscriber's answer. */
  responseBody: string | null;
}

export interface DeliveryDetail extends Delivery {
  envelope: unknown;
  /** The body made at fan-out time and sent by every attempt (availability), or null. */
  payload: unknown;
  attemptLog: Attempt[];
}

export interface WebhooksServiceDeps {
  db: Executor;
  /** Seals signing secrets at rest (a key derived from the master key for webhook secrets). */
  sealer: Sealer;
  shapers: EventShapers;
  /** Wakes this process's dispatcher (work became due). */
  kick: () => void;
  /** CloudEvents source of synthetic events (webhook.ping). */
  source: string;
  /** How long the previous secret keeps signing after a rotation. Default 24 h. */
  rotationOverlapMs?: number;
  /** Checks declared schema versions exist (the registry); none: only their form is checked. */
  checkSchemaVersions?: SchemaVersionsCheck | undefined;
  /** Called after a subscription was created, changed or deleted in this process. */
  changed?: () => void;
  /** Whether a channel availability source is wired (else `availability` is refused). */
  availability?: boolean;
}

export const PING_TYPE = 'webhook.ping';
const DAY_MS = 24 * 60 * 60 * 1000;
const EVENT_TYPE_PATTERN = /^[a-z0-9*][a-z0-9*.-]{0,199}$/;
const EVENT_TYPE = /^[a-z][a-z0-9]*(\.[a-z][a-z0-9-]*)+\.v[0-9]+$/;
const MARKET = /^[A-Z]{2}(-[A-Z0-9]{1,8})?$/;
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;

const iso = (ms: number) => new Date(ms).toISOString();
const parseJson = <T>(text: string | null): T | null =>
  text === null ? null : (JSON.parse(text) as T);

function toSubscription(row: SubscriptionRow, now = Date.now()): Subscription {
  const overlap =
    row.previous_secret !== null && (row.previous_secret_expires_at ?? 0) > now
      ? iso(row.previous_secret_expires_at!)
      : null;
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    eventTypes: parseJson<string[]>(row.event_types),
    subjectFilter: row.subject_filter,
    markets: parseJson<string[]>(row.markets),
    status: row.status,
    statusReason: row.status_reason,
    schemaVersions: parseJson<Record<string, number>>(row.schema_versions),
    format: row.format as WebhookFormat,
    availability: parseJson<AvailabilitySettings>(row.availability),
    previousSecretExpiresAt: overlap,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function toDelivery(row: DeliveryRow): Delivery {
  const open = row.status === 'pending' || row.status === 'failed';
  return {
    id: row.id,
    subscriptionId: row.subscription_id,
    eventId: row.event_id,
    eventType: row.event_type,
    subject: row.subject,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: open ? iso(row.next_attempt_at) : null,
    lastStatusCode: row.last_status_code,
    lastError: row.last_error,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function toAttempt(row: AttemptRow): Attempt {
  return {
    attempt: row.attempt,
    at: iso(row.at),
    durationMs: row.duration_ms,
    statusCode: row.status_code,
    error: row.error,
    responseBody: row.response_body,
  };
}

const invalid = (errors: FieldError[]) =>
  new NexusError('VALIDATION_FAILED', `${errors[0]!.pointer} ${errors[0]!.detail}`, { errors });

/**
 * Outbound webhooks: subscriptions, their signing secrets and their delivery log. Matching
 * events to subscriptions is the fan-out consumer group's job (fanout.ts), sending is the
 * dispatcher's (dispatcher.ts); both share the tables written here.
 */
export class WebhooksService {
  private readonly rotationOverlapMs: number;
  private readonly secrets: WebhookSecrets;

  constructor(private readonly deps: WebhooksServiceDeps) {
    this.rotationOverlapMs = deps.rotationOverlapMs ?? DAY_MS;
    this.secrets = new WebhookSecrets(deps.sealer);
  }

  /**
   * Seals signing secrets stored in clear (databases from before sealing), in place, in one
   * transaction; returns how many subscriptions it sealed. Idempotent: app.ts runs it at start.
   */
  sealStoredSecrets(): Promise<number> {
    return sealClearSecrets(this.deps.db, (id, secret) => this.secrets.seal(id, secret));
  }

  /** Creates a subscription; the signing secret is in this answer only. */
  async create(
    ctx: Context,
    input: SubscriptionInput,
  ): Promise<{ subscription: Subscription; secret: string }> {
    const fields = this.check(ctx, input);
    await this.checkSchemaVersions(input);
    const now = Date.now();
    const id = uuidv7(now);
    const secret = generateWebhookSecret();
    const row: SubscriptionRow = {
      id,
      ...fields,
      status_reason: null,
      secret: this.secrets.seal(id, secret),
      previous_secret: null,
      previous_secret_expires_at: null,
      lease_owner: null,
      lease_until: null,
      created_at: now,
      updated_at: now,
    };
    await insertSubscription(this.deps.db, row);
    this.deps.changed?.();
    return { subscription: toSubscription(row, now), secret };
  }

  async list(
    ctx: Context,
    query: { status?: SubscriptionStatus | undefined; cursor?: string | undefined; limit: number },
  ): Promise<Page<Subscription>> {
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const rows = await listSubscriptions(this.deps.db, {
      status: query.status,
      after,
      limit: query.limit,
    });
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return {
      // A key limited to some markets sees only subscriptions limited to those markets.
      items: page.filter((row) => this.visible(ctx, row)).map((row) => toSubscription(row)),
      nextCursor: more && last ? encodeCursor(last.id) : null,
    };
  }

  async get(ctx: Context, id: string): Promise<Subscription> {
    return toSubscription(await this.row(ctx, id));
  }

  /** Replaces what a client may set (PUT); the secret and the delivery log stay. */
  async update(ctx: Context, id: string, input: SubscriptionInput): Promise<Subscription> {
    const current = await this.row(ctx, id);
    const fields = this.check(ctx, input);
    await this.checkSchemaVersions(input);
    const resumed = current.status === 'paused' && fields.status === 'active';
    await updateSubscription(this.deps.db, id, {
      ...fields,
      status_reason: fields.status === 'paused' && !resumed ? current.status_reason : null,
      updated_at: Math.max(Date.now(), current.updated_at + 1),
    });
    this.deps.changed?.();
    if (fields.status === 'active') this.deps.kick();
    return this.get(ctx, id);
  }

  async remove(ctx: Context, id: string): Promise<void> {
    await this.row(ctx, id);
    if (!(await deleteSubscription(this.deps.db, id))) throw notFound('webhook subscription', id);
    this.deps.changed?.();
  }

  /**
   * A new signing secret, in this answer only. For `rotationOverlapMs` (24 h) requests carry
   * two signatures, one per secret, so the subscriber can switch over without losing events.
   * A current secret that cannot be opened (WEBHOOK_SECRET_UNREADABLE) is dropped, not kept as
   * the previous one: rotating is how such a subscription is repaired.
   */
  async rotateSecret(
    ctx: Context,
    id: string,
  ): Promise<{ subscription: Subscription; secret: string }> {
    const current = await this.row(ctx, id);
    const now = Date.now();
    const secret = generateWebhookSecret();
    const previous = this.secrets.resealed(id, current.secret);
    await updateSubscription(this.deps.db, id, {
      secret: this.secrets.seal(id, secret),
      previous_secret: previous,
      previous_secret_expires_at: previous === null ? null : now + this.rotationOverlapMs,
      updated_at: Math.max(now, current.updated_at + 1),
    });
    this.deps.changed?.();
    return { subscription: await this.get(ctx, id), secret };
  }

  /** The delivery log, newest first. */
  async deliveries(
    ctx: Context,
    id: string,
    query: { status?: DeliveryStatus | undefined; cursor?: string | undefined; limit: number },
  ): Promise<Page<Delivery>> {
    await this.row(ctx, id);
    let beforeSeq: number | undefined;
    if (query.cursor !== undefined) {
      beforeSeq = Number(decodeCursor(query.cursor));
      if (!Number.isSafeInteger(beforeSeq)) {
        throw new NexusError('VALIDATION_FAILED', 'cursor is not one this API handed out', {
          errors: [{ pointer: '/cursor', detail: 'invalid cursor', in: 'query' }],
        });
      }
    }
    const rows = await listDeliveries(this.deps.db, id, {
      status: query.status,
      beforeSeq,
      limit: query.limit,
    });
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    return {
      items: page.map(toDelivery),
      nextCursor: more && last ? encodeCursor(String(last.seq)) : null,
    };
  }

  /** One delivery with the event as stored and every attempt. */
  async delivery(ctx: Context, id: string, deliveryId: string): Promise<DeliveryDetail> {
    await this.row(ctx, id);
    const row = await getDelivery(this.deps.db, id, deliveryId);
    if (!row) throw notFound('webhook delivery', deliveryId);
    const attempts = await listAttempts(this.deps.db, deliveryId);
    return {
      ...toDelivery(row),
      envelope: JSON.parse(row.envelope) as unknown,
      payload: parseJson<unknown>(row.payload),
      attemptLog: attempts.map(toAttempt),
    };
  }

  /**
   * Sends a delivery again, whatever its state (succeeded and dead ones too): it is due now,
   * with a fresh retry budget, and earlier attempts stay in its log. It keeps its place in the
   * subscription's order, so later open deliveries wait until it is through.
   */
  async redeliver(ctx: Context, id: string, deliveryId: string): Promise<Delivery> {
    await this.row(ctx, id);
    if (!(await getDelivery(this.deps.db, id, deliveryId)))
      throw notFound('webhook delivery', deliveryId);
    await redeliver(this.deps.db, deliveryId, Date.now());
    this.deps.kick();
    const row = await getDelivery(this.deps.db, id, deliveryId);
    if (!row) throw notFound('webhook delivery', deliveryId);
    return toDelivery(row);
  }

  /** Queues a synthetic `webhook.ping` event for this subscription (behind its open ones). */
  async test(ctx: Context, id: string): Promise<Delivery> {
    const subscription = await this.row(ctx, id);
    if (subscription.status !== 'active') {
      throw new NexusError(
        'CONFLICT',
        `webhook subscription '${id}' is paused: resume it (PUT status active) to test it`,
      );
    }
    const now = Date.now();
    const envelope: EventEnvelope = {
      specversion: '1.0',
      id: uuidv7(now),
      source: this.deps.source,
      type: PING_TYPE,
      subject: `webhook/${id}`,
      time: iso(now),
      datacontenttype: 'application/json',
      dataschema: `urn:nexus:${PING_TYPE}`,
      partitionkey: `webhook/${id}`,
      data: { subscriptionId: id, message: 'Nexus webhook test' },
    };
    const row: Omit<DeliveryRow, 'seq'> = {
      id: uuidv7(now),
      subscription_id: id,
      event_id: envelope.id,
      event_type: PING_TYPE,
      subject: eventSubject(envelope),
      envelope: JSON.stringify(envelope),
      payload: null,
      status: 'pending',
      attempts: 0,
      retry_from: 0,
      next_attempt_at: now,
      last_status_code: null,
      last_error: null,
      created_at: now,
      updated_at: now,
    };
    await insertDeliveries(this.deps.db, [row]);
    this.deps.kick();
    return toDelivery({ ...row, seq: 0 });
  }

  /** Retention: drops succeeded and dead deliveries (and their attempts) older than this. */
  purge(olderThanMs: number, now = Date.now()): Promise<number> {
    return purgeFinished(this.deps.db, now - olderThanMs);
  }

  private async row(ctx: Context, id: string): Promise<SubscriptionRow> {
    const row = await getSubscription(this.deps.db, id);
    if (!row || !this.visible(ctx, row)) throw notFound('webhook subscription', id);
    return row;
  }

  private visible(ctx: Context, row: SubscriptionRow): boolean {
    if (ctx.markets === undefined) return true;
    const markets = parseJson<string[]>(row.markets);
    return markets !== null && markets.every((m) => ctx.markets!.includes(m));
  }

  /** Declared schema versions must exist (VALIDATION_FAILED, `/schemaVersions/<type>`). */
  private async checkSchemaVersions(input: SubscriptionInput): Promise<void> {
    const versions = input.schemaVersions ?? {};
    if (!this.deps.checkSchemaVersions || Object.keys(versions).length === 0) return;
    const errors = await this.deps.checkSchemaVersions(versions);
    if (errors.length > 0) throw invalid(errors);
  }

  /** Checks an input against the rules the schema cannot express; returns the columns. */
  private check(
    ctx: Context,
    input: SubscriptionInput,
  ): Pick<
    SubscriptionRow,
    | 'url'
    | 'description'
    | 'event_types'
    | 'subject_filter'
    | 'markets'
    | 'status'
    | 'schema_versions'
    | 'format'
    | 'availability'
  > {
    const errors: FieldError[] = [];
    let url: URL | null = null;
    try {
      url = new URL(input.url);
    } catch {
      errors.push({ pointer: '/url', detail: 'must be an absolute http or https URL' });
    }
    if (url && url.protocol !== 'http:' && url.protocol !== 'https:')
      errors.push({ pointer: '/url', detail: 'must be an absolute http or https URL' });

    const availability = input.availability ?? null;
    if (availability && !this.deps.availability) {
      errors.push({
        pointer: '/availability',
        detail: 'not available: no channel availability is configured for webhooks',
      });
    } else if (availability) {
      errors.push(...availabilityProblems(availability, input));
    }

    const eventTypes = input.eventTypes ?? null;
    eventTypes?.forEach((pattern, i) => {
      if (!EVENT_TYPE_PATTERN.test(pattern))
        errors.push({
          pointer: `/eventTypes/${i}`,
          detail: "must be an event type, '*' matching any characters (product.*)",
        });
    });
    const subjectFilter = input.subjectFilter ?? null;
    if (subjectFilter !== null) {
      const problem = subjectFilterProblem(subjectFilter);
      if (problem) errors.push({ pointer: '/subjectFilter', detail: problem });
    }
    if (
      (eventTypes === null || eventTypes.length === 0) &&
      subjectFilter === null &&
      availability === null
    ) {
      errors.push({
        pointer: '/eventTypes',
        detail: "give eventTypes or subjectFilter (['*'] for every event), or availability",
      });
    }

    // An availability subscription is scoped to its market like a market filter, so keys
    // limited to markets see and manage it as they do any other.
    const markets = availability
      ? [availability.marketCode]
      : input.markets && input.markets.length > 0
        ? input.markets
        : null;
    if (!availability)
      markets?.forEach((market, i) => {
        if (!MARKET.test(market))
          errors.push({ pointer: `/markets/${i}`, detail: 'must be a market code (DE, CH-FR)' });
      });

    const schemaVersions = input.schemaVersions ?? null;
    for (const [type, version] of Object.entries(schemaVersions ?? {})) {
      if (!EVENT_TYPE.test(type))
        errors.push({ pointer: `/schemaVersions/${type}`, detail: 'must be keyed by event type' });
      if (!Number.isInteger(version) || version < 1)
        errors.push({ pointer: `/schemaVersions/${type}`, detail: 'must be a version >= 1' });
    }

    const format = input.format ?? 'json';
    if (!(WEBHOOK_FORMATS as readonly string[]).includes(format)) {
      errors.push({ pointer: '/format', detail: `must be one of ${WEBHOOK_FORMATS.join(', ')}` });
    } else if (!this.deps.shapers[format]) {
      errors.push({
        pointer: '/format',
        detail: `format '${format}' is not available: no event shaper is configured for it`,
      });
    }
    if (errors.length > 0) throw invalid(errors);

    if (ctx.markets !== undefined) {
      const outside = markets?.filter((m) => !ctx.markets!.includes(m));
      if (!markets || (outside && outside.length > 0)) {
        throw new NexusError(
          'FORBIDDEN_SCOPE',
          `this key may act only for ${ctx.markets.join(', ')}: list markets among them`,
        );
      }
    }

    return {
      url: input.url,
      description: input.description ?? '',
      event_types: eventTypes && eventTypes.length > 0 ? JSON.stringify(eventTypes) : null,
      subject_filter: subjectFilter,
      markets: markets ? JSON.stringify(markets) : null,
      status: input.status ?? 'active',
      schema_versions:
        schemaVersions && Object.keys(schemaVersions).length > 0
          ? JSON.stringify(schemaVersions)
          : null,
      format,
      availability: availability
        ? JSON.stringify({
            marketCode: availability.marketCode,
            channel: availability.channel,
            ...(availability.skus ? { skus: availability.skus } : {}),
            ...(availability.locationIds ? { locationIds: availability.locationIds } : {}),
          })
        : null,
    };
  }
}

/**
 * What is wrong with an availability setting, and with the settings it cannot go with. It
 * stands alone: its events are fixed (the market's stock changes), its body is its own JSON
 * (no schema version or wire format applies), and its market is its market filter.
 */
function availabilityProblems(
  availability: AvailabilitySettings,
  input: SubscriptionInput,
): FieldError[] {
  const errors: FieldError[] = [];
  const at = (field: string) => `/availability/${field}`;
  if (typeof availability.marketCode !== 'string' || !MARKET.test(availability.marketCode))
    errors.push({ pointer: at('marketCode'), detail: 'must be a market code (DE, CH-FR)' });
  if (!(CHANNELS as readonly string[]).includes(availability.channel))
    errors.push({ pointer: at('channel'), detail: `must be one of ${CHANNELS.join(', ')}` });
  for (const field of ['skus', 'locationIds'] as const) {
    const list = availability[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.length === 0 || list.length > AVAILABILITY_MAX_ITEMS) {
      errors.push({
        pointer: at(field),
        detail: `must list 1 to ${AVAILABILITY_MAX_ITEMS} ids (leave it out for all)`,
      });
      continue;
    }
    list.forEach((id, i) => {
      if (typeof id !== 'string' || !IDENTIFIER.test(id))
        errors.push({ pointer: at(`${field}/${i}`), detail: 'must be an identifier' });
    });
  }
  const alone = 'cannot be combined with availability, which receives only its stock changes';
  if (input.eventTypes && input.eventTypes.length > 0)
    errors.push({ pointer: '/eventTypes', detail: alone });
  if (input.subjectFilter) errors.push({ pointer: '/subjectFilter', detail: alone });
  if (input.schemaVersions && Object.keys(input.schemaVersions).length > 0)
    errors.push({ pointer: '/schemaVersions', detail: alone });
  if (input.format !== undefined && input.format !== 'json')
    errors.push({ pointer: '/format', detail: 'availability is sent as JSON only' });
  const markets = input.markets ?? [];
  if (markets.some((m) => m !== availability.marketCode))
    errors.push({
      pointer: '/markets',
      detail: 'may only repeat availability.marketCode (or be left out)',
    });
  return errors;
}
