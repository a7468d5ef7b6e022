/**
 * Walks a JSON Schema and a document together and rebuilds the document with every personal
 * data position (`x-pii`) replaced by what a visitor returns. Follows `properties`,
 * `patternProperties`, `additionalProperties`, `items`, `prefixItems` and `allOf`; for `anyOf` /
 * `oneOf` it takes the branch whose `const` properties the value matches (the canonical unions
 * are discriminated: `contactPoints[type=email]`, `delivery[mode=ship-to-address]`), else the
 * first branch of the value's JSON type.
 *
 * Without an `unknown` callback the walk only descends where the schema has personal data and
 * shares the rest of the document with the input. With one, every part the schema does not
 * describe (an undeclared property, a union member matching no branch) is handed to it: that is
 * how a payload that failed validation is redacted before it is kept as a dead letter.
 */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export interface PiiVisitor {
  /** The value at an `x-pii` position (`kind` is the x-pii value); returns its replacement. */
  pii(value: unknown, kind: string, pointer: string): unknown;
  /** A value the schema does not describe; returns its replacement. */
  unknown?(value: unknown, pointer: string): unknown;
}

const memo = new WeakMap<object, boolean>();

/** Whether a schema node has an `x-pii` key anywhere below it (memoized per node). */
function holdsPii(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(holdsPii);
  if (!isRecord(node)) return false;
  const known = memo.get(node);
  if (known !== undefined) return known;
  const found = Object.entries(node).some(([key, value]) => key === 'x-pii' || holdsPii(value));
  memo.set(node, found);
  return found;
}

const jsonType = (value: unknown): string =>
  value === null
    ? 'null'
    : Array.isArray(value)
      ? 'array'
      : typeof value === 'number'
        ? Number.isInteger(value)
          ? 'integer'
          : 'number'
        : typeof value;

function typeMatches(schema: Record<string, unknown>, value: unknown): boolean {
  const type = schema.type;
  if (type === undefined) return true;
  const actual = jsonType(value);
  const types = Array.isArray(type) ? type : [type];
  return types.some((t) => t === actual || (t === 'number' && actual === 'integer'));
}

/** A union's branches as the walk reads them, computed once per `anyOf` / `oneOf` array. */
interface Union {
  records: Array<Record<string, unknown>>;
  /** Per record branch, its `const` properties (the discriminators). */
  discriminators: Array<Array<[string, unknown]>>;
  discriminated: boolean;
}

const unions = new WeakMap<readonly unknown[], Union>();

function unionOf(branches: readonly unknown[]): Union {
  let union = unions.get(branches);
  if (union === undefined) {
    const records = branches.filter(isRecord);
    const discriminators = records.map((branch) =>
      isRecord(branch.properties)
        ? Object.entries(branch.properties)
            .filter(([, property]) => isRecord(property) && 'const' in property)
            .map(([key, property]): [string, unknown] => [
              key,
              (property as Record<string, unknown>).const,
            ])
        : [],
    );
    union = {
      records,
      discriminators,
      discriminated: discriminators.some((list) => list.length > 0),
    };
    unions.set(branches, union);
  }
  return union;
}

/** The branch of a union that `value` belongs to, or undefined. */
function branchFor(
  branches: readonly unknown[],
  value: unknown,
): Record<string, unknown> | undefined {
  const { records, discriminators, discriminated } = unionOf(branches);
  if (isRecord(value)) {
    for (let i = 0; i < records.length; i++) {
      const consts = discriminators[i]!;
      if (consts.length > 0 && consts.every(([key, constant]) => value[key] === constant)) {
        return records[i];
      }
    }
    if (discriminated) return undefined;
  }
  return records.find((branch) => typeMatches(branch, value));
}

/** An object schema as the walk reads it, computed once per schema node. */
interface Shape {
  properties: Record<string, unknown> | undefined;
  patterns: Array<[RegExp, unknown]> | undefined;
  additional: unknown;
  /**
   * Properties whose schema holds personal data, when nothing else can (no pattern or
   * additional schema with any): then only those are visited and the rest is copied as is.
   */
  personal: ReadonlySet<string> | undefined;
}

const shapes = new WeakMap<object, Shape>();

function shapeOf(schema: Record<string, unknown>): Shape {
  let shape = shapes.get(schema);
  if (shape === undefined) {
    const properties = isRecord(schema.properties) ? schema.properties : undefined;
    const patterns = isRecord(schema.patternProperties)
      ? Object.entries(schema.patternProperties).map(([pattern, sub]): [RegExp, unknown] => [
          new RegExp(pattern, 'u'),
          sub,
        ])
      : undefined;
    const additional = schema.additionalProperties;
    const closed =
      (patterns ?? []).every(([, sub]) => !holdsPii(sub)) &&
      !(isRecord(additional) && holdsPii(additional));
    shape = {
      properties,
      patterns,
      additional,
      personal: closed
        ? new Set(Object.keys(properties ?? {}).filter((key) => holdsPii(properties![key])))
        : undefined,
    };
    shapes.set(schema, shape);
  }
  return shape;
}

/** A JSON Pointer reference token (RFC 6901). */
const escapeKey = (key: string): string =>
  key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key;

export function mapPersonalData(
  schema: unknown,
  value: unknown,
  visitor: PiiVisitor,
  pointer = '',
): unknown {
  if (!isRecord(schema) || value === undefined) return value;
  const full = visitor.unknown !== undefined;
  if (!full && !holdsPii(schema)) return value;
  const kind = schema['x-pii'];
  if (typeof kind === 'string') return visitor.pii(value, kind, pointer);

  let out: unknown = value;
  if (Array.isArray(schema.allOf)) {
    for (const branch of schema.allOf) out = mapPersonalData(branch, out, visitor, pointer);
  }
  for (const keyword of ['anyOf', 'oneOf'] as const) {
    const branches = schema[keyword];
    if (!Array.isArray(branches)) continue;
    const branch = branchFor(branches, out);
    if (branch !== undefined) out = mapPersonalData(branch, out, visitor, pointer);
    else if (visitor.unknown !== undefined) return visitor.unknown(out, pointer);
  }

  if (Array.isArray(out)) {
    const prefix = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
    const items = schema.items;
    if (prefix.length === 0 && items === undefined) return out;
    return out.map((item: unknown, index) => {
      const itemSchema: unknown = index < prefix.length ? prefix[index] : items;
      if (itemSchema === undefined || itemSchema === false) {
        return visitor.unknown ? visitor.unknown(item, `${pointer}/${index}`) : item;
      }
      return mapPersonalData(itemSchema, item, visitor, `${pointer}/${index}`);
    });
  }

  if (isRecord(out)) {
    const { properties, patterns, additional, personal } = shapeOf(schema);
    if (properties === undefined && patterns === undefined && additional === undefined) {
      return out;
    }
    if (!full && personal !== undefined) {
      // The common case (tokenizing a valid document): a shallow copy with only the personal
      // properties walked, in document order.
      const copy: Record<string, unknown> = { ...out };
      for (const key of Object.keys(out)) {
        if (personal.has(key)) {
          copy[key] = mapPersonalData(
            properties![key],
            out[key],
            visitor,
            `${pointer}/${escapeKey(key)}`,
          );
        }
      }
      return copy;
    }
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(out)) {
      const path = `${pointer}/${escapeKey(key)}`;
      let sub: unknown =
        properties !== undefined && Object.hasOwn(properties, key) ? properties[key] : undefined;
      if (sub === undefined && patterns !== undefined) {
        for (const [pattern, patternSchema] of patterns) {
          if (pattern.test(key)) {
            sub = patternSchema;
            break;
          }
        }
      }
      if (sub === undefined && isRecord(additional)) sub = additional;
      if (sub !== undefined) copy[key] = mapPersonalData(sub, item, visitor, path);
      else copy[key] = visitor.unknown ? visitor.unknown(item, path) : item;
    }
    return copy;
  }
  return out;
}
