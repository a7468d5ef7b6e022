import { sql, type Generated } from 'kysely';
import type { Executor } from '../../platform/db/storage.js';
import { isSealed, SEALED_PREFIX } from '../../platform/sealing.js';

/**
 * All SQL of the webhooks module. Tables are created by migration 0007_webhooks (0015 added
 * the availability columns); their types live here, beside the store, as for the other modules
 * (see platform/db/tables.ts).
 */

export type SubscriptionStatus = 'active' | 'paused';
/**
 * pending and failed deliveries are open (still to be sent): failed means the last attempt
 * failed and a retry is due at next_attempt_at. succeeded and dead are final.
 */
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'dead';

// Type aliases, not interfaces: kysely's withTables wants indexable record types.
export type SubscriptionRow = {
  id: string;
  url: string;
  description: string;
  /** JSON array of event type patterns, or null. */
  event_types: string | null;
  subject_filter: string | null;
  /** JSON array of market codes, or null (every market). */
  markets: string | null;
  status: SubscriptionStatus;
  /** Why it is paused, when the hub paused it (410 Gone). */
  status_reason: string | null;
  /** JSON object: event type -> schema version, or null. */
  schema_versions: string | null;
  format: string;
  /**
   * JSON AvailabilitySettings (market, channel, optional SKUs and locations), or null: the
   * subscription receives availability changes as that channel sees them (migration 0015).
   */
  availability: string | null;
  /**
   * Sealed (`sealed:v1:...`, AES-256-GCM bound to the id; see secrets.ts), as is
   * previous_secret: the dispatcher must recover them to sign, and nobody who reads the table
   * may.
   */
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  /** Dispatch lease: the dispatcher instance sending this subscription's deliveries, until when. */
  lease_owner: string | null;
  lease_until: number | null;
  created_at: number;
  updated_at: number;
};

export type DeliveryRow = {
  /** Fan-out order: deliveries of one subscription are sent in seq order. */
  seq: number;
  id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  subject: string;
  /** The hub event as it was matched. */
  envelope: string;
  /**
   * The request body when it was made at fan-out time (an availability change as the channel
   * saw it then, JSON), sent as it is by every attempt and redelivery; null: the event is
   * shaped at send time (EventShaper). Migration 0015.
   */
  payload: string | null;
  status: DeliveryStatus;
  /** Attempts made so far, over the delivery's whole life. */
  attempts: number;
  /** `attempts` when it was last redelivered by hand: the retry budget counts from there. */
  retry_from: number;
  next_attempt_at: number;
  last_status_code: number | null;
  last_error: string | null;
  created_at: number;
  updated_at: number;
};

export type AttemptRow = {
  delivery_id: string;
  attempt: number;
  at: number;
  duration_ms: number;
  status_code: number | null;
  error: string | null;
  /** The first 1 KB of the subscriber's answer. */
  response_body: string | null;
};

type WebhookTables = {
  webhook_subscriptions: SubscriptionRow;
  webhook_deliveries: Omit<DeliveryRow, 'seq'> & { seq: Generated<number> };
  webhook_attempts: AttemptRow;
};

export type NewDelivery = Omit<DeliveryRow, 'seq'>;

const tables = (db: Executor) => db.withTables<WebhookTables>();
const changed = (result: { numUpdatedRows?: bigint; numDeletedRows?: bigint }) =>
  Number(result.numUpdatedRows ?? result.numDeletedRows ?? 0n) > 0;

// Subscriptions

export async function insertSubscription(db: Executor, row: SubscriptionRow): Promise<void> {
  await tables(db).insertInto('webhook_subscriptions').values(row).execute();
}

export function getSubscription(db: Executor, id: string): Promise<SubscriptionRow | undefined> {
  return tables(db)
    .selectFrom('webhook_subscriptions')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst();
}

export function listSubscriptions(
  db: Executor,
  query: { status?: SubscriptionStatus | undefined; after?: string | undefined; limit: number },
): Promise<SubscriptionRow[]> {
  let select = tables(db)
    .selectFrom('webhook_subscriptions')
    .selectAll()
    .orderBy('id')
    .limit(query.limit + 1);
  if (query.status) select = select.where('status', '=', query.status);
  if (query.after) select = select.where('id', '>', query.after);
  return select.execute();
}

/** Active subscriptions, for the fan-out (runs in the consumer's transaction). */
export function activeSubscriptions(db: Executor): Promise<SubscriptionRow[]> {
  return tables(db)
    .selectFrom('webhook_subscriptions')
    .selectAll()
    .where('status', '=', 'active')
    .orderBy('id')
    .execute();
}

export type SubscriptionChanges = Partial<
  Omit<SubscriptionRow, 'id' | 'created_at' | 'lease_owner' | 'lease_until'>
>;

export async function updateSubscription(
  db: Executor,
  id: string,
  changes: SubscriptionChanges,
): Promise<boolean> {
  const result = await tables(db)
    .updateTable('webhook_subscriptions')
    .set(changes)
    .where('id', '=', id)
    .executeTakeFirst();
  return changed(result);
}

/** Deletes the subscription; its deliveries and their attempts go with it (cascade). */
export async function deleteSubscription(db: Executor, id: string): Promise<boolean> {
  const result = await tables(db)
    .deleteFrom('webhook_subscriptions')
    .where('id', '=', id)
    .executeTakeFirst();
  return changed(result);
}

/**
 * Seals the secrets stored before sealing existed, in one transaction on the root connection
 * `db`; returns how many rows changed. Each update is conditional on the values read, so a hub
 * process doing the same at the same moment changes nothing the other already sealed, and a
 * second run finds nothing to do.
 */
export function sealClearSecrets(
  db: Executor,
  seal: (id: string, secret: string) => string,
): Promise<number> {
  const sealed = `${SEALED_PREFIX}%`;
  return db.transaction().execute(async (trx) => {
    const rows = await tables(trx)
      .selectFrom('webhook_subscriptions')
      .select(['id', 'secret', 'previous_secret'])
      .where((eb) =>
        eb.or([
          eb('secret', 'not like', sealed),
          eb.and([
            eb('previous_secret', 'is not', null),
            eb('previous_secret', 'not like', sealed),
          ]),
        ]),
      )
      // One lock order for every process: concurrent runs wait instead of deadlocking.
      .orderBy('id')
      .execute();
    let count = 0;
    for (const row of rows) {
      const previous = row.previous_secret;
      const result = await tables(trx)
        .updateTable('webhook_subscriptions')
        .set({
          secret: isSealed(row.secret) ? row.secret : seal(row.id, row.secret),
          previous_secret:
            previous === null || isSealed(previous) ? previous : seal(row.id, previous),
        })
        .where('id', '=', row.id)
        .where('secret', '=', row.secret)
        .where((eb) =>
          previous === null
            ? eb('previous_secret', 'is', null)
            : eb('previous_secret', '=', previous),
        )
        .executeTakeFirst();
      if (changed(result)) count++;
    }
    return count;
  });
}

// Deliveries

/** One row per matched subscription; an event already matched to a subscription is skipped. */
export async function insertDeliveries(db: Executor, rows: readonly NewDelivery[]): Promise<void> {
  if (rows.length === 0) return;
  await tables(db)
    .insertInto('webhook_deliveries')
    .values([...rows])
    .onConflict((oc) => oc.columns(['subscription_id', 'event_id']).doNothing())
    .execute();
}

export function listDeliveries(
  db: Executor,
  subscriptionId: string,
  query: { status?: DeliveryStatus | undefined; beforeSeq?: number | undefined; limit: number },
): Promise<DeliveryRow[]> {
  let select = tables(db)
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('subscription_id', '=', subscriptionId)
    .orderBy('seq', 'desc')
    .limit(query.limit + 1);
  if (query.status) select = select.where('status', '=', query.status);
  if (query.beforeSeq !== undefined) select = select.where('seq', '<', query.beforeSeq);
  return select.execute();
}

export function getDelivery(
  db: Executor,
  subscriptionId: string,
  id: string,
): Promise<DeliveryRow | undefined> {
  return tables(db)
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('id', '=', id)
    .where('subscription_id', '=', subscriptionId)
    .executeTakeFirst();
}

export function listAttempts(db: Executor, deliveryId: string): Promise<AttemptRow[]> {
  return tables(db)
    .selectFrom('webhook_attempts')
    .selectAll()
    .where('delivery_id', '=', deliveryId)
    .orderBy('attempt')
    .execute();
}

/** Manual redelivery: due now, with a fresh retry budget; earlier attempts stay in the log. */
export async function redeliver(db: Executor, id: string, now: number): Promise<boolean> {
  const result = await tables(db)
    .updateTable('webhook_deliveries')
    .set((eb) => ({
      status: 'pending',
      next_attempt_at: now,
      retry_from: eb.ref('attempts'),
      updated_at: now,
    }))
    .where('id', '=', id)
    .executeTakeFirst();
  return changed(result);
}

// Dispatch

/**
 * Subscriptions whose oldest open delivery (the head of their queue) is due and that no
 * dispatcher holds, oldest due first. Later deliveries of a subscription never count: they
 * wait behind the head, which keeps each subscription's order. One index seek per active
 * subscription (partial index on open deliveries), however long the queues are.
 */
export async function dueSubscriptions(
  db: Executor,
  now: number,
  limit: number,
): Promise<string[]> {
  // The head's due time as a scalar subquery per subscription (a filter, never a join
  // condition), so both planners seek the partial index once per subscription.
  const rows = await sql<{ id: string }>`
    select h.id from (
      select s.id, (
        select d.next_attempt_at from webhook_deliveries d
        where d.subscription_id = s.id and d.status in ('pending', 'failed')
        order by d.seq
        limit 1
      ) as due_at
      from webhook_subscriptions s
      where s.status = 'active' and (s.lease_until is null or s.lease_until < ${now})
    ) h
    where h.due_at <= ${now}
    order by h.due_at, h.id
    limit ${limit}`.execute(db);
  return rows.rows.map((r) => r.id);
}

/**
 * Takes the subscription's dispatch lease when nobody holds it (or the holder's lease ran
 * out): one conditional UPDATE, atomic on both SQLite and PostgreSQL.
 */
export async function claimLease(
  db: Executor,
  id: string,
  owner: string,
  now: number,
  until: number,
): Promise<boolean> {
  const result = await tables(db)
    .updateTable('webhook_subscriptions')
    .set({ lease_owner: owner, lease_until: until })
    .where('id', '=', id)
    .where('status', '=', 'active')
    .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
    .executeTakeFirst();
  return changed(result);
}

/** Extends a lease this owner still holds; false when another dispatcher took it over. */
export async function renewLease(
  db: Executor,
  id: string,
  owner: string,
  until: number,
): Promise<boolean> {
  const result = await tables(db)
    .updateTable('webhook_subscriptions')
    .set({ lease_until: until })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return changed(result);
}

export async function releaseLease(db: Executor, id: string, owner: string): Promise<void> {
  await tables(db)
    .updateTable('webhook_subscriptions')
    .set({ lease_owner: null, lease_until: null })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .execute();
}

/** The oldest open delivery of a subscription: the only one that may be sent now. */
export function headDelivery(
  db: Executor,
  subscriptionId: string,
): Promise<DeliveryRow | undefined> {
  return (
    tables(db)
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('subscription_id', '=', subscriptionId)
      // Literal, not bound, so SQLite's planner can prove the partial index applies.
      .where(sql<boolean>`status in ('pending', 'failed')`)
      .orderBy('seq')
      .limit(1)
      .executeTakeFirst()
  );
}

/**
 * Logs one attempt and moves the delivery on, in the caller's transaction. The update is
 * conditional on the attempt count read before sending, so a stale writer changes nothing.
 */
export async function recordAttempt(
  db: Executor,
  attempt: AttemptRow,
  delivery: Pick<
    DeliveryRow,
    'status' | 'next_attempt_at' | 'last_status_code' | 'last_error' | 'updated_at'
  >,
): Promise<boolean> {
  await tables(db).insertInto('webhook_attempts').values(attempt).execute();
  const result = await tables(db)
    .updateTable('webhook_deliveries')
    .set({ ...delivery, attempts: attempt.attempt })
    .where('id', '=', attempt.delivery_id)
    .where('attempts', '=', attempt.attempt - 1)
    .executeTakeFirst();
  return changed(result);
}

/** Retention: finished deliveries (succeeded or dead) last updated before `before`. */
export async function purgeFinished(db: Executor, before: number): Promise<number> {
  const result = await tables(db)
    .deleteFrom('webhook_deliveries')
    .where('status', 'in', ['succeeded', 'dead'])
    .where('updated_at', '<', before)
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
