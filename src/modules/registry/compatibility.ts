/**
 * JSON Schema compatibility as Confluent Schema Registry defines it: a diff between a writer
 * schema ("original") and a reader schema ("update"), each difference classified compatible
 * or not. BACKWARD asks whether the new schema reads data written with the old one; FORWARD
 * the reverse; FULL both; the transitive levels ask it of every earlier version.
 *
 * Content models follow Confluent: an object is open when it allows any additional property
 * (no `additionalProperties`, or `true`), closed with `false`, partially open with a schema or
 * `patternProperties`. Adding a property to an open writer model is incompatible (the writer may
 * already have sent that name with any value); removing one from a closed reader model is too.
 */

export type CompatibilityLevel =
  | 'BACKWARD'
  | 'BACKWARD_TRANSITIVE'
  | 'FORWARD'
  | 'FORWARD_TRANSITIVE'
  | 'FULL'
  | 'FULL_TRANSITIVE'
  | 'NONE';

export const COMPATIBILITY_LEVELS: readonly CompatibilityLevel[] = [
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
  'NONE',
];

export type JsonSchema = boolean | { [keyword: string]: unknown };

export interface Difference {
  type: string;
  /** JSON Pointer into the schema, as `#/properties/age`. */
  path: string;
  compatible: boolean;
}

export interface DiffOptions {
  /** Resolves a `$ref` that does not point inside the schema itself (a registry reference). */
  resolveRef?: (ref: string) => JsonSchema | undefined;
}

/** Confluent's verdict for each difference type. */
const COMPATIBLE = new Set([
  'ID_CHANGED',
  'DESCRIPTION_CHANGED',
  'TITLE_CHANGED',
  'DEFAULT_CHANGED',
  'SCHEMA_ADDED',
  'TYPE_EXTENDED',
  'MAX_LENGTH_INCREASED',
  'MAX_LENGTH_REMOVED',
  'MIN_LENGTH_DECREASED',
  'MIN_LENGTH_REMOVED',
  'PATTERN_REMOVED',
  'MAXIMUM_INCREASED',
  'MAXIMUM_REMOVED',
  'MINIMUM_DECREASED',
  'MINIMUM_REMOVED',
  'EXCLUSIVE_MAXIMUM_INCREASED',
  'EXCLUSIVE_MAXIMUM_REMOVED',
  'EXCLUSIVE_MINIMUM_DECREASED',
  'EXCLUSIVE_MINIMUM_REMOVED',
  'MULTIPLE_OF_REDUCED',
  'MULTIPLE_OF_REMOVED',
  'REQUIRED_ATTRIBUTE_REMOVED',
  'MAX_PROPERTIES_INCREASED',
  'MAX_PROPERTIES_REMOVED',
  'MIN_PROPERTIES_DECREASED',
  'MIN_PROPERTIES_REMOVED',
  'ADDITIONAL_PROPERTIES_ADDED',
  'ADDITIONAL_PROPERTIES_EXTENDED',
  'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  'OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL',
  'MAX_ITEMS_INCREASED',
  'MAX_ITEMS_REMOVED',
  'MIN_ITEMS_DECREASED',
  'MIN_ITEMS_REMOVED',
  'UNIQUE_ITEMS_REMOVED',
  'ADDITIONAL_ITEMS_ADDED',
  'ADDITIONAL_ITEMS_EXTENDED',
  'ITEM_ADDED_TO_CLOSED_CONTENT_MODEL',
  'ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL',
  'ENUM_ARRAY_EXTENDED',
  'SUM_TYPE_EXTENDED',
  'PRODUCT_TYPE_NARROWED',
  'COMBINED_TYPE_EXTENDED',
  'NOT_TYPE_NARROWED',
]);

type Obj = { [keyword: string]: unknown };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const escape = (token: string) => token.replace(/~/g, '~0').replace(/\//g, '~1');

class Differ {
  readonly differences: Difference[] = [];
  private readonly seen = new WeakMap<Obj, WeakSet<Obj>>();

  constructor(
    private readonly originalRoot: JsonSchema,
    private readonly updateRoot: JsonSchema,
    private readonly options: DiffOptions,
  ) {}

  add(type: string, path: string): void {
    this.differences.push({ type, path: path || '#', compatible: COMPATIBLE.has(type) });
  }

  /** Follows `$ref` until a schema without one (local pointers, then registry references). */
  private deref(schema: JsonSchema, root: JsonSchema): JsonSchema {
    let current = schema;
    for (let hops = 0; isObj(current) && typeof current.$ref === 'string' && hops < 32; hops++) {
      const ref = current.$ref;
      let target: JsonSchema | undefined;
      if (ref.startsWith('#')) {
        target = ref
          .slice(1)
          .split('/')
          .filter(Boolean)
          .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'))
          .reduce<unknown>((node, token) => (isObj(node) ? node[token] : undefined), root) as
          JsonSchema | undefined;
      } else {
        target = this.options.resolveRef?.(ref);
      }
      if (target === undefined) return current; // unresolvable: compared as written
      const { $ref: _ref, ...siblings } = current;
      current =
        Object.keys(siblings).length > 0 && isObj(target) ? { ...target, ...siblings } : target;
    }
    return current;
  }

  compare(
    path: string,
    originalIn: JsonSchema | undefined,
    updateIn: JsonSchema | undefined,
  ): void {
    if (originalIn === undefined && updateIn === undefined) return;
    if (originalIn === undefined) return this.add('SCHEMA_ADDED', path);
    if (updateIn === undefined) return this.add('SCHEMA_REMOVED', path);
    const original = this.deref(originalIn, this.originalRoot);
    const update = this.deref(updateIn, this.updateRoot);
    // Recursive schemas: a pair of schema nodes already compared adds nothing new.
    if (isObj(original) && isObj(update)) {
      const partners = this.seen.get(original) ?? new WeakSet<Obj>();
      if (partners.has(update)) return;
      partners.add(update);
      this.seen.set(original, partners);
    }

    if (update === true || (isObj(update) && Object.keys(update).length === 0)) {
      if (!(original === true || (isObj(original) && Object.keys(original).length === 0)))
        this.add('TYPE_EXTENDED', path);
      return;
    }
    if (original === false) return; // the writer never writes anything here
    if (update === false) return this.add('TYPE_NARROWED', path);
    const o: Obj = original === true ? {} : original;
    const u: Obj = update;

    this.annotations(path, o, u);
    if (this.combined(path, o, u)) return;
    if (this.types(path, o, u) === 'disjoint') return;
    this.enums(path, o, u);
    this.limits(path, o, u);
    this.object(path, o, u);
    this.array(path, o, u);
    if (o.not !== undefined || u.not !== undefined) this.not(path, o, u);
  }

  private annotations(path: string, o: Obj, u: Obj): void {
    const changed = (k: string) =>
      k in o && k in u && JSON.stringify(o[k]) !== JSON.stringify(u[k]);
    if (changed('$id')) this.add('ID_CHANGED', path);
    if (changed('title')) this.add('TITLE_CHANGED', path);
    if (changed('description')) this.add('DESCRIPTION_CHANGED', path);
    if (changed('default')) this.add('DEFAULT_CHANGED', path);
  }

  /** anyOf / oneOf (sum types) and allOf (product types). True when the schema was combined. */
  private combined(path: string, o: Obj, u: Obj): boolean {
    const kind = (s: Obj) =>
      (['oneOf', 'anyOf', 'allOf'] as const).find((k) => Array.isArray(s[k]));
    const ok = kind(o);
    const uk = kind(u);
    if (!ok && !uk) return false;
    const subs = (s: Obj, k: string | undefined): JsonSchema[] =>
      k ? (s[k] as JsonSchema[]) : [stripCombined(s)];
    const originalSubs = subs(o, ok);
    const updateSubs = subs(u, uk);
    const at = (k: string | undefined) => `${path}/${k ?? ''}`;
    if (ok && uk && ok !== uk) {
      if (ok === 'oneOf' && uk === 'anyOf') this.add('COMBINED_TYPE_EXTENDED', path);
      else if (!(
        ok !== 'allOf' &&
        uk !== 'allOf' &&
        originalSubs.length === 1 &&
        updateSubs.length === 1
      )) {
        this.add('COMBINED_TYPE_CHANGED', path);
        return true;
      }
    }
    const product = (ok ?? uk) === 'allOf';
    // A writer sub-schema is read when some reader sub-schema reads it without incompatibility.
    const reads = (writer: JsonSchema, reader: JsonSchema) => {
      const nested = new Differ(this.originalRoot, this.updateRoot, this.options);
      nested.compare('#', writer, reader);
      return nested.differences.every((d) => d.compatible);
    };
    if (product) {
      // Every reader constraint must already hold for what the writer wrote.
      for (const [i, reader] of updateSubs.entries()) {
        if (!originalSubs.some((writer) => reads(writer, reader)))
          this.add('PRODUCT_TYPE_EXTENDED', `${at(uk)}/${i}`);
      }
      if (originalSubs.length > updateSubs.length) this.add('PRODUCT_TYPE_NARROWED', at(ok));
    } else {
      for (const [i, writer] of originalSubs.entries()) {
        if (!updateSubs.some((reader) => reads(writer, reader)))
          this.add('SUM_TYPE_NARROWED', `${at(ok)}/${i}`);
      }
      if (updateSubs.length > originalSubs.length) this.add('SUM_TYPE_EXTENDED', at(uk));
    }
    return true;
  }

  /** Type sets: absent means every type; integer is a subset of number. */
  private types(path: string, o: Obj, u: Obj): 'ok' | 'disjoint' {
    const typesOf = (s: Obj): Set<string> | null =>
      s.type === undefined
        ? null
        : new Set(Array.isArray(s.type) ? (s.type as string[]) : [s.type as string]);
    const ot = typesOf(o);
    const ut = typesOf(u);
    if (ut === null) {
      if (ot !== null) this.add('TYPE_EXTENDED', `${path}/type`);
      return 'ok';
    }
    if (ot === null) {
      this.add('TYPE_NARROWED', `${path}/type`);
      return 'ok';
    }
    const covered = (t: string) => ut.has(t) || (t === 'integer' && ut.has('number'));
    const missing = [...ot].filter((t) => !covered(t));
    const overlap = [...ot].some((t) => covered(t) || (t === 'number' && ut.has('integer')));
    if (!overlap) {
      this.add('TYPE_CHANGED', `${path}/type`);
      return 'disjoint';
    }
    if (missing.length > 0) this.add('TYPE_NARROWED', `${path}/type`);
    const extra = [...ut].filter((t) => !ot.has(t));
    if (extra.length > 0) this.add('TYPE_EXTENDED', `${path}/type`);
    return 'ok';
  }

  private enums(path: string, o: Obj, u: Obj): void {
    const values = (s: Obj): string[] | null =>
      Array.isArray(s.enum)
        ? s.enum.map((v) => JSON.stringify(v))
        : 'const' in s
          ? [JSON.stringify(s.const)]
          : null;
    const ov = values(o);
    const uv = values(u);
    const where = `${path}/${Array.isArray(u.enum) || Array.isArray(o.enum) ? 'enum' : 'const'}`;
    if (uv === null) {
      if (ov !== null) this.add('ENUM_ARRAY_EXTENDED', where);
      return;
    }
    if (ov === null) return this.add('ENUM_ARRAY_NARROWED', where);
    const missing = ov.filter((v) => !uv.includes(v));
    if (missing.length > 0) {
      this.add(missing.length === ov.length ? 'ENUM_ARRAY_CHANGED' : 'ENUM_ARRAY_NARROWED', where);
    } else if (uv.length > ov.length) this.add('ENUM_ARRAY_EXTENDED', where);
  }

  /** Upper and lower bounds: a reader may loosen a bound, never tighten or add one. */
  private limits(path: string, o: Obj, u: Obj): void {
    // Which of ADDED / REMOVED / INCREASED / DECREASED is compatible is in COMPATIBLE.
    const bounds: Array<[string, string]> = [
      ['maxLength', 'MAX_LENGTH'],
      ['minLength', 'MIN_LENGTH'],
      ['maximum', 'MAXIMUM'],
      ['minimum', 'MINIMUM'],
      ['exclusiveMaximum', 'EXCLUSIVE_MAXIMUM'],
      ['exclusiveMinimum', 'EXCLUSIVE_MINIMUM'],
      ['maxProperties', 'MAX_PROPERTIES'],
      ['minProperties', 'MIN_PROPERTIES'],
      ['maxItems', 'MAX_ITEMS'],
      ['minItems', 'MIN_ITEMS'],
    ];
    for (const [keyword, name] of bounds) this.bound(path, o, u, keyword, name);
    if (o.pattern !== u.pattern) {
      if (o.pattern === undefined) this.add('PATTERN_ADDED', `${path}/pattern`);
      else if (u.pattern === undefined) this.add('PATTERN_REMOVED', `${path}/pattern`);
      else this.add('PATTERN_CHANGED', `${path}/pattern`);
    }
    if (o.multipleOf !== u.multipleOf) {
      const om = o.multipleOf as number | undefined;
      const um = u.multipleOf as number | undefined;
      if (om === undefined) this.add('MULTIPLE_OF_ADDED', `${path}/multipleOf`);
      else if (um === undefined) this.add('MULTIPLE_OF_REMOVED', `${path}/multipleOf`);
      // Every multiple of the old step is a multiple of the new one when the new divides it.
      else if (Number.isInteger(om / um)) this.add('MULTIPLE_OF_REDUCED', `${path}/multipleOf`);
      else if (Number.isInteger(um / om)) this.add('MULTIPLE_OF_EXPANDED', `${path}/multipleOf`);
      else this.add('MULTIPLE_OF_CHANGED', `${path}/multipleOf`);
    }
    if (o.uniqueItems !== true && u.uniqueItems === true)
      this.add('UNIQUE_ITEMS_ADDED', `${path}/uniqueItems`);
    if (o.uniqueItems === true && u.uniqueItems !== true)
      this.add('UNIQUE_ITEMS_REMOVED', `${path}/uniqueItems`);
  }

  private bound(path: string, o: Obj, u: Obj, keyword: string, name: string): void {
    const ov = o[keyword];
    const uv = u[keyword];
    if (ov === uv || (typeof ov !== 'number' && typeof uv !== 'number')) return;
    const at = `${path}/${keyword}`;
    if (typeof ov !== 'number') return this.add(`${name}_ADDED`, at);
    if (typeof uv !== 'number') return this.add(`${name}_REMOVED`, at);
    this.add(`${name}_${uv > ov ? 'INCREASED' : 'DECREASED'}`, at);
  }

  private object(path: string, o: Obj, u: Obj): void {
    const op = isObj(o.properties) ? o.properties : {};
    const up = isObj(u.properties) ? u.properties : {};
    const oRequired = new Set(Array.isArray(o.required) ? (o.required as string[]) : []);
    const uRequired = new Set(Array.isArray(u.required) ? (u.required as string[]) : []);
    for (const name of new Set([...Object.keys(op), ...Object.keys(up)])) {
      const at = `${path}/properties/${escape(name)}`;
      const ps = op[name] as JsonSchema | undefined;
      const us = up[name] as JsonSchema | undefined;
      if (ps !== undefined && us !== undefined) {
        this.compare(at, ps, us);
      } else if (ps !== undefined) {
        // Removed from the reader: whether the reader still accepts it depends on its content model.
        const model = contentModel(u, name);
        if (model === 'open') this.add('PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL', at);
        else if (model === 'closed') this.add('PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL', at);
        else
          this.add(
            this.covers(ps, model)
              ? 'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
              : 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
            at,
          );
      } else if (us !== undefined) {
        // Added in the reader: what the writer may have sent under that name depends on its model.
        const model = contentModel(o, name);
        if (model === 'open') this.add('PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL', at);
        else if (model === 'closed') {
          if (!uRequired.has(name)) this.add('OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL', at);
          else if (isObj(us) && 'default' in us)
            this.add('REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL', at);
          else this.add('REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL', at);
        } else {
          this.add(
            this.covers(model, us)
              ? 'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
              : 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
            at,
          );
          if (uRequired.has(name)) this.add('REQUIRED_ATTRIBUTE_ADDED', `${path}/required`);
        }
      }
    }
    for (const name of uRequired) {
      if (!oRequired.has(name) && name in op)
        this.add('REQUIRED_ATTRIBUTE_ADDED', `${path}/required`);
    }
    for (const name of oRequired)
      if (!uRequired.has(name)) this.add('REQUIRED_ATTRIBUTE_REMOVED', `${path}/required`);

    const oa = o.additionalProperties;
    const ua = u.additionalProperties;
    const at = `${path}/additionalProperties`;
    if (oa === false && ua !== false) this.add('ADDITIONAL_PROPERTIES_ADDED', at);
    else if (oa !== false && ua === false) this.add('ADDITIONAL_PROPERTIES_REMOVED', at);
    else if (isObj(oa) || isObj(ua)) {
      const nested = new Differ(this.originalRoot, this.updateRoot, this.options);
      nested.compare(at, (oa ?? true) as JsonSchema, (ua ?? true) as JsonSchema);
      const compatible = nested.differences.every((d) => d.compatible);
      if (nested.differences.length > 0)
        this.add(
          compatible ? 'ADDITIONAL_PROPERTIES_EXTENDED' : 'ADDITIONAL_PROPERTIES_NARROWED',
          at,
        );
    }
  }

  /** Whether data valid against `writer` is valid against `reader`, by the same rules. */
  private covers(writer: JsonSchema, reader: JsonSchema): boolean {
    const nested = new Differ(this.originalRoot, this.updateRoot, this.options);
    nested.compare('#', writer, reader);
    return nested.differences.every((d) => d.compatible);
  }

  private array(path: string, o: Obj, u: Obj): void {
    // Tuples: prefixItems (2020-12) or an items array (draft-07), with additionalItems/items after.
    const tuple = (s: Obj): JsonSchema[] | null =>
      Array.isArray(s.prefixItems)
        ? (s.prefixItems as JsonSchema[])
        : Array.isArray(s.items)
          ? (s.items as JsonSchema[])
          : null;
    const rest = (s: Obj): JsonSchema | undefined =>
      (Array.isArray(s.prefixItems)
        ? s.items
        : Array.isArray(s.items)
          ? s.additionalItems
          : undefined) as JsonSchema | undefined;
    const ot = tuple(o);
    const ut = tuple(u);
    if (ot === null && ut === null) {
      if (o.items !== undefined || u.items !== undefined)
        this.compare(
          `${path}/items`,
          (o.items ?? true) as JsonSchema,
          (u.items ?? true) as JsonSchema,
        );
      return;
    }
    const key =
      Array.isArray(u.prefixItems) || Array.isArray(o.prefixItems) ? 'prefixItems' : 'items';
    const os = ot ?? [];
    const us = ut ?? [];
    for (let i = 0; i < Math.max(os.length, us.length); i++) {
      const at = `${path}/${key}/${i}`;
      if (i < os.length && i < us.length) this.compare(at, os[i], us[i]);
      else if (i < os.length) {
        const readerRest = rest(u);
        if (readerRest === false) this.add('ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL', at);
        else if (readerRest === undefined || readerRest === true)
          this.add('ITEM_REMOVED_FROM_OPEN_CONTENT_MODEL', at);
        else
          this.add(
            this.covers(os[i]!, readerRest)
              ? 'ITEM_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
              : 'ITEM_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
            at,
          );
      } else {
        const writerRest = rest(o);
        if (writerRest === false) this.add('ITEM_ADDED_TO_CLOSED_CONTENT_MODEL', at);
        else if (writerRest === undefined || writerRest === true)
          this.add('ITEM_ADDED_TO_OPEN_CONTENT_MODEL', at);
        else
          this.add(
            this.covers(writerRest, us[i]!)
              ? 'ITEM_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL'
              : 'ITEM_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
            at,
          );
      }
    }
    const orest = rest(o);
    const urest = rest(u);
    const at = `${path}/${key === 'prefixItems' ? 'items' : 'additionalItems'}`;
    if (orest === false && urest !== false) this.add('ADDITIONAL_ITEMS_ADDED', at);
    else if (orest !== false && urest === false) this.add('ADDITIONAL_ITEMS_REMOVED', at);
    else if (isObj(orest) || isObj(urest)) {
      this.add(
        this.covers(orest ?? true, urest ?? true)
          ? 'ADDITIONAL_ITEMS_EXTENDED'
          : 'ADDITIONAL_ITEMS_NARROWED',
        at,
      );
    }
  }

  /** `not` flips the direction: the reader may forbid less than the writer did, not more. */
  private not(path: string, o: Obj, u: Obj): void {
    const at = `${path}/not`;
    if (u.not === undefined) return this.add('NOT_TYPE_NARROWED', at);
    if (o.not === undefined) return this.add('NOT_TYPE_EXTENDED', at);
    if (!this.covers(u.not as JsonSchema, o.not as JsonSchema)) this.add('NOT_TYPE_EXTENDED', at);
    else if (JSON.stringify(o.not) !== JSON.stringify(u.not)) this.add('NOT_TYPE_NARROWED', at);
  }
}

function stripCombined(s: Obj): Obj {
  const { oneOf: _a, anyOf: _b, allOf: _c, ...rest } = s;
  return rest;
}

/** How an object schema treats a property it does not declare. */
function contentModel(s: Obj, name: string): 'open' | 'closed' | JsonSchema {
  if (isObj(s.patternProperties)) {
    for (const [pattern, schema] of Object.entries(s.patternProperties)) {
      if (new RegExp(pattern, 'u').test(name)) return schema as JsonSchema;
    }
  }
  const additional = s.additionalProperties;
  if (additional === false) return 'closed';
  if (additional === undefined || additional === true)
    return isObj(s.patternProperties) ? 'closed' : 'open';
  return additional as JsonSchema;
}

/** Every difference from the point of view of a reader using `reader` on data written with `writer`. */
export function diffSchemas(
  writer: JsonSchema,
  reader: JsonSchema,
  options: DiffOptions = {},
): Difference[] {
  const differ = new Differ(writer, reader, options);
  differ.compare('#', writer, reader);
  return differ.differences;
}

const describe = (d: Difference) =>
  `Found incompatible change: Difference{jsonPath='${d.path}', type=${d.type}}`;

/** Can `next` read data written with `previous`? */
export function isBackwardCompatible(
  previous: JsonSchema,
  next: JsonSchema,
  options: DiffOptions = {},
): { compatible: boolean; reasons: string[] } {
  const reasons = diffSchemas(previous, next, options)
    .filter((d) => !d.compatible)
    .map(describe);
  return { compatible: reasons.length === 0, reasons };
}

/** Confluent's check of a candidate against a subject's existing versions (oldest first). */
export function checkCompatibility(
  level: CompatibilityLevel,
  candidate: JsonSchema,
  existing: readonly JsonSchema[],
  options: DiffOptions = {},
): { compatible: boolean; messages: string[] } {
  if (level === 'NONE' || existing.length === 0) return { compatible: true, messages: [] };
  const against = level.endsWith('_TRANSITIVE') ? existing : existing.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const messages: string[] = [];
  against.forEach((old) => {
    const version = existing.indexOf(old) + 1;
    if (backward) {
      for (const reason of isBackwardCompatible(old, candidate, options).reasons)
        messages.push(`${reason} (new schema reading data of version ${version})`);
    }
    if (forward) {
      for (const reason of isBackwardCompatible(candidate, old, options).reasons)
        messages.push(`${reason} (version ${version} reading data of the new schema)`);
    }
  });
  return { compatible: messages.length === 0, messages };
}
