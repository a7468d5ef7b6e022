// Writes the canonical JSON Schemas (authored in TypeScript with TypeBox) to schemas/.
// A test (src/model/catalog.test.ts) fails when schemas/ is out of date.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { schemaFiles } from '../src/model/catalog.js';

for (const { file, schema } of schemaFiles()) {
  const path = join('schemas', file);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(schema, null, 2)}\n`);
  console.log(`wrote ${path}`);
}
