import { describe, expect, it } from 'vitest';
import {
  checkCompatibility,
  diffSchemas,
  type CompatibilityLevel,
  type JsonSchema,
} from './compatibility.js';

interface Case {
  name: string;
  level: CompatibilityLevel;
  existing: JsonSchema[];
  candidate: JsonSchema;
  compatible: boolean;
  /** The Confluent rule that gives the verdict. */
  why: string;
}

const obj = (
  properties: Record<string, JsonSchema>,
  extra: Record<string, unknown> = {},
): JsonSchema => ({
  type: 'object',
  properties,
  ...extra,
});
const closed = (properties: Record<string, JsonSchema>, extra: Record<string, unknown> = {}) =>
  obj(properties, { additionalProperties: false, ...extra });
const str = (extra: Record<string, unknown> = {}): JsonSchema => ({ type: 'string', ...extra });
const num = (extra: Record<string, unknown> = {}): JsonSchema => ({ type: 'number', ...extra });
const int = (extra: Record<string, unknown> = {}): JsonSchema => ({ type: 'integer', ...extra });
const arr = (items: JsonSchema, extra: Record<string, unknown> = {}): JsonSchema => ({
  type: 'array',
  items,
  ...extra,
});

const B = 'BACKWARD';
const F = 'FORWARD';

const cases: Case[] = [
  // Identity and annotations
  {
    name: 'identical schema',
    level: B,
    existing: [obj({ a: str() })],
    candidate: obj({ a: str() }),
    compatible: true,
    why: 'no difference',
  },
  {
    name: 'description changed',
    level: 'FULL',
    existing: [str({ description: 'a' })],
    candidate: str({ description: 'b' }),
    compatible: true,
    why: 'DESCRIPTION_CHANGED is compatible',
  },
  {
    name: 'title changed',
    level: 'FULL',
    existing: [str({ title: 'a' })],
    candidate: str({ title: 'b' }),
    compatible: true,
    why: 'TITLE_CHANGED is compatible',
  },
  {
    name: 'default changed',
    level: 'FULL',
    existing: [str({ default: 'a' })],
    candidate: str({ default: 'b' }),
    compatible: true,
    why: 'DEFAULT_CHANGED is compatible',
  },
  {
    name: '$id changed',
    level: 'FULL',
    existing: [str({ $id: 'urn:a' })],
    candidate: str({ $id: 'urn:b' }),
    compatible: true,
    why: 'ID_CHANGED is compatible',
  },

  // Open content model (no additionalProperties)
  {
    name: 'optional property added to an open model',
    level: B,
    existing: [obj({ a: str() })],
    candidate: obj({ a: str(), b: str() }),
    compatible: false,
    why: "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL: the old writer's open model may already carry 'b' with any value (Confluent: incompatible, surprising but documented)",
  },
  {
    name: 'property removed from an open model',
    level: B,
    existing: [obj({ a: str(), b: str() })],
    candidate: obj({ a: str() }),
    compatible: true,
    why: 'PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL: the open reader still accepts b',
  },
  {
    name: 'property added to an open model, FORWARD',
    level: F,
    existing: [obj({ a: str() })],
    candidate: obj({ a: str(), b: str() }),
    compatible: true,
    why: 'FORWARD: the old open reader accepts the extra property (PROPERTY_REMOVED_FROM_OPEN_CONTENT_MODEL seen from the old reader)',
  },
  {
    name: 'property removed from an open model, FORWARD',
    level: F,
    existing: [obj({ a: str(), b: str() })],
    candidate: obj({ a: str() }),
    compatible: false,
    why: "FORWARD: the old reader declares 'b' but the new open writer may send any value (PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL)",
  },

  // Closed content model
  {
    name: 'optional property added to a closed model',
    level: B,
    existing: [closed({ a: str() })],
    candidate: closed({ a: str(), b: str() }),
    compatible: true,
    why: 'OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL is compatible',
  },
  {
    name: 'required property added to a closed model',
    level: B,
    existing: [closed({ a: str() })],
    candidate: closed({ a: str(), b: str() }, { required: ['b'] }),
    compatible: false,
    why: 'REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL: old data lacks b',
  },
  {
    name: 'required property with a default added to a closed model',
    level: B,
    existing: [closed({ a: str() })],
    candidate: closed({ a: str(), b: str({ default: 'x' }) }, { required: ['b'] }),
    compatible: true,
    why: 'REQUIRED_PROPERTY_WITH_DEFAULT_ADDED_TO_UNOPEN_CONTENT_MODEL is compatible',
  },
  {
    name: 'property removed from a closed model',
    level: B,
    existing: [closed({ a: str(), b: str() })],
    candidate: closed({ a: str() }),
    compatible: false,
    why: 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL: the closed reader rejects old data with b',
  },
  {
    name: 'property removed from a closed model, FORWARD',
    level: F,
    existing: [closed({ a: str(), b: str() })],
    candidate: closed({ a: str() }),
    compatible: true,
    why: 'FORWARD: old reader reading new data that never has b (OPTIONAL_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL seen from the old reader)',
  },
  {
    name: 'closed model opened',
    level: B,
    existing: [closed({ a: str() })],
    candidate: obj({ a: str() }),
    compatible: true,
    why: 'ADDITIONAL_PROPERTIES_ADDED is compatible',
  },
  {
    name: 'open model closed',
    level: B,
    existing: [obj({ a: str() })],
    candidate: closed({ a: str() }),
    compatible: false,
    why: 'ADDITIONAL_PROPERTIES_REMOVED is incompatible',
  },

  // Partially open content model
  {
    name: 'property added, covered by additionalProperties schema',
    level: B,
    existing: [obj({ a: str() }, { additionalProperties: str() })],
    candidate: obj({ a: str(), b: str() }, { additionalProperties: str() }),
    compatible: true,
    why: 'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  },
  {
    name: 'property added, not covered by additionalProperties schema',
    level: B,
    existing: [obj({ a: str() }, { additionalProperties: str() })],
    candidate: obj({ a: str(), b: int() }, { additionalProperties: str() }),
    compatible: false,
    why: 'PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  },
  {
    name: 'property added, covered by patternProperties',
    level: B,
    existing: [obj({ a: str() }, { patternProperties: { '^x_': str() } })],
    candidate: obj({ a: str(), x_b: str() }, { patternProperties: { '^x_': str() } }),
    compatible: true,
    why: 'PROPERTY_ADDED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL (pattern)',
  },
  {
    name: 'property removed, covered by the reader additionalProperties',
    level: B,
    existing: [obj({ a: str(), b: str() }, { additionalProperties: str() })],
    candidate: obj({ a: str() }, { additionalProperties: str() }),
    compatible: true,
    why: 'PROPERTY_REMOVED_IS_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  },
  {
    name: 'property removed, not covered by the reader additionalProperties',
    level: B,
    existing: [obj({ a: str(), b: int() }, { additionalProperties: str() })],
    candidate: obj({ a: str() }, { additionalProperties: str() }),
    compatible: false,
    why: 'PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL',
  },
  {
    name: 'additionalProperties schema widened',
    level: B,
    existing: [obj({}, { additionalProperties: int() })],
    candidate: obj({}, { additionalProperties: num() }),
    compatible: true,
    why: 'ADDITIONAL_PROPERTIES_EXTENDED',
  },
  {
    name: 'additionalProperties schema narrowed',
    level: B,
    existing: [obj({}, { additionalProperties: num() })],
    candidate: obj({}, { additionalProperties: int() }),
    compatible: false,
    why: 'ADDITIONAL_PROPERTIES_NARROWED',
  },

  // Required
  {
    name: 'existing property made required',
    level: B,
    existing: [closed({ a: str(), b: str() })],
    candidate: closed({ a: str(), b: str() }, { required: ['b'] }),
    compatible: false,
    why: 'REQUIRED_ATTRIBUTE_ADDED',
  },
  {
    name: 'required dropped',
    level: B,
    existing: [closed({ a: str() }, { required: ['a'] })],
    candidate: closed({ a: str() }),
    compatible: true,
    why: 'REQUIRED_ATTRIBUTE_REMOVED',
  },
  {
    name: 'required dropped, FORWARD',
    level: F,
    existing: [closed({ a: str() }, { required: ['a'] })],
    candidate: closed({ a: str() }),
    compatible: false,
    why: 'FORWARD: the old reader requires a the new writer may omit',
  },

  // Types
  {
    name: 'integer widened to number',
    level: B,
    existing: [int()],
    candidate: num(),
    compatible: true,
    why: 'TYPE_EXTENDED: every integer is a number',
  },
  {
    name: 'number narrowed to integer',
    level: B,
    existing: [num()],
    candidate: int(),
    compatible: false,
    why: 'TYPE_NARROWED',
  },
  {
    name: 'type changed string to integer',
    level: B,
    existing: [str()],
    candidate: int(),
    compatible: false,
    why: 'TYPE_CHANGED',
  },
  {
    name: 'type list extended',
    level: B,
    existing: [str()],
    candidate: { type: ['string', 'null'] },
    compatible: true,
    why: 'TYPE_EXTENDED',
  },
  {
    name: 'type list narrowed',
    level: B,
    existing: [{ type: ['string', 'null'] }],
    candidate: str(),
    compatible: false,
    why: 'TYPE_NARROWED',
  },
  {
    name: 'type constraint removed',
    level: B,
    existing: [str()],
    candidate: {},
    compatible: true,
    why: 'an empty reader accepts everything',
  },
  {
    name: 'type constraint added',
    level: B,
    existing: [{}],
    candidate: str(),
    compatible: false,
    why: 'TYPE_NARROWED',
  },
  {
    name: 'nested property type narrowed',
    level: B,
    existing: [closed({ p: closed({ q: num() }) })],
    candidate: closed({ p: closed({ q: int() }) }),
    compatible: false,
    why: 'TYPE_NARROWED at #/properties/p/properties/q',
  },
  {
    name: 'nested property type widened',
    level: B,
    existing: [closed({ p: closed({ q: int() }) })],
    candidate: closed({ p: closed({ q: num() }) }),
    compatible: true,
    why: 'TYPE_EXTENDED nested',
  },
  {
    name: 'boolean schema true to false',
    level: B,
    existing: [true],
    candidate: false,
    compatible: false,
    why: 'the reader accepts nothing',
  },
  {
    name: 'boolean schema false to true',
    level: B,
    existing: [false],
    candidate: true,
    compatible: true,
    why: 'nothing was ever written',
  },

  // Strings
  {
    name: 'maxLength increased',
    level: B,
    existing: [str({ maxLength: 5 })],
    candidate: str({ maxLength: 10 }),
    compatible: true,
    why: 'MAX_LENGTH_INCREASED',
  },
  {
    name: 'maxLength decreased',
    level: B,
    existing: [str({ maxLength: 10 })],
    candidate: str({ maxLength: 5 }),
    compatible: false,
    why: 'MAX_LENGTH_DECREASED',
  },
  {
    name: 'maxLength added',
    level: B,
    existing: [str()],
    candidate: str({ maxLength: 5 }),
    compatible: false,
    why: 'MAX_LENGTH_ADDED',
  },
  {
    name: 'maxLength removed',
    level: B,
    existing: [str({ maxLength: 5 })],
    candidate: str(),
    compatible: true,
    why: 'MAX_LENGTH_REMOVED',
  },
  {
    name: 'minLength increased',
    level: B,
    existing: [str({ minLength: 1 })],
    candidate: str({ minLength: 3 }),
    compatible: false,
    why: 'MIN_LENGTH_INCREASED',
  },
  {
    name: 'minLength decreased',
    level: B,
    existing: [str({ minLength: 3 })],
    candidate: str({ minLength: 1 }),
    compatible: true,
    why: 'MIN_LENGTH_DECREASED',
  },
  {
    name: 'pattern added',
    level: B,
    existing: [str()],
    candidate: str({ pattern: '^a' }),
    compatible: false,
    why: 'PATTERN_ADDED',
  },
  {
    name: 'pattern removed',
    level: B,
    existing: [str({ pattern: '^a' })],
    candidate: str(),
    compatible: true,
    why: 'PATTERN_REMOVED',
  },
  {
    name: 'pattern changed',
    level: B,
    existing: [str({ pattern: '^a' })],
    candidate: str({ pattern: '^b' }),
    compatible: false,
    why: 'PATTERN_CHANGED',
  },

  // Numbers
  {
    name: 'maximum increased',
    level: B,
    existing: [num({ maximum: 10 })],
    candidate: num({ maximum: 20 }),
    compatible: true,
    why: 'MAXIMUM_INCREASED',
  },
  {
    name: 'maximum decreased',
    level: B,
    existing: [num({ maximum: 20 })],
    candidate: num({ maximum: 10 }),
    compatible: false,
    why: 'MAXIMUM_DECREASED',
  },
  {
    name: 'minimum increased',
    level: B,
    existing: [num({ minimum: 0 })],
    candidate: num({ minimum: 1 }),
    compatible: false,
    why: 'MINIMUM_INCREASED',
  },
  {
    name: 'minimum decreased',
    level: B,
    existing: [num({ minimum: 1 })],
    candidate: num({ minimum: 0 }),
    compatible: true,
    why: 'MINIMUM_DECREASED',
  },
  {
    name: 'minimum added',
    level: B,
    existing: [num()],
    candidate: num({ minimum: 0 }),
    compatible: false,
    why: 'MINIMUM_ADDED',
  },
  {
    name: 'exclusiveMaximum removed',
    level: B,
    existing: [num({ exclusiveMaximum: 5 })],
    candidate: num(),
    compatible: true,
    why: 'EXCLUSIVE_MAXIMUM_REMOVED',
  },
  {
    name: 'exclusiveMinimum increased',
    level: B,
    existing: [num({ exclusiveMinimum: 0 })],
    candidate: num({ exclusiveMinimum: 2 }),
    compatible: false,
    why: 'EXCLUSIVE_MINIMUM_INCREASED',
  },
  {
    name: 'multipleOf reduced (divides the old)',
    level: B,
    existing: [num({ multipleOf: 10 })],
    candidate: num({ multipleOf: 5 }),
    compatible: true,
    why: 'MULTIPLE_OF_REDUCED',
  },
  {
    name: 'multipleOf expanded',
    level: B,
    existing: [num({ multipleOf: 5 })],
    candidate: num({ multipleOf: 10 }),
    compatible: false,
    why: 'MULTIPLE_OF_EXPANDED',
  },
  {
    name: 'multipleOf added',
    level: B,
    existing: [num()],
    candidate: num({ multipleOf: 2 }),
    compatible: false,
    why: 'MULTIPLE_OF_ADDED',
  },

  // Enums and const
  {
    name: 'enum extended',
    level: B,
    existing: [str({ enum: ['a', 'b'] })],
    candidate: str({ enum: ['a', 'b', 'c'] }),
    compatible: true,
    why: 'ENUM_ARRAY_EXTENDED',
  },
  {
    name: 'enum narrowed',
    level: B,
    existing: [str({ enum: ['a', 'b'] })],
    candidate: str({ enum: ['a'] }),
    compatible: false,
    why: 'ENUM_ARRAY_NARROWED',
  },
  {
    name: 'enum extended, FORWARD',
    level: F,
    existing: [str({ enum: ['a', 'b'] })],
    candidate: str({ enum: ['a', 'b', 'c'] }),
    compatible: false,
    why: 'FORWARD: the old reader cannot read c',
  },
  {
    name: 'enum replaced',
    level: B,
    existing: [str({ enum: ['a'] })],
    candidate: str({ enum: ['b'] }),
    compatible: false,
    why: 'ENUM_ARRAY_CHANGED',
  },
  {
    name: 'enum removed',
    level: B,
    existing: [str({ enum: ['a'] })],
    candidate: str(),
    compatible: true,
    why: 'reader accepts every string',
  },
  {
    name: 'const changed',
    level: B,
    existing: [str({ const: 'a' })],
    candidate: str({ const: 'b' }),
    compatible: false,
    why: 'const is a one-value enum: ENUM_ARRAY_CHANGED',
  },

  // Arrays
  {
    name: 'array items widened',
    level: B,
    existing: [arr(int())],
    candidate: arr(num()),
    compatible: true,
    why: 'TYPE_EXTENDED at #/items',
  },
  {
    name: 'array items narrowed',
    level: B,
    existing: [arr(num())],
    candidate: arr(int()),
    compatible: false,
    why: 'TYPE_NARROWED at #/items',
  },
  {
    name: 'maxItems decreased',
    level: B,
    existing: [arr(str(), { maxItems: 10 })],
    candidate: arr(str(), { maxItems: 5 }),
    compatible: false,
    why: 'MAX_ITEMS_DECREASED',
  },
  {
    name: 'minItems decreased',
    level: B,
    existing: [arr(str(), { minItems: 2 })],
    candidate: arr(str(), { minItems: 1 }),
    compatible: true,
    why: 'MIN_ITEMS_DECREASED',
  },
  {
    name: 'uniqueItems added',
    level: B,
    existing: [arr(str())],
    candidate: arr(str(), { uniqueItems: true }),
    compatible: false,
    why: 'UNIQUE_ITEMS_ADDED',
  },
  {
    name: 'uniqueItems removed',
    level: B,
    existing: [arr(str(), { uniqueItems: true })],
    candidate: arr(str()),
    compatible: true,
    why: 'UNIQUE_ITEMS_REMOVED',
  },
  {
    name: 'tuple item added to an open tuple',
    level: B,
    existing: [{ type: 'array', prefixItems: [str()] }],
    candidate: { type: 'array', prefixItems: [str(), int()] },
    compatible: false,
    why: 'ITEM_ADDED_TO_OPEN_CONTENT_MODEL',
  },
  {
    name: 'tuple item added to a closed tuple',
    level: B,
    existing: [{ type: 'array', prefixItems: [str()], items: false }],
    candidate: { type: 'array', prefixItems: [str(), int()], items: false },
    compatible: true,
    why: 'ITEM_ADDED_TO_CLOSED_CONTENT_MODEL',
  },
  {
    name: 'tuple item removed from a closed tuple',
    level: B,
    existing: [{ type: 'array', prefixItems: [str(), int()], items: false }],
    candidate: { type: 'array', prefixItems: [str()], items: false },
    compatible: false,
    why: 'ITEM_REMOVED_FROM_CLOSED_CONTENT_MODEL',
  },
  {
    name: 'array of objects: property removed from closed item',
    level: B,
    existing: [arr(closed({ a: str(), b: str() }))],
    candidate: arr(closed({ a: str() })),
    compatible: false,
    why: 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL at #/items/properties/b',
  },

  // Combined schemas
  {
    name: 'anyOf extended',
    level: B,
    existing: [{ anyOf: [str(), int()] }],
    candidate: { anyOf: [str(), int(), { type: 'boolean' }] },
    compatible: true,
    why: 'SUM_TYPE_EXTENDED',
  },
  {
    name: 'anyOf narrowed',
    level: B,
    existing: [{ anyOf: [str(), int()] }],
    candidate: { anyOf: [str()] },
    compatible: false,
    why: 'SUM_TYPE_NARROWED',
  },
  {
    name: 'oneOf to anyOf',
    level: B,
    existing: [{ oneOf: [str(), int()] }],
    candidate: { anyOf: [str(), int()] },
    compatible: true,
    why: 'COMBINED_TYPE_EXTENDED',
  },
  {
    name: 'anyOf to allOf',
    level: B,
    existing: [{ anyOf: [str(), int()] }],
    candidate: { allOf: [str(), int()] },
    compatible: false,
    why: 'COMBINED_TYPE_CHANGED',
  },
  {
    name: 'allOf gains a sub-schema',
    level: B,
    existing: [{ allOf: [obj({ a: str() })] }],
    candidate: { allOf: [obj({ a: str() }), { required: ['a'] }] },
    compatible: false,
    why: 'PRODUCT_TYPE_EXTENDED',
  },
  {
    name: 'allOf loses a sub-schema',
    level: B,
    existing: [{ allOf: [obj({ a: str() }), { required: ['a'] }] }],
    candidate: { allOf: [obj({ a: str() })] },
    compatible: true,
    why: 'PRODUCT_TYPE_NARROWED',
  },
  {
    name: 'plain schema becomes a union containing it',
    level: B,
    existing: [str()],
    candidate: { anyOf: [str(), { type: 'null' }] },
    compatible: true,
    why: 'SUM_TYPE_EXTENDED',
  },
  {
    name: 'union becomes one of its members',
    level: B,
    existing: [{ anyOf: [str(), { type: 'null' }] }],
    candidate: str(),
    compatible: false,
    why: 'SUM_TYPE_NARROWED',
  },
  {
    name: 'not widened (forbids more)',
    level: B,
    existing: [{ not: str({ maxLength: 1 }) }],
    candidate: { not: str() },
    compatible: false,
    why: 'NOT_TYPE_EXTENDED',
  },
  {
    name: 'not removed',
    level: B,
    existing: [{ not: str() }],
    candidate: {},
    compatible: true,
    why: 'NOT_TYPE_NARROWED',
  },

  // $ref
  {
    name: 'local $ref target widened',
    level: B,
    existing: [{ $defs: { n: int() }, type: 'object', properties: { a: { $ref: '#/$defs/n' } } }],
    candidate: { $defs: { n: num() }, type: 'object', properties: { a: { $ref: '#/$defs/n' } } },
    compatible: true,
    why: 'refs are compared by what they point to: TYPE_EXTENDED',
  },
  {
    name: 'local $ref target narrowed',
    level: B,
    existing: [
      { definitions: { n: num() }, type: 'object', properties: { a: { $ref: '#/definitions/n' } } },
    ],
    candidate: {
      definitions: { n: int() },
      type: 'object',
      properties: { a: { $ref: '#/definitions/n' } },
    },
    compatible: false,
    why: 'TYPE_NARROWED through a draft-07 ref',
  },
  {
    name: 'recursive schema unchanged',
    level: B,
    existing: [
      {
        $defs: { node: { type: 'object', properties: { next: { $ref: '#/$defs/node' } } } },
        $ref: '#/$defs/node',
      },
    ],
    candidate: {
      $defs: { node: { type: 'object', properties: { next: { $ref: '#/$defs/node' } } } },
      $ref: '#/$defs/node',
    },
    compatible: true,
    why: 'a cycle compares once',
  },

  // Levels
  {
    name: 'NONE accepts anything',
    level: 'NONE',
    existing: [str()],
    candidate: int(),
    compatible: true,
    why: 'NONE checks nothing',
  },
  {
    name: 'FULL needs both directions (enum extended)',
    level: 'FULL',
    existing: [str({ enum: ['a'] })],
    candidate: str({ enum: ['a', 'b'] }),
    compatible: false,
    why: 'backward ok, forward fails: ENUM_ARRAY_NARROWED from the old reader',
  },
  {
    name: 'FULL with an optional property on a closed model',
    level: 'FULL',
    existing: [closed({ a: str() })],
    candidate: closed({ a: str(), b: str() }),
    compatible: false,
    why: 'forward: the old closed reader rejects b (PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL)',
  },
  {
    name: 'BACKWARD checks only the latest version',
    level: B,
    existing: [closed({ a: str(), b: str() }), closed({ a: str() })],
    candidate: closed({ a: str() }),
    compatible: true,
    why: 'identical to the latest',
  },
  {
    name: 'BACKWARD_TRANSITIVE checks every version',
    level: 'BACKWARD_TRANSITIVE',
    existing: [
      closed({ a: str(), b: str() }),
      closed({ a: str() }, { additionalProperties: true }),
    ],
    candidate: closed({ a: str() }),
    compatible: false,
    why: 'version 1 data has b, the closed candidate rejects it',
  },
  {
    name: 'BACKWARD passes where BACKWARD_TRANSITIVE fails',
    level: B,
    existing: [closed({ a: str(), b: str() }), obj({ a: str() })],
    candidate: obj({ a: str() }),
    compatible: true,
    why: 'only the latest (open) version is compared',
  },
  {
    name: 'FORWARD_TRANSITIVE against every version',
    level: 'FORWARD_TRANSITIVE',
    existing: [closed({ a: int() }), closed({ a: num() })],
    candidate: closed({ a: num() }),
    compatible: false,
    why: 'version 1 (integer) cannot read the new writer numbers',
  },
  {
    name: 'FULL_TRANSITIVE passes for annotation-only changes',
    level: 'FULL_TRANSITIVE',
    existing: [str({ description: 'x' }), str({ description: 'y' })],
    candidate: str({ description: 'z' }),
    compatible: true,
    why: 'only compatible differences',
  },
  {
    name: 'first version of a subject',
    level: 'FULL_TRANSITIVE',
    existing: [],
    candidate: str(),
    compatible: true,
    why: 'nothing to compare',
  },
];

describe('JSON Schema compatibility (Confluent rules)', () => {
  it('has at least 60 cases', () => expect(cases.length).toBeGreaterThanOrEqual(60));

  it.each(cases)(
    '$level: $name -> compatible=$compatible ($why)',
    ({ level, existing, candidate, compatible }) => {
      const verdict = checkCompatibility(level, candidate, existing);
      expect(verdict.compatible, verdict.messages.join('\n')).toBe(compatible);
      if (!compatible) expect(verdict.messages.length).toBeGreaterThan(0);
    },
  );
});

describe('diffSchemas', () => {
  it('names the difference type and its JSON path', () => {
    const diffs = diffSchemas(
      closed({ p: closed({ q: num(), r: str() }) }),
      closed({ p: closed({ q: int() }) }),
    );
    expect(diffs).toEqual(
      expect.arrayContaining([
        { type: 'TYPE_NARROWED', path: '#/properties/p/properties/q/type', compatible: false },
        {
          type: 'PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL',
          path: '#/properties/p/properties/r',
          compatible: false,
        },
      ]),
    );
  });

  it('escapes property names in paths (RFC 6901)', () => {
    const [diff] = diffSchemas(closed({ 'a/b': str() }), closed({}));
    expect(diff?.path).toBe('#/properties/a~1b');
  });

  it('resolves registry references through the resolver', () => {
    const writer = { type: 'object', properties: { price: { $ref: 'money.json' } } };
    const reader = { type: 'object', properties: { price: { $ref: 'money-v2.json' } } };
    const refs: Record<string, JsonSchema> = { 'money.json': int(), 'money-v2.json': num() };
    expect(
      diffSchemas(writer, reader, { resolveRef: (r) => refs[r] }).every((d) => d.compatible),
    ).toBe(true);
    expect(
      diffSchemas(reader, writer, { resolveRef: (r) => refs[r] }).some((d) => !d.compatible),
    ).toBe(true);
  });

  it('writes messages in the shape of Confluent verbose answers', () => {
    const { messages } = checkCompatibility('BACKWARD', closed({}), [closed({ a: str() })]);
    expect(messages[0]).toMatch(
      /^Found incompatible change: Difference\{jsonPath='#\/properties\/a', type=PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL\}/,
    );
  });
});
