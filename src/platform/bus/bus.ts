import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Storage, Tx } from '../db/storage.js';

/** A committed event on its way from the outbox to the bus. */
export interface OutgoingMessage {
  eventId: string;
  /** Bus subject, see {@link eventSubject}. */
  subject: string;
  /** Events with one key keep their commit order end to end. */
  partitionKey: string;
  /** The CloudEvents envelope as JSON text, exactly as committed. */
  envelope: string;
}

export interface Delivery {
  eventId: string;
  subject: string;
  partitionKey: string;
  envelope: EventEnvelope;
  /** Position in the bus's stream: increases in publish order. */
  streamSeq: number;
  /** True when the bus has handed this message out before (after a crash or a failed try). */
  redelivered: boolean;
}

export interface ConsumerOptions {
  /** Durable name: the group's position survives restarts and is shared by all processes. */
  name: string;
  /** One subject pattern, NATS wildcards: `*` one token, `>` the rest. */
  filter: string;
  /** Where a group that does not exist yet starts. Default 'earliest'. */
  startAt?: 'earliest' | 'latest';
}

export interface TailOptions {
  /** One subject pattern, NATS wildcards. */
  filter: string;
  /** Deliver messages after this stream sequence; 'now' = only messages published from now on. */
  after: number | 'now';
}

export interface Subscription {
  /** Stops after the handler call in flight (if any) settles. */
  stop(): Promise<void>;
}

/**
 * The bus port. Adapters: embedded (durable in the hub's own database) and NATS JetStream.
 * Both pass test/bus.contract.test.ts.
 *
 * - publish resolves only when every message is durable on the bus; publishing an event id
 *   that the bus already has is a no-op (so the relay may publish at least once).
 * - subscribe delivers matching messages one at a time in stream order. A message counts as
 *   consumed when the handler resolves. When the handler rejects, the same message is offered
 *   again after a short delay, before any later one: order holds even across failures.
 * - after a crash, delivery resumes from the last consumed message of the group: messages
 *   may be delivered twice (consumers keep an inbox), never skipped.
 */
/** Writes events onto a stream as part of the caller's transaction (see appenderFor). */
export interface StreamAppender {
  append(trx: Tx, messages: readonly OutgoingMessage[]): Promise<void>;
  /** The transaction that appended committed: readers in this process look now. */
  committed(): void;
}

export interface EventBus {
  readonly kind: 'embedded' | 'nats';
  publish(messages: readonly OutgoingMessage[]): Promise<void>;
  subscribe(
    options: ConsumerOptions,
    handler: (delivery: Delivery) => Promise<void>,
  ): Promise<Subscription>;
  /**
   * An ephemeral reader for live streams (server-sent events): no group, no position kept, no
   * acks; delivers in stream order from `after`. Resolves once the reader is in place, so
   * every message published after that is delivered. Redelivery of a handler failure is not
   * attempted: the handler must not throw.
   */
  tail(options: TailOptions, handler: (delivery: Delivery) => void): Promise<Subscription>;
  /**
   * Only a bus whose stream is a table in `outbox`'s database and whose order is the commit
   * order there (the embedded bus on SQLite: one writer at a time): an appender that writes
   * events onto the stream inside the committing transaction, in place of the outbox (D29).
   * `null` when that does not hold, and events go through the outbox and the relay.
   */
  appenderFor?(outbox: Storage): StreamAppender | null;
  /**
   * Only a bus whose stream lives in the same database as the outbox (the embedded bus on its
   * own storage): moves up to `limit` of the oldest outbox rows onto the stream and deletes
   * them, atomically, and returns how many moved; `null` when `outbox` is another
   * database. `beforeCommit` is fault injection for tests.
   */
  takeFromOutbox?(
    outbox: Storage,
    limit: number,
    beforeCommit?: () => Promise<void> | void,
  ): Promise<number | null>;
  /** Throws when the bus cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export const SUBJECT_PREFIX = 'nexus.evt';

/**
 * `nexus.evt.<market|global>.<event type>`, e.g. `nexus.evt.DE.inventory.level.changed.v1`,
 * so consumers can filter by market (`nexus.evt.DE.>`) or entity (`nexus.evt.*.inventory.>`).
 */
export function eventSubject(envelope: Pick<EventEnvelope, 'market' | 'type'>): string {
  return `${SUBJECT_PREFIX}.${envelope.market ?? 'global'}.${envelope.type}`;
}

/** NATS subject matching: `*` matches one token, a final `>` one or more. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    const token = f[i];
    if (token === '>') return s.length > i;
    if (i >= s.length) return false;
    if (token !== '*' && token !== s[i]) return false;
  }
  return f.length === s.length;
}
