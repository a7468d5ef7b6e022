import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import AjvDraft7Module from 'ajv';
import addFormatsModule from 'ajv-formats';
import formatsModule from 'ajv-formats/dist/formats.js';
import type { TSchema } from '@sinclair/typebox';
import { NexusError, type FieldError } from '../model/errors.js';
import { isCanonicalUtcDateTime } from './date-time.js';

// ajv-formats ships CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
// The draft-07 class is ajv's default export (CommonJS, same reason as above).
const AjvDraft7 = AjvDraft7Module as unknown as typeof Ajv2020;

const TIME_ZONES = new Set(Intl.supportedValuesOf('timeZone').concat(['UTC', 'Etc/UTC']));

/** ajv-formats' own `date-time` (RFC 3339, time zone required) and its comparison. */
export const RFC3339_DATE_TIME = (() => {
  const format = formatsModule.fullFormats['date-time'];
  if (typeof format !== 'object' || format instanceof RegExp || !('validate' in format)) {
    throw new Error('ajv-formats: date-time is not a format definition');
  }
  const { validate, compare } = format;
  if (typeof validate !== 'function') throw new Error('ajv-formats: date-time has no function');
  return {
    validate: validate as (value: string) => boolean,
    compare: compare as ((a: string, b: string) => number | undefined) | undefined,
  };
})();

/** The formats every Ajv of the hub knows: ajv-formats' and ours. */
function addHubFormats(ajv: Ajv2020): void {
  addFormats(ajv);
  // Same verdicts as ajv-formats, the hub's own toISOString() form checked without a regex.
  ajv.addFormat('date-time', {
    type: 'string',
    validate: (value: string) => isCanonicalUtcDateTime(value) || RFC3339_DATE_TIME.validate(value),
    ...(RFC3339_DATE_TIME.compare === undefined ? {} : { compare: RFC3339_DATE_TIME.compare }),
  });
  ajv.addFormat('iana-time-zone', { type: 'string', validate: (v: string) => TIME_ZONES.has(v) });
  ajv.addFormat('gtin', { type: 'string', validate: isValidGtin });
}

/** GTIN-8/12/13/14 mod-10 check digit (GS1 General Specifications, 7.9.1). */
export function isValidGtin(value: string): boolean {
  if (!/^(\d{8}|\d{12,14})$/.test(value)) return false;
  const digits = [...value].map(Number);
  const check = digits.pop() ?? 0;
  const sum = digits
    .reverse()
    .reduce((acc, digit, index) => acc + digit * (index % 2 === 0 ? 3 : 1), 0);
  return (10 - (sum % 10)) % 10 === check;
}

/** One Ajv instance for the hub: JSON Schema 2020-12, strict, formats, our annotations. */
export function createAjv(options: { coerceTypes?: boolean } = {}): Ajv2020 {
  const ajv = new Ajv2020({
    strict: true,
    allErrors: true,
    coerceTypes: options.coerceTypes ?? false,
    useDefaults: true,
  });
  addHubFormats(ajv);
  ajv.addKeyword({ keyword: 'x-pii', schemaType: 'string' });
  // OpenAPI / TypeBox annotations that are not validation keywords.
  ajv.addVocabulary(['example', 'x-nexus-subject']);
  return ajv;
}

/** Ajv's error list as JSON Pointers a client can follow (RFC 9457 `errors` member). */
export function toFieldErrors(
  errors: readonly ErrorObject[] | null | undefined,
  root = '',
): FieldError[] {
  return (errors ?? []).map((error) => {
    let pointer = `${root}${error.instancePath}`;
    let detail = error.message ?? 'is invalid';
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperty: string }).additionalProperty;
      pointer = `${pointer}/${extra}`;
      detail = 'is not a known field';
    } else if (error.keyword === 'required') {
      const missing = (error.params as { missingProperty: string }).missingProperty;
      pointer = `${pointer}/${missing}`;
      detail = 'is required';
    }
    return { pointer: pointer || '/', detail };
  });
}

/** Compiled validators cached per schema $id. */
export class SchemaValidator {
  private readonly cache = new Map<string, ValidateFunction>();

  constructor(private readonly ajv: Ajv2020 = createAjv()) {}

  /** Register a schema (idempotent per $id) and return its compiled validator. */
  compile(schema: TSchema): ValidateFunction {
    const id = schema.$id;
    if (id === undefined) return this.ajv.compile(schema);
    let validate = this.cache.get(id);
    if (!validate) {
      validate = this.ajv.getSchema(id) ?? this.ajv.compile(schema);
      this.cache.set(id, validate);
    }
    return validate;
  }

  /** Throws VALIDATION_FAILED (or `code`) with pointers when `value` does not match. */
  assert<T>(
    schema: TSchema,
    value: unknown,
    code: 'VALIDATION_FAILED' | 'SCHEMA_VIOLATION' = 'VALIDATION_FAILED',
    root = '',
  ): asserts value is T {
    const validate = this.compile(schema);
    if (!validate(value)) {
      const errors = toFieldErrors(validate.errors, root);
      const first = errors[0];
      throw new NexusError(code, first ? `${first.pointer} ${first.detail}` : 'invalid payload', {
        errors,
      });
    }
  }
}

/**
 * Compiles a JSON Schema that a registry client sent: draft-07 (and older) or 2020-12 by its
 * `$schema`, not strict about unknown keywords (other tools' annotations are allowed), but the
 * schema must be valid against its meta-schema and every `$ref` must resolve, locally or to one
 * of `references` (name -> schema, the name being what `$ref` uses). Throws with the reason.
 */
export function compileForeignSchema(
  schema: unknown,
  references: ReadonlyMap<string, unknown> = new Map(),
): ValidateFunction {
  const dialect =
    typeof schema === 'object' && schema !== null
      ? (schema as { $schema?: unknown }).$schema
      : undefined;
  const legacy = typeof dialect === 'string' && /draft-0[4-7]/.test(dialect);
  // Formats other tools define are not errors in a foreign schema; they are just not checked.
  const options = {
    strict: false,
    allErrors: true,
    validateSchema: true,
    addUsedSchema: false,
    logger: false,
  } as const;
  const ajv = legacy ? new AjvDraft7(options) : new Ajv2020(options);
  addHubFormats(ajv);
  for (const [name, referenced] of references) {
    const withId =
      typeof referenced === 'object' && referenced !== null
        ? { ...referenced, $id: name }
        : referenced;
    ajv.addSchema(withId as object, name);
  }
  return ajv.compile(schema as object);
}
