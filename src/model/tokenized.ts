import type { TSchema } from '@sinclair/typebox';
import { SCHEMA_BASE } from './schemas/common.js';

/**
 * The token form of a canonical schema: what events, stored documents and logs hold once the
 * personal data (every `x-pii` position) has been tokenized at the edge.
 *
 * Every `x-pii` position becomes a string: a token of its field class
 * (`tok_<v|c|f><version>_<class>_<body>`, see modules/tokenization/crypto/token-format.ts) or,
 * where the hub is configured to mask a class, its display mask (a text with `***` in it).
 * Whatever the clear value was (a string, or an object such as a postal address), its token is
 * one string. The pattern admits every token kind of the class, not only the kind configured
 * today: a registered schema must not change when the configuration does, and FF1 tokens carry
 * the prefix like the others (a bare format-preserved value could not be told from a clear one,
 * and would lose the key version and class that reading it back needs).
 *
 * Pure: schema in, schema out.
 */

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * x-pii kind (as the canonical schemas write it) -> field class (as tokens write it: lowercase
 * letters only). Kinds not listed here are `generic`.
 */
export const PII_FIELD_CLASSES: Readonly<Record<string, string>> = {
  email: 'email',
  phone: 'phone',
  name: 'name',
  address: 'address',
  'birth-date': 'birthdate',
  card: 'card',
  generic: 'generic',
};

export function fieldClassOfPii(kind: string): string {
  return PII_FIELD_CLASSES[kind] ?? 'generic';
}

/** Longest token or mask a token-form position accepts. */
export const TOKEN_FORM_MAX_LENGTH = 320;

/** A token of `fieldClass`, any kind and key version. */
export const tokenPattern = (fieldClass: string): string =>
  `^tok_[vcf][1-9][0-9]{0,4}_${fieldClass}_[A-Za-z0-9_-]{1,256}$`;

/** A token of `fieldClass`, or a display mask (some text around `***`, on one line). */
export const tokenFormPattern = (fieldClass: string): string =>
  `^(?:tok_[vcf][1-9][0-9]{0,4}_${fieldClass}_[A-Za-z0-9_-]{1,256}|[^\\n]{0,100}\\*\\*\\*[^\\n]{0,200})$`;

/** The schema of one tokenized position. */
export function tokenNode(kind: string, clear: Record<string, unknown> = {}): TSchema {
  const fieldClass = fieldClassOfPii(kind);
  const about = typeof clear.description === 'string' ? ` (${clear.description})` : '';
  return {
    type: 'string',
    pattern: tokenFormPattern(fieldClass),
    maxLength: TOKEN_FORM_MAX_LENGTH,
    description: `Personal data (${kind}) as a token of class ${fieldClass}, or its display mask${about}`,
    'x-pii': kind,
  } as unknown as TSchema;
}

/** Keywords whose value is one subschema, and those whose value is a list or map of them. */
const ONE = ['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'contains'];
const LIST = ['anyOf', 'oneOf', 'allOf', 'prefixItems'];
const MAP = ['properties', 'patternProperties', '$defs'];

function rewrite(
  node: unknown,
  replace: (kind: string, clear: Record<string, unknown>) => unknown,
): unknown {
  if (!isRecord(node)) return node;
  const kind = node['x-pii'];
  if (typeof kind === 'string') return replace(kind, node);
  const out: Record<string | symbol, unknown> = { ...node };
  for (const key of ONE) if (key in node) out[key] = rewrite(node[key], replace);
  for (const key of LIST) {
    const value = node[key];
    if (Array.isArray(value)) out[key] = value.map((branch) => rewrite(branch, replace));
  }
  for (const key of MAP) {
    const value = node[key];
    if (isRecord(value)) {
      out[key] = Object.fromEntries(
        Object.entries(value).map(([name, schema]) => [name, rewrite(schema, replace)]),
      );
    }
  }
  return out;
}

/** `https://.../order/v1.json` -> `https://.../order-<suffix>/v1.json`. */
function renamedId(id: unknown, suffix: string): string | undefined {
  if (typeof id !== 'string') return undefined;
  const match = /^(.*)\/v([0-9]+)\.json$/.exec(id);
  return match ? `${match[1]}-${suffix}/v${match[2]}.json` : `${SCHEMA_BASE}/${suffix}/${id}`;
}

function renamed(schema: Record<string, unknown>, suffix: string, titleSuffix: string) {
  const id = renamedId(schema.$id, suffix);
  return {
    ...(id === undefined ? {} : { $id: id }),
    ...(typeof schema.title === 'string' ? { title: `${schema.title}${titleSuffix}` } : {}),
  };
}

/**
 * `schema` with every `x-pii` position replaced by its token form, everything else kept. The
 * result gets its own `$id` (`<name>-token-form/v<n>.json`) and title (`<Title>TokenForm`), so
 * validators cached by `$id` never mix it up with the clear schema.
 */
export function tokenFormOf(schema: TSchema): TSchema {
  const rewritten = rewrite(schema, (kind, clear) => tokenNode(kind, clear)) as Record<
    string,
    unknown
  >;
  return { ...rewritten, ...renamed(schema, 'token-form', 'TokenForm') } as unknown as TSchema;
}

/**
 * What a channel adapter may send for a schema with personal data: at every `x-pii` position
 * either the clear value (checked against the clear schema) or an already tokenized one (a token
 * of the class, e.g. one the hub issued earlier). The edge tokenizes the clear ones.
 */
export function inboundFormOf(schema: TSchema): TSchema {
  const rewritten = rewrite(schema, (kind, clear) => ({
    anyOf: [clear, tokenNode(kind, clear)],
  })) as Record<string, unknown>;
  return { ...rewritten, ...renamed(schema, 'inbound', 'Inbound') } as unknown as TSchema;
}

/** Whether a schema marks any personal data (an `x-pii` key anywhere). */
export function hasPii(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(hasPii);
  if (!isRecord(schema)) return false;
  return Object.entries(schema).some(([key, value]) => key === 'x-pii' || hasPii(value));
}
