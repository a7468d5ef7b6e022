import { TokenInputError } from './crypto/index.js';

/**
 * A value that is tokenized: a string, or a JSON object or array that is personal data as a
 * whole (a postal address). The vault stores it with a one-letter tag so detokenization gives
 * back the same type: `s` + the string, or `j` + canonical JSON (keys sorted).
 */
export type PersonalValue = string | Record<string, unknown> | unknown[];

export function isPersonalValue(value: unknown): value is PersonalValue {
  return typeof value === 'string' || (typeof value === 'object' && value !== null);
}

/** JSON with object keys sorted at every level, so equal objects give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function encodeValue(value: PersonalValue): string {
  return typeof value === 'string' ? `s${value}` : `j${canonicalJson(value)}`;
}

export function decodeValue(text: string): PersonalValue {
  if (text.startsWith('s')) return text.slice(1);
  if (text.startsWith('j')) return JSON.parse(text.slice(1)) as PersonalValue;
  throw new TokenInputError('vault: a stored value has no type tag');
}

/** The text a token is computed from: the string itself, or an object's canonical JSON. */
export function valueText(value: PersonalValue): string {
  return typeof value === 'string' ? value : canonicalJson(value);
}
