import { createHash } from 'node:crypto';
import { NexusError } from '../../model/errors.js';
import { EVENT_DATA_SCHEMAS } from '../../model/events.js';
import { uuidv7 } from '../../model/ids.js';
import { piiPaths } from '../../model/pii.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import type { Context } from '../../platform/context.js';
import type { DedupRule } from '../../platform/config.js';
import type { Dialect, Executor } from '../../platform/db/storage.js';
import type { Transactor } from '../../platform/events/unit-of-work.js';
import type { Logger } from '../../platform/logging.js';
import { decodeCursor, pageOf } from '../../platform/resources.js';
import {
  claimFacts,
  decideReview,
  factKey,
  getReview,
  insertLogs,
  insertReviews,
  listLog,
  listReview,
  lockFacts,
  purge,
  recordDuplicates,
  type DedupKeyRow,
  type DedupLogRow,
  type DedupReviewRow,
  type NewFact,
} from './store.js';

/** What happened to one inbound event. */
export type DedupOutcome =
  | { action: 'accept' }
  | { action: 'unkeyed'; rule: string }
  | { action: 'drop' | 'merge' | 'flag'; rule: string; firstEventId: string; reviewId?: string };

/** Counts decisions (bounded labels: rule names, actions, at most 100 sources then 'other'). */
export interface DedupMetrics {
  dedupDecisions: { inc(labels: { rule: string; action: string; source: string }): void };
}

export interface DedupDeps {
  db: Executor;
  dialect: Dialect;
  transactor: Transactor;
  rules: readonly DedupRule[];
  enabled: boolean;
  metrics?: DedupMetrics;
  logger?: Logger;
  /** The clock (ms): windows are measured with it; tests move it. */
  now?: () => number;
  /**
   * Where the data of an event type holds personal data (`x-pii` paths as model/pii.ts writes
   * them). Default: the canonical schemas' (model/events.ts); other types have none.
   */
  piiPathsOf?: (eventType: string) => readonly string[];
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** '72h' -> milliseconds; a number is milliseconds already (the configuration checked both). */
export function windowMs(window: string | number): number {
  if (typeof window === 'number') return window;
  const match = /^([0-9]+)(ms|s|m|h|d)$/.exec(window);
  if (!match) throw new Error(`not a window: ${window}`);
  return Number(match[1]) * UNITS[match[2]!]!;
}

/** A JSON Pointer's reference tokens, unescaped (parsed once per pointer: rules reuse them). */
const pointerTokens = new Map<string, readonly string[]>();
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

function tokensOf(pointer: string): readonly string[] {
  let tokens = pointerTokens.get(pointer);
  if (tokens === undefined) {
    tokens = pointer
      .split('/')
      .slice(1)
      .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~'));
    if (pointerTokens.size < 10_000) pointerTokens.set(pointer, tokens);
  }
  return tokens;
}

/** RFC 6901: the value at a JSON Pointer, or undefined. */
export function valueAt(document: unknown, pointer: string): unknown {
  let current: unknown = document;
  for (const token of tokensOf(pointer)) {
    if (Array.isArray(current)) {
      if (!ARRAY_INDEX.test(token)) return undefined;
      current = current[Number(token)];
    } else if (typeof current === 'object' && current !== null) {
      current = Object.prototype.hasOwnProperty.call(current, token)
        ? (current as Record<string, unknown>)[token]
        : undefined;
    } else return undefined;
  }
  return current;
}

/**
 * JSON with object keys sorted, so equal key values always hash alike (a pointer may name an
 * object, whose keys arrive in any order). Scalars come out as JSON.stringify writes them.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * True when the envelope pointer reaches personal data: it names an `x-pii` position, a part of
 * one, or something that contains one. `paths` are data paths as model/pii.ts writes them
 * (`/contactPoints/*[type=email]/value email`: `*` for any array item, a branch label
 * after a segment); only pointers into `/data` can reach them.
 */
export function reachesPersonalData(pointer: string, paths: readonly string[]): boolean {
  if (pointer !== '/data' && !pointer.startsWith('/data/')) return false;
  const tokens = pointer
    .split('/')
    .slice(2)
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  return paths.some((entry) => {
    const path = entry.slice(0, entry.lastIndexOf(' ')).replace(/\[[^\]]*\]/g, '');
    const segments = path === '/' ? [] : path.split('/').slice(1);
    const common = Math.min(segments.length, tokens.length);
    for (let i = 0; i < common; i++) {
      if (segments[i] === '*' ? !/^(0|[1-9][0-9]*)$/.test(tokens[i]!) : segments[i] !== tokens[i])
        return false;
    }
    return true;
  });
}

const canonicalPiiPaths = (eventType: string): readonly string[] => {
  const schema = (EVENT_DATA_SCHEMAS as Record<string, unknown>)[eventType];
  return schema === undefined ? [] : piiPaths(schema);
};

const MAX_SOURCES_PER_FACT = 20;
const ACCEPT: DedupOutcome = { action: 'accept' };

/** One event under one rule, within a batch. */
interface Step {
  index: number;
  envelope: EventEnvelope;
  rule: DedupRule;
  values: unknown[];
  /** Null when a key field is missing (unkeyed). */
  keyHash: string | null;
}

/** Rows a batch's decisions add, written together at its end. */
interface Writes {
  logs: DedupLogRow[];
  reviews: DedupReviewRow[];
}
const MAX_SOURCE_LABELS = 100;

/**
 * Business deduplication: the same fact arriving twice under different event ids (the store
 * system and the nightly file; two market stacks). Each rule names an event type, the JSON
 * Pointers of its business key, a window and an action: drop the repeat, merge it (keep the
 * first; the fact records every source), or flag it for a person to release or reject.
 * Decisions happen inside the ingest transaction, so a decision and the event (or its absence)
 * commit together; the state lives in the database, shared by every hub process, and facts
 * expire with their window.
 */
export class DedupService {
  private readonly byType = new Map<string, DedupRule[]>();
  /** Per rule, which key positions reach personal data (logged as a hash only). */
  private readonly personal = new Map<string, boolean[]>();
  /** Per rule, its window in milliseconds. */
  private readonly windows = new Map<string, number>();
  private readonly sourceLabels = new Set<string>();
  private readonly now: () => number;

  constructor(private readonly deps: DedupDeps) {
    this.now = deps.now ?? Date.now;
    const pathsOf = deps.piiPathsOf ?? canonicalPiiPaths;
    for (const rule of deps.rules) {
      this.byType.set(rule.eventType, [...(this.byType.get(rule.eventType) ?? []), rule]);
      this.windows.set(rule.name, windowMs(rule.window));
      const paths = pathsOf(rule.eventType);
      this.personal.set(
        rule.name,
        rule.key.map((pointer) => reachesPersonalData(pointer, paths)),
      );
    }
  }

  get rules(): { enabled: boolean; rules: readonly DedupRule[] } {
    return { enabled: this.deps.enabled, rules: this.deps.rules };
  }

  /** Runs inside the ingest unit of work, after the event id was claimed. */
  async decide(trx: Executor, envelope: EventEnvelope): Promise<DedupOutcome> {
    return (await this.decideMany(trx, [envelope]))[0]!;
  }

  /**
   * `decide` for a batch, in its order, as if each event were decided after the one before (the
   * batch shares one clock reading): each rule of a type is applied to the events still
   * accepted by the rules before it, with one claim statement for the batch, then the repeats
   * (the facts locked, their counts, sources, log rows and reviews written per batch too).
   */
  async decideMany(trx: Executor, envelopes: readonly EventEnvelope[]): Promise<DedupOutcome[]> {
    const outcomes: DedupOutcome[] = envelopes.map(() => ACCEPT);
    if (!this.deps.enabled) return outcomes;
    const now = this.now();
    const writes: Writes = { logs: [], reviews: [] };
    let open: number[] = [];
    envelopes.forEach((envelope, index) => {
      if (this.byType.has(envelope.type)) open.push(index);
    });
    for (let depth = 0; open.length > 0; depth++) {
      const steps: Step[] = [];
      for (const index of open) {
        const envelope = envelopes[index]!;
        const rule = this.byType.get(envelope.type)![depth];
        if (rule === undefined) continue;
        const values = rule.key.map((pointer) => valueAt(envelope, pointer));
        const unkeyed = values.some((v) => v === undefined || v === null || v === '');
        const keyHash = unkeyed
          ? null
          : createHash('sha256')
              .update(`${rule.name}\u0000${canonicalJson(values)}`)
              .digest('hex');
        steps.push({ index, envelope, rule, values, keyHash });
      }
      open = await this.applyRules(trx, steps, now, outcomes, writes);
    }
    await insertLogs(trx, writes.logs);
    await insertReviews(trx, writes.reviews);
    return outcomes;
  }

  /** One rule per event (in batch order); returns the events the rule accepted. */
  private async applyRules(
    trx: Executor,
    steps: readonly Step[],
    now: number,
    outcomes: DedupOutcome[],
    writes: Writes,
  ): Promise<number[]> {
    // The first event of each fact in the batch claims it; a later one of the same fact meets
    // the row that claim left, so it is a repeat unless a window of 0 makes every event first.
    const firsts = new Map<string, Step>();
    for (const step of steps) {
      if (step.keyHash === null) continue;
      const key = factKey(step.rule.name, step.keyHash);
      if (!firsts.has(key)) firsts.set(key, step);
    }
    const claimRow = (step: Step): NewFact => ({
      rule: step.rule.name,
      key_hash: step.keyHash!,
      first_event_id: step.envelope.id,
      first_source: step.envelope.source,
      first_seen_at: now,
      expires_at: now + this.windows.get(step.rule.name)!,
    });
    const claimed = await claimFacts(trx, [...firsts.values()].map(claimRow));
    const accepted: number[] = [];
    const repeats: Step[] = [];
    for (const step of steps) {
      const { rule, envelope } = step;
      if (step.keyHash === null) {
        this.count(rule.name, 'unkeyed', envelope.source);
        this.deps.logger?.debug(
          { rule: rule.name, eventId: envelope.id, source: envelope.source },
          'dedup: key field missing, event not deduplicated (unkeyed)',
        );
        writes.logs.push(this.logRow(rule, 'unkeyed', envelope, null, step.values, now));
        outcomes[step.index] = { action: 'unkeyed', rule: rule.name };
        continue;
      }
      const key = factKey(rule.name, step.keyHash);
      let first = firsts.get(key) === step && claimed.has(key);
      if (!first && firsts.get(key) !== step && this.windows.get(rule.name)! <= 0) {
        first = (await claimFacts(trx, [claimRow(step)])).has(key);
      }
      if (first) {
        this.count(rule.name, 'first', envelope.source);
        accepted.push(step.index);
      } else {
        repeats.push(step);
      }
    }
    if (repeats.length > 0) await this.repeated(trx, repeats, now, outcomes, writes);
    return accepted;
  }

  /** Events whose fact another event holds: sources recorded, logged, held back. */
  private async repeated(
    trx: Executor,
    steps: readonly Step[],
    now: number,
    outcomes: DedupOutcome[],
    writes: Writes,
  ): Promise<void> {
    const facts = await lockFacts(
      trx,
      steps.map((step) => ({ rule: step.rule.name, keyHash: step.keyHash! })),
      this.deps.dialect === 'postgres',
    );
    const touched = new Map<string, { row: DedupKeyRow; repeats: number; sources: string[] }>();
    for (const step of steps) {
      const { rule, envelope } = step;
      const key = factKey(rule.name, step.keyHash!);
      const row = facts.get(key);
      if (!row)
        throw new Error(`dedup: fact ${rule.name}/${step.keyHash!} vanished under its lock`);
      let fact = touched.get(key);
      if (!fact) {
        fact = { row, repeats: 0, sources: JSON.parse(row.sources) as string[] };
        touched.set(key, fact);
      }
      fact.repeats++;
      if (!fact.sources.includes(envelope.source) && fact.sources.length < MAX_SOURCES_PER_FACT) {
        fact.sources.push(envelope.source);
      }
      this.count(rule.name, rule.action, envelope.source);
      writes.logs.push(
        this.logRow(rule, rule.action, envelope, row.first_event_id, step.values, now),
      );
      if (rule.action !== 'flag') {
        outcomes[step.index] = {
          action: rule.action,
          rule: rule.name,
          firstEventId: row.first_event_id,
        };
        continue;
      }
      const reviewId = uuidv7();
      writes.reviews.push({
        id: reviewId,
        at: now,
        rule: rule.name,
        event_id: envelope.id,
        first_event_id: row.first_event_id,
        envelope: JSON.stringify(envelope),
        status: 'pending',
        decided_at: null,
        decided_by: null,
        note: null,
      });
      outcomes[step.index] = {
        action: 'flag',
        rule: rule.name,
        firstEventId: row.first_event_id,
        reviewId,
      };
    }
    await recordDuplicates(trx, [...touched.values()]);
  }

  private count(rule: string, action: string, source: string): void {
    if (!this.sourceLabels.has(source) && this.sourceLabels.size < MAX_SOURCE_LABELS) {
      this.sourceLabels.add(source);
    }
    const label = this.sourceLabels.has(source) ? source : 'other';
    this.deps.metrics?.dedupDecisions.inc({ rule, action, source: label });
  }

  private logRow(
    rule: DedupRule,
    action: string,
    envelope: EventEnvelope,
    firstEventId: string | null,
    values: unknown[],
    at: number,
  ): DedupLogRow {
    // Key values come from the event as ingested (personal data tokenized already); a key
    // position the schema marks personal is logged as a hash of its value only.
    const personal = this.personal.get(rule.name) ?? [];
    const logged = (value: unknown, i: number): unknown =>
      value === undefined || value === null
        ? null
        : personal[i]
          ? `sha256:${createHash('sha256').update(canonicalJson(value)).digest('hex')}`
          : value;
    return {
      id: uuidv7(),
      at,
      rule: rule.name,
      action,
      event_id: envelope.id,
      event_type: envelope.type,
      source: envelope.source,
      first_event_id: firstEventId,
      key_values: JSON.stringify(
        Object.fromEntries(rule.key.map((pointer, i) => [pointer, logged(values[i], i)])),
      ),
    };
  }

  async decisions(query: { rule?: string; action?: string; cursor?: string; limit: number }) {
    const rows = await listLog(this.deps.db, {
      rule: query.rule,
      action: query.action,
      after: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
      limit: query.limit + 1,
    });
    return pageOf(rows, query.limit, (r) => r.id, toLogEntry);
  }

  async reviews(query: { status?: string; cursor?: string; limit: number }) {
    const rows = await listReview(this.deps.db, {
      status: query.status,
      after: query.cursor === undefined ? undefined : decodeCursor(query.cursor),
      limit: query.limit + 1,
    });
    return pageOf(rows, query.limit, (r) => r.id, toReview);
  }

  async review(id: string) {
    const row = await getReview(this.deps.db, id);
    if (!row) throw new NexusError('NOT_FOUND', `review '${id}' does not exist`);
    return toReview(row);
  }

  /** A person decided the flagged event is a fact of its own: it is published now. */
  async release(ctx: Context, id: string, note?: string) {
    await this.deps.transactor.run(ctx, async (uow) => {
      const row = await getReview(uow.trx, id);
      if (!row) throw new NexusError('NOT_FOUND', `review '${id}' does not exist`);
      const by = `${ctx.actor.kind}:${ctx.actor.id}`;
      if (!(await decideReview(uow.trx, id, 'released', by, note ?? null, this.now()))) {
        throw new NexusError('CONFLICT', `review '${id}' was ${row.status} already`);
      }
      uow.forward(JSON.parse(row.envelope) as EventEnvelope);
    });
    return this.review(id);
  }

  /** A person confirmed the duplicate: it stays here, rejected, and is never published. */
  async reject(ctx: Context, id: string, note?: string) {
    await this.deps.transactor.run(ctx, async (uow) => {
      const row = await getReview(uow.trx, id);
      if (!row) throw new NexusError('NOT_FOUND', `review '${id}' does not exist`);
      const by = `${ctx.actor.kind}:${ctx.actor.id}`;
      if (!(await decideReview(uow.trx, id, 'rejected', by, note ?? null, this.now()))) {
        throw new NexusError('CONFLICT', `review '${id}' was ${row.status} already`);
      }
    });
    return this.review(id);
  }

  /** Housekeeping: expired facts go (their window is over); the log is kept 30 days. */
  purge(now = this.now()): Promise<void> {
    return purge(this.deps.db, now, now - 30 * 86_400_000);
  }
}

function toLogEntry(row: DedupLogRow) {
  return {
    id: row.id,
    at: new Date(Number(row.at)).toISOString(),
    rule: row.rule,
    action: row.action,
    eventId: row.event_id,
    eventType: row.event_type,
    source: row.source,
    firstEventId: row.first_event_id,
    key: JSON.parse(row.key_values) as Record<string, unknown>,
  };
}

function toReview(row: DedupReviewRow) {
  return {
    id: row.id,
    at: new Date(Number(row.at)).toISOString(),
    rule: row.rule,
    eventId: row.event_id,
    firstEventId: row.first_event_id,
    status: row.status,
    decidedAt: row.decided_at === null ? null : new Date(Number(row.decided_at)).toISOString(),
    decidedBy: row.decided_by,
    note: row.note,
    envelope: JSON.parse(row.envelope) as unknown,
  };
}
