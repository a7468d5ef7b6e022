/**
 * Convergent tokens: the same value of the same field class under the same key version always
 * yields the same token, so the hub can match customers across channels, deduplicate and look
 * up by token without ever holding the value. The token body is HMAC-SHA-256 of the normalized
 * value, truncated to 24 bytes (see token-format.ts).
 *
 * Keys: one HMAC key per (key version, field class), derived by the KeyRing with HKDF and the
 * info `nexus/convergent/v<n>/<class>`. We derive with HKDF rather than computing
 * HMAC(key, class) ourselves because every key of this core then comes out of one function with
 * a label naming purpose, version and class: a convergent key can never equal a vault or FF1 key,
 * and the labels are written down in one table (key-ring.ts). (HKDF-Expand is itself an HMAC of
 * the label under the extracted key, so the cost and the strength are the same; what HKDF adds is
 * the extract step and the discipline.) Separate keys per class mean the same string as an email
 * and as a name gives unrelated tokens, so tokens of one class cannot be joined with another's.
 *
 * What convergent tokens leak, by design: equality. Without the key nobody can test a guess
 * (the HMAC is keyed), which is what keeps a low-entropy field such as a phone number from
 * being enumerated from its tokens.
 *
 * Pure: node:crypto only.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { TokenInputError } from './errors.js';
import type { FieldClass } from './field-class.js';
import type { KeyRing } from './key-ring.js';
import { CONVERGENT_TOKEN_BODY_BYTES, formatToken } from './token-format.js';

const NON_DIGITS = /[^0-9]/g;
/** base64url characters of the token body: 4 per 3 bytes, no padding (24 is a multiple of 3). */
const BODY_CHARS = (CONVERGENT_TOKEN_BODY_BYTES / 3) * 4;

/**
 * The form of a value that is tokenized, so spellings of the same value meet:
 * - email: NFC, trimmed, lowercased (local parts are case-insensitive in practice, and every
 *   retailer treats them so);
 * - phone: digits only, with a leading `+` kept when the number starts with one; NFKC first so
 *   full-width digits count. No `00` -> `+` rewriting: which prefix dials out differs by country;
 * - card: digits only (spaces and dashes are presentation);
 * - name, address, birthdate, generic: NFC and trimmed; case and inner spacing are kept, as they
 *   may matter.
 * Throws TokenInputError when nothing is left: an empty value has no token.
 */
export function normalizeValue(value: string, fieldClass: FieldClass): string {
  let normalized: string;
  switch (fieldClass) {
    case 'email':
      normalized = value.normalize('NFC').trim().toLowerCase();
      break;
    case 'phone': {
      const trimmed = value.normalize('NFKC').trim();
      const digits = trimmed.replace(NON_DIGITS, '');
      normalized = digits === '' ? '' : (trimmed.startsWith('+') ? '+' : '') + digits;
      break;
    }
    case 'card':
      normalized = value.normalize('NFKC').replace(NON_DIGITS, '');
      break;
    case 'name':
    case 'address':
    case 'birthdate':
    case 'generic':
      normalized = value.normalize('NFC').trim();
      break;
  }
  if (normalized === '') {
    throw new TokenInputError(
      `convergent: nothing is left of the value after ${fieldClass} normalization`,
    );
  }
  return normalized;
}

/** Computes convergent tokens with the keys of a KeyRing. */
export class ConvergentTokenizer {
  /**
   * Derived keys by version, then class: HKDF runs once per pair, not per token. Kept as
   * KeyObjects (outside the JavaScript heap, handed to HMAC without a copy per token).
   */
  private readonly keyCache = new Map<number, Map<FieldClass, KeyObject>>();
  /** `tok_c<version>_<class>_` by version and class: the token prefix built once. */
  private readonly prefixes = new Map<number, Map<FieldClass, string>>();
  private readonly epochKeys = new Map<string, KeyObject>();

  constructor(private readonly keys: KeyRing) {}

  /**
   * `tok_c<version>_<class>_<body>` of `value`; `version` defaults to the ring's current one.
   * `epoch` > 0 gives the value's token after that many erasures of its earlier tokens (D26).
   */
  token(
    value: string,
    fieldClass: FieldClass,
    version = this.keys.currentVersion,
    epoch = 0,
  ): string {
    return this.tokenOfNormalized(normalizeValue(value, fieldClass), fieldClass, version, epoch);
  }

  /**
   * The value's token under every configured version, current first. After a rotation, rows
   * tokenized under an older version are found by looking all of these up.
   */
  candidates(value: string, fieldClass: FieldClass): string[] {
    const normalized = normalizeValue(value, fieldClass);
    const versions = [
      this.keys.currentVersion,
      ...this.keys.versions.filter((v) => v !== this.keys.currentVersion).reverse(),
    ];
    return versions.map((version) => this.tokenOfNormalized(normalized, fieldClass, version));
  }

  private tokenOfNormalized(
    normalized: string,
    fieldClass: FieldClass,
    version: number,
    epoch = 0,
  ): string {
    // 24 bytes are the first 32 base64url characters of the whole MAC (3 bytes per 4
    // characters), so no Buffer is made per token. The prefix passed formatToken's checks when
    // it was built; the body is base64url of the length the format wants by construction.
    const key =
      epoch === 0 ? this.key(version, fieldClass) : this.epochKey(version, fieldClass, epoch);
    const mac = createHmac('sha256', key).update(normalized).digest('base64url');
    return this.prefix(version, fieldClass) + mac.slice(0, BODY_CHARS);
  }

  private prefix(version: number, fieldClass: FieldClass): string {
    let byClass = this.prefixes.get(version);
    if (byClass === undefined) {
      byClass = new Map();
      this.prefixes.set(version, byClass);
    }
    let prefix = byClass.get(fieldClass);
    if (prefix === undefined) {
      const sample = formatToken({
        kind: 'convergent',
        keyVersion: version,
        fieldClass,
        body: 'A'.repeat(BODY_CHARS),
      });
      prefix = sample.slice(0, sample.length - BODY_CHARS);
      byClass.set(fieldClass, prefix);
    }
    return prefix;
  }

  /** The key of a later erasure epoch: rare, so kept apart from the hot path's cache. */
  private epochKey(version: number, fieldClass: FieldClass, epoch: number): KeyObject {
    const name = `${version}/${fieldClass}/${epoch}`;
    let key = this.epochKeys.get(name);
    if (key === undefined) {
      key = secretKey(this.keys.convergentKey(version, fieldClass, epoch));
      this.epochKeys.set(name, key);
    }
    return key;
  }

  private key(version: number, fieldClass: FieldClass): KeyObject {
    let byClass = this.keyCache.get(version);
    if (byClass === undefined) {
      byClass = new Map();
      this.keyCache.set(version, byClass);
    }
    let key = byClass.get(fieldClass);
    if (key === undefined) {
      key = secretKey(this.keys.convergentKey(version, fieldClass));
      byClass.set(fieldClass, key);
    }
    return key;
  }
}

/** A KeyObject of derived key bytes; the bytes are wiped (the KeyObject holds its own copy). */
function secretKey(raw: Buffer): KeyObject {
  const key = createSecretKey(raw);
  raw.fill(0);
  return key;
}
