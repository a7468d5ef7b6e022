import { createHash } from 'node:crypto';
import { connect, headers, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerConfig,
  type ConsumerInfo,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import type { EventEnvelope } from '../../model/schemas/event.js';
import {
  SUBJECT_PREFIX,
  type ConsumerOptions,
  type Delivery,
  type EventBus,
  type OutgoingMessage,
  type Subscription,
  type TailOptions,
} from './bus.js';

export interface NatsBusOptions {
  /** e.g. `nats://127.0.0.1:4222`; several servers may be given comma-separated. */
  url: string;
  /** JetStream stream holding the events. Default `NEXUS_EVENTS`. */
  stream?: string;
  /**
   * Wire subject prefix replacing `nexus.evt` (tests use a unique one per stream). Subjects
   * handed to and received from the port always start with `nexus.evt.`.
   */
  subjectPrefix?: string;
  /** The broker drops a re-published event id within this window. Default 2 minutes. */
  duplicateWindowMs?: number;
  /** Milliseconds the stream keeps a message. Default 7 days. */
  maxAge?: number;
  /** Connection name, shown by the server's monitoring. */
  name?: string;
  /** How long a delivered message may stay unacknowledged before the broker offers it again. */
  ackWaitMs?: number;
  /** Pause before a message whose handler failed is offered again. Default 200 ms. */
  retryDelayMs?: number;
  /** Messages pulled ahead of the handler (also the consumer's max_ack_pending). Default 256. */
  batchSize?: number;
}

/** The NATS adapter also offers an abrupt close, used to simulate a crashed process. */
export interface NatsEventBus extends EventBus {
  readonly kind: 'nats';
  /**
   * Drops the connection at once, as a crashed process would: handlers in flight are not
   * awaited and nothing more is acknowledged. For crash-recovery tests.
   */
  abort(): Promise<void>;
}

export const DEFAULT_STREAM = 'NEXUS_EVENTS';
export const PARTITION_KEY_HEADER = 'Nexus-Partition-Key';
const MSG_ID_HEADER = 'Nats-Msg-Id';
const DEFAULT_DUPLICATE_WINDOW_MS = 2 * 60_000;
const DEFAULT_MAX_AGE_MS = 7 * 24 * 3600_000;
const DEFAULT_ACK_WAIT_MS = 30_000;
const PING_TIMEOUT_MS = 2_000;
const ACK_TIMEOUT_MS = 5_000;
/** Longest a consumed message waits for the acknowledgement that covers it (D41). */
const ACK_DELAY_MS = 20;
/** A wire token no event subject has (market codes are upper-case letters). */
const NO_MATCH_TOKEN = '_nexus_no_match_';

/**
 * Maps port subjects (`nexus.evt.<market>.<type>`) to wire subjects (`<prefix>.<market>.<type>`)
 * and back, and port filters to wire filters that select exactly the same events.
 */
export function subjectMapping(prefix: string = SUBJECT_PREFIX) {
  const portHead = SUBJECT_PREFIX.split('.');
  const portPrefix = `${SUBJECT_PREFIX}.`;
  const wirePrefix = `${prefix}.`;
  return {
    toWire(subject: string): string {
      if (!subject.startsWith(portPrefix) || subject.length === portPrefix.length) {
        throw new Error(`bus subject ${subject} does not start with ${portPrefix}`);
      }
      return wirePrefix + subject.slice(portPrefix.length);
    },
    fromWire(subject: string): string {
      return subject.startsWith(wirePrefix)
        ? portPrefix + subject.slice(wirePrefix.length)
        : subject;
    },
    /**
     * Every event subject has at least one token after `nexus.evt`, so the filter's first two
     * tokens are either matched by the prefix (then the rest carries over) or match nothing.
     */
    filterToWire(filter: string): string {
      const tokens = filter.split('.');
      for (let i = 0; i < portHead.length; i++) {
        const token = tokens[i];
        if (token === '>') return `${prefix}.>`;
        if (token === undefined || (token !== '*' && token !== portHead[i])) {
          return `${prefix}.${NO_MATCH_TOKEN}`;
        }
      }
      const rest = tokens.slice(portHead.length);
      return rest.length === 0 ? `${prefix}.${NO_MATCH_TOKEN}` : `${prefix}.${rest.join('.')}`;
    },
  };
}

/** Durable names may not hold `.`, `*`, `>`, whitespace or path separators. */
export function durableName(name: string): string {
  if (/^[A-Za-z0-9_-]{1,200}$/.test(name)) return name;
  const safe = name.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 180);
  // The hash keeps names apart that differ only in replaced characters (`a.b` and `a_b`).
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 12);
  return `${safe}_${hash}`;
}

/** True when every subject matching `pattern` also matches `cover` (NATS wildcards). */
function covers(cover: string, pattern: string): boolean {
  const c = cover.split('.');
  const p = pattern.split('.');
  for (let i = 0; i < c.length; i++) {
    const token = c[i];
    if (token === '>') return p.length > i;
    const other = p[i];
    if (other === undefined || other === '>') return false;
    if (token !== '*' && (other === '*' || other !== token)) return false;
  }
  return c.length === p.length;
}

function isNotFound(error: unknown, code: number): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Calls a fire-and-forget client method that throws once the connection is closed. */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // The connection is gone; the broker redelivers whatever was not acknowledged.
  }
}

/** A sleep that a wake() ends early. */
class Waker {
  readonly #waiters = new Set<() => void>();

  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer) clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      this.#waiters.add(done);
      if (ms !== undefined) timer = setTimeout(done, ms);
    });
  }

  wake(): void {
    for (const done of [...this.#waiters]) done();
  }
}

interface Settings {
  stream: string;
  ackWaitMs: number;
  retryDelayMs: number;
  batchSize: number;
}

/** What one subscription needs from the bus it belongs to. */
interface BusContext {
  readonly settings: Settings;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly mapping: ReturnType<typeof subjectMapping>;
  /** Increases on every reconnect. */
  epoch(): number;
  aborted(): boolean;
  ensureConsumer(spec: ConsumerSpec, resumeAfter: number): Promise<EnsuredConsumer>;
}

interface ConsumerSpec {
  durable: string;
  filter: string;
  startAt: 'earliest' | 'latest';
}

interface EnsuredConsumer {
  info: ConsumerInfo;
  /** Stream sequence up to which an earlier consumer of the group handed messages out. */
  handedOutUpTo: number;
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Opens the JetStream bus: connects, makes sure the stream exists with our settings. */
export async function openNatsBus(options: NatsBusOptions): Promise<NatsEventBus> {
  const settings: Settings = {
    stream: options.stream ?? DEFAULT_STREAM,
    ackWaitMs: options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS,
    retryDelayMs: options.retryDelayMs ?? 200,
    batchSize: options.batchSize ?? 256,
  };
  const prefix = options.subjectPrefix ?? SUBJECT_PREFIX;
  const mapping = subjectMapping(prefix);

  const nc = await connect({
    servers: options.url.split(',').map((s) => s.trim()),
    name: options.name ?? 'nexus',
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    pingInterval: 20_000,
    maxPingOut: 3,
    // The client otherwise builds two Error objects (stack traces) per publish, in case its ack
    // times out: a quarter of the hub's CPU while the relay published reservations' events.
    // Our own errors say which batch failed; the client's call site adds nothing to that.
    noAsyncTraces: true,
  });

  let closed = false;
  let aborted = false;
  let epoch = 0;
  const subscriptions = new Set<NatsSubscription>();

  try {
    const jsm = await jetstreamManager(nc);
    const pingJsm = await jetstreamManager(nc, { timeout: PING_TIMEOUT_MS, checkAPI: false });
    const js = jetstream(nc);
    await ensureStream(jsm, {
      name: settings.stream,
      subjects: [`${prefix}.>`],
      duplicateWindow: nanos(options.duplicateWindowMs ?? DEFAULT_DUPLICATE_WINDOW_MS),
      maxAge: nanos(options.maxAge ?? DEFAULT_MAX_AGE_MS),
    });

    // After a reconnect, deliveries that were on the wire when the connection dropped are
    // lost until ack_wait runs out (then they would come back behind newer ones), and so are
    // acks written while disconnected: subscriptions restart from the group's ack floor.
    const statusLoop = (async () => {
      for await (const status of nc.status()) {
        if (status.type === 'reconnect') {
          epoch++;
          subscriptions.forEach((s) => s.interrupt());
        }
      }
    })().catch(() => undefined);

    const context: BusContext = {
      settings,
      nc,
      js,
      mapping,
      epoch: () => epoch,
      aborted: () => aborted,
      ensureConsumer: (spec, resumeAfter) => ensureConsumer(jsm, settings, spec, resumeAfter),
    };

    /** A message's headers: its partition key, and its id when JetStream options do not set it. */
    const headersOf = (message: OutgoingMessage, withId: boolean) => {
      const h = headers();
      h.set(PARTITION_KEY_HEADER, message.partitionKey);
      if (withId) h.set(MSG_ID_HEADER, message.eventId);
      return h;
    };
    const acked = (message: OutgoingMessage, subject: string) =>
      js.publish(subject, encoder.encode(message.envelope), {
        msgID: message.eventId,
        headers: headersOf(message, false),
      });

    /** Acknowledged publishes, one per message: the slow path, and the whole path for a few. */
    const publishEach = async (
      messages: readonly OutgoingMessage[],
      subjects: readonly string[],
    ): Promise<void> => {
      const results = await Promise.allSettled(messages.map((m, i) => acked(m, subjects[i]!)));
      const failures: unknown[] = [];
      for (const r of results) if (r.status === 'rejected') failures.push(r.reason);
      if (failures.length > 0) {
        throw new Error(
          `JetStream did not acknowledge ${failures.length} of ${messages.length} messages: ${errorMessage(failures[0])}`,
          { cause: failures[0] },
        );
      }
    };

    const publish = async (messages: readonly OutgoingMessage[]): Promise<void> => {
      if (messages.length === 0) return;
      if (closed) throw new Error('the NATS bus is closed');
      const subjects = messages.map((m) => mapping.toWire(m.subject)); // throws before any is sent
      // All publishes are written to the one connection in array order (js.publish writes
      // synchronously) before any ack is awaited; JetStream assigns stream sequences in
      // arrival order, so stream order = array order. The client drops what is written while
      // it is disconnected: a batch then fails here and the caller publishes it again, the
      // event ids turning what had already been stored into no-ops.
      if (messages.length < 3) return publishEach(messages, subjects);
      // A batch is bracketed: its first and last messages are acknowledged, the ones between
      // go out unacknowledged (an acknowledged publish is a request, and the requests cost more
      // than the hub's reservation work). The stream numbers what it stores consecutively, so
      // when neither end is a duplicate and the ends lie exactly length - 1 apart, every
      // message between was stored, once and in order. Anything else (a duplicate in the
      // middle, another publisher in between, a refusal) publishes the batch again with an
      // acknowledgement each, which the event ids make safe.
      // Written in array order: the first request, the middle, the last request.
      const last = messages.length - 1;
      const opening = acked(messages[0]!, subjects[0]!);
      for (let i = 1; i < last; i++) {
        nc.publish(subjects[i]!, encoder.encode(messages[i]!.envelope), {
          headers: headersOf(messages[i]!, true),
        });
      }
      const ends = [opening, acked(messages[last]!, subjects[last]!)];
      const [first, final] = await Promise.allSettled(ends);
      if (
        first?.status === 'fulfilled' &&
        final?.status === 'fulfilled' &&
        !first.value.duplicate &&
        !final.value.duplicate &&
        final.value.seq - first.value.seq === last
      ) {
        return;
      }
      await publishEach(messages, subjects);
    };

    const subscribe = async (
      consumer: ConsumerOptions,
      handler: (delivery: Delivery) => Promise<void>,
    ): Promise<Subscription> => {
      if (closed) throw new Error('the NATS bus is closed');
      const spec: ConsumerSpec = {
        durable: durableName(consumer.name),
        filter: mapping.filterToWire(consumer.filter),
        startAt: consumer.startAt ?? 'earliest',
      };
      const ensured = await context.ensureConsumer(spec, 0);
      const subscription = new NatsSubscription(context, spec, handler, ensured, () =>
        subscriptions.delete(subscription),
      );
      subscriptions.add(subscription);
      return subscription;
    };

    const tails = new Set<Subscription>();
    const tail = async (
      options: TailOptions,
      handler: (delivery: Delivery) => void,
    ): Promise<Subscription> => {
      if (closed) throw new Error('the NATS bus is closed');
      // 'now' as a sequence, so the reader provably starts right after what exists already.
      const after =
        options.after === 'now'
          ? (await jsm.streams.info(settings.stream)).state.last_seq
          : options.after;
      // An ordered consumer: ephemeral, flow-controlled, recreated by the client on gaps.
      const consumer = await js.consumers.get(settings.stream, {
        filter_subjects: mapping.filterToWire(options.filter),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: after + 1,
      });
      const messages = await consumer.consume();
      let stopped = false;
      const loop = (async () => {
        for await (const m of messages) {
          if (stopped) break;
          try {
            const envelope = JSON.parse(decoder.decode(m.data)) as EventEnvelope;
            handler({
              eventId: m.headers?.get(MSG_ID_HEADER) || envelope.id,
              subject: mapping.fromWire(m.subject),
              partitionKey: m.headers?.get(PARTITION_KEY_HEADER) || envelope.partitionkey,
              envelope,
              streamSeq: m.seq,
              redelivered: false,
            });
          } catch {
            // Not an event of ours (or a handler bug): a live stream skips it, never stalls.
          }
        }
      })().catch(() => undefined);
      const subscription: Subscription = {
        async stop() {
          stopped = true;
          tails.delete(subscription);
          await messages.close().catch(() => undefined);
          await loop;
        },
      };
      tails.add(subscription);
      return subscription;
    };

    const ping = async (): Promise<void> => {
      if (nc.isClosed()) throw new Error('the NATS connection is closed');
      await pingJsm.streams.info(settings.stream);
    };

    const close = async (): Promise<void> => {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions, ...tails].map((s) => s.stop()));
      if (!nc.isClosed()) await nc.drain();
      await statusLoop;
    };

    const abort = async (): Promise<void> => {
      closed = true;
      aborted = true;
      subscriptions.forEach((s) => s.halt());
      subscriptions.clear();
      if (!nc.isClosed()) await nc.close();
      await statusLoop;
    };

    return { kind: 'nats', publish, subscribe, tail, ping, close, abort };
  } catch (error) {
    await nc.close().catch(() => undefined);
    throw error;
  }
}

async function ensureStream(
  jsm: JetStreamManager,
  want: { name: string; subjects: string[]; duplicateWindow: number; maxAge: number },
): Promise<void> {
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(want.name);
  } catch (error) {
    if (!isNotFound(error, JetStreamApiCodes.StreamNotFound)) throw error;
  }
  if (!info) {
    try {
      await jsm.streams.add({
        name: want.name,
        subjects: want.subjects,
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        duplicate_window: want.duplicateWindow,
        max_age: want.maxAge,
      });
      return;
    } catch (error) {
      // Another hub process may have created it a moment ago; anything else is a real error.
      try {
        info = await jsm.streams.info(want.name);
      } catch {
        throw error;
      }
    }
  }
  // Storage and retention cannot change on a live stream; subjects and windows can.
  const config: StreamConfig = info.config;
  const missing = want.subjects.filter((s) => !config.subjects.some((c) => covers(c, s)));
  if (
    missing.length > 0 ||
    config.duplicate_window !== want.duplicateWindow ||
    config.max_age !== want.maxAge
  ) {
    await jsm.streams.update(want.name, {
      ...config,
      subjects: [...config.subjects, ...missing],
      duplicate_window: want.duplicateWindow,
      max_age: want.maxAge,
    });
  }
}

function consumerConfig(settings: Settings, spec: ConsumerSpec): Partial<ConsumerConfig> {
  return {
    durable_name: spec.durable,
    // Acknowledging a message acknowledges every one before it: a group consumes in stream
    // order, so one acknowledgement per run of messages says as much as one each (D41).
    ack_policy: AckPolicy.All,
    filter_subject: spec.filter,
    ack_wait: nanos(settings.ackWaitMs),
    max_deliver: -1,
    max_ack_pending: settings.batchSize,
    replay_policy: ReplayPolicy.Instant,
  };
}

/**
 * Makes sure the durable pull consumer of a group exists with our settings and has no
 * message handed out and unacknowledged. `resumeAfter` is the last stream sequence the
 * calling subscription consumed (0 for a new one).
 */
async function ensureConsumer(
  jsm: JetStreamManager,
  settings: Settings,
  spec: ConsumerSpec,
  resumeAfter: number,
): Promise<EnsuredConsumer> {
  const { stream } = settings;
  const base = consumerConfig(settings, spec);
  let existing: ConsumerInfo | undefined;
  try {
    existing = await jsm.consumers.info(stream, spec.durable);
  } catch (error) {
    if (!isNotFound(error, JetStreamApiCodes.ConsumerNotFound)) throw error;
  }

  if (!existing) {
    const start: Partial<ConsumerConfig> =
      resumeAfter > 0
        ? // It vanished under a running subscription: carry on after what it consumed.
          { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: resumeAfter + 1 }
        : spec.startAt === 'latest'
          ? { deliver_policy: DeliverPolicy.New }
          : { deliver_policy: DeliverPolicy.All };
    const info = await jsm.consumers.add(stream, { ...base, ...start });
    return { info, handedOutUpTo: 0 };
  }

  const config = existing.config;
  const matches =
    config.filter_subject === spec.filter &&
    !config.deliver_subject &&
    config.ack_policy === AckPolicy.All &&
    config.max_deliver === base.max_deliver &&
    config.ack_wait === base.ack_wait &&
    config.max_ack_pending === base.max_ack_pending;
  if (matches && existing.num_ack_pending === 0) return { info: existing, handedOutUpTo: 0 };

  // Messages the group's previous (crashed) process had pulled but not acknowledged would be
  // redelivered only when ack_wait runs out — after newer messages, which breaks per-entity
  // order. NATS 2.9 cannot rewind a consumer, so we delete it and create it again under the
  // same name at the first unacknowledged message: the ack floor is the last message up to
  // which every message was consumed (we ack strictly in order), so nothing is skipped and at
  // most a few consumed messages are offered again. A changed filter or setting is applied
  // the same way, keeping the group's position.
  const start = existing.ack_floor.stream_seq + 1;
  await jsm.consumers.delete(stream, spec.durable);
  const recreate = { ...base, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: start };
  let info: ConsumerInfo | undefined;
  for (let attempt = 0; !info; attempt++) {
    try {
      info = await jsm.consumers.add(stream, recreate);
    } catch (error) {
      // The group's position exists only in this call now: try hard before giving up.
      if (attempt >= 4) throw error;
      await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
    }
  }
  return { info, handedOutUpTo: existing.delivered.stream_seq };
}

/**
 * One subscription: a loop of sessions, each a `consume()` of the durable pull consumer whose
 * messages are handled one at a time in stream order. A session ends on stop, on reconnect,
 * when the consumer disappears or when the client gives up; the next one starts from the
 * group's ack floor.
 */
class NatsSubscription implements Subscription {
  #stopped = false;
  /** Highest stream sequence this subscription's handler has consumed. */
  #lastDone = 0;
  #handedOutUpTo: number;
  /** Ends waits for queued messages (and the retry pause, on stop). */
  readonly #queueWaker = new Waker();
  /** Ends the retry pause: only stop does. */
  readonly #stopWaker = new Waker();
  readonly #loop: Promise<void>;

  constructor(
    private readonly bus: BusContext,
    private readonly spec: ConsumerSpec,
    private readonly handler: (delivery: Delivery) => Promise<void>,
    first: EnsuredConsumer,
    private readonly onStopped: () => void,
  ) {
    this.#handedOutUpTo = first.handedOutUpTo;
    this.#loop = this.#run(first.info);
  }

  async stop(): Promise<void> {
    this.halt();
    await this.#loop;
    this.onStopped();
  }

  /** Marks the subscription stopped without waiting for the handler in flight. */
  halt(): void {
    this.#stopped = true;
    this.#queueWaker.wake();
    this.#stopWaker.wake();
  }

  /** Ends the current session at the next message boundary (after a reconnect). */
  interrupt(): void {
    this.#queueWaker.wake();
  }

  async #run(firstInfo: ConsumerInfo): Promise<void> {
    let info: ConsumerInfo | undefined = firstInfo;
    let failures = 0;
    while (!this.#stopped) {
      try {
        if (!info) {
          const ensured = await this.bus.ensureConsumer(this.spec, this.#lastDone);
          this.#handedOutUpTo = Math.max(this.#handedOutUpTo, ensured.handedOutUpTo);
          info = ensured.info;
        }
        const consumer = this.bus.js.consumers.getConsumerFromInfo(info);
        info = undefined;
        await this.#session(consumer);
        failures = 0;
      } catch {
        // NATS unreachable or the request failed: the client reconnects on its own; try again.
        info = undefined;
        failures++;
      }
      if (this.#stopped || this.bus.nc.isClosed()) break;
      const pause = Math.min(this.bus.settings.retryDelayMs * 2 ** failures, 5_000);
      await this.#stopWaker.wait(pause);
    }
  }

  async #session(consumer: Consumer): Promise<void> {
    const { settings, nc } = this.bus;
    const epoch = this.bus.epoch();
    const messages = await consumer.consume({ max_messages: settings.batchSize });
    const queue: JsMsg[] = [];
    let ended = false;
    let missing = false;
    let inFlight: JsMsg | undefined;
    let lastAck: Promise<unknown> | undefined;

    // Pump the client's iterator into our own queue so that every pulled message is in
    // reach of the keep-alive below (max_ack_pending bounds the queue).
    const reader = (async () => {
      try {
        for await (const m of messages) {
          queue.push(m);
          this.#queueWaker.wake();
        }
      } catch {
        // The session ends; the loop starts another one.
      } finally {
        ended = true;
        this.#queueWaker.wake();
      }
    })();
    const watcher = (async () => {
      for await (const note of messages.status()) {
        if (
          note.type === 'consumer_deleted' ||
          note.type === 'consumer_not_found' ||
          note.type === 'stream_not_found'
        ) {
          missing = true;
          this.#queueWaker.wake();
        }
      }
    })().catch(() => undefined);
    // A slow or failing handler must not let ack_wait run out on the message in flight or on
    // those queued behind it: a redelivery would arrive behind newer messages.
    const keepAlive = setInterval(
      () => {
        if (nc.isClosed()) {
          clearInterval(keepAlive);
          return;
        }
        if (inFlight) quietly(() => inFlight?.working());
        for (const m of queue) quietly(() => m.working());
      },
      Math.max(settings.ackWaitMs / 3, 100),
    );
    keepAlive.unref();

    // Consumed messages are acknowledged together (the consumer acknowledges all up to the one
    // acknowledged, D41): plainly ACK_DELAY_MS after the first of them was consumed, or once a
    // quarter of max_ack_pending are waiting, and with a confirmation when the queue runs dry
    // or the session ends. One acknowledgement per message was a write to the socket each,
    // and under load cost more than the handlers; a confirmed one is a request (a reply
    // subscription and two Error objects in the client). The server processes a connection's
    // acknowledgements in order, so the confirmed one vouches for those before it. A crash
    // offers again at most what was consumed in the last ACK_DELAY_MS (the inbox drops it).
    const ackEvery = Math.max(1, Math.floor(settings.batchSize / 4));
    let consumedLast: JsMsg | undefined;
    let unacknowledged = 0;
    let ackTimer: NodeJS.Timeout | undefined;
    const acknowledge = (confirm: boolean) => {
      clearTimeout(ackTimer);
      ackTimer = undefined;
      const m = consumedLast;
      consumedLast = undefined;
      unacknowledged = 0;
      if (!m) return;
      if (confirm) lastAck = this.#ack(m);
      else quietly(() => m.ack());
    };
    const consumed = (m: JsMsg) => {
      consumedLast = m;
      if (++unacknowledged >= ackEvery) acknowledge(false);
      else ackTimer ??= setTimeout(() => acknowledge(false), ACK_DELAY_MS);
    };
    try {
      for (;;) {
        if (this.#stopped || missing || epoch !== this.bus.epoch()) break;
        const m = queue.shift();
        if (!m) {
          acknowledge(true);
          if (ended) break;
          await this.#queueWaker.wait();
          continue;
        }
        if (m.seq <= this.#lastDone) {
          // A second copy of a message this subscription already consumed.
          consumed(m);
          continue;
        }
        inFlight = m;
        const done = await this.#deliver(m);
        inFlight = undefined;
        if (!done) break;
        this.#lastDone = m.seq;
        consumed(m);
      }
    } finally {
      acknowledge(!this.bus.aborted() && epoch === this.bus.epoch());
      clearInterval(keepAlive);
      // Acks are processed in order: once the last is confirmed, the group's position on the
      // server is exact, so the next subscriber of the group resumes right after it. After a
      // reconnect it may have been lost: the restart from the ack floor copes with that.
      if (lastAck && !this.bus.aborted() && epoch === this.bus.epoch()) await lastAck;
      await messages.close().catch(() => undefined);
      await reader;
      await watcher;
    }
  }

  /** Acknowledges with a confirmation (resolving, never rejecting). */
  #ack(m: JsMsg): Promise<unknown> {
    try {
      return m.ackAck({ timeout: ACK_TIMEOUT_MS }).catch(() => false);
    } catch {
      return Promise.resolve(false);
    }
  }

  /**
   * Calls the handler until it resolves; true when the message was consumed, false when the
   * subscription stopped first (the message stays unacknowledged for the next subscriber).
   */
  async #deliver(m: JsMsg): Promise<boolean> {
    let redelivered = m.redelivered || m.seq <= this.#handedOutUpTo;
    for (;;) {
      try {
        await this.handler(this.#toDelivery(m, redelivered));
        return !this.bus.aborted();
      } catch {
        if (this.#stopped) return false;
        redelivered = true;
        quietly(() => m.working());
        await this.#stopWaker.wait(this.bus.settings.retryDelayMs);
        if (this.#stopped) return false;
      }
    }
  }

  #toDelivery(m: JsMsg, redelivered: boolean): Delivery {
    const eventId = m.headers?.get(MSG_ID_HEADER);
    const partitionKey = m.headers?.get(PARTITION_KEY_HEADER);
    const subject = this.bus.mapping.fromWire(m.subject);
    if (!eventId || !partitionKey) {
      const envelope = JSON.parse(decoder.decode(m.data)) as EventEnvelope;
      return {
        eventId: eventId || envelope.id,
        subject,
        partitionKey: partitionKey || envelope.partitionkey,
        envelope,
        streamSeq: m.seq,
        redelivered,
      };
    }
    // What the relay published carries its id and partition key as headers: the envelope is
    // parsed when first read, so a group that skips an event by subject (webhook fan-out
    // without a subscriber for it) never parses it.
    let envelope: EventEnvelope | undefined;
    return {
      eventId,
      subject,
      partitionKey,
      get envelope() {
        return (envelope ??= JSON.parse(decoder.decode(m.data)) as EventEnvelope);
      },
      streamSeq: m.seq,
      redelivered,
    };
  }
}
