import type { KeyObject } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import { NexusError, type ErrorCode, type FieldError } from '../../model/errors.js';
import { INBOUND_PERSONAL_DATA, type EventType } from '../../model/events.js';
import { fieldClassOfPii, inboundFormOf } from '../../model/tokenized.js';
import type { Context } from '../../platform/context.js';
import type { Executor, Storage } from '../../platform/db/storage.js';
import type { Transactor } from '../../platform/events/unit-of-work.js';
import type { Logger } from '../../platform/logging.js';
import { deriveSealingKey } from '../../platform/sealing.js';
import { SchemaValidator } from '../../platform/validation.js';
import { hasScope } from '../access/index.js';
import {
  ConvergentTokenizer,
  FF1_ALPHABETS,
  Ff1Text,
  formatToken,
  KeyRing,
  mask,
  normalizeValue,
  parseToken,
  TokenizationCryptoError,
  TokenInputError,
  VaultCipher,
  VaultCipherError,
  type FieldClass,
  type TokenParts,
} from './crypto/index.js';
import { resolveMasterKey, type MasterKeyPlace, type MasterKeySettings } from './master-key.js';
import { RateLimiter } from './rate-limit.js';
import {
  addKeyVersion,
  appendAudit,
  ciphertextsPerVersion,
  eraseSubject,
  findErasure,
  findTombstones,
  findVaultRows,
  insertFirstKeyVersion,
  listAudit,
  listKeyVersions,
  lockForErasure,
  replaceCiphertext,
  rowsToReencrypt,
  type AuditAction,
  type AuditRow,
  type KeyRow,
  type NewAuditRow,
  type VaultRow,
} from './store.js';
import { mapPersonalData } from './walker.js';
import {
  decodeValue,
  encodeValue,
  isPersonalValue,
  valueText,
  type PersonalValue,
} from './values.js';
import {
  RetiredTokensError,
  VaultWriter,
  type PendingToken,
  type StoredInTransaction,
} from './writer.js';
import { retryWhile } from '../../platform/retry.js';

/** How a field class is tokenized. `mask` is irreversible and stores nothing. */
export type TokenizationKind = 'vault' | 'convergent' | 'fpe' | 'mask';

export interface TokenizationSettings extends MasterKeySettings {
  kinds: Record<FieldClass, TokenizationKind>;
  detokenizeRatePerMinute: number;
}

export interface TokenizationDeps {
  storage: Storage;
  transactor: Transactor;
  logger: Logger;
  settings: TokenizationSettings;
  /** The SQLite file, for the default key file beside it. */
  sqliteFile?: string;
  now?: () => number;
  metrics?: TokenizationMetrics;
}

/** What tokenization counts (api/metrics.ts implements it with Prometheus counters). */
export interface TokenizationMetrics {
  /** One personal value turned into a token (or a mask) of this kind and class. */
  tokenized(kind: TokenizationKind, fieldClass: FieldClass): void;
  /** One audit row written: who asked for what is in the log; how many, here. */
  audited(action: string, outcome: string, code: string | null): void;
}

/** One token's answer from detokenize, in request order. */
export type DetokenizeResult =
  | { token: string; ok: true; fieldClass: FieldClass; value: PersonalValue }
  | { token: string; ok: false; code: ErrorCode; detail: string };

export interface ErasureResult {
  customerId: string;
  erasedAt: string;
  tokenCount: number;
  /** True when the customer had been erased before; nothing changed. */
  alreadyErased: boolean;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: AuditAction;
  token: string | null;
  subject: string | null;
  fieldClass: string | null;
  reason: string | null;
  outcome: AuditRow['outcome'];
  code: string | null;
  count: number | null;
  requestId: string | null;
}

export interface KeyStatus {
  currentVersion: number;
  /** Convergent and FF1 tokens stay under this version across rotations (D-numbered in decisions.md). */
  deterministicVersion: number;
  keyCheck: string;
  versions: Array<{ version: number; current: boolean; createdAt: string; ciphertexts: number }>;
}

/**
 * What ingest calls at the edge, before it checks an event against its registered schema: the
 * clear payload in, the token form out (see `TokenizationService.prepareInbound`).
 */
export interface InboundTokenizer {
  prepareInbound(
    type: string,
    data: unknown,
    subjectHint?: string,
    options?: { pointer?: string },
  ): Promise<unknown>;
  redactInbound(type: string, data: unknown, subjectHint?: string): Promise<unknown>;
  tokenizeInbound(type: string, data: unknown, options?: { pointer?: string }): PreparedInbound;
  storeInbound(trx: Executor, prepared: readonly PreparedInbound[]): Promise<StoredInTransaction>;
}

/** An inbound event's data tokenized in memory (`tokenizeInbound`), its rows not yet stored. */
export interface PreparedInbound {
  /** The token form. */
  data: unknown;
  /** The customer the tokens are linked to. */
  subject: string | null;
  pending: readonly PendingToken[];
  /** The values issued, for the metrics once they are stored. */
  issued: Issued;
  /** The clear data with everything personal masked: what a refused event's dead letter keeps. */
  erasedForm(): unknown;
}

/** Values issued in one attempt (kind, class), counted on the metrics once it succeeded. */
export type Issued = Array<readonly [TokenizationKind, FieldClass]>;

/** A class rather than an object with a closure: one is made per inbound event. */
class Prepared implements PreparedInbound {
  constructor(
    readonly data: unknown,
    readonly subject: string | null,
    readonly pending: readonly PendingToken[],
    readonly issued: Issued,
    private readonly clear: TSchema | null,
    private readonly input: unknown,
  ) {}

  erasedForm(): unknown {
    return this.clear === null ? this.input : maskPersonalData(this.clear, this.input);
  }
}

/** Scopes: the gate, one per field class, erasure, the audit log, tokenization over HTTP. */
export const PII_SCOPES = {
  detokenize: 'pii:detokenize',
  detokenizeClass: (fieldClass: string) => `pii:detokenize:${fieldClass}`,
  erase: 'pii:erase',
  audit: 'pii:audit',
  tokenize: 'pii:tokenize',
} as const;

/** Most tokens in one detokenize call. */
export const MAX_DETOKENIZE = 100;
const FPE_CLASSES: ReadonlySet<FieldClass> = new Set(['card', 'phone']);
const KEY_REFRESH_MS = 10_000;
/** Retired shared tokens a process remembers (it learns them again when it meets them). */
const MAX_RETIRED = 100_000;
/**
 * Times a tokenization issues its tokens again after meeting retired ones. Each time it has
 * learnt at least one more (with the writer's look-ahead, up to 32 epochs of a value), so this
 * only bounds a fault.
 */
const RETIRED_RETRIES = 64;

/**
 * Runs `attempt` again while it fails on retired shared tokens: the writer has told the service
 * of them, so the next attempt issues the next erasure epoch's tokens.
 */
const reissuingRetired = <T>(attempt: () => Promise<T>): Promise<T> =>
  retryWhile(attempt, (error) => error instanceof RetiredTokensError, RETIRED_RETRIES);

/** Errors the service audited itself; the HTTP layer audits any other refusal of detokenize. */
export const auditedErrors = new WeakSet<object>();

const actorOf = (ctx: Context) => `${ctx.actor.kind}:${ctx.actor.id}`;

const safeParse = (token: unknown): TokenParts | null => {
  if (typeof token !== 'string') return null;
  try {
    return parseToken(token);
  } catch {
    return null;
  }
};

/** The key material of one key-versions state; rebuilt when versions change. */
class Keys {
  readonly ring: KeyRing;
  readonly cipher: VaultCipher;
  readonly convergent: ConvergentTokenizer;
  /** The version of convergent and FF1 tokens: the first one; a rotation does not move it. */
  readonly deterministicVersion: number;
  private readonly fpe = new Map<string, Ff1Text>();

  constructor(
    master: Buffer,
    readonly rows: readonly KeyRow[],
  ) {
    const versions = rows.map((row) => row.version);
    const current = rows.find((row) => row.is_current === 1)?.version ?? Math.max(...versions);
    this.ring = new KeyRing(master, versions, { currentVersion: current });
    this.cipher = new VaultCipher(this.ring);
    this.convergent = new ConvergentTokenizer(this.ring);
    this.deterministicVersion = Math.min(...versions);
  }

  get currentVersion(): number {
    return this.ring.currentVersion;
  }

  ff1(version: number, fieldClass: FieldClass, epoch = 0): Ff1Text {
    const key = `${version}/${fieldClass}/${epoch}`;
    let fpe = this.fpe.get(key);
    if (fpe === undefined) {
      fpe = new Ff1Text(this.ring.fpeKey(version, fieldClass, epoch), FF1_ALPHABETS.decimal);
      this.fpe.set(key, fpe);
    }
    return fpe;
  }

  sameAs(rows: readonly KeyRow[]): boolean {
    return (
      rows.length === this.rows.length &&
      rows.every(
        (row, i) =>
          row.version === this.rows[i]?.version && row.is_current === this.rows[i]?.is_current,
      )
    );
  }
}

/**
 * Tokenization of personal data: tokens per field class as configured (random vault tokens,
 * convergent HMAC tokens, FF1 format-preserving tokens, display masks), detokenization behind
 * scopes with an audit log and a rate limit, right to erasure by crypto-shredding, and key
 * rotation with re-encryption of the vault. See docs/architecture.md (Tokenization).
 */
export class TokenizationService implements InboundTokenizer {
  private keys: Keys;
  private readonly writer: VaultWriter;
  private readonly limiter: RateLimiter;
  private readonly validator: SchemaValidator = new SchemaValidator();
  private readonly inboundForms = new Map<string, TSchema>();
  private readonly now: () => number;
  private refreshedAt: number;
  private refreshing: Promise<void> | null = null;
  /**
   * Shared tokens that may not be issued (D26), as far as this process met them: ERASED, or
   * the erasure epoch whose value holds the (FF1) token.
   */
  private readonly retired = new Map<string, number>();
  /** Values that moved past erasure epoch 0: their epoch-0 token -> the epoch they are at. */
  private readonly epochs = new Map<string, number>();

  private constructor(
    private readonly deps: TokenizationDeps,
    private readonly master: Buffer,
    keys: Keys,
  ) {
    this.keys = keys;
    this.now = deps.now ?? Date.now;
    this.refreshedAt = this.now();
    this.limiter = new RateLimiter(deps.settings.detokenizeRatePerMinute, this.now);
    this.writer = new VaultWriter({
      storage: deps.storage,
      now: this.now,
      onRetired: (tokens) => this.retire(tokens),
      successors: (pending, count) => this.successors(pending, count),
      encrypt: (pending) => {
        const fieldClass = pending.fieldClass as FieldClass;
        const value = pending.value ?? '';
        // A convergent row keeps the normalized spelling: every spelling meets in one row.
        const stored =
          pending.kind === 'convergent' && typeof value === 'string'
            ? normalizeValue(value, fieldClass)
            : value;
        return {
          ciphertext: this.keys.cipher.encrypt(encodeValue(stored), {
            token: pending.token,
            fieldClass,
          }),
          keyVersion: this.keys.currentVersion,
        };
      },
    });
  }

  /**
   * Finds the master key, checks it against the key check value stored at the first start
   * (stores it then), and loads the key versions. A wrong or missing key: CONFIG_INVALID with
   * one line, before anything is written.
   */
  static async open(deps: TokenizationDeps): Promise<TokenizationService> {
    for (const [fieldClass, kind] of Object.entries(deps.settings.kinds)) {
      if (kind === 'fpe' && !FPE_CLASSES.has(fieldClass as FieldClass)) {
        throw new NexusError(
          'CONFIG_INVALID',
          `invalid configuration: tokenization.kinds.${fieldClass} cannot be fpe (FF1 tokens are for digit strings: card, phone)`,
        );
      }
    }
    const db = deps.storage.db;
    let rows = await listKeyVersions(db);
    const place: MasterKeyPlace =
      deps.storage.dialect === 'postgres'
        ? { dialect: 'postgres' }
        : { dialect: 'sqlite', sqliteFile: deps.sqliteFile ?? deps.storage.location };
    const { key, origin } = resolveMasterKey(deps.settings, place, rows.length > 0, {
      info: (line) => deps.logger.info(line),
      warn: (line) => deps.logger.warn(line),
    });
    const probe = new KeyRing(key, [1]);
    if (rows.length === 0) {
      await insertFirstKeyVersion(db, probe.keyCheckValue(), (deps.now ?? Date.now)());
      rows = await listKeyVersions(db);
    }
    for (const row of rows) {
      try {
        probe.verifyKeyCheck(row.key_check);
      } catch {
        throw new NexusError(
          'CONFIG_INVALID',
          `the master key from ${origin} does not match the key check value stored in the database (${row.key_check}): it is not the key this hub's tokens were written with; start with that key`,
        );
      }
    }
    const service = new TokenizationService(deps, key, new Keys(key, rows));
    // An erasure in another process ends what this one may trust about stored shared tokens
    // at once, rather than at its next look at the database (within a second, D26).
    deps.storage.onSignal('erasure', () => service.writer.forget());
    return service;
  }

  /** The configured kind of a field class. */
  kindOf(fieldClass: FieldClass): TokenizationKind {
    return this.deps.settings.kinds[fieldClass];
  }

  /**
   * A key for a purpose outside tokenization (webhook signing secrets at rest), derived from the
   * master key with HKDF-SHA-256 and `info` naming the purpose. The master does not leave this
   * service, and the derivation's own salt keeps the key apart from every tokenization key.
   */
  deriveKey(info: string): KeyObject {
    return deriveSealingKey(this.master, info);
  }

  // --- tokenize ----------------------------------------------------------------------------

  /** One value's token (or mask), stored before it is returned. */
  tokenize(value: PersonalValue, fieldClass: FieldClass, subject?: string | null): Promise<string> {
    return this.tokenizeOne(value, fieldClass, subject ?? null, 0);
  }

  private tokenizeOne(
    value: PersonalValue,
    fieldClass: FieldClass,
    subject: string | null,
    round: number,
  ): Promise<string> {
    this.maybeRefreshKeys();
    const kind = this.kindOf(fieldClass);
    // Counted once the value is stored (or needs no write): a retry below counts on its own.
    const counted = <R>(result: R): R => {
      this.deps.metrics?.tokenized(kind, fieldClass);
      return result;
    };
    let issued: PendingToken | string;
    try {
      issued = this.make(value, fieldClass, kind);
    } catch (error) {
      const detail = inputProblem(error);
      return Promise.reject(
        new NexusError('VALIDATION_FAILED', `/value ${detail}`, {
          errors: [{ pointer: '/value', detail }],
        }),
      );
    }
    if (typeof issued === 'string') return Promise.resolve(counted(issued));
    const token = issued.token;
    // The hot path of identity matching: a convergent token this process knows is stored.
    if (!this.writer.needsWrite(issued, subject)) return Promise.resolve(counted(token));
    return this.writer.write([issued], subject).then(
      () => counted(token),
      (error: unknown) =>
        error instanceof RetiredTokensError && round < RETIRED_RETRIES
          ? this.tokenizeOne(value, fieldClass, subject, round + 1)
          : Promise.reject(error as Error),
    );
  }

  /**
   * Several values; each item may name its own customer. Each customer's tokens are written as
   * one request; a request that met a retired token wrote nothing, and only its items are
   * issued again (the others' rows stay as written).
   */
  async tokenizeMany(
    items: ReadonlyArray<{ value: PersonalValue; fieldClass: FieldClass; subject?: string | null }>,
  ): Promise<string[]> {
    this.maybeRefreshKeys();
    const tokens = new Array<string>(items.length);
    let todo = items.map((_, index) => index);
    for (let round = 0; ; round++) {
      const bySubject = new Map<
        string | null,
        { pending: PendingToken[]; indexes: number[]; issued: Issued }
      >();
      const masks: Issued = [];
      const errors: FieldError[] = [];
      for (const index of todo) {
        const item = items[index]!;
        try {
          const kind = this.kindOf(item.fieldClass);
          const issued = this.make(item.value, item.fieldClass, kind);
          if (typeof issued === 'string') {
            // A mask is stored nowhere: it counts with this round, not with a customer's write.
            masks.push([kind, item.fieldClass]);
            tokens[index] = issued;
            continue;
          }
          const subject = item.subject ?? null;
          const group = bySubject.get(subject) ?? { pending: [], indexes: [], issued: [] };
          group.pending.push(issued);
          group.issued.push([kind, item.fieldClass]);
          group.indexes.push(index);
          bySubject.set(subject, group);
          tokens[index] = issued.token;
        } catch (error) {
          errors.push({ pointer: `/items/${index}/value`, detail: inputProblem(error) });
        }
      }
      if (errors.length > 0) {
        throw new NexusError('VALIDATION_FAILED', `${errors[0]!.pointer} ${errors[0]!.detail}`, {
          errors,
        });
      }
      const groups = [...bySubject];
      const outcomes = await Promise.allSettled(
        groups.map(([subject, group]) => this.writer.write(group.pending, subject)),
      );
      const again: number[] = [];
      const stored: Issued = [...masks];
      outcomes.forEach((outcome, k) => {
        const group = groups[k]![1];
        if (outcome.status === 'fulfilled') {
          stored.push(...group.issued);
          return;
        }
        const retry = outcome.reason instanceof RetiredTokensError && round < RETIRED_RETRIES;
        if (!retry) throw outcome.reason;
        again.push(...group.indexes);
      });
      this.countIssued(stored);
      if (again.length === 0) return tokens;
      todo = again;
    }
  }

  /**
   * Tokenization asked for over the API (scope `pii:tokenize`): as `tokenizeMany`, with one
   * audit row per call (how many values, of which class and customer when there is one).
   */
  async tokenizeRequest(
    ctx: Context,
    items: ReadonlyArray<{ value: PersonalValue; fieldClass: FieldClass; subject?: string | null }>,
  ): Promise<string[]> {
    if (!hasScope(ctx.scopes, PII_SCOPES.tokenize)) {
      throw new NexusError('FORBIDDEN_SCOPE', `tokenizing needs scope '${PII_SCOPES.tokenize}'`);
    }
    const tokens = await this.tokenizeMany(items);
    const classes = new Set(items.map((item) => item.fieldClass));
    const subjects = new Set(items.map((item) => item.subject ?? null));
    await this.appendAudit(this.deps.storage.db, [
      {
        at: this.now(),
        actor: actorOf(ctx),
        action: 'tokenize',
        token: items.length === 1 ? (tokens[0] ?? null) : null,
        subject: subjects.size === 1 ? [...subjects][0]! : null,
        field_class: classes.size === 1 ? [...classes][0]! : null,
        reason: null,
        outcome: 'ok',
        code: null,
        count: items.length,
        request_id: ctx.requestId,
      },
    ]);
    return tokens;
  }

  /**
   * `data` with every `x-pii` position of `schema` replaced by its token, written to the vault
   * in one transaction (shared with concurrent callers), linked to `subject` when given. A value
   * that already is a token of its position's class is kept. Problems are reported with
   * pointers under `options.pointer` and never repeat a value.
   */
  tokenizeDocument<T = unknown>(
    schema: TSchema,
    data: T,
    subject?: string | null,
    options: { pointer?: string; code?: 'VALIDATION_FAILED' | 'SCHEMA_VIOLATION' } = {},
  ): Promise<T> {
    return reissuingRetired(async () => {
      this.maybeRefreshKeys();
      const { out, pending, issued } = this.tokenizeInMemory(schema, data, options);
      await this.writer.write(pending, subject ?? null);
      this.countIssued(issued);
      return out as T;
    });
  }

  /** `tokenizeDocument` without the write: the token form and the rows still to be stored. */
  private tokenizeInMemory(
    schema: TSchema,
    data: unknown,
    options: { pointer?: string; code?: 'VALIDATION_FAILED' | 'SCHEMA_VIOLATION' },
  ): { out: unknown; pending: PendingToken[]; issued: Issued } {
    const pending: PendingToken[] = [];
    const issued: Issued = [];
    const errors: FieldError[] = [];
    const out = mapPersonalData(schema, data, {
      pii: (value, kind, pointer) => {
        const fieldClass = fieldClassOfPii(kind) as FieldClass;
        if (typeof value === 'string' && this.isTokenOf(value, fieldClass)) return value;
        try {
          if (!isPersonalValue(value))
            throw new TokenInputError('not a value that can be tokenized');
          const made = this.issue(value, fieldClass, this.kindOf(fieldClass), issued);
          if (typeof made === 'string') return made;
          pending.push(made);
          return made.token;
        } catch (error) {
          errors.push({
            pointer: `${options.pointer ?? ''}${pointer}`,
            detail: inputProblem(error),
          });
          return null;
        }
      },
    });
    if (errors.length > 0) {
      throw new NexusError(
        options.code ?? 'VALIDATION_FAILED',
        `${errors[0]!.pointer} ${errors[0]!.detail}`,
        { errors },
      );
    }
    return { out, pending, issued };
  }

  /**
   * The edge hook for ingest: call it with an inbound event's type and data BEFORE checking the
   * data against the type's registered schema. For a type with personal data
   * (INBOUND_PERSONAL_DATA) it checks the data against the clear schema (where each personal
   * data position may also already hold a token of its class), tokenizes it (linked to the
   * customer: `subjectHint`, else the id the type's `subject` pointer finds in the data) and
   * returns the token form, which the registered schema then accepts. Other types come back
   * unchanged. Throws SCHEMA_VIOLATION (pointers under `options.pointer`, default `/data`) or
   * SUBJECT_ERASED; never with a value in the message.
   */
  prepareInbound(
    type: string,
    data: unknown,
    subjectHint?: string,
    options: { pointer?: string } = {},
  ): Promise<unknown> {
    return reissuingRetired(async () => {
      const prepared = this.tokenizeInbound(type, data, { ...options, subjectHint });
      await this.writer.write(prepared.pending, prepared.subject);
      this.countIssued(prepared.issued);
      return prepared.data;
    });
  }

  /**
   * `prepareInbound` in two steps, for ingest: the check and the tokens in memory here, the
   * rows written by `storeInbound` in the ingest transaction, so an event and the vault rows of
   * its tokens commit together. Throws SCHEMA_VIOLATION as `prepareInbound` does.
   */
  tokenizeInbound(
    type: string,
    data: unknown,
    options: { pointer?: string; subjectHint?: string | undefined } = {},
  ): PreparedInbound {
    const spec = INBOUND_PERSONAL_DATA[type as EventType];
    if (spec === undefined) return new Prepared(data, null, [], [], null, data);
    this.maybeRefreshKeys();
    const pointer = options.pointer ?? '/data';
    this.validator.assert(this.inboundForm(type, spec.clear), data, 'SCHEMA_VIOLATION', pointer);
    const subject = options.subjectHint ?? subjectIn(data, spec.subject);
    const { out, pending, issued } = this.tokenizeInMemory(spec.clear, data, {
      pointer,
      code: 'SCHEMA_VIOLATION',
    });
    return new Prepared(out, subject, pending, issued, spec.clear, data);
  }

  /**
   * Writes the rows of `tokenizeInbound` results in the caller's transaction (erasure check
   * included: events of erased customers are in `erased` and nothing of theirs is written);
   * call `committed` after the commit. When `retired` is not empty, some tokens may not be
   * issued: the caller rolls back and calls `tokenizeInbound` again, which now issues others.
   */
  async storeInbound(
    trx: Executor,
    prepared: readonly PreparedInbound[],
  ): Promise<StoredInTransaction> {
    const stored = await this.writer.writeIn(
      trx,
      prepared.map((p) => ({ tokens: p.pending, subject: p.subject })),
    );
    return {
      ...stored,
      // Counted with the ingest's commit: a batch rolled back to issue again counts once.
      committed: () => {
        stored.committed();
        for (const p of prepared) {
          if (p.subject === null || !stored.erased.has(p.subject)) this.countIssued(p.issued);
        }
      },
    };
  }

  /**
   * For a dead letter: `data` (which may be invalid) with nothing personal left in clear. Every
   * `x-pii` position becomes a vault token (kept by the vault, linked to the customer, so a
   * corrected event can be replayed and an erasure still reaches it), and anything the schema
   * does not describe is masked (`***`), as it might be personal data. For an erased customer
   * everything personal is masked instead. Types without personal data come back unchanged.
   */
  async redactInbound(type: string, data: unknown, subjectHint?: string): Promise<unknown> {
    const spec = INBOUND_PERSONAL_DATA[type as EventType];
    if (spec === undefined) return data;
    const subject = subjectHint ?? subjectIn(data, spec.subject);
    const pending: PendingToken[] = [];
    const issued: Issued = [];
    const tokenized = mapPersonalData(spec.clear, data, {
      pii: (value, kind) => {
        const fieldClass = fieldClassOfPii(kind) as FieldClass;
        if (typeof value === 'string' && this.isTokenOf(value, fieldClass)) return value;
        const text = isPersonalValue(value) ? value : String(value);
        try {
          const made = this.issue(text, fieldClass, 'vault', issued);
          if (typeof made === 'string') return made;
          pending.push(made);
          return made.token;
        } catch {
          return '***';
        }
      },
      unknown: maskAll,
    });
    try {
      await this.writer.write(pending, subject);
      this.countIssued(issued);
      return tokenized;
    } catch (error) {
      if (!(error instanceof NexusError && error.code === 'SUBJECT_ERASED')) throw error;
      return maskPersonalData(spec.clear, data);
    }
  }

  // --- detokenize --------------------------------------------------------------------------

  /**
   * The clear values of `tokens`, for a caller with `pii:detokenize` and, per token,
   * `pii:detokenize:<class>`, stating a `reason`. Every token is audited (who, token, class,
   * reason, outcome), refused ones too; the call is refused as a whole without the gate scope,
   * without a reason or over the caller's rate (RATE_LIMITED). A token that is malformed,
   * unknown, erased or of a class the caller may not see gets its own refusal and reveals
   * nothing.
   */
  async detokenize(
    ctx: Context,
    tokens: readonly string[],
    reason: string,
  ): Promise<DetokenizeResult[]> {
    const actor = actorOf(ctx);
    const at = this.now();
    const parsed = tokens.map(safeParse);
    const trimmed = typeof reason === 'string' ? reason.trim() : '';
    const auditRow = (
      i: number,
      outcome: AuditRow['outcome'],
      code: string | null,
      subject: string | null = null,
    ): NewAuditRow => ({
      at,
      actor,
      action: 'detokenize',
      token: parsed[i] ? tokens[i]! : null,
      subject,
      field_class: parsed[i]?.fieldClass ?? null,
      reason: trimmed === '' ? null : trimmed.slice(0, 500),
      outcome,
      code,
      count: null,
      request_id: ctx.requestId,
    });
    const refuseAll = async (error: NexusError): Promise<never> => {
      const rows =
        tokens.length === 0
          ? [{ ...auditRow(0, 'refused', error.code), token: null }]
          : tokens.map((_, i) => auditRow(i, 'refused', error.code));
      await this.appendAudit(this.deps.storage.db, rows);
      auditedErrors.add(error);
      throw error;
    };

    if (!hasScope(ctx.scopes, PII_SCOPES.detokenize)) {
      await refuseAll(
        new NexusError('FORBIDDEN_SCOPE', `detokenizing needs scope '${PII_SCOPES.detokenize}'`),
      );
    }
    if (trimmed === '') {
      await refuseAll(
        new NexusError('VALIDATION_FAILED', 'a reason is required to detokenize', {
          errors: [
            { pointer: '/reason', detail: 'is required: say why the clear value is needed' },
          ],
        }),
      );
    }
    if (tokens.length === 0 || tokens.length > MAX_DETOKENIZE) {
      await refuseAll(
        new NexusError('VALIDATION_FAILED', `send 1 to ${MAX_DETOKENIZE} tokens per call`, {
          errors: [{ pointer: '/tokens', detail: `must hold 1 to ${MAX_DETOKENIZE} tokens` }],
        }),
      );
    }
    const decision = this.limiter.take(actor, tokens.length);
    if (!decision.allowed) {
      const limit = this.limiter.perMinute;
      await refuseAll(
        Number.isFinite(decision.retryAfterMs)
          ? new NexusError(
              'RATE_LIMITED',
              `this key may detokenize ${limit} tokens per minute; retry in ${Math.ceil(decision.retryAfterMs / 1000)} s`,
              { extensions: { retryAfterSeconds: Math.ceil(decision.retryAfterMs / 1000) } },
            )
          : new NexusError(
              'VALIDATION_FAILED',
              `this hub lets a key detokenize at most ${limit} tokens per minute; send fewer per call`,
              { errors: [{ pointer: '/tokens', detail: `must hold at most ${limit} tokens` }] },
            ),
      );
    }

    this.maybeRefreshKeys();
    const results: DetokenizeResult[] = new Array<DetokenizeResult>(tokens.length);
    const audit: NewAuditRow[] = new Array<NewAuditRow>(tokens.length);
    const refuse = (
      i: number,
      code: ErrorCode,
      detail: string,
      outcome: AuditRow['outcome'] = 'refused',
    ) => {
      results[i] = { token: tokens[i]!, ok: false, code, detail };
      audit[i] = auditRow(i, outcome, code);
    };
    const wanted: number[] = [];
    parsed.forEach((parts, i) => {
      if (parts === null) return refuse(i, 'TOKEN_MALFORMED', 'not a token');
      if (!hasScope(ctx.scopes, PII_SCOPES.detokenizeClass(parts.fieldClass))) {
        return refuse(
          i,
          'TOKEN_CLASS_FORBIDDEN',
          `this key may not detokenize ${parts.fieldClass} tokens (scope '${PII_SCOPES.detokenizeClass(parts.fieldClass)}')`,
        );
      }
      wanted.push(i);
    });
    const lookup = [...new Set(wanted.map((i) => tokens[i]!))];
    const [rows, tombstones] =
      lookup.length === 0
        ? [[], new Set<string>()]
        : await Promise.all([
            findVaultRows(this.deps.storage.db, lookup),
            findTombstones(this.deps.storage.db, lookup),
          ]);
    const byToken = new Map(rows.map((row) => [row.token, row]));
    for (const i of wanted) {
      const token = tokens[i]!;
      const parts = parsed[i]!;
      const row = byToken.get(token);
      if (tombstones.has(token)) {
        refuse(i, 'TOKEN_ERASED', 'the customer this token belonged to was erased');
        continue;
      }
      if (row === undefined || row.kind !== parts.kind || row.field_class !== parts.fieldClass) {
        refuse(i, 'TOKEN_UNKNOWN', 'the vault did not issue this token');
        continue;
      }
      try {
        const value = await this.reveal(parts, row);
        results[i] = { token, ok: true, fieldClass: parts.fieldClass, value };
        audit[i] = auditRow(i, 'ok', null, row.subject);
      } catch (error) {
        // A row that does not authenticate, or a key version no one configured: our fault,
        // logged without the value (there is none) and answered as unknown.
        this.deps.logger.error(
          { token, err: error instanceof Error ? error.message : String(error) },
          'a vault row could not be read',
        );
        refuse(i, 'TOKEN_UNKNOWN', 'the vault cannot read this token', 'failed');
      }
    }
    await this.appendAudit(this.deps.storage.db, audit);
    return results;
  }

  // --- erasure ------------------------------------------------------------------------------

  /**
   * Right to erasure: deletes the customer's vault rows and the shared (convergent, FF1) rows
   * linked to them, tombstones every such token (detokenize answers TOKEN_ERASED), records the
   * erasure and emits `customer.erased.v1` (id, time, token count: no personal data), all in one
   * transaction. Later personal data for the customer is refused (SUBJECT_ERASED). Calling it
   * again answers the first erasure and changes nothing.
   */
  async erase(ctx: Context, customerId: string, reason: string): Promise<ErasureResult> {
    const actor = actorOf(ctx);
    const trimmed = typeof reason === 'string' ? reason.trim() : '';
    const now = this.now();
    const audit = (
      outcome: AuditRow['outcome'],
      code: string | null,
      count: number | null,
    ): NewAuditRow => ({
      at: now,
      actor,
      action: 'erase',
      token: null,
      subject: customerId,
      field_class: null,
      reason: trimmed === '' ? null : trimmed.slice(0, 500),
      outcome,
      code,
      count,
      request_id: ctx.requestId,
    });
    if (!hasScope(ctx.scopes, PII_SCOPES.erase)) {
      await this.appendAudit(this.deps.storage.db, [audit('refused', 'FORBIDDEN_SCOPE', null)]);
      throw new NexusError('FORBIDDEN_SCOPE', `erasure needs scope '${PII_SCOPES.erase}'`);
    }
    if (trimmed === '') {
      throw new NexusError('VALIDATION_FAILED', 'a reason is required to erase a customer', {
        errors: [{ pointer: '/reason', detail: 'is required (e.g. the request reference)' }],
      });
    }
    const result = await this.deps.transactor.run(ctx, async (uow) => {
      await lockForErasure(uow.trx, this.deps.storage.dialect);
      const earlier = await findErasure(uow.trx, customerId);
      if (earlier !== undefined) {
        await this.appendAudit(uow.trx, [audit('ok', 'ALREADY_ERASED', 0)]);
        return {
          customerId,
          erasedAt: new Date(earlier.erased_at).toISOString(),
          tokenCount: earlier.token_count,
          alreadyErased: true,
        };
      }
      const tokenCount = await eraseSubject(uow.trx, customerId, now);
      await this.appendAudit(uow.trx, [audit('ok', null, tokenCount)]);
      await this.deps.storage.signal(uow.trx, 'erasure');
      const erasedAt = new Date(now).toISOString();
      uow.emit({
        type: 'customer.erased.v1',
        subject: `customer/${customerId}`,
        data: { customerId, erasedAt, tokenCount },
      });
      return { customerId, erasedAt, tokenCount, alreadyErased: false };
    });
    this.writer.forget();
    return result;
  }

  // --- keys ----------------------------------------------------------------------------------

  /**
   * Adds a key version and makes it current: new vault ciphertexts (and new random tokens) use
   * it; everything under older versions stays readable. Other hub processes pick it up within
   * 10 s, and at once when they meet it. Convergent and FF1 tokens keep their version.
   */
  async rotate(ctx: Context): Promise<{ version: number; previous: number }> {
    const previous = this.keys.currentVersion;
    const version = await this.deps.storage.transaction(async (trx) => {
      const added = await addKeyVersion(trx, this.keys.ring.keyCheckValue(), this.now());
      await this.appendAudit(trx, [
        {
          at: this.now(),
          actor: actorOf(ctx),
          action: 'rotate',
          token: null,
          subject: null,
          field_class: null,
          reason: `key version ${previous} -> ${added}`,
          outcome: 'ok',
          code: null,
          count: null,
          request_id: ctx.requestId,
        },
      ]);
      return added;
    });
    await this.refreshKeys(true);
    return { version, previous };
  }

  /**
   * Moves every vault ciphertext that is not under the current key version to it, in batches of
   * `batchSize` (one transaction each), reporting `progress(done, total)`. A row that another
   * process moved meanwhile is skipped; one that does not authenticate is counted as failed and
   * left as it is. Safe to run again, and alongside normal traffic.
   */
  async reencrypt(
    ctx: Context,
    progress: (done: number, total: number) => void = () => undefined,
    batchSize = 500,
  ): Promise<{ total: number; moved: number; skipped: number; failed: number; version: number }> {
    await this.refreshKeys(true);
    const keys = this.keys;
    const current = keys.currentVersion;
    const perVersion = await ciphertextsPerVersion(this.deps.storage.db);
    const total = [...perVersion].reduce((n, [v, count]) => (v === current ? n : n + count), 0);
    let done = 0;
    let moved = 0;
    let skipped = 0;
    let failed = 0;
    let after: string | null = null;
    progress(0, total);
    for (;;) {
      const rows: VaultRow[] = await rowsToReencrypt(
        this.deps.storage.db,
        current,
        after,
        batchSize,
      );
      if (rows.length === 0) break;
      await this.deps.storage.transaction(async (trx) => {
        for (const row of rows) {
          let blob: Buffer;
          try {
            blob = keys.cipher.reencrypt(row.ciphertext!, {
              token: row.token,
              fieldClass: row.field_class as FieldClass,
            });
          } catch (error) {
            failed++;
            this.deps.logger.error(
              { token: row.token, err: error instanceof Error ? error.message : String(error) },
              're-encryption: a vault row could not be read',
            );
            continue;
          }
          if (await replaceCiphertext(trx, row.token, row.key_version, current, blob)) moved++;
          else skipped++;
        }
      });
      after = rows[rows.length - 1]!.token;
      done += rows.length;
      progress(Math.min(done, total), Math.max(total, done));
    }
    await this.appendAudit(this.deps.storage.db, [
      {
        at: this.now(),
        actor: actorOf(ctx),
        action: 'reencrypt',
        token: null,
        subject: null,
        field_class: null,
        reason: `to key version ${current}`,
        outcome: failed === 0 ? 'ok' : 'failed',
        code: null,
        count: moved,
        request_id: ctx.requestId,
      },
    ]);
    return { total, moved, skipped, failed, version: current };
  }

  async keyStatus(): Promise<KeyStatus> {
    await this.refreshKeys(true);
    const perVersion = await ciphertextsPerVersion(this.deps.storage.db);
    return {
      currentVersion: this.keys.currentVersion,
      deterministicVersion: this.keys.deterministicVersion,
      keyCheck: this.keys.ring.keyCheckValue(),
      versions: this.keys.rows.map((row) => ({
        version: row.version,
        current: row.version === this.keys.currentVersion,
        createdAt: new Date(row.created_at).toISOString(),
        ciphertexts: perVersion.get(row.version) ?? 0,
      })),
    };
  }

  // --- audit ---------------------------------------------------------------------------------

  async audit(query: {
    action?: AuditAction | undefined;
    actor?: string | undefined;
    token?: string | undefined;
    subject?: string | undefined;
    since?: string | undefined;
    until?: string | undefined;
    cursor?: string | undefined;
    limit: number;
  }): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
    const time = (value: string | undefined) =>
      value === undefined ? undefined : Date.parse(value);
    const rows = await listAudit(this.deps.storage.db, {
      action: query.action,
      actor: query.actor,
      token: query.token,
      subject: query.subject,
      since: time(query.since),
      until: time(query.until),
      before: query.cursor === undefined ? undefined : Number(query.cursor),
      limit: query.limit,
    });
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    return {
      items: page.map((row) => ({
        seq: row.seq,
        at: new Date(row.at).toISOString(),
        actor: row.actor,
        action: row.action,
        token: row.token,
        subject: row.subject,
        fieldClass: row.field_class,
        reason: row.reason,
        outcome: row.outcome,
        code: row.code,
        count: row.count,
        requestId: row.request_id,
      })),
      nextCursor: more ? String(page[page.length - 1]!.seq) : null,
    };
  }

  /** Records a refusal the HTTP layer made before the service ran (no scope, no key, bad body). */
  async auditRefusal(
    actor: string,
    code: string,
    tokens: readonly unknown[],
    reason: unknown,
    requestId: string | null,
  ): Promise<void> {
    const at = this.now();
    const why =
      typeof reason === 'string' && reason.trim() !== '' ? reason.trim().slice(0, 500) : null;
    const row = (token: unknown): NewAuditRow => {
      const parts = safeParse(token);
      return {
        at,
        actor,
        action: 'detokenize',
        token: parts ? (token as string) : null,
        subject: null,
        field_class: parts?.fieldClass ?? null,
        reason: why,
        outcome: 'refused',
        code,
        count: null,
        request_id: requestId,
      };
    };
    const list = tokens.slice(0, MAX_DETOKENIZE);
    await this.appendAudit(this.deps.storage.db, list.length === 0 ? [row(null)] : list.map(row));
  }

  /** Waits for pending vault writes (tests, shutdown). */
  async drain(): Promise<void> {
    await this.writer.drain();
    await this.refreshing;
  }

  // --- internals -----------------------------------------------------------------------------

  /** A token of `fieldClass` (any kind): kept as is where a position already holds one. */
  private isTokenOf(value: string, fieldClass: FieldClass): boolean {
    if (!value.startsWith('tok_')) return false;
    const parts = safeParse(value);
    return parts !== null && parts.fieldClass === fieldClass;
  }

  /** Writes audit rows and counts them. */
  private async appendAudit(executor: Executor, rows: readonly NewAuditRow[]): Promise<void> {
    await appendAudit(executor, rows);
    for (const r of rows) this.deps.metrics?.audited(r.action, r.outcome, r.code);
  }

  /**
   * Computes a token in memory: the row to write (holding the token), or a mask (a string),
   * noted in `issued` (counted once the attempt that issued it has succeeded: countIssued).
   */
  private issue(
    value: PersonalValue,
    fieldClass: FieldClass,
    kind: TokenizationKind,
    issued: Issued,
  ): PendingToken | string {
    const made = this.make(value, fieldClass, kind);
    issued.push([kind, fieldClass]);
    return made;
  }

  /** Values an attempt issued, on the metrics once it succeeded (a retried one counts once). */
  private countIssued(issued: Issued): void {
    const metrics = this.deps.metrics;
    if (metrics) for (const [kind, fieldClass] of issued) metrics.tokenized(kind, fieldClass);
  }

  private make(
    value: PersonalValue,
    fieldClass: FieldClass,
    kind: TokenizationKind,
  ): PendingToken | string {
    const keys = this.keys;
    switch (kind) {
      case 'mask':
        return typeof value === 'string' ? mask(value, fieldClass) || '***' : '***';
      case 'vault':
        return {
          token: keys.cipher.newToken(fieldClass),
          kind: 'vault',
          fieldClass,
          value,
          keyVersion: keys.currentVersion,
          epoch: 0,
        };
      case 'convergent': {
        const version = keys.deterministicVersion;
        const { token, epoch } = this.currentToken('convergent', valueText(value), fieldClass);
        return { token, kind: 'convergent', fieldClass, value, keyVersion: version, epoch };
      }
      case 'fpe': {
        if (typeof value !== 'string')
          throw new TokenInputError('FF1 tokens are for digit strings');
        const normalized = normalizeValue(value, fieldClass);
        if (fieldClass === 'phone' && !normalized.startsWith('+')) {
          throw new TokenInputError('FF1 phone tokens need a number in E.164 form (+...)');
        }
        const digits = normalized.replace(/^\+/, '');
        const version = keys.deterministicVersion;
        const { token, epoch } = this.currentToken('fpe', digits, fieldClass);
        return { token, kind: 'fpe', fieldClass, value: null, keyVersion: version, epoch };
      }
    }
  }

  /** The clear value behind a stored token. */
  private async reveal(parts: TokenParts, row: VaultRow): Promise<PersonalValue> {
    if (parts.kind === 'fpe') {
      if (!this.keys.ring.has(parts.keyVersion)) await this.refreshKeys(true);
      const digits = this.keys
        .ff1(parts.keyVersion, parts.fieldClass, row.epoch)
        .decrypt(parts.body, `nexus/${parts.fieldClass}`);
      return parts.fieldClass === 'phone' ? `+${digits}` : digits;
    }
    if (row.ciphertext === null)
      throw new VaultCipherError('VAULT_BLOB_MALFORMED', 'vault: no ciphertext');
    const aad = { token: row.token, fieldClass: parts.fieldClass };
    try {
      return decodeValue(this.keys.cipher.decryptString(row.ciphertext, aad));
    } catch (error) {
      if (!(error instanceof TokenizationCryptoError && error.code === 'KEY_VERSION_UNKNOWN'))
        throw error;
      await this.refreshKeys(true);
      return decodeValue(this.keys.cipher.decryptString(row.ciphertext, aad));
    }
  }

  /** Shared tokens the writer found erased (or held by another epoch): not issued again. */
  private retire(tokens: ReadonlyMap<string, number>): void {
    if (this.retired.size + tokens.size > MAX_RETIRED) {
      this.retired.clear();
      this.epochs.clear();
    }
    for (const [token, holder] of tokens) this.retired.set(token, holder);
  }

  /** A convergent token of `text`, or an FF1 token of `digits`, under erasure epoch `epoch`. */
  private sharedToken(
    kind: 'convergent' | 'fpe',
    source: string,
    fieldClass: FieldClass,
    epoch: number,
  ): string {
    const keys = this.keys;
    const version = keys.deterministicVersion;
    if (kind === 'convergent') return keys.convergent.token(source, fieldClass, version, epoch);
    const body = keys.ff1(version, fieldClass, epoch).encrypt(source, `nexus/${fieldClass}`);
    return formatToken({ kind: 'fpe', keyVersion: version, fieldClass, body });
  }

  /**
   * The value's token under the first erasure epoch not retired (D26): a retired token is never
   * issued again. A value that has moved on is remembered by its epoch-0 token, so its known
   * epochs are not walked on every call.
   */
  private currentToken(
    kind: 'convergent' | 'fpe',
    source: string,
    fieldClass: FieldClass,
  ): { token: string; epoch: number } {
    const origin = this.sharedToken(kind, source, fieldClass, 0);
    let epoch = this.epochs.get(origin) ?? 0;
    let token = epoch === 0 ? origin : this.sharedToken(kind, source, fieldClass, epoch);
    while (!this.issuable(token, epoch)) {
      token = this.sharedToken(kind, source, fieldClass, ++epoch);
    }
    if (epoch > 0) this.epochs.set(origin, epoch);
    return { token, epoch };
  }

  /**
   * The tokens `pending`'s value would get under the next `count` erasure epochs, for the
   * writer to look them up with the retired one (a value erased many times then takes one
   * round, not one per epoch). Empty when they cannot be derived.
   */
  private successors(pending: PendingToken, count: number): PendingToken[] {
    const kind = pending.kind;
    if (kind === 'vault') return [];
    const fieldClass = pending.fieldClass as FieldClass;
    try {
      const source =
        kind === 'convergent'
          ? valueText(pending.value ?? '')
          : this.keys
              .ff1(pending.keyVersion, fieldClass, pending.epoch)
              .decrypt(parseToken(pending.token).body, `nexus/${fieldClass}`);
      return Array.from({ length: count }, (_, i) => {
        const epoch = pending.epoch + 1 + i;
        return {
          ...pending,
          token: this.sharedToken(kind, source, fieldClass, epoch),
          epoch,
        };
      });
    } catch {
      return [];
    }
  }

  /** Whether `token`, made under erasure epoch `epoch`, may be issued. */
  private issuable(token: string, epoch: number): boolean {
    const holder = this.retired.get(token);
    return holder === undefined || holder === epoch;
  }

  private maybeRefreshKeys(): void {
    if (this.now() - this.refreshedAt < KEY_REFRESH_MS || this.refreshing) return;
    this.refreshKeys(false).catch((error: unknown) =>
      this.deps.logger.warn(
        { err: String(error) },
        'could not reload the tokenization key versions',
      ),
    );
  }

  /** Reloads key versions (another process may have rotated); `force` skips the age check. */
  private async refreshKeys(force: boolean): Promise<void> {
    if (!force && this.now() - this.refreshedAt < KEY_REFRESH_MS) return;
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const rows = await listKeyVersions(this.deps.storage.db);
        const probe = this.keys.ring;
        for (const row of rows) probe.verifyKeyCheck(row.key_check);
        if (!this.keys.sameAs(rows)) this.keys = new Keys(this.master, rows);
        this.refreshedAt = this.now();
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  private inboundForm(type: string, clear: TSchema): TSchema {
    let schema = this.inboundForms.get(type);
    if (schema === undefined) {
      schema = inboundFormOf(clear);
      this.inboundForms.set(type, schema);
    }
    return schema;
  }
}

/** Every string in `value` masked: what a dead letter keeps of data nobody declared. */
const maskAll = (value: unknown): unknown =>
  typeof value === 'string'
    ? '***'
    : Array.isArray(value)
      ? value.map(maskAll)
      : typeof value === 'object' && value !== null
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskAll(v)]))
        : value;

/** `data` with every personal position and everything undeclared masked. */
const maskPersonalData = (schema: TSchema, data: unknown): unknown =>
  mapPersonalData(schema, data, { pii: () => '***', unknown: maskAll });

/** The customer id at `pointer` in `data`, when it is a non-empty string. */
function subjectIn(data: unknown, pointer: string): string | null {
  let node: unknown = data;
  for (const part of pointer.split('/').slice(1)) {
    if (typeof node !== 'object' || node === null) return null;
    node = (node as Record<string, unknown>)[part];
  }
  return typeof node === 'string' && node !== '' ? node : null;
}

/** What was wrong with a value, without the value. */
function inputProblem(error: unknown): string {
  if (error instanceof TokenizationCryptoError) {
    return error.message.replace(/^(convergent|FF1|token|vault): /, '');
  }
  if (error instanceof NexusError) return error.message;
  throw error;
}
