import { sql } from 'kysely';
import { withInList } from '../db/bulk.js';
import type { EventBus, OutgoingMessage } from '../bus/bus.js';
import type { Leadership, Storage } from '../db/storage.js';
import type { Logger } from '../logging.js';

export interface RelayOptions {
  batchSize?: number;
  /** Safety net for wake-ups that never came (another process, a lost NOTIFY). */
  pollIntervalMs?: number;
  /**
   * After a batch that caught up, wait this long before the next: commits arriving meanwhile
   * travel together (one move or publish for many transactions, D29). Adds at most this much
   * to propagation.
   */
  lingerMs?: number;
  /** Pause after the bus refused a publish before trying the same batch again. */
  retryDelayMs?: number;
  /**
   * Fault injection for tests: runs once a batch is on a remote bus, before the outbox rows
   * go; with a bus in the same database, inside the move's transaction before it commits.
   */
  afterPublish?: () => Promise<void> | void;
  logger?: Logger;
}

export interface RelayStatus {
  leader: boolean;
  published: number;
  lastError: string | null;
  lastErrorAt: number | null;
}

/**
 * Moves committed events from the outbox to the bus, oldest first. One relay is active across
 * all processes that share the database (leadership), so the bus sees events in commit order.
 * To a remote bus it publishes before deleting the rows: a crash in between re-publishes the
 * batch, which the bus drops by event id. To the embedded bus in the same database it moves
 * rows in one transaction. At least once on the bus, exactly once for consumers with an inbox.
 */
export class OutboxRelay {
  private stopped = true;
  private loop: Promise<void> | null = null;
  private wake: (() => void) | null = null;
  private kicked = false;
  private leadership: Leadership | null = null;
  private unlisten: (() => void) | null = null;
  readonly status: RelayStatus = {
    leader: false,
    published: 0,
    lastError: null,
    lastErrorAt: null,
  };

  constructor(
    private readonly storage: Storage,
    private readonly bus: EventBus,
    private readonly options: RelayOptions = {},
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unlisten = this.storage.onOutboxSignal(() => this.kick());
    this.loop = this.run();
  }

  /** Something was committed: look at the outbox now rather than at the next poll. */
  kick(): void {
    this.kicked = true;
    this.wake?.();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.unlisten?.();
    this.wake?.();
    await this.loop;
    await this.leadership?.release();
    this.leadership = null;
    this.status.leader = false;
  }

  /** Publishes everything pending now; for tests and shutdown. Returns the count published. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.publishBatch();
      total += n;
      if (n === 0) return total;
    }
  }

  private async run(): Promise<void> {
    const poll = this.options.pollIntervalMs ?? 200;
    const retry = this.options.retryDelayMs ?? 500;
    const linger = this.options.lingerMs ?? 0;
    while (!this.stopped) {
      try {
        if (!this.leadership) {
          this.leadership = await this.storage.tryLeadership('outbox-relay');
          if (!this.leadership) {
            await this.sleep(1000);
            continue;
          }
          this.status.leader = true;
          this.options.logger?.info('outbox relay: active in this process');
          void this.leadership.lost.then(() => {
            this.leadership = null;
            this.status.leader = false;
          });
        }
        const published = await this.publishBatch();
        if (published === 0) await this.sleep(poll);
        else if (linger > 0 && published < (this.options.batchSize ?? 500)) {
          // Caught up: let a few more commits land so the next batch carries them together.
          await new Promise((r) => setTimeout(r, linger));
        }
      } catch (error) {
        this.status.lastError = error instanceof Error ? error.message : String(error);
        this.status.lastErrorAt = Date.now();
        this.options.logger?.warn({ err: error }, 'outbox relay: publish failed, will retry');
        await this.sleep(retry);
      }
    }
  }

  private async publishBatch(): Promise<number> {
    const limit = this.options.batchSize ?? 500;
    const moved = await this.bus.takeFromOutbox?.(this.storage, limit, this.options.afterPublish);
    const published = moved ?? (await this.publishToRemoteBus(limit));
    this.status.published += published;
    if (published > 0) this.status.lastError = null;
    return published;
  }

  /**
   * A bus elsewhere (NATS): publish, then delete what the bus has. A crash in between
   * publishes the batch again, and the bus drops it by event id.
   */
  private async publishToRemoteBus(limit: number): Promise<number> {
    // Plain SQL on this path: it runs after every commit, and kysely's query builder costs
    // several times the statement itself in time and garbage (see docs/benchmarks.md).
    const { rows } = await sql<{
      seq: number;
      event_id: string;
      subject: string;
      partition_key: string;
      envelope: string;
    }>`select seq, event_id, subject, partition_key, envelope from outbox
       order by seq limit ${limit}`.execute(this.storage.db);
    if (rows.length === 0) return 0;
    const batch: OutgoingMessage[] = rows.map((r) => ({
      eventId: r.event_id,
      subject: r.subject,
      partitionKey: r.partition_key,
      envelope: r.envelope,
    }));
    await this.bus.publish(batch);
    await this.options.afterPublish?.();
    await withInList(
      this.storage.db,
      'delete from outbox where seq in',
      rows.map((r) => r.seq),
    );
    return rows.length;
  }

  private sleep(ms: number): Promise<void> {
    if (this.kicked || this.stopped) {
      this.kicked = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        this.kicked = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
