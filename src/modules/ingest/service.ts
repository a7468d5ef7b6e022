import { NexusError, type FieldError } from '../../model/errors.js';
import { uuidv7 } from '../../model/ids.js';
import { EventEnvelope } from '../../model/schemas/event.js';
import { assertMayActFor, mayActFor, type Context } from '../../platform/context.js';
import type { Executor } from '../../platform/db/storage.js';
import type { Transactor } from '../../platform/events/unit-of-work.js';
import { SchemaValidator, toFieldErrors } from '../../platform/validation.js';
import type { RegistryService } from '../registry/index.js';
import { RegistryError } from '../registry/index.js';
import {
  claimEventId,
  claimEventIds,
  getDeadLetter,
  insertDeadLetter,
  listDeadLetters,
  updateDeadLetter,
  type DeadLetterRow,
} from './store.js';
import { retryWhile } from '../../platform/retry.js';

/** Dead letters written by this module carry this consumer name. */
export const INGEST = 'ingest';

const DATASCHEMA = /^\/registry\/subjects\/([^/]+)\/versions\/([0-9]+|latest)$/;

/**
 * The edge steps an inbound event goes through, in this order: personal data tokenized (the
 * clear payload checked against the clear schema, the token form against the registered one),
 * the event id claimed (transport duplicates), then business deduplication inside the same
 * transaction as the event's commit. Both are optional so ingest works without them.
 */
export interface InboundTokenizer {
  prepareInbound(
    type: string,
    data: unknown,
    subjectHint?: string,
    options?: { pointer?: string },
  ): Promise<unknown>;
  /** For a dead letter: nothing personal left in clear, whatever shape the data has. */
  redactInbound(type: string, data: unknown, subjectHint?: string): Promise<unknown>;
  /**
   * `prepareInbound` in two steps, so the vault rows of an event's tokens commit in the ingest
   * transaction with the event: the check and the tokens in memory (throws as
   * `prepareInbound`), then the rows of a batch written in that transaction.
   */
  tokenizeInbound?(type: string, data: unknown, options?: { pointer?: string }): PreparedInbound;
  storeInbound?(trx: Executor, prepared: readonly PreparedInbound[]): Promise<StoredInbound>;
}

/** Data tokenized by `tokenizeInbound`, its rows still to be stored. */
export interface PreparedInbound {
  /** The token form. */
  readonly data: unknown;
  /** The customer the tokens belong to. */
  readonly subject: string | null;
  /** The data with everything personal masked, for the dead letter of a refused event. */
  erasedForm(): unknown;
}

export interface StoredInbound {
  /** Customers who were erased: their events are refused, nothing of theirs was stored. */
  readonly erased: ReadonlySet<string>;
  /**
   * Shared tokens that may no longer be issued (an erasure retired them since they were issued
   * in memory). When not empty the ingest rolls back and tokenizes again; the tokenizer now
   * issues other tokens for those values.
   */
  readonly retired: ReadonlyMap<string, number>;
  /** Called after the ingest transaction committed. */
  committed(): void;
}

/** The refusal of personal data for an erased customer (as SUBJECT_ERASED words it). */
const erasedDetail = (subject: string) =>
  `customer '${subject}' was erased; personal data for them is not stored`;

export type BusinessDedupOutcome =
  | { action: 'accept' }
  | { action: 'unkeyed'; rule: string }
  | { action: 'drop' | 'merge' | 'flag'; rule: string; firstEventId: string; reviewId?: string };

export interface BusinessDeduplicator {
  decide(trx: Executor, envelope: EventEnvelope): Promise<BusinessDedupOutcome>;
  /** `decide` for a batch, in order (one round trip per batch instead of per event). */
  decideMany?(
    trx: Executor,
    envelopes: readonly EventEnvelope[],
  ): Promise<readonly BusinessDedupOutcome[]>;
}

export interface IngestDeps {
  db: Executor;
  transactor: Transactor;
  registry: RegistryService;
  tokenizer?: InboundTokenizer;
  dedup?: BusinessDeduplicator;
}

/** Set when a business rule held the event back (it was not published). */
export interface Deduplicated {
  action: 'drop' | 'merge' | 'flag';
  rule: string;
  firstEventId: string;
  reviewId?: string;
}

export interface BatchReport {
  accepted: number;
  duplicates: number;
  /** Business duplicates held back by a rule, by index. */
  deduplicated: Array<{ index: number; id: string } & Deduplicated>;
  rejected: Array<{ index: number; id: string | null; deadLetterId: string; errors: FieldError[] }>;
}

export interface DeadLetter {
  id: string;
  consumer: string;
  eventId: string;
  subject: string;
  envelope: unknown;
  errors: unknown;
  attempts: number;
  status: DeadLetterRow['status'];
  createdAt: string;
  updatedAt: string;
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  const parse = (text: string): unknown => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  };
  return {
    id: row.id,
    consumer: row.consumer,
    eventId: row.event_id,
    subject: row.subject,
    envelope: parse(row.envelope),
    errors: parse(row.error),
    attempts: row.attempts,
    status: row.status,
    createdAt: new Date(row.created_at).toISOString(),
    updatedAt: new Date(row.updated_at).toISOString(),
  };
}

/** Registry lookups shared by the events of one batch, by type and version. */
type RegistryValidator = Awaited<ReturnType<RegistryService['validatorFor']>>;
type ValidatorLookups = Map<string, Promise<RegistryValidator>>;

interface Checked {
  envelope: EventEnvelope | null;
  errors: FieldError[];
  /** Set when the tokenizer issued tokens whose rows are still to be stored. */
  prepared?: PreparedInbound | undefined;
}

const NOTHING_STORED: StoredInbound = {
  erased: new Set(),
  retired: new Map(),
  committed: () => undefined,
};

/** Thrown inside an ingest transaction to roll it back and tokenize again (StoredInbound). */
class TokensRetired extends Error {}
/** Times an ingest tokenizes again after meeting retired tokens (each time it learnt more). */
const RETIRED_RETRIES = 64;

/** Runs `attempt` again while its transaction rolled back on retired tokens. */
const retryingRetired = <T>(attempt: () => Promise<T>): Promise<T> =>
  retryWhile(attempt, (error) => error instanceof TokensRetired, RETIRED_RETRIES);

/** The dead letter of an event refused because its customer was erased: nothing personal. */
function erasedEnvelope(raw: unknown, prepared: PreparedInbound): unknown {
  return { ...(raw as Record<string, unknown>), data: prepared.erasedForm() };
}

const field = (raw: unknown, name: string): string | null => {
  const value =
    raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value : null;
};

/**
 * Events from channel adapters (a store system, a market's legacy stack) enter the hub here.
 * Each is checked against the CloudEvents envelope and against the registry's schema for its
 * type (the version its `dataschema` names); a valid event is committed to the outbox with its
 * own id, once (a replayed id is reported as a duplicate). One at a time, an invalid event is
 * refused with pointers; in a batch, it is kept in the dead-letter store with its reasons,
 * where it can be listed, inspected, fixed and replayed. Nothing is dropped.
 */
export class IngestService {
  private readonly validator: SchemaValidator = new SchemaValidator();

  constructor(private readonly deps: IngestDeps) {}

  ingest(
    ctx: Context,
    raw: unknown,
  ): Promise<{ id: string; duplicate: boolean; deduplicated?: Deduplicated }> {
    return retryingRetired(() => this.ingestOnce(ctx, raw));
  }

  private async ingestOnce(
    ctx: Context,
    raw: unknown,
  ): Promise<{ id: string; duplicate: boolean; deduplicated?: Deduplicated }> {
    const { envelope, errors, prepared } = await this.check(raw, '');
    if (!envelope) {
      throw new NexusError('SCHEMA_VIOLATION', `${errors[0]!.pointer} ${errors[0]!.detail}`, {
        errors,
      });
    }
    if (envelope.market !== undefined) {
      assertMayActFor(ctx, envelope.market, `event '${envelope.id}'`);
    }
    const checked = { envelope, errors, prepared };
    let stored = NOTHING_STORED;
    const result = await this.deps.transactor.run(ctx, async (uow) => {
      stored = await this.storeTokens(uow.trx, [checked]);
      const erased = IngestService.erasedSubject(checked, stored);
      if (erased !== null) {
        throw new NexusError('SCHEMA_VIOLATION', `/data ${erasedDetail(erased)}`, {
          errors: [{ pointer: '/data', detail: erasedDetail(erased) }],
        });
      }
      if (!(await claimEventId(uow.trx, envelope.id))) return { id: envelope.id, duplicate: true };
      const held = await this.admit(uow.trx, envelope);
      if (held) return { id: envelope.id, duplicate: false, deduplicated: held };
      uow.forward(envelope);
      return { id: envelope.id, duplicate: false };
    });
    stored.committed();
    return result;
  }

  /**
   * A key limited to markets sends events of those markets (events without one, such as the
   * global catalogue's, pass): another market's event is rejected like an invalid one, kept in
   * the dead-letter store with the reason, its personal data redacted and no tokens issued.
   */
  private static withinMarkets(ctx: Context, item: Checked, index: number): Checked {
    const market = item.envelope?.market;
    if (market === undefined || mayActFor(ctx, market)) return item;
    return {
      envelope: null,
      errors: [
        {
          pointer: `/items/${index}/market`,
          detail: `this key may act only for ${(ctx.markets ?? []).join(', ')}, not for '${market}'`,
        },
      ],
    };
  }

  /** Business deduplication; returns what held the event back, or null to publish it. */
  private async admit(trx: Executor, envelope: EventEnvelope): Promise<Deduplicated | null> {
    const outcome = await this.deps.dedup?.decide(trx, envelope);
    if (!outcome || outcome.action === 'accept' || outcome.action === 'unkeyed') return null;
    return outcome;
  }

  /** `admit` for a batch, in order; null where the event is to be published. */
  private async admitMany(
    trx: Executor,
    envelopes: readonly EventEnvelope[],
  ): Promise<Array<Deduplicated | null>> {
    const dedup = this.deps.dedup;
    if (!dedup || envelopes.length === 0) return envelopes.map(() => null);
    let outcomes: readonly BusinessDedupOutcome[];
    if (dedup.decideMany) {
      outcomes = await dedup.decideMany(trx, envelopes);
    } else {
      const one: BusinessDedupOutcome[] = [];
      for (const envelope of envelopes) one.push(await dedup.decide(trx, envelope));
      outcomes = one;
    }
    return outcomes.map((outcome) =>
      outcome.action === 'accept' || outcome.action === 'unkeyed' ? null : outcome,
    );
  }

  async ingestBatch(ctx: Context, items: readonly unknown[]): Promise<BatchReport> {
    // A batch is one point in time: each (type, version) is looked up in the registry once.
    const validators: ValidatorLookups = new Map();
    let redacted: readonly unknown[] | null = null;
    return retryingRetired(async () => {
      const checked = (
        await Promise.all(
          items.map((item, index) => this.check(item, `/items/${index}`, validators)),
        )
      ).map((item, index) => IngestService.withinMarkets(ctx, item, index));
      // Before the transaction: redaction writes vault entries in its own (and on SQLite the
      // one connection is the transaction's). Which items are refused does not change when
      // the batch is tokenized again, so their redaction is kept.
      redacted ??= await Promise.all(
        checked.map(({ envelope }, index) =>
          envelope ? Promise.resolve(null) : this.redact(items[index]),
        ),
      );
      return this.storeBatch(ctx, items, checked, redacted);
    });
  }

  /** A checked batch in one transaction: dead letters, duplicates, dedup, the events. */
  private async storeBatch(
    ctx: Context,
    items: readonly unknown[],
    checked: readonly Checked[],
    redacted: readonly unknown[],
  ): Promise<BatchReport> {
    const now = Date.now();
    const report: BatchReport = { accepted: 0, duplicates: 0, deduplicated: [], rejected: [] };
    let stored = NOTHING_STORED;
    await this.deps.transactor.run(ctx, async (uow) => {
      // The batch's vault rows first: the erasure check there decides which events are refused.
      stored = await this.storeTokens(uow.trx, checked);
      const free = await claimEventIds(
        uow.trx,
        checked.flatMap((item) =>
          item.envelope && IngestService.erasedSubject(item, stored) === null
            ? [item.envelope.id]
            : [],
        ),
      );
      const claimed: Array<{ index: number; envelope: EventEnvelope }> = [];
      for (const [index, item] of checked.entries()) {
        const erased = IngestService.erasedSubject(item, stored);
        const { envelope } = item;
        if (!envelope || erased !== null) {
          const errors =
            erased === null
              ? item.errors
              : [{ pointer: `/items/${index}/data`, detail: erasedDetail(erased) }];
          const deadLetterId = uuidv7();
          const raw = items[index];
          await insertDeadLetter(uow.trx, {
            id: deadLetterId,
            consumer: INGEST,
            event_id: field(raw, 'id') ?? '',
            subject: field(raw, 'type') ?? '',
            envelope:
              JSON.stringify(
                erased === null ? redacted[index] : erasedEnvelope(items[index], item.prepared!),
              ) ?? 'null',
            error: JSON.stringify(errors),
            attempts: 1,
            status: 'open',
            created_at: now,
            updated_at: now,
          });
          report.rejected.push({ index, id: field(raw, 'id'), deadLetterId, errors });
        } else if (free.delete(envelope.id)) {
          // The first of a batch's events with this id takes it; later ones are duplicates.
          claimed.push({ index, envelope });
        } else {
          report.duplicates++;
        }
      }
      // Business deduplication for the whole batch, in order, then the events it let through.
      const held = await this.admitMany(
        uow.trx,
        claimed.map((c) => c.envelope),
      );
      for (const [i, { index, envelope }] of claimed.entries()) {
        const outcome = held[i];
        if (outcome) {
          report.deduplicated.push({ index, id: envelope.id, ...outcome });
        } else {
          uow.forward(envelope);
          report.accepted++;
        }
      }
    });
    stored.committed();
    return report;
  }

  async deadLetters(query: {
    consumer?: string | undefined;
    status?: string | undefined;
    cursor?: string | undefined;
    limit: number;
  }): Promise<{ items: DeadLetter[]; nextCursor: string | null }> {
    const rows = await listDeadLetters(this.deps.db, { ...query, after: query.cursor });
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    return {
      items: page.map(toDeadLetter),
      nextCursor: more ? (page[page.length - 1]?.id ?? null) : null,
    };
  }

  async deadLetter(id: string): Promise<DeadLetter> {
    const row = await getDeadLetter(this.deps.db, id);
    if (!row) throw new NexusError('NOT_FOUND', `dead letter '${id}' does not exist`);
    return toDeadLetter(row);
  }

  /** Replaces the stored envelope with a corrected one (checked when replayed). */
  async fix(id: string, envelope: unknown): Promise<DeadLetter> {
    const letter = await this.deadLetter(id);
    if (letter.status !== 'open')
      throw new NexusError('CONFLICT', `dead letter '${id}' is ${letter.status}`);
    await updateDeadLetter(this.deps.db, id, { envelope: JSON.stringify(envelope) });
    return this.deadLetter(id);
  }

  /**
   * Ingests the (fixed) event again; on failure the letter stays open with the new reasons.
   * A consumer group's letter is handed back to that group (status replay-requested): its
   * active instance applies it within a second and marks it replayed, or open again.
   */
  async replay(ctx: Context, id: string): Promise<DeadLetter> {
    const letter = await this.deadLetter(id);
    if (letter.status !== 'open')
      throw new NexusError('CONFLICT', `dead letter '${id}' is ${letter.status}`);
    if (letter.consumer !== INGEST) {
      await updateDeadLetter(this.deps.db, id, { status: 'replay-requested' });
      return this.deadLetter(id);
    }
    try {
      await this.ingest(ctx, letter.envelope);
    } catch (error) {
      if (error instanceof NexusError) {
        await updateDeadLetter(this.deps.db, id, {
          error: JSON.stringify(error.errors),
          attempts: letter.attempts + 1,
        });
      }
      throw error;
    }
    await updateDeadLetter(this.deps.db, id, { status: 'replayed', attempts: letter.attempts + 1 });
    return this.deadLetter(id);
  }

  async discard(id: string): Promise<DeadLetter> {
    const letter = await this.deadLetter(id);
    if (letter.status !== 'open')
      throw new NexusError('CONFLICT', `dead letter '${id}' is ${letter.status}`);
    await updateDeadLetter(this.deps.db, id, { status: 'discarded' });
    return this.deadLetter(id);
  }

  /** A dead letter keeps the event as sent, except personal data, which is tokenized or masked. */
  private async redact(raw: unknown): Promise<unknown> {
    const tokenizer = this.deps.tokenizer;
    if (!tokenizer || raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
    const record = raw as Record<string, unknown>;
    if (typeof record.type !== 'string' || !('data' in record)) return raw;
    return { ...record, data: await tokenizer.redactInbound(record.type, record.data) };
  }

  /** Envelope, then the data against the registered schema of its type; pointers under `root`. */
  private async check(raw: unknown, root: string, validators?: ValidatorLookups): Promise<Checked> {
    try {
      this.validator.assert(EventEnvelope, raw, 'SCHEMA_VIOLATION', root);
    } catch (error) {
      if (error instanceof NexusError) return { envelope: null, errors: error.errors };
      throw error;
    }
    let envelope = raw as EventEnvelope;
    const match = DATASCHEMA.exec(envelope.dataschema);
    if (!match || match[1] !== envelope.type) {
      return {
        envelope: null,
        errors: [
          {
            pointer: `${root}/dataschema`,
            detail: `must be /registry/subjects/${envelope.type}/versions/<n|latest>`,
          },
        ],
      };
    }
    let validate;
    try {
      ({ validate } = await this.validatorFor(envelope.type, match[2]!, validators));
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      const pointer = error.errorCode === 40401 ? `${root}/type` : `${root}/dataschema`;
      return { envelope: null, errors: [{ pointer, detail: error.message }] };
    }
    let prepared: PreparedInbound | undefined;
    const tokenizer = this.deps.tokenizer;
    if (tokenizer) {
      // Personal data becomes tokens before anything is validated against the registered (token
      // form) schema, stored or published. Two-step where the tokenizer can: the rows are then
      // written in the ingest transaction.
      try {
        const options = { pointer: `${root}/data` };
        let data: unknown;
        if (tokenizer.tokenizeInbound && tokenizer.storeInbound) {
          prepared = tokenizer.tokenizeInbound(envelope.type, envelope.data, options);
          data = prepared.data;
        } else {
          data = await tokenizer.prepareInbound(envelope.type, envelope.data, undefined, options);
        }
        if (data !== envelope.data) envelope = { ...envelope, data };
      } catch (error) {
        if (!(error instanceof NexusError)) throw error;
        const errors = error.errors.length
          ? error.errors
          : [{ pointer: `${root}/data`, detail: error.message }];
        return { envelope: null, errors };
      }
    }
    if (!validate(envelope.data))
      return { envelope: null, errors: toFieldErrors(validate.errors, `${root}/data`) };
    return { envelope, errors: [], prepared };
  }

  /** The registry's validator for a type's version, through `lookups` when given. */
  private validatorFor(
    type: string,
    version: string,
    lookups?: ValidatorLookups,
  ): Promise<RegistryValidator> {
    if (!lookups) return this.deps.registry.validatorFor(type, version);
    const key = `${type}\u0000${version}`;
    let found = lookups.get(key);
    if (!found) {
      found = this.deps.registry.validatorFor(type, version);
      lookups.set(key, found);
    }
    return found;
  }

  /** Stores the tokens of checked events in the ingest transaction (a no-op without any). */
  private async storeTokens(trx: Executor, checked: readonly Checked[]): Promise<StoredInbound> {
    const prepared = checked.flatMap((c) => (c.envelope && c.prepared ? [c.prepared] : []));
    const tokenizer = this.deps.tokenizer;
    if (!tokenizer?.storeInbound || prepared.length === 0) return NOTHING_STORED;
    const stored = await tokenizer.storeInbound(trx, prepared);
    if (stored.retired.size > 0) throw new TokensRetired();
    return stored;
  }

  /** The customer whose erasure refuses this checked event, if any. */
  private static erasedSubject(checked: Checked, stored: StoredInbound): string | null {
    const subject = checked.prepared?.subject ?? null;
    return subject !== null && stored.erased.has(subject) ? subject : null;
  }
}
