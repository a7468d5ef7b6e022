import type { Ajv2020 } from 'ajv/dist/2020.js';
import { createAjv } from '../../src/platform/validation.js';

/** The hub's own Ajv setup (2020-12, strict, real formats), for schema tests. */
export const makeAjv = (): Ajv2020 => createAjv();

export const without = (object: object, key: string): Record<string, unknown> =>
  Object.fromEntries(Object.entries(object).filter(([k]) => k !== key));
