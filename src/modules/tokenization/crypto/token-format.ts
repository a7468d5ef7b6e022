/**
 * The one token format shared by every kind of token:
 *
 *     tok_<kind letter><key version>_<field class>_<body>
 *
 * | kind       | letter | body                                                        |
 * | ---------- | ------ | ----------------------------------------------------------- |
 * | vault      | v      | base64url of 18 random bytes (24 characters)                |
 * | convergent | c      | base64url of HMAC-SHA-256 truncated to 24 bytes (32 chars)  |
 * | fpe        | f      | the FF1 ciphertext, 1..256 characters of [A-Za-z0-9_-]      |
 *
 * e.g. `tok_c1_email_3q2-7wAAg...`. The key version is 1..65535 without leading zeros; the field
 * class is one of FIELD_CLASSES. The body comes last and is the only part that may contain an
 * underscore (base64url uses it), so a token splits unambiguously at its first three
 * underscores. The prefix lets a log reader, a support tool or a scanner recognise a token
 * without asking the vault, and tells the hub which key version and class to use for it.
 *
 * Pure: no I/O.
 */
import { TokenFormatError } from './errors.js';
import { type FieldClass, isFieldClass } from './field-class.js';

export type TokenKind = 'vault' | 'convergent' | 'fpe';

export interface TokenParts {
  kind: TokenKind;
  keyVersion: number;
  fieldClass: FieldClass;
  body: string;
}

export const TOKEN_PREFIX = 'tok';
export const MIN_KEY_VERSION = 1;
/** Versions travel as an unsigned 16-bit integer in vault blobs. */
export const MAX_KEY_VERSION = 65_535;
/** 144 random bits: a collision among 2^40 vault tokens has probability below 2^-64. */
export const VAULT_TOKEN_BODY_BYTES = 18;
/** 192 bits of HMAC: ample against collisions, and a multiple of 3 so base64url has no padding. */
export const CONVERGENT_TOKEN_BODY_BYTES = 24;
export const MAX_FPE_BODY_LENGTH = 256;

const KIND_LETTER = { vault: 'v', convergent: 'c', fpe: 'f' } as const satisfies Record<
  TokenKind,
  string
>;
const KIND_OF_LETTER: Readonly<Record<string, TokenKind>> = {
  v: 'vault',
  c: 'convergent',
  f: 'fpe',
};

const base64urlLength = (bytes: number) => Math.ceil((bytes * 4) / 3);
const TOKEN_PATTERN = /^tok_([vcf])([1-9][0-9]{0,4})_([a-z]+)_([A-Za-z0-9_-]+)$/;
const BODY_PATTERN = /^[A-Za-z0-9_-]+$/;

function checkBody(kind: TokenKind, body: string): string | undefined {
  if (!BODY_PATTERN.test(body)) return 'the body is empty or not base64url characters';
  switch (kind) {
    case 'vault': {
      const length = base64urlLength(VAULT_TOKEN_BODY_BYTES);
      return body.length === length ? undefined : `a vault body has ${length} characters`;
    }
    case 'convergent': {
      const length = base64urlLength(CONVERGENT_TOKEN_BODY_BYTES);
      return body.length === length ? undefined : `a convergent body has ${length} characters`;
    }
    case 'fpe':
      return body.length <= MAX_FPE_BODY_LENGTH
        ? undefined
        : `an fpe body has at most ${MAX_FPE_BODY_LENGTH} characters`;
  }
}

function isKeyVersion(value: number): boolean {
  return Number.isInteger(value) && value >= MIN_KEY_VERSION && value <= MAX_KEY_VERSION;
}

/** Builds the token string; refuses parts that `parseToken` would not read back. */
export function formatToken(parts: TokenParts): string {
  const { kind, keyVersion, fieldClass, body } = parts;
  if (!(kind in KIND_LETTER)) throw new TokenFormatError(`token: unknown kind '${String(kind)}'`);
  if (!isKeyVersion(keyVersion)) {
    throw new TokenFormatError(
      `token: key version ${String(keyVersion)} is outside ${MIN_KEY_VERSION}..${MAX_KEY_VERSION}`,
    );
  }
  if (!isFieldClass(fieldClass)) {
    throw new TokenFormatError(`token: unknown field class '${String(fieldClass)}'`);
  }
  const problem = checkBody(kind, body);
  if (problem !== undefined) throw new TokenFormatError(`token: ${problem}`);
  return `${TOKEN_PREFIX}_${KIND_LETTER[kind]}${keyVersion}_${fieldClass}_${body}`;
}

/**
 * Reads a token of any kind. The error names what is wrong but never repeats the input: a
 * string that is not a token may well be the personal data itself.
 */
export function parseToken(token: string): TokenParts {
  const match = TOKEN_PATTERN.exec(token);
  if (match === null) {
    throw new TokenFormatError(
      'token: not of the form tok_<v|c|f><version>_<field class>_<base64url body>',
    );
  }
  const [, letter = '', version = '', fieldClass = '', body = ''] = match;
  const kind = KIND_OF_LETTER[letter];
  const keyVersion = Number(version);
  if (kind === undefined) throw new TokenFormatError(`token: unknown kind letter '${letter}'`);
  if (!isKeyVersion(keyVersion)) {
    throw new TokenFormatError(
      `token: key version ${version} is outside ${MIN_KEY_VERSION}..${MAX_KEY_VERSION}`,
    );
  }
  if (!isFieldClass(fieldClass)) {
    throw new TokenFormatError(`token: unknown field class '${fieldClass}'`);
  }
  const problem = checkBody(kind, body);
  if (problem !== undefined) throw new TokenFormatError(`token: ${problem}`);
  return { kind, keyVersion, fieldClass, body };
}

/** True when `value` parses as a token (of any kind). */
export function isToken(value: string): boolean {
  try {
    parseToken(value);
    return true;
  } catch {
    return false;
  }
}
