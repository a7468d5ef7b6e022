/**
 * Where a canonical schema marks personal data (`x-pii`), as data paths: `/names/given name`,
 * `/contactPoints/*[type=phone]/value phone`. Tokenization at the edge walks these paths.
 */
const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Label of a union branch: its discriminator (`[type=email]`) or else its index. */
function branchLabel(branch: unknown, index: number): string {
  if (isRecord(branch) && isRecord(branch.properties)) {
    for (const [key, property] of Object.entries(branch.properties)) {
      if (isRecord(property) && typeof property.const === 'string') {
        return `[${key}=${property.const}]`;
      }
    }
  }
  return `[${index}]`;
}

export function piiPaths(schema: unknown, path = ''): string[] {
  if (!isRecord(schema)) return [];
  const hits: string[] = [];
  const kind = schema['x-pii'];
  if (typeof kind === 'string') hits.push(`${path || '/'} ${kind}`);
  if (isRecord(schema.properties)) {
    for (const [key, property] of Object.entries(schema.properties)) {
      hits.push(...piiPaths(property, `${path}/${key}`));
    }
  }
  hits.push(...piiPaths(schema.items, `${path}/*`));
  for (const keyword of ['anyOf', 'oneOf', 'allOf']) {
    const branches = schema[keyword];
    if (Array.isArray(branches)) {
      branches.forEach((branch: unknown, index) => {
        hits.push(...piiPaths(branch, `${path}${branchLabel(branch, index)}`));
      });
    }
  }
  return hits;
}

/** Number of x-pii keys anywhere in the schema, reachable or not by piiPaths. */
export function countPii(schema: unknown): number {
  if (Array.isArray(schema)) return schema.reduce((n: number, item) => n + countPii(item), 0);
  if (!isRecord(schema)) return 0;
  return Object.entries(schema).reduce(
    (n, [key, value]) => n + (key === 'x-pii' ? 1 : 0) + countPii(value),
    0,
  );
}
