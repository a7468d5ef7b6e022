/**
 * Serving an event to a consumer in the schema version it declared, and in the wire format it
 * asked for.
 *
 * - `downcast` turns data written with a newer version into the shape of an older one by
 *   dropping the properties the older version does not declare (what the newer one added),
 *   then checks the result against the older schema. A change that cannot be undone by
 *   dropping properties (a field that became required, a type or enum the old version does not
 *   allow) is refused with a {@link ReshapeError} naming the data path and the reason.
 * - `upcast` serves data written with an older version to a consumer of a newer one: that only
 *   works when the newer version merely added optional fields, so the data is checked against
 *   the newer schema and passed on unchanged, or refused.
 * - {@link RegistryEventShaper} does both for webhook deliveries (it is structurally an
 *   `EventShaper` of the webhooks module, which app.ts hands it to) and frames data in
 *   Confluent's wire format with the CloudEvents attributes as HTTP headers (binary mode).
 *
 * Content models: a property the older schema does not declare is dropped when the older
 * schema describes the object's properties and either the newer schema declares that property
 * (it is a field the newer version added) or the older object is closed
 * (`additionalProperties: false` / `unevaluatedProperties: false`). Undeclared properties of an
 * open object that the newer version does not declare either are open content, which an old
 * reader accepted all along: they are kept.
 */
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type { FieldError } from '../../model/errors.js';
import type { EventEnvelope } from '../../model/schemas/event.js';
import { compileForeignSchema, toFieldErrors } from '../../platform/validation.js';
import type { JsonSchema } from './compatibility.js';
import { RegistryError } from './errors.js';
import type { RegisteredSchema, RegistryService } from './service.js';
import { encodeWire } from './wire-format.js';

type Obj = { [keyword: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Data that cannot be served in the requested version. Retrying cannot help (a schema version
 * never changes), so it is marked `permanent`: the webhook dispatcher gives such a delivery up
 * at once instead of retrying it for a day and a half.
 */
export class ReshapeError extends Error {
  override readonly name = 'ReshapeError';
  readonly permanent = true;

  constructor(
    message: string,
    /** JSON Pointers into the event's data. */
    readonly errors: readonly FieldError[] = [],
  ) {
    super(message);
  }
}

export interface ReshapeOptions {
  /** Registry references of the newer/source schema: the name `$ref` uses -> the schema. */
  fromReferences?: ReadonlyMap<string, unknown>;
  /** Registry references of the target schema (also used to validate the result). */
  toReferences?: ReadonlyMap<string, unknown>;
}

/** A compiled reshaping from one schema to another: returns the data in the target's shape. */
export type Reshaper = (data: unknown) => unknown;

// --- schema documents ----------------------------------------------------------------------

/** A schema node and the document (root) its local `$ref`s are resolved against. */
interface Node {
  schema: Obj;
  doc: JsonSchema;
}

function unescapeToken(token: string): string {
  let decoded = token;
  try {
    decoded = decodeURIComponent(token);
  } catch {
    // Not percent-encoded after all: taken as written.
  }
  return decoded.replace(/~1/g, '/').replace(/~0/g, '~');
}

/** A schema with its registry references, resolving `$ref`s as Ajv would for these schemas. */
class SchemaDocument {
  private readonly ids = new Map<string, JsonSchema>();
  private readonly anchors = new Map<string, JsonSchema>();
  private readonly base: string | undefined;

  constructor(
    readonly root: JsonSchema,
    private readonly references: ReadonlyMap<string, unknown> = new Map(),
  ) {
    this.base = isObj(root) && typeof root.$id === 'string' ? root.$id : undefined;
    this.index(root);
    for (const referenced of references.values()) this.index(referenced);
  }

  /** Records every `$id` and anchor, so `$ref`s to them resolve. */
  private index(schema: unknown, depth = 0): void {
    if (depth > 64) return;
    if (Array.isArray(schema)) {
      for (const item of schema) this.index(item, depth + 1);
      return;
    }
    if (!isObj(schema)) return;
    if (typeof schema.$id === 'string') {
      this.ids.set(schema.$id, schema);
      const absolute = this.absolute(schema.$id);
      if (absolute) this.ids.set(absolute, schema);
    }
    for (const key of ['$anchor', '$dynamicAnchor'] as const) {
      const anchor = schema[key];
      if (typeof anchor === 'string') this.anchors.set(anchor, schema);
    }
    for (const [key, value] of Object.entries(schema)) {
      if (key !== 'enum' && key !== 'const' && key !== 'default' && key !== 'examples')
        this.index(value, depth + 1);
    }
  }

  private absolute(ref: string): string | undefined {
    try {
      return new URL(ref, this.base).href;
    } catch {
      return undefined;
    }
  }

  /** The schema a `$ref` names, with the document its own local refs resolve against. */
  resolve(ref: string, doc: JsonSchema): { schema: JsonSchema; doc: JsonSchema } | undefined {
    const hash = ref.indexOf('#');
    const location = hash < 0 ? ref : ref.slice(0, hash);
    const fragment = hash < 0 ? '' : ref.slice(hash + 1);
    let target: JsonSchema | undefined = doc;
    if (location !== '') {
      const referenced = this.references.get(location) as JsonSchema | undefined;
      const absolute = this.absolute(location);
      target =
        referenced ??
        this.ids.get(location) ??
        (absolute === undefined ? undefined : this.ids.get(absolute));
    }
    if (target === undefined) return undefined;
    const targetDoc = target;
    if (fragment === '') return { schema: target, doc: targetDoc };
    if (!fragment.startsWith('/')) {
      const anchored = this.anchors.get(fragment);
      return anchored === undefined ? undefined : { schema: anchored, doc: targetDoc };
    }
    let node: unknown = target;
    for (const token of fragment.slice(1).split('/')) {
      const key = unescapeToken(token);
      node = Array.isArray(node) ? node[Number(key)] : isObj(node) ? node[key] : undefined;
      if (node === undefined) return undefined;
    }
    return typeof node === 'boolean' || isObj(node) ? { schema: node, doc: targetDoc } : undefined;
  }

  /**
   * Every schema node that applies to `value` at this place: the schema itself, what its
   * `$ref` names, its `allOf`, and the branches of `anyOf` / `oneOf` / `if` that may match.
   */
  expand(schema: unknown, doc: JsonSchema, value: unknown, seen = new Set<Obj>()): Node[] {
    if (!isObj(schema) || seen.has(schema)) return [];
    seen.add(schema);
    const out: Node[] = [{ schema, doc }];
    for (const key of ['$ref', '$dynamicRef', '$recursiveRef'] as const) {
      const ref = schema[key];
      if (typeof ref !== 'string') continue;
      const target = this.resolve(ref, doc);
      if (target) out.push(...this.expand(target.schema, target.doc, value, seen));
    }
    if (Array.isArray(schema.allOf))
      for (const branch of schema.allOf) out.push(...this.expand(branch, doc, value, seen));
    for (const key of ['anyOf', 'oneOf'] as const) {
      const branches = schema[key];
      if (!Array.isArray(branches)) continue;
      for (const branch of branches)
        if (this.mayApply(branch, doc, value)) out.push(...this.expand(branch, doc, value, seen));
    }
    for (const key of ['then', 'else'] as const) {
      if (this.mayApply(schema[key], doc, value))
        out.push(...this.expand(schema[key], doc, value, seen));
    }
    if (isObj(value)) {
      for (const key of ['dependentSchemas', 'dependencies'] as const) {
        const dependent = schema[key];
        if (!isObj(dependent)) continue;
        for (const [name, branch] of Object.entries(dependent))
          if (Object.hasOwn(value, name) && isObj(branch))
            out.push(...this.expand(branch, doc, value, seen));
      }
    }
    return out;
  }

  /**
   * Whether a branch of a union may describe `value`: its type, const and enum allow it, its
   * required properties are present, and the const/enum of its properties (a discriminator)
   * match. A cheap filter, not validation; the result is validated afterwards anyway.
   */
  private mayApply(branch: unknown, doc: JsonSchema, value: unknown, hops = 0): boolean {
    if (branch === undefined || branch === true) return branch === true;
    if (!isObj(branch)) return false;
    if (typeof branch.$ref === 'string' && hops < 16) {
      const target = this.resolve(branch.$ref, doc);
      if (target && !this.mayApply(target.schema, target.doc, value, hops + 1)) return false;
    }
    if (!allowsValue(branch, value)) return false;
    if (isObj(value)) {
      if (
        Array.isArray(branch.required) &&
        (branch.required as unknown[]).some(
          (n) => typeof n === 'string' && !Object.hasOwn(value, n),
        )
      )
        return false;
      if (isObj(branch.properties)) {
        for (const [name, property] of Object.entries(branch.properties)) {
          if (Object.hasOwn(value, name) && isObj(property) && !allowsValue(property, value[name]))
            return false;
        }
      }
    }
    return true;
  }
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (isObj(a) && isObj(b)) {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((key) => Object.hasOwn(b, key) && deepEqual(a[key], b[key]))
    );
  }
  return false;
}

/** The `type`, `const` and `enum` of one schema node allow this value. */
function allowsValue(schema: Obj, value: unknown): boolean {
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    const actual = jsonTypeOf(value);
    const ok = types.some((t) => t === actual || (t === 'number' && actual === 'integer'));
    if (!ok) return false;
  }
  if (Object.hasOwn(schema, 'const') && !deepEqual(schema.const, value)) return false;
  if (Array.isArray(schema.enum) && !schema.enum.some((item) => deepEqual(item, value)))
    return false;
  return true;
}

// --- what nodes say about an object or an array ---------------------------------------------

function patternMatches(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(name);
  } catch {
    return false;
  }
}

/** The node names this property in `properties` or matches it with `patternProperties`. */
function declares(node: Obj, name: string): boolean {
  if (isObj(node.properties) && Object.hasOwn(node.properties, name)) return true;
  return (
    isObj(node.patternProperties) &&
    Object.keys(node.patternProperties).some((p) => patternMatches(p, name))
  );
}

/** The nodes describe this object's members (rather than leaving it free-form). */
function describesMembers(nodes: readonly Node[]): boolean {
  return nodes.some(
    ({ schema }) =>
      isObj(schema.properties) ||
      isObj(schema.patternProperties) ||
      schema.additionalProperties === false ||
      schema.unevaluatedProperties === false,
  );
}

const isClosed = (nodes: readonly Node[]) =>
  nodes.some(
    ({ schema }) => schema.additionalProperties === false || schema.unevaluatedProperties === false,
  );

/** The schemas that apply to member `name` of an object described by `nodes`. */
function memberSchemas(
  nodes: readonly Node[],
  name: string,
): Array<{ schema: unknown; doc: JsonSchema }> {
  const out: Array<{ schema: unknown; doc: JsonSchema }> = [];
  for (const { schema, doc } of nodes) {
    let named = false;
    if (isObj(schema.properties) && Object.hasOwn(schema.properties, name)) {
      out.push({ schema: schema.properties[name], doc });
      named = true;
    }
    if (isObj(schema.patternProperties)) {
      for (const [pattern, sub] of Object.entries(schema.patternProperties)) {
        if (patternMatches(pattern, name)) {
          out.push({ schema: sub, doc });
          named = true;
        }
      }
    }
    if (!named) {
      if (isObj(schema.additionalProperties))
        out.push({ schema: schema.additionalProperties, doc });
      else if (isObj(schema.unevaluatedProperties))
        out.push({ schema: schema.unevaluatedProperties, doc });
    }
  }
  return out;
}

/** The schemas that apply to item `index` of an array described by `nodes` (2020-12 and draft-07). */
function itemSchemas(
  nodes: readonly Node[],
  index: number,
): Array<{ schema: unknown; doc: JsonSchema }> {
  const out: Array<{ schema: unknown; doc: JsonSchema }> = [];
  for (const { schema, doc } of nodes) {
    if (Array.isArray(schema.prefixItems)) {
      if (index < schema.prefixItems.length) out.push({ schema: schema.prefixItems[index], doc });
      else if (schema.items !== undefined) out.push({ schema: schema.items, doc });
    } else if (Array.isArray(schema.items)) {
      if (index < schema.items.length) out.push({ schema: schema.items[index], doc });
      else if (schema.additionalItems !== undefined)
        out.push({ schema: schema.additionalItems, doc });
    } else if (schema.items !== undefined) {
      out.push({ schema: schema.items, doc });
    }
  }
  return out;
}

// --- validation errors as one readable reason ----------------------------------------------

/** Ajv's errors as pointers; a failed choice between constants reads "must be one of ...". */
export function describeErrors(errors: readonly ErrorObject[] | null | undefined): FieldError[] {
  const list = errors ?? [];
  const allowed = new Map<string, unknown[]>();
  for (const error of list) {
    const params = error.params as { allowedValue?: unknown; allowedValues?: unknown[] };
    const values =
      error.keyword === 'const'
        ? [params.allowedValue]
        : error.keyword === 'enum'
          ? (params.allowedValues ?? [])
          : [];
    if (values.length > 0)
      allowed.set(error.instancePath, [...(allowed.get(error.instancePath) ?? []), ...values]);
  }
  const out: FieldError[] = [];
  for (const [path, values] of allowed) {
    out.push({
      pointer: path || '/',
      detail: `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
    });
  }
  const rest = list.filter((e) => !allowed.has(e.instancePath));
  for (const error of toFieldErrors(rest)) {
    if (!out.some((e) => e.pointer === error.pointer && e.detail === error.detail)) out.push(error);
  }
  return out;
}

function refusal(what: string, validate: ValidateFunction): ReshapeError {
  const errors = describeErrors(validate.errors);
  const shown = errors
    .slice(0, 3)
    .map((e) => `${e.pointer} ${e.detail}`)
    .join('; ');
  const more = errors.length > 3 ? ` (and ${errors.length - 3} more)` : '';
  return new ReshapeError(`${what}: ${shown}${more}`, errors);
}

function compileTarget(
  to: JsonSchema,
  references?: ReadonlyMap<string, unknown>,
): ValidateFunction {
  try {
    return compileForeignSchema(to, references);
  } catch (error) {
    throw new ReshapeError(
      `the target schema does not compile: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

// --- downcast and upcast -------------------------------------------------------------------

/**
 * Compiles the reshaping from `from` (newer) to `to` (older): drops the properties `to` does not
 * declare (see the module comment for open content), through nested objects, array items,
 * `$ref`s and `$defs`, then validates against `to`. The input is never modified.
 */
export function createDowncaster(
  from: JsonSchema,
  to: JsonSchema,
  options: ReshapeOptions = {},
): Reshaper {
  const source = new SchemaDocument(from, options.fromReferences);
  const target = new SchemaDocument(to, options.toReferences);
  const validate = compileTarget(to, options.toReferences);

  const expandAll = (
    doc: SchemaDocument,
    schemas: Array<{ schema: unknown; doc: JsonSchema }>,
    value: unknown,
  ) => schemas.flatMap((s) => doc.expand(s.schema, s.doc, value));

  const prune = (value: unknown, targetNodes: Node[], sourceNodes: Node[]): unknown => {
    if (Array.isArray(value)) {
      return value.map((item, i) =>
        prune(
          item,
          expandAll(target, itemSchemas(targetNodes, i), item),
          expandAll(source, itemSchemas(sourceNodes, i), item),
        ),
      );
    }
    if (!isObj(value)) return value;
    const shaped = describesMembers(targetNodes);
    const closed = isClosed(targetNodes);
    const out: Obj = {};
    for (const [name, member] of Object.entries(value)) {
      const declared = targetNodes.some((n) => declares(n.schema, name));
      if (shaped && !declared && (closed || sourceNodes.some((n) => declares(n.schema, name))))
        continue;
      out[name] = prune(
        member,
        expandAll(target, memberSchemas(targetNodes, name), member),
        expandAll(source, memberSchemas(sourceNodes, name), member),
      );
    }
    return out;
  };

  return (data) => {
    const shaped = prune(
      data,
      target.expand(target.root, target.root, data),
      source.expand(source.root, source.root, data),
    );
    if (!validate(shaped)) throw refusal('the data does not fit the older schema', validate);
    return shaped;
  };
}

/**
 * Compiles the check for serving data written with an older schema (`from`) to a reader of a
 * newer one (`to`): the data must already be valid for `to` (the newer version only added
 * optional fields); it is passed on unchanged.
 */
export function createUpcaster(
  _from: JsonSchema,
  to: JsonSchema,
  options: ReshapeOptions = {},
): Reshaper {
  const validate = compileTarget(to, options.toReferences);
  return (data) => {
    if (!validate(data)) throw refusal('the data does not fit the newer schema', validate);
    return data;
  };
}

/** Data written with `from` in the shape of the older `to`, or a {@link ReshapeError}. */
export function downcast(
  data: unknown,
  from: JsonSchema,
  to: JsonSchema,
  options?: ReshapeOptions,
): unknown {
  return createDowncaster(from, to, options)(data);
}

/** Data written with the older `from`, checked for the newer `to` and returned unchanged. */
export function upcast(
  data: unknown,
  from: JsonSchema,
  to: JsonSchema,
  options?: ReshapeOptions,
): unknown {
  return createUpcaster(from, to, options)(data);
}

// --- the shaper for webhook deliveries -----------------------------------------------------

/** What the shaper reads from the registry (RegistryService; a fake in tests). */
export type RegistryReader = Pick<RegistryService, 'getVersion'>;

export interface ShapeRequest {
  /** Event type -> registered version of its subject the consumer understands. */
  schemaVersions: Readonly<Record<string, number>>;
  /** 'json' (CloudEvents structured mode) or 'confluent-wire'. */
  format: string;
}

export interface ShapedEvent {
  body: Buffer | string;
  contentType: string;
  headers: Record<string, string>;
}

/** `dataschema` of a hub event (buildEnvelope, CanonicalSchemas) and of an ingested one. */
const DATASCHEMA = /^\/registry\/subjects\/([^/]+)\/versions\/([0-9]+|latest)$/;

export const WIRE_CONTENT_TYPE = 'application/octet-stream';

/** Envelope attributes sent as `ce-<name>` headers in binary mode (data and datacontenttype aside). */
const HEADER_ATTRIBUTES = [
  'specversion',
  'id',
  'source',
  'type',
  'time',
  'subject',
  'dataschema',
  'market',
  'channel',
  'partitionkey',
  'traceparent',
] as const;

/**
 * CloudEvents HTTP binding 3.1.3.2: space, `"`, `%` and everything outside printable ASCII
 * are percent-encoded (as UTF-8) in header values.
 */
export function encodeHeaderValue(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code >= 0x21 && code <= 0x7e && char !== '"' && char !== '%') out += char;
    else
      for (const byte of Buffer.from(char, 'utf8'))
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The envelope's attributes as CloudEvents binary-mode headers. */
export function cloudEventHeaders(envelope: EventEnvelope): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const name of HEADER_ATTRIBUTES) {
    const value = envelope[name];
    if (typeof value === 'string') headers[`ce-${name}`] = encodeHeaderValue(value);
  }
  return headers;
}

const pointerToken = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

function failure(message: string, cause?: unknown): ReshapeError {
  const error = new ReshapeError(message);
  if (cause !== undefined) Object.defineProperty(error, 'cause', { value: cause });
  return error;
}

/**
 * Shapes hub events for webhook subscribers with the registry: the data in the schema version
 * the subscriber declared for the event's type (down- or upcast; `dataschema` then names that
 * version) and the body as CloudEvents JSON (`json`, exactly what the default shaper sends) or
 * Confluent's wire format (`confluent-wire`: magic byte, schema id of the version served, the
 * data as JSON; the other attributes as `ce-*` headers, content type
 * `application/octet-stream`). Structurally a webhooks `EventShaper`; app.ts wires it.
 *
 * Failures that retrying cannot mend (data that does not fit the declared version, a version
 * that is not in the registry) throw a {@link ReshapeError} (`permanent`); registry lookups
 * that fail for other reasons (the database) throw as they are, and are retried.
 */
export class RegistryEventShaper {
  /** (subject, version) -> registered schema; version numbers are never reused (D11). */
  private readonly versions = new Map<string, RegisteredSchema>();
  /** (schema id, schema id) -> compiled reshaper; a schema id always means the same schema. */
  private readonly reshapers = new Map<string, Reshaper>();

  constructor(
    private readonly registry: RegistryReader,
    private readonly options: { cacheSize?: number } = {},
  ) {}

  async shape(envelope: EventEnvelope, request: ShapeRequest): Promise<ShapedEvent> {
    if (request.format !== 'json' && request.format !== 'confluent-wire')
      throw failure(`format '${request.format}' is not one this shaper knows`);
    const match = DATASCHEMA.exec(envelope.dataschema);
    if (!match) {
      // Not a registry-described event (webhook.ping): nothing to reshape, no schema id.
      if (request.format === 'json') return structured(envelope);
      return {
        body: JSON.stringify(envelope.data),
        contentType: 'application/json',
        headers: cloudEventHeaders(envelope),
      };
    }
    const subject = decodeURIComponent(match[1]!);
    const source = await this.version(subject, match[2]!, envelope);
    let shaped = envelope;
    let served = source;
    const declared = request.schemaVersions[envelope.type];
    if (declared !== undefined && declared !== source.version) {
      served = await this.version(subject, String(declared), envelope);
      let data: unknown;
      try {
        data = (await this.reshaper(source, served))(envelope.data);
      } catch (error) {
        if (!(error instanceof ReshapeError)) throw error;
        const direction = declared < source.version ? 'older' : 'newer';
        throw new ReshapeError(
          `event ${envelope.id} (${envelope.type}, ${subject} version ${source.version}) cannot be served in the ${direction} version ${declared} the subscriber declared: ${error.message}`,
          error.errors,
        );
      }
      shaped = {
        ...envelope,
        dataschema: `/registry/subjects/${match[1]!}/versions/${served.version}`,
        data,
      };
    }
    if (request.format === 'json') return structured(shaped);
    return {
      body: encodeWire(served.id, shaped.data),
      contentType: WIRE_CONTENT_TYPE,
      headers: cloudEventHeaders(shaped),
    };
  }

  /**
   * For subscription create/update: one error per declared version that is not registered
   * (pointer `/schemaVersions/<type>`). The subject of an event type is the type itself.
   */
  async checkSchemaVersions(versions: Readonly<Record<string, number>>): Promise<FieldError[]> {
    const errors: FieldError[] = [];
    for (const [type, version] of Object.entries(versions)) {
      const pointer = `/schemaVersions/${pointerToken(type)}`;
      try {
        await this.registry.getVersion(type, String(version));
      } catch (error) {
        if (!(error instanceof RegistryError)) throw error;
        if (error.errorCode === 40401)
          errors.push({ pointer, detail: `no schema is registered for event type '${type}'` });
        else if (error.errorCode === 40402)
          errors.push({
            pointer,
            detail: `version ${version} of '${type}' is not registered in the schema registry`,
          });
        else errors.push({ pointer, detail: error.message });
      }
    }
    return errors;
  }

  private async version(
    subject: string,
    version: string,
    envelope: EventEnvelope,
  ): Promise<RegisteredSchema> {
    const key = `${subject}\n${version}`;
    const cached = this.versions.get(key);
    if (cached) return cached;
    let found: RegisteredSchema;
    try {
      // A soft-deleted version still describes events written with it.
      found = await this.registry.getVersion(subject, version, version !== 'latest');
    } catch (error) {
      if (error instanceof RegistryError && error.httpStatus < 500)
        throw failure(
          `event ${envelope.id} (${envelope.type}): schema ${subject} version ${version} is not in the registry: ${error.message}`,
          error,
        );
      throw error;
    }
    if (version !== 'latest') this.remember(this.versions, key, found);
    return found;
  }

  private async reshaper(from: RegisteredSchema, to: RegisteredSchema): Promise<Reshaper> {
    const key = `${from.id}>${to.id}`;
    let reshaper = this.reshapers.get(key);
    if (reshaper) return reshaper;
    if (from.id === to.id) {
      reshaper = (data) => data;
    } else {
      const options: ReshapeOptions = {
        fromReferences: await this.references(from),
        toReferences: await this.references(to),
      };
      const fromSchema = JSON.parse(from.schema) as JsonSchema;
      const toSchema = JSON.parse(to.schema) as JsonSchema;
      reshaper =
        to.version < from.version
          ? createDowncaster(fromSchema, toSchema, options)
          : createUpcaster(fromSchema, toSchema, options);
    }
    this.remember(this.reshapers, key, reshaper);
    return reshaper;
  }

  private async references(schema: RegisteredSchema): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    for (const reference of schema.references ?? []) {
      const target = await this.registry.getVersion(
        reference.subject,
        String(reference.version),
        true,
      );
      out.set(reference.name, JSON.parse(target.schema) as unknown);
    }
    return out;
  }

  private remember<V>(cache: Map<string, V>, key: string, value: V): void {
    if (cache.size >= (this.options.cacheSize ?? 1000)) cache.delete(cache.keys().next().value!);
    cache.set(key, value);
  }
}

/** CloudEvents structured mode: the envelope as JSON, as the webhooks' default shaper sends it. */
function structured(envelope: EventEnvelope): ShapedEvent {
  return {
    body: JSON.stringify(envelope),
    contentType: 'application/cloudevents+json',
    headers: {},
  };
}
