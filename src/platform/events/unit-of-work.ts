import type { TSchema } from '@sinclair/typebox';
import { NexusError } from '../../model/errors.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Context } from '../context.js';
import type { Executor, Storage } from '../db/storage.js';
import type { SchemaValidator } from '../validation.js';
import type { StreamAppender } from '../bus/bus.js';
import { InsertBatch } from '../db/bulk.js';
import { addOutbox, buildEnvelope, toOutgoing, type EventDraft } from './outbox.js';

/** Where the data schema of an event type is registered. */
export interface EventSchemaSource {
  lookup(type: string): { schema: TSchema; dataschema: string } | undefined;
}

/**
 * One transaction's worth of work: the SQL runs on `trx`, and every event emitted here is
 * validated at once and written to the outbox in the same transaction (invariant 2): the
 * state change and its events commit together or not at all.
 */
export class UnitOfWork {
  readonly events: EventEnvelope[] = [];
  /**
   * Rows written at the end of the unit of work, together with its outbox rows (one round
   * trip on PostgreSQL). For a service's final writes only: nothing in this transaction
   * reads them back.
   */
  readonly inserts = new InsertBatch();

  constructor(
    /**
     * Where this unit's SQL runs: its transaction, or for `runAsOneStatement` the pool, where
     * nothing may write except through `inserts`.
     */
    readonly trx: Executor,
    readonly ctx: Context,
    private readonly schemas: EventSchemaSource,
    private readonly validator: SchemaValidator,
    private readonly source: string,
  ) {}

  emit(draft: EventDraft): EventEnvelope {
    const registered = this.schemas.lookup(draft.type);
    if (!registered) {
      throw new NexusError('SCHEMA_VIOLATION', `event type '${draft.type}' is not registered`);
    }
    this.validator.assert(registered.schema, draft.data, 'SCHEMA_VIOLATION', '/data');
    const envelope = buildEnvelope(draft, {
      source: this.source,
      dataschema: registered.dataschema,
      ...(this.ctx.traceparent === undefined ? {} : { traceparent: this.ctx.traceparent }),
      ...(this.ctx.channel === undefined ? {} : { channel: this.ctx.channel }),
    });
    this.events.push(envelope);
    return envelope;
  }

  /**
   * Commits an event that arrived from outside (a channel adapter) with its own id, time and
   * source. The caller has validated it against its registered schema already.
   */
  forward(envelope: EventEnvelope): void {
    this.events.push(envelope);
  }
}

/**
 * Runs units of work; after each commit that wrote events it tells the listeners (the outbox
 * relay) and, when events went straight onto the stream, that stream's readers.
 */
export class Transactor {
  private readonly committedListeners = new Set<(events: readonly EventEnvelope[]) => void>();

  constructor(
    private readonly storage: Storage,
    private readonly schemas: EventSchemaSource,
    private readonly validator: SchemaValidator,
    private readonly source: string,
    /** Set when the bus takes events inside the transaction in place of the outbox (D29). */
    private readonly appender: StreamAppender | null = null,
  ) {}

  async run<T>(ctx: Context, work: (uow: UnitOfWork) => Promise<T>): Promise<T> {
    let events: readonly EventEnvelope[] = [];
    const result = await this.storage.transaction(async (trx) => {
      const uow = new UnitOfWork(trx, ctx, this.schemas, this.validator, this.source);
      const value = await work(uow);
      if (uow.events.length > 0) {
        if (this.appender) await this.appender.append(trx, uow.events.map(toOutgoing));
        else addOutbox(uow.inserts, uow.events);
      }
      await uow.inserts.run(trx);
      events = uow.events;
      return value;
    });
    if (events.length > 0) {
      this.appender?.committed();
      this.committedListeners.forEach((listener) => listener(events));
    }
    return result;
  }

  /**
   * A unit of work without a transaction around it, for writes guarded by what was read (D31):
   * `work` reads without locks and writes only through `uow.inserts`, which then run with the
   * outbox rows as one statement, its own transaction. A guarded row that changed since it was
   * read fails the statement whole (40001). PostgreSQL only: there the outbox takes the events.
   * `executor` is where it runs: the pool, or a connection the caller holds already.
   */
  async runAsOneStatement<T>(
    ctx: Context,
    work: (uow: UnitOfWork) => Promise<T>,
    executor: Executor = this.storage.db,
  ): Promise<T> {
    if (this.storage.dialect !== 'postgres' || this.appender) {
      throw new Error('runAsOneStatement: only on PostgreSQL with the outbox');
    }
    const uow = new UnitOfWork(executor, ctx, this.schemas, this.validator, this.source);
    const value = await work(uow);
    if (uow.events.length > 0) addOutbox(uow.inserts, uow.events);
    await uow.inserts.run(executor);
    if (uow.events.length > 0) this.committedListeners.forEach((listener) => listener(uow.events));
    return value;
  }

  /** Called after every commit that wrote events (in this process). */
  onCommitted(listener: (events: readonly EventEnvelope[]) => void): () => void {
    this.committedListeners.add(listener);
    return () => this.committedListeners.delete(listener);
  }
}
