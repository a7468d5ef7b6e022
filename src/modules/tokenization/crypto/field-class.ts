/**
 * The classes of personal data the hub tokenizes. A field class picks the normalization before
 * a convergent token is computed, the display mask, and its own derived keys, so the same text
 * as an email and as a name never yields the same token. Names are lowercase letters only:
 * they appear between underscores in a token (see token-format.ts).
 */
export const FIELD_CLASSES = [
  'email',
  'phone',
  'name',
  'address',
  'birthdate',
  'card',
  'generic',
] as const;

export type FieldClass = (typeof FIELD_CLASSES)[number];

const known: ReadonlySet<string> = new Set(FIELD_CLASSES);

export function isFieldClass(value: string): value is FieldClass {
  return known.has(value);
}
