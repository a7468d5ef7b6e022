import { sql } from 'kysely';
import type { Storage } from '../db/storage.js';
import type { Logger } from '../logging.js';

export interface Retention {
  /** Inbox entries must outlive any redelivery; a week is far beyond the bus's ack wait. */
  inboxMs: number;
  /** Embedded bus only: how long the stream keeps messages (like a JetStream max_age). */
  streamMs: number;
}

export const DEFAULT_RETENTION: Retention = {
  inboxMs: 7 * 24 * 60 * 60 * 1000,
  streamMs: 7 * 24 * 60 * 60 * 1000,
};

/** Keeps the backbone's tables bounded. Extra tasks (idempotency keys) are passed in. */
export class Housekeeping {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly storage: Storage,
    private readonly extra: Array<() => Promise<unknown>>,
    private readonly options: { intervalMs?: number; retention?: Retention; logger?: Logger } = {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.runOnce(), this.options.intervalMs ?? 60_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async runOnce(now = Date.now()): Promise<void> {
    const retention = this.options.retention ?? DEFAULT_RETENTION;
    const db = this.storage.db;
    try {
      // The outbox needs no sweep: the relay deletes each row once the bus has it.
      await db
        .deleteFrom('inbox')
        .where('processed_at', '<', now - retention.inboxMs)
        .execute();
      // Seqs follow published_at: everything before the first message still kept goes (all
      // of it when none is kept). The lookup walks the seq index from the start, so it reads
      // about as many rows as it deletes; one statement, so a message arriving meanwhile stays.
      await sql`delete from bus_messages where seq < coalesce(
          (select seq from bus_messages where published_at >= ${now - retention.streamMs}
            order by seq limit 1),
          (select max(seq) + 1 from bus_messages))`.execute(db);
      for (const task of this.extra) await task();
    } catch (error) {
      this.options.logger?.warn(
        { err: error },
        'housekeeping failed; will retry at the next interval',
      );
    }
  }
}
