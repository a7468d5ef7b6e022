import { uuidv7 } from '../../model/ids.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { ConsumerOptions, Delivery, EventBus, Subscription } from '../bus/bus.js';
import { systemContext } from '../context.js';
import type { Leadership, Storage } from '../db/storage.js';
import type { Logger } from '../logging.js';
import type { Transactor, UnitOfWork } from './unit-of-work.js';

/** Applies one event. Its writes (and events it emits) commit together with the inbox entry. */
export type EventHandler = (
  event: EventEnvelope,
  uow: UnitOfWork,
  delivery: Delivery,
) => Promise<void>;

export interface ConsumerGroupOptions extends ConsumerOptions {
  /** Tries in-process before the event goes to the dead-letter store. Default 5. */
  maxAttempts?: number;
  backoffMs?: number;
  logger?: Logger;
  /**
   * Events this group has no work for, told without a transaction: they are passed over (no
   * inbox row, nothing applied). For groups that care about few of the events they see.
   */
  skip?: (delivery: Delivery) => boolean | Promise<boolean>;
  /** Fault injection for tests: runs after an event's transaction committed, before the ack. */
  afterApply?: (delivery: Delivery) => Promise<void> | void;
}

export interface ConsumerDeps {
  storage: Storage;
  bus: EventBus;
  transactor: Transactor;
}

/**
 * A named, durable consumer group. Exactly one process at a time is its active instance
 * (leadership through the database), so events reach the handler in stream order. Each event
 * is applied effectively once: the handler's writes and the inbox row (consumer, event id)
 * commit in one transaction, and a redelivered event finds its inbox row and is skipped.
 * An event that keeps failing is parked in the dead-letter store with its reason, never dropped.
 */
export class ConsumerGroup {
  private subscription: Subscription | null = null;
  private leadership: Leadership | null = null;
  private stopped = true;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  readonly stats = { applied: 0, duplicates: 0, deadLettered: 0, skipped: 0 };

  constructor(
    private readonly deps: ConsumerDeps,
    private readonly options: ConsumerGroupOptions,
    private readonly handler: EventHandler,
  ) {}

  get name(): string {
    return this.options.name;
  }

  get active(): boolean {
    return this.subscription !== null;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop = this.keepActive();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    await this.subscription?.stop();
    this.subscription = null;
    await this.leadership?.release();
    this.leadership = null;
  }

  /** Stand by until this process becomes the group's active instance, then subscribe. */
  private async keepActive(): Promise<void> {
    while (!this.stopped) {
      try {
        if (!this.leadership) {
          this.leadership = await this.deps.storage.tryLeadership(`consumer:${this.options.name}`);
          if (this.leadership) {
            const subscribeOptions: ConsumerOptions = {
              name: this.options.name,
              filter: this.options.filter,
            };
            if (this.options.startAt) subscribeOptions.startAt = this.options.startAt;
            this.subscription = await this.deps.bus.subscribe(subscribeOptions, (d) =>
              this.deliver(d),
            );
            const lost = this.leadership.lost;
            this.options.logger?.info({ consumer: this.options.name }, 'consumer: active');
            lost
              .then(async () => {
                const sub = this.subscription;
                this.subscription = null;
                this.leadership = null;
                await sub?.stop();
              })
              .catch((error: unknown) =>
                this.options.logger?.warn(
                  { err: error, consumer: this.options.name },
                  'consumer: could not stop after losing leadership',
                ),
              );
          }
        }
        if (this.subscription) await this.replayRequested();
      } catch (error) {
        this.options.logger?.warn(
          { err: error, consumer: this.options.name },
          'consumer: cannot become active yet',
        );
        await this.leadership?.release().catch(() => undefined);
        this.leadership = null;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.wake = null;
          resolve();
        };
        const timer = setTimeout(done, 1000);
        this.wake = done;
      });
    }
  }

  /**
   * Dead letters an operator asked to replay (after fixing the cause) are applied by the
   * group's active instance, through the same inbox, so a replay never applies twice.
   */
  private async replayRequested(): Promise<void> {
    const letters = await this.deps.storage.db
      .selectFrom('dead_letters')
      .selectAll()
      .where('consumer', '=', this.options.name)
      .where('status', '=', 'replay-requested')
      .orderBy('id')
      .limit(100)
      .execute();
    for (const letter of letters) {
      const envelope = JSON.parse(letter.envelope) as EventEnvelope;
      const delivery: Delivery = {
        eventId: letter.event_id,
        subject: letter.subject,
        partitionKey: envelope.partitionkey,
        envelope,
        streamSeq: 0,
        redelivered: true,
      };
      let status: 'replayed' | 'open' = 'replayed';
      let error = letter.error;
      try {
        await this.applyOnce(delivery);
      } catch (failure) {
        status = 'open';
        error = failure instanceof Error ? failure.message : String(failure);
      }
      await this.deps.storage.db
        .updateTable('dead_letters')
        .set({ status, error, attempts: letter.attempts + 1, updated_at: Date.now() })
        .where('id', '=', letter.id)
        .execute();
    }
  }

  private async deliver(delivery: Delivery): Promise<void> {
    if (this.options.skip && (await this.options.skip(delivery))) {
      this.stats.skipped++;
      return;
    }
    const maxAttempts = this.options.maxAttempts ?? 5;
    const backoff = this.options.backoffMs ?? 100;
    let lastError: unknown;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      try {
        await this.applyOnce(delivery);
        await this.options.afterApply?.(delivery);
        return;
      } catch (error) {
        lastError = error;
        if (this.stopped) throw error;
        await new Promise((r) => setTimeout(r, backoff * 2 ** (attempt - 1)));
      }
    }
    // If this write fails too (database down), the rejection makes the bus offer the event
    // again later: nothing is lost.
    await this.deadLetter(delivery, lastError, maxAttempts);
  }

  private async applyOnce(delivery: Delivery): Promise<void> {
    const ctx = systemContext(`consumer:${this.options.name}`, {
      ...(delivery.envelope.traceparent === undefined
        ? {}
        : { traceparent: delivery.envelope.traceparent }),
    });
    await this.deps.transactor.run(ctx, async (uow) => {
      const inserted = await uow.trx
        .insertInto('inbox')
        .values({
          consumer: this.options.name,
          event_id: delivery.eventId,
          processed_at: Date.now(),
        })
        .onConflict((oc) => oc.columns(['consumer', 'event_id']).doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) {
        this.stats.duplicates++;
        return;
      }
      await this.handler(delivery.envelope, uow, delivery);
      this.stats.applied++;
    });
  }

  private async deadLetter(delivery: Delivery, error: unknown, attempts: number): Promise<void> {
    const now = Date.now();
    await this.deps.storage.db
      .insertInto('dead_letters')
      .values({
        id: uuidv7(),
        consumer: this.options.name,
        event_id: delivery.eventId,
        subject: delivery.subject,
        envelope: JSON.stringify(delivery.envelope),
        error: error instanceof Error ? error.message : String(error),
        attempts,
        status: 'open',
        created_at: now,
        updated_at: now,
      })
      .execute();
    this.stats.deadLettered++;
    this.options.logger?.error(
      { consumer: this.options.name, eventId: delivery.eventId, err: error },
      'consumer: event parked in the dead-letter store',
    );
  }
}
