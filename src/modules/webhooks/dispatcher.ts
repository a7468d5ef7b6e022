import { uuidv7 } from '../../model/ids.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Storage } from '../../platform/db/storage.js';
import type { Logger } from '../../platform/logging.js';
import type { Sealer } from '../../platform/sealing.js';
import { OpenedSecrets, WebhookSecrets, WebhookSecretUnreadableError } from './secrets.js';
import type { EventShapers, ShapedPayload, WebhookFormat } from './shaper.js';
import { signatureHeader } from './signature.js';
import {
  claimLease,
  dueSubscriptions,
  getSubscription,
  headDelivery,
  recordAttempt,
  releaseLease,
  renewLease,
  updateSubscription,
  type DeliveryRow,
  type DeliveryStatus,
  type SubscriptionRow,
} from './store.js';

export interface DispatcherOptions {
  /** Subscriptions served at once by this process (each sends one request at a time). */
  concurrency: number;
  /** How often to look for due deliveries (other processes' fan-out, retries that came due). */
  pollIntervalMs: number;
  /** Per request, response body included. */
  timeoutMs: number;
  /** Attempts before a delivery is given up (`dead`); counted again after a manual redelivery. */
  maxAttempts: number;
  /** First retry delay; later ones grow from it (10 s -> 30 s, 2 min, 10 min, 1 h, then x2). */
  backoffBaseMs: number;
  maxBackoffMs: number;
  /** Deliveries one subscription may send in a row before it queues again behind the others. */
  maxPerTurn: number;
  /**
   * A lease outlives the request it covers by this much, so another process can only take a
   * subscription over after its holder stalled (or died) for this long.
   */
  leaseMarginMs: number;
}

export const DEFAULT_DISPATCHER_OPTIONS: DispatcherOptions = {
  concurrency: 8,
  pollIntervalMs: 500,
  timeoutMs: 10_000,
  maxAttempts: 12,
  backoffBaseMs: 10_000,
  maxBackoffMs: 6 * 60 * 60 * 1000,
  maxPerTurn: 100,
  leaseMarginMs: 30_000,
};

/** Multiples of the base for the first retries (10 s base: 10 s, 30 s, 2 min, 10 min, 1 h). */
const SCHEDULE = [1, 3, 12, 60, 360];

/**
 * Delay before retry `n` (1 = after the first failed attempt), with +-20 % jitter so that
 * deliveries that failed together (a subscriber outage) do not all come back at once.
 */
export function backoffDelay(
  n: number,
  options: Pick<DispatcherOptions, 'backoffBaseMs' | 'maxBackoffMs'>,
  random: () => number = Math.random,
): number {
  const index = Math.max(1, n) - 1;
  const last = SCHEDULE[SCHEDULE.length - 1]!;
  const multiple =
    index < SCHEDULE.length ? SCHEDULE[index]! : last * 2 ** (index - SCHEDULE.length + 1);
  const delay = Math.min(options.maxBackoffMs, options.backoffBaseMs * multiple);
  return Math.round(delay * (0.8 + 0.4 * random()));
}

export type AttemptOutcome = 'succeeded' | 'failed' | 'dead' | 'paused';

/** Counted per attempt outcome: succeeded, failed (a retry is scheduled) and dead (gave up). */
export interface WebhookMetrics {
  webhookDeliveries: {
    inc(labels: { outcome: 'succeeded' | 'failed' | 'dead' }): void;
  };
}

export interface DispatcherDeps {
  storage: Storage;
  shapers: EventShapers;
  /** Opens the sealed signing secrets (the key WebhooksService seals them under). */
  sealer: Sealer;
  logger?: Logger | undefined;
  metrics?: WebhookMetrics | undefined;
}

const RESPONSE_LIMIT = 1024;
const USER_AGENT = 'Nexus-Webhooks/1';

/**
 * Sends due deliveries. Runs in every hub process; processes coordinate through a lease per
 * subscription (a conditional UPDATE on its row): the holder sends that subscription's
 * deliveries one at a time in fan-out order and stops at the first one that is waiting for a
 * retry, so event N+1 is never sent while N is pending (order per subscription, which stock
 * level subscribers need). Different subscriptions are served in parallel, up to
 * `concurrency` per process, by whichever process claims them.
 *
 * An attempt is sent by at most one process: the lease is renewed before each request for
 * longer than the request may take (timeout + leaseMarginMs).
 */
export class WebhookDispatcher {
  /** This instance's lease owner id. */
  readonly owner = uuidv7();
  readonly options: DispatcherOptions;
  readonly stats = { sent: 0, succeeded: 0, failed: 0, dead: 0 };
  private stopped = true;
  private timer: NodeJS.Timeout | null = null;
  private readonly serving = new Map<string, Promise<void>>();
  private scanning: Promise<void> | null = null;
  private rescan = false;
  private readonly secrets: OpenedSecrets;

  constructor(
    private readonly deps: DispatcherDeps,
    options: Partial<DispatcherOptions> = {},
  ) {
    this.options = { ...DEFAULT_DISPATCHER_OPTIONS, ...options };
    this.secrets = new OpenedSecrets(new WebhookSecrets(deps.sealer));
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.options.pollIntervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Waits for requests in flight (bounded by the timeout), then releases every lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.scanning;
    await Promise.all(this.serving.values());
  }

  /** Look for due deliveries now (after the fan-out committed rows, a redelivery, a resume). */
  kick(): void {
    if (this.stopped) return;
    if (this.scanning) {
      this.rescan = true;
      return;
    }
    this.scanning = this.scan().finally(() => {
      this.scanning = null;
    });
  }

  private async scan(): Promise<void> {
    const db = this.deps.storage.db;
    try {
      do {
        this.rescan = false;
        const free = this.options.concurrency - this.serving.size;
        if (free <= 0 || this.stopped) return;
        const now = Date.now();
        const due = await dueSubscriptions(db, now, free);
        for (const id of due) {
          if (this.stopped || this.serving.size >= this.options.concurrency) return;
          if (this.serving.has(id)) continue;
          if (!(await claimLease(db, id, this.owner, now, this.leaseUntil()))) continue;
          const run = this.serve(id)
            .catch((error: unknown) =>
              this.deps.logger?.warn({ err: error, subscription: id }, 'webhooks: dispatch failed'),
            )
            .finally(() => {
              this.serving.delete(id);
              this.kick();
            });
          this.serving.set(id, run);
        }
      } while (this.rescan && !this.stopped);
    } catch (error) {
      this.deps.logger?.warn({ err: error }, 'webhooks: cannot look for due deliveries');
    }
  }

  private leaseUntil(): number {
    return Date.now() + this.options.timeoutMs + this.options.leaseMarginMs;
  }

  /** Sends a subscription's due deliveries in order while holding its lease. */
  private async serve(subscriptionId: string): Promise<void> {
    const db = this.deps.storage.db;
    try {
      for (let sent = 0; sent < this.options.maxPerTurn && !this.stopped; sent++) {
        const subscription = await getSubscription(db, subscriptionId);
        if (!subscription || subscription.status !== 'active') return;
        const head = await headDelivery(db, subscriptionId);
        if (!head || head.next_attempt_at > Date.now()) return;
        if (!(await renewLease(db, subscriptionId, this.owner, this.leaseUntil()))) return;
        const outcome = await this.attempt(subscription, head);
        // A failed head waits for its retry, and everything behind it waits with it.
        if (outcome !== 'succeeded' && outcome !== 'dead') return;
      }
    } finally {
      await releaseLease(db, subscriptionId, this.owner).catch(() => undefined);
    }
  }

  private async attempt(
    subscription: SubscriptionRow,
    delivery: DeliveryRow,
  ): Promise<AttemptOutcome | 'stale'> {
    const attempt = delivery.attempts + 1;
    const started = Date.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    let responseBody: string | null = null;
    // The shaper said no retry can help (data that does not fit the declared schema version).
    let permanent = false;
    try {
      const response = await this.send(subscription, delivery);
      statusCode = response.status;
      responseBody = response.body;
      if (statusCode < 200 || statusCode > 299) error = `subscriber answered HTTP ${statusCode}`;
    } catch (failure) {
      error = describe(failure, this.options.timeoutMs);
      permanent = isPermanent(failure);
      if (failure instanceof WebhookSecretUnreadableError) {
        // Retried as any failure: the delivery keeps its place and goes out once the secret
        // is rotated. Never sent unsigned.
        this.deps.logger?.error(
          { subscription: subscription.id, delivery: delivery.id, code: failure.code },
          'webhooks: signing secret cannot be opened; nothing sent (rotate the secret)',
        );
      }
    }
    const now = Date.now();
    let outcome: AttemptOutcome;
    let status: DeliveryStatus;
    let nextAttemptAt = now;
    if (error === null) {
      outcome = 'succeeded';
      status = 'succeeded';
    } else if (statusCode === 410) {
      // Gone: the subscriber asks for no more. The delivery stays at the head of the queue
      // and is sent first if someone resumes the subscription.
      outcome = 'paused';
      status = 'failed';
    } else if (permanent || attempt - delivery.retry_from >= this.options.maxAttempts) {
      outcome = 'dead';
      status = 'dead';
    } else {
      outcome = 'failed';
      status = 'failed';
      nextAttemptAt = now + backoffDelay(attempt - delivery.retry_from, this.options);
    }
    const recorded = await this.deps.storage.transaction(async (trx) => {
      const ok = await recordAttempt(
        trx,
        {
          delivery_id: delivery.id,
          attempt,
          at: started,
          duration_ms: now - started,
          status_code: statusCode,
          error,
          response_body: responseBody,
        },
        {
          status,
          next_attempt_at: nextAttemptAt,
          last_status_code: statusCode,
          last_error: error,
          updated_at: now,
        },
      );
      if (ok && outcome === 'paused') {
        await updateSubscription(trx, subscription.id, {
          status: 'paused',
          status_reason: `paused by the hub: the subscriber answered 410 Gone at ${new Date(now).toISOString()}`,
          updated_at: now,
        });
      }
      return ok;
    });
    this.stats.sent++;
    if (!recorded) return 'stale';
    const counted = outcome === 'paused' ? 'failed' : outcome;
    this.stats[counted]++;
    this.deps.metrics?.webhookDeliveries.inc({ outcome: counted });
    if (outcome === 'dead' || outcome === 'paused') {
      this.deps.logger?.warn(
        { subscription: subscription.id, delivery: delivery.id, attempt, error },
        outcome === 'paused'
          ? 'webhooks: subscriber answered 410 Gone; subscription paused'
          : permanent
            ? 'webhooks: event cannot be shaped as the subscription asks; delivery given up'
            : 'webhooks: delivery given up after its last attempt',
      );
    }
    return outcome;
  }

  private async send(
    subscription: SubscriptionRow,
    delivery: DeliveryRow,
  ): Promise<{ status: number; body: string }> {
    const now = Date.now();
    // Opened before anything else: without its secrets a delivery is not sent at all.
    const secrets = [this.secrets.get(subscription.id, subscription.secret, 'secret')];
    if (
      subscription.previous_secret !== null &&
      (subscription.previous_secret_expires_at ?? 0) > now
    )
      secrets.push(
        this.secrets.get(subscription.id, subscription.previous_secret, 'previous_secret'),
      );
    const payload = await this.payloadOf(subscription, delivery);
    const timestamp = Math.floor(Date.now() / 1000);
    const signal = AbortSignal.timeout(this.options.timeoutMs);
    const response = await fetch(subscription.url, {
      method: 'POST',
      headers: {
        ...payload.headers,
        'Content-Type': payload.contentType,
        'User-Agent': USER_AGENT,
        'Nexus-Webhook-Id': delivery.id,
        'Nexus-Event-Id': delivery.event_id,
        'Nexus-Event-Type': delivery.event_type,
        'Nexus-Timestamp': String(timestamp),
        'Nexus-Signature': signatureHeader(secrets, timestamp, payload.body),
      },
      body: typeof payload.body === 'string' ? payload.body : new Uint8Array(payload.body),
      // A redirect is not a delivery: the subscriber must give the final URL.
      redirect: 'manual',
      signal,
    });
    return { status: response.status, body: await readHead(response, RESPONSE_LIMIT) };
  }

  /**
   * The request body: the one made at fan-out time (an availability change, JSON) when the
   * delivery has one, else the event shaped now as the subscription asks.
   */
  private async payloadOf(
    subscription: SubscriptionRow,
    delivery: DeliveryRow,
  ): Promise<ShapedPayload> {
    if (delivery.payload !== null)
      return { body: delivery.payload, contentType: 'application/json', headers: {} };
    const format = subscription.format as WebhookFormat;
    const shaper = this.deps.shapers[format];
    if (!shaper) throw new Error(`no event shaper is configured for format '${format}'`);
    const envelope = JSON.parse(delivery.envelope) as EventEnvelope;
    return shaper.shape(envelope, {
      format,
      schemaVersions: subscription.schema_versions
        ? (JSON.parse(subscription.schema_versions) as Record<string, number>)
        : {},
    });
  }
}

/** The first `limit` bytes of a response body as text; the rest is not read. */
async function readHead(response: Response, limit: number): Promise<string> {
  if (!response.body) return '';
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // The status decides the attempt; a body cut short (timeout, reset) is kept as far as read.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** An error its thrower marked `permanent` (an EventShaper that no retry can satisfy). */
function isPermanent(failure: unknown): boolean {
  return (
    failure instanceof Error && (failure as Error & { permanent?: unknown }).permanent === true
  );
}

function describe(failure: unknown, timeoutMs: number): string {
  // A stable code first, for people and tools reading the delivery log.
  if (failure instanceof WebhookSecretUnreadableError) return `${failure.code}: ${failure.message}`;
  if (failure instanceof Error) {
    if (failure.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
    const cause = failure.cause instanceof Error ? `: ${failure.cause.message}` : '';
    return `${failure.message}${cause}`.slice(0, 1000);
  }
  return String(failure).slice(0, 1000);
}
