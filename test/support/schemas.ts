import type { Ajv2020, ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';
import { createAjv } from '../../src/platform/validation.js';

/** The hub's own Ajv setup (2020-12, strict, real formats), for schema tests. */
export const makeAjv = (): Ajv2020 => createAjv();

export const without = (object: object, key: string): Record<string, unknown> =>
  Object.fromEntries(Object.entries(object).filter(([k]) => k !== key));

/** A payload a schema must refuse, and where and why Ajv must say it fails. */
export interface InvalidCase {
  name: string;
  data: unknown;
  instancePath: string;
  keyword: string;
}

/** Asserts that `validate` refuses the case with an error at its path for its keyword. */
export function expectRejected(
  validate: ValidateFunction,
  { data, instancePath, keyword }: InvalidCase,
): void {
  expect(validate(data)).toBe(false);
  expect(validate.errors).toContainEqual(expect.objectContaining({ instancePath, keyword }));
}
