import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createAjv } from '../src/platform/validation.js';
import { schemaFiles } from '../src/model/catalog.js';

describe('canonical schema files', () => {
  it.each(schemaFiles().map((f) => [f.file, f.schema] as const))(
    'schemas/%s is up to date (npm run schemas)',
    (file, schema) => {
      const onDisk = JSON.parse(readFileSync(join('schemas', file), 'utf8')) as unknown;
      expect(onDisk).toEqual(JSON.parse(JSON.stringify(schema)));
    },
  );

  it('every file compiles as JSON Schema 2020-12 in strict mode', () => {
    const ajv = createAjv();
    for (const { schema } of schemaFiles()) expect(() => ajv.compile(schema)).not.toThrow();
  });
});

describe('docs/errors.md', () => {
  it('documents every error code', async () => {
    const { ERROR_CODES } = await import('../src/model/errors.js');
    const doc = readFileSync('docs/errors.md', 'utf8');
    for (const code of Object.keys(ERROR_CODES))
      expect(doc).toMatch(new RegExp(`^\\| \`${code}\` +\\|`, 'm'));
  });
});
