import { hasPii } from '../../model/tokenized.js';
import { createHash } from 'node:crypto';
import type { TSchema } from '@sinclair/typebox';
import type { Executor, Storage } from '../../platform/db/storage.js';
import { isUniqueViolation } from '../../platform/db/errors.js';
import { canonicalJson } from '../../platform/db/documents.js';
import type { EventSchemaSource } from '../../platform/events/unit-of-work.js';
import type { ValidateFunction } from 'ajv/dist/2020.js';
import { compileForeignSchema } from '../../platform/validation.js';
import {
  COMPATIBILITY_LEVELS,
  checkCompatibility,
  type CompatibilityLevel,
} from './compatibility.js';
import { RegistryError, registryErrors } from './errors.js';
import {
  deletePermanently,
  deleteSetting,
  ensureSchema,
  getSchemaById,
  getSetting,
  insertVersion,
  listSubjects,
  findVersion,
  listVersions,
  markDeleted,
  maxVersion,
  putSetting,
  versionsOfSchema,
  type SubjectVersion,
} from './store.js';

export type Mode = 'READWRITE' | 'READONLY' | 'IMPORT';
export const MODES: readonly Mode[] = ['READWRITE', 'READONLY', 'IMPORT'];

/** The hub's default for subjects without their own level (Confluent's own default is BACKWARD). */
export const DEFAULT_COMPATIBILITY: CompatibilityLevel = 'BACKWARD_TRANSITIVE';

/** Schemas larger or deeper than this are refused: they cost memory and time to check. */
const MAX_SCHEMA_BYTES = 256 * 1024;
const MAX_SCHEMA_DEPTH = 64;

export interface Reference {
  name: string;
  subject: string;
  version: number;
}

export interface SchemaInput {
  schema: string;
  schemaType?: string;
  references?: Reference[];
}

export interface RegisteredSchema {
  subject: string;
  id: number;
  version: number;
  schemaType: string;
  schema: string;
  references?: Reference[];
}

interface Prepared {
  schemaType: string;
  parsed: unknown;
  canonical: string;
  references: Reference[];
  referenced: Map<string, unknown>;
  fingerprint: string;
}

function depthOf(value: unknown, depth = 0): number {
  if (depth > MAX_SCHEMA_DEPTH) return depth;
  if (Array.isArray(value))
    return value.reduce((max: number, v) => Math.max(max, depthOf(v, depth + 1)), depth);
  if (value !== null && typeof value === 'object') {
    return Object.values(value).reduce(
      (max: number, v) => Math.max(max, depthOf(v, depth + 1)),
      depth,
    );
  }
  return depth;
}

/**
 * A schema registry that speaks Confluent's REST API for JSON Schema: subjects with numbered
 * versions, one global id per distinct schema, compatibility levels per subject, modes, soft
 * and permanent deletes. Versions and ids are allocated in the database, so any number of hub
 * processes may register at once without handing out two ids for one schema or one for two.
 */
export class RegistryService {
  /** A schema id always means the same schema, so entries never go stale; only the size is bounded. */
  private readonly byId = new Map<
    number,
    { schema: string; schemaType: string; references: Reference[] }
  >();
  private readonly validators = new Map<number, ValidateFunction>();
  private readonly compiling = new Map<number, Promise<ValidateFunction>>();
  /**
   * (subject, version) -> the registered schema, for validating inbound events: without it
   * every single event sent to /v1/events cost a registry query. Entries live 1 s and any
   * registration or deletion in this process clears them; one made by another process is
   * seen within that second.
   */
  private readonly resolved = new Map<string, { at: number; found: RegisteredSchema }>();

  /** Subjects the hub registers itself (registerCanonical): the only ones that may mark `x-pii`. */
  private readonly canonicalSubjects = new Set<string>();

  constructor(private readonly storage: Storage) {}

  private get db(): Executor {
    return this.storage.db;
  }

  // --- subjects and versions -------------------------------------------------------------

  subjects(includeDeleted = false): Promise<string[]> {
    return listSubjects(this.db, includeDeleted);
  }

  async versions(subject: string, includeDeleted = false): Promise<number[]> {
    const versions = await listVersions(this.db, subject, includeDeleted);
    if (versions.length === 0) throw registryErrors.subjectNotFound(subject);
    return versions.map((v) => v.version);
  }

  async getVersion(
    subject: string,
    version: string,
    includeDeleted = false,
  ): Promise<RegisteredSchema> {
    const wanted = parseVersion(version);
    const found = await findVersion(this.db, subject, wanted, includeDeleted);
    if (found) return toRegistered(found);
    // Which error: only a miss pays for reading the subject's versions.
    const all = await listVersions(this.db, subject, includeDeleted);
    if (all.length === 0) throw registryErrors.subjectNotFound(subject);
    throw registryErrors.versionNotFound(subject, version);
  }

  async register(subject: string, input: SchemaInput): Promise<{ id: number }> {
    if ((await this.mode(subject)) === 'READONLY') {
      throw registryErrors.operationNotPermitted(`Subject ${subject} is in read-only mode`);
    }
    const prepared = await this.prepare(input);
    // The hub tokenizes personal data at the edge for its own event types only (their token
    // forms are built in). A feed's own schema that marks a field `x-pii` would have it stored
    // and published in clear while the mark says otherwise: refuse it and say why.
    if (
      !this.canonicalSubjects.has(subject) &&
      (hasPii(prepared.parsed) || [...prepared.referenced.values()].some(hasPii))
    ) {
      throw registryErrors.invalidSchema(
        `it marks personal data (x-pii), which the hub tokenizes only in its canonical event ` +
          `types (customer.registered.v1, customer.updated.v1, order.placed.v1); map the feed ` +
          `onto one of them rather than registering ${subject} with x-pii`,
      );
    }
    for (let attempt = 0; ; attempt++) {
      const existing = await listVersions(this.db, subject, false);
      const same = existing.find((v) => fingerprintOf(v) === prepared.fingerprint);
      if (same) return { id: same.schemaId };
      const level = await this.compatibility(subject);
      const verdict = checkCompatibility(level, prepared.parsed as never, existing.map(parsedOf), {
        resolveRef: (ref) => prepared.referenced.get(ref) as never,
      });
      if (!verdict.compatible) throw registryErrors.incompatible(subject, verdict.messages);
      try {
        return await this.storage.transaction(async (trx) => {
          const id = await ensureSchema(trx, {
            schema_type: prepared.schemaType,
            schema: prepared.canonical,
            references: canonicalJson(prepared.references),
            fingerprint: prepared.fingerprint,
          });
          await insertVersion(trx, subject, (await maxVersion(trx, subject)) + 1, id);
          this.resolved.clear();
          return { id };
        });
      } catch (error) {
        // Another process registered in the same subject (or the same schema) at the same moment.
        if (!isUniqueViolation(error) || attempt >= 5) throw error;
      }
    }
  }

  /** POST /subjects/{subject}: is this schema registered under the subject, and as which version? */
  async lookup(
    subject: string,
    input: SchemaInput,
    includeDeleted = false,
  ): Promise<RegisteredSchema> {
    const existing = await listVersions(this.db, subject, includeDeleted);
    if (existing.length === 0) throw registryErrors.subjectNotFound(subject);
    const prepared = await this.prepare(input);
    const found = existing.find((v) => fingerprintOf(v) === prepared.fingerprint);
    if (!found) throw registryErrors.schemaNotFound();
    return toRegistered(found);
  }

  async deleteSubject(subject: string, permanent: boolean): Promise<number[]> {
    try {
      return await this.deleteSubjectVersions(subject, permanent);
    } finally {
      this.resolved.clear();
    }
  }

  private async deleteSubjectVersions(subject: string, permanent: boolean): Promise<number[]> {
    const all = await listVersions(this.db, subject, true);
    if (all.length === 0) throw registryErrors.subjectNotFound(subject);
    await this.refuseWhenReadOnly(subject);
    const versions = all.map((v) => v.version);
    if (permanent) {
      if (all.some((v) => !v.deleted)) throw registryErrors.subjectNotSoftDeleted(subject);
      await deletePermanently(this.db, subject, versions);
    } else {
      if (all.every((v) => v.deleted)) throw registryErrors.subjectNotFound(subject);
      await markDeleted(this.db, subject, versions);
    }
    await deleteSetting(this.db, subject, 'compatibility');
    return versions;
  }

  async deleteVersion(subject: string, version: string, permanent: boolean): Promise<number> {
    try {
      return await this.deleteOneVersion(subject, version, permanent);
    } finally {
      this.resolved.clear();
    }
  }

  private async deleteOneVersion(
    subject: string,
    version: string,
    permanent: boolean,
  ): Promise<number> {
    const target = await this.getVersion(subject, version, permanent);
    await this.refuseWhenReadOnly(subject);
    const all = await listVersions(this.db, subject, true);
    const row = all.find((v) => v.version === target.version)!;
    if (permanent) {
      if (!row.deleted) throw registryErrors.versionNotSoftDeleted(subject, row.version);
      await deletePermanently(this.db, subject, [row.version]);
    } else {
      if (row.deleted) throw registryErrors.versionNotFound(subject, version);
      await markDeleted(this.db, subject, [row.version]);
    }
    return row.version;
  }

  // --- schemas by id ---------------------------------------------------------------------

  async schemaById(
    id: number,
  ): Promise<{ schema: string; schemaType: string; references: Reference[] }> {
    const cached = this.byId.get(id);
    if (cached) return cached;
    const row = await getSchemaById(this.db, id);
    if (!row) throw registryErrors.schemaNotFound(`Schema ${id} not found`);
    const found = {
      schema: row.schema,
      schemaType: row.schema_type,
      references: JSON.parse(row.references) as Reference[],
    };
    if (this.byId.size >= 10_000) this.byId.delete(this.byId.keys().next().value!);
    this.byId.set(id, found);
    return found;
  }

  async subjectVersionsOfSchema(id: number): Promise<Array<{ subject: string; version: number }>> {
    if (!(await getSchemaById(this.db, id)))
      throw registryErrors.schemaNotFound(`Schema ${id} not found`);
    return versionsOfSchema(this.db, id);
  }

  // --- compatibility ---------------------------------------------------------------------

  /** Tests a schema against one version, or against what the subject's level asks for 'latest'. */
  async testCompatibility(
    subject: string,
    version: string,
    input: SchemaInput,
  ): Promise<{ compatible: boolean; messages: string[] }> {
    const prepared = await this.prepare(input);
    const all = await listVersions(this.db, subject, false);
    const level = await this.compatibility(subject);
    let against: SubjectVersion[];
    if (parseVersion(version) === 'latest') {
      against = all; // empty subject: compatible with nothing to compare
    } else {
      if (all.length === 0) throw registryErrors.subjectNotFound(subject);
      const one = all.find((v) => v.version === parseVersion(version));
      if (!one) throw registryErrors.versionNotFound(subject, version);
      against = [one];
    }
    return checkCompatibility(
      parseVersion(version) === 'latest' ? level : nonTransitive(level),
      prepared.parsed as never,
      against.map(parsedOf),
      { resolveRef: (ref) => prepared.referenced.get(ref) as never },
    );
  }

  async compatibility(subject?: string): Promise<CompatibilityLevel> {
    const own =
      subject === undefined ? undefined : await getSetting(this.db, subject, 'compatibility');
    return (own ??
      (await getSetting(this.db, '', 'compatibility')) ??
      DEFAULT_COMPATIBILITY) as CompatibilityLevel;
  }

  /** The subject's own level; 40408 when it has none (as Confluent answers). */
  async subjectCompatibility(
    subject: string,
    defaultToGlobal: boolean,
  ): Promise<CompatibilityLevel> {
    const own = await getSetting(this.db, subject, 'compatibility');
    if (own) return own as CompatibilityLevel;
    if (defaultToGlobal) return this.compatibility();
    throw registryErrors.subjectLevelCompatibilityNotConfigured(subject);
  }

  async setCompatibility(subject: string | undefined, level: string): Promise<CompatibilityLevel> {
    const normalized = level.toUpperCase();
    if (!(COMPATIBILITY_LEVELS as readonly string[]).includes(normalized))
      throw registryErrors.invalidCompatibility(level);
    await putSetting(this.db, subject ?? '', 'compatibility', normalized);
    return normalized as CompatibilityLevel;
  }

  async deleteCompatibility(subject: string | undefined): Promise<CompatibilityLevel> {
    const previous =
      subject === undefined
        ? await this.compatibility()
        : await this.subjectCompatibility(subject, false);
    await deleteSetting(this.db, subject ?? '', 'compatibility');
    return previous;
  }

  // --- modes -----------------------------------------------------------------------------

  async mode(subject?: string): Promise<Mode> {
    const own = subject === undefined ? undefined : await getSetting(this.db, subject, 'mode');
    return (own ?? (await getSetting(this.db, '', 'mode')) ?? 'READWRITE') as Mode;
  }

  async setMode(subject: string | undefined, mode: string): Promise<Mode> {
    const normalized = mode.toUpperCase();
    if (!(MODES as readonly string[]).includes(normalized)) throw registryErrors.invalidMode(mode);
    await putSetting(this.db, subject ?? '', 'mode', normalized);
    return normalized as Mode;
  }

  // --- the hub's own schemas ---------------------------------------------------------------

  /**
   * Registers the hub's canonical schemas (idempotent: an unchanged schema keeps its id) and
   * answers an event schema source over the latest version of each event type. A schema that
   * changed incompatibly stops the hub here rather than letting it publish events its
   * consumers cannot read.
   */
  async registerCanonical(subjects: Record<string, TSchema>): Promise<CanonicalSchemas> {
    const registered = new Map<string, { id: number; version: number; schema: TSchema }>();
    for (const subject of Object.keys(subjects)) this.canonicalSubjects.add(subject);
    for (const [subject, schema] of Object.entries(subjects)) {
      try {
        const { id } = await this.register(subject, {
          schema: JSON.stringify(schema),
          schemaType: 'JSON',
        });
        const versions = await listVersions(this.db, subject, false);
        const version = versions.find((v) => v.schemaId === id)!.version;
        registered.set(subject, { id, version, schema });
      } catch (error) {
        if (error instanceof RegistryError) {
          throw new Error(
            `the canonical schema for '${subject}' cannot be registered: ${error.message}`,
          );
        }
        throw error;
      }
    }
    return new CanonicalSchemas(registered);
  }

  /**
   * The compiled validator of a subject's version ('latest' by default), cached per schema id:
   * what inbound events from channel adapters are checked against.
   */
  async validatorFor(
    subject: string,
    version = 'latest',
  ): Promise<{ validate: ValidateFunction; id: number; version: number }> {
    const key = `${subject}\u0000${version}`;
    const now = Date.now();
    const cached = this.resolved.get(key);
    let found = cached && now - cached.at < 1000 ? cached.found : undefined;
    if (found === undefined) {
      found = await this.getVersion(subject, version);
      if (this.resolved.size >= 10_000) this.resolved.clear();
      this.resolved.set(key, { at: now, found });
    }
    let validate = this.validators.get(found.id);
    if (!validate) {
      // One compilation per schema id, also when a batch asks for it hundreds of times at once.
      let compiling = this.compiling.get(found.id);
      if (!compiling) {
        compiling = this.resolveReferences(found.references ?? [])
          .then((references) => {
            const compiled = compileForeignSchema(JSON.parse(found.schema) as unknown, references);
            this.validators.set(found.id, compiled);
            return compiled;
          })
          .finally(() => this.compiling.delete(found.id));
        this.compiling.set(found.id, compiling);
      }
      validate = await compiling;
    }
    return { validate, id: found.id, version: found.version };
  }

  /**
   * Every live version of a subject, its schema parsed and the registry references its `$ref`s
   * name resolved; empty for a subject that does not exist (or whose versions are all deleted).
   */
  async schemaVersions(
    subject: string,
  ): Promise<Array<{ version: number; schema: unknown; references: Map<string, unknown> }>> {
    const versions = await listVersions(this.db, subject, false);
    const out = [];
    for (const version of versions) {
      const references = new Map<string, unknown>();
      for (const reference of JSON.parse(version.references) as Reference[]) {
        // A referenced version deleted since keeps its schema (as the event shaper reads it).
        const target = await this.getVersion(reference.subject, String(reference.version), true);
        references.set(reference.name, JSON.parse(target.schema) as unknown);
      }
      out.push({ version: version.version, schema: parsedOf(version) as unknown, references });
    }
    return out;
  }

  // --- internals -------------------------------------------------------------------------

  private async resolveReferences(references: readonly Reference[]): Promise<Map<string, unknown>> {
    const referenced = new Map<string, unknown>();
    for (const reference of references) {
      let target: RegisteredSchema;
      try {
        target = await this.getVersion(reference.subject, String(reference.version));
      } catch (error) {
        if (error instanceof RegistryError) {
          throw registryErrors.invalidSchema(
            `reference '${reference.name}' to ${reference.subject} version ${reference.version}: ${error.message}`,
          );
        }
        throw error;
      }
      referenced.set(reference.name, JSON.parse(target.schema) as unknown);
    }
    return referenced;
  }

  private async refuseWhenReadOnly(subject: string): Promise<void> {
    if ((await this.mode(subject)) === 'READONLY') {
      throw registryErrors.operationNotPermitted(`Subject ${subject} is in read-only mode`);
    }
  }

  /** Parses, bounds, resolves references and compiles a schema, or refuses it with 42201. */
  private async prepare(input: SchemaInput): Promise<Prepared> {
    const schemaType = input.schemaType ?? 'AVRO';
    if (schemaType !== 'JSON') {
      throw registryErrors.invalidSchema(
        `schemaType ${schemaType} is not supported by this registry; send "schemaType": "JSON"`,
      );
    }
    if (typeof input.schema !== 'string' || input.schema.length === 0)
      throw registryErrors.invalidSchema('schema must be a non-empty string');
    if (Buffer.byteLength(input.schema) > MAX_SCHEMA_BYTES) {
      throw registryErrors.invalidSchema(`schema is larger than ${MAX_SCHEMA_BYTES} bytes`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(input.schema);
    } catch (error) {
      throw registryErrors.invalidSchema(
        `not JSON: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (
      typeof parsed !== 'boolean' &&
      (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    ) {
      throw registryErrors.invalidSchema('a JSON Schema is an object or a boolean');
    }
    if (depthOf(parsed) > MAX_SCHEMA_DEPTH)
      throw registryErrors.invalidSchema(`schema is nested deeper than ${MAX_SCHEMA_DEPTH} levels`);
    const references = input.references ?? [];
    const referenced = await this.resolveReferences(references);
    try {
      compileForeignSchema(parsed, referenced);
    } catch (error) {
      throw registryErrors.invalidSchema(error instanceof Error ? error.message : String(error));
    }
    const canonical = canonicalJson(parsed);
    const fingerprint = createHash('sha256')
      .update(`${schemaType}\n${canonical}\n${canonicalJson(references)}`)
      .digest('hex');
    return { schemaType, parsed, canonical, references, referenced, fingerprint };
  }
}

/** The hub's event schemas as registered: what every emitted event is validated against. */
export class CanonicalSchemas implements EventSchemaSource {
  constructor(
    private readonly registered: ReadonlyMap<
      string,
      { id: number; version: number; schema: TSchema }
    >,
  ) {}

  lookup(type: string): { schema: TSchema; dataschema: string } | undefined {
    const entry = this.registered.get(type);
    if (!entry) return undefined;
    return {
      schema: entry.schema,
      dataschema: `/registry/subjects/${type}/versions/${entry.version}`,
    };
  }

  idOf(subject: string): number | undefined {
    return this.registered.get(subject)?.id;
  }

  /** Registry facts about these subjects, for the event catalogue (AsyncAPI). */
  describe(
    subjects: readonly string[],
  ): Record<string, { schema: TSchema; schemaId: number; subjectVersion: number }> {
    const out: Record<string, { schema: TSchema; schemaId: number; subjectVersion: number }> = {};
    for (const subject of subjects) {
      const entry = this.registered.get(subject);
      if (entry)
        out[subject] = { schema: entry.schema, schemaId: entry.id, subjectVersion: entry.version };
    }
    return out;
  }
}

/** Stored schemas are canonical JSON that compiled when registered. */
const parsedOf = (version: SubjectVersion): never => JSON.parse(version.schema) as never;

function fingerprintOf(version: SubjectVersion): string {
  return createHash('sha256')
    .update(`${version.schemaType}\n${version.schema}\n${version.references}`)
    .digest('hex');
}

function toRegistered(version: SubjectVersion): RegisteredSchema {
  const references = JSON.parse(version.references) as Reference[];
  return {
    subject: version.subject,
    id: version.schemaId,
    version: version.version,
    schemaType: version.schemaType,
    schema: version.schema,
    ...(references.length > 0 ? { references } : {}),
  };
}

/** 'latest' (or -1, as Confluent accepts) or a version number in [1, 2^31-1]; else 42202. */
export function parseVersion(version: string): number | 'latest' {
  if (version === 'latest' || version === '-1') return 'latest';
  if (!/^[0-9]{1,10}$/.test(version)) throw registryErrors.invalidVersion(version);
  const n = Number(version);
  if (n < 1 || n > 2 ** 31 - 1) throw registryErrors.invalidVersion(version);
  return n;
}

const nonTransitive = (level: CompatibilityLevel): CompatibilityLevel =>
  level.endsWith('_TRANSITIVE') ? (level.replace('_TRANSITIVE', '') as CompatibilityLevel) : level;
