/**
 * Sealing of small secrets the hub must keep at rest and read back (webhook signing secrets):
 * AES-256-GCM under a key derived for that one purpose, bound to a context (the row the value
 * belongs to) as additional authenticated data. A sealed value is text:
 *
 *   sealed:v1:<base64 of iv (12 bytes) | tag (16 bytes) | ciphertext>
 *
 * so a reader can tell it from a value stored before sealing existed. node:crypto only, no I/O.
 * Messages of the errors thrown here never contain the plaintext, a key or the sealed value.
 */
import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';

export const SEALED_PREFIX = 'sealed:v1:';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
/**
 * Its own public salt (RFC 5869 allows a fixed one): the tokenization key ring derives from the
 * same master with another salt, so a key derived here never equals one of its keys, whatever
 * the label.
 */
const HKDF_SALT = Buffer.from('nexus-hub/sealing', 'utf8');

export type SealErrorCode = 'SEALING_KEY' | 'SEALED_MALFORMED' | 'SEALED_AUTH_FAILED';

export class SealError extends Error {
  override readonly name: string = 'SealError';

  constructor(
    readonly code: SealErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A 32-byte key for one purpose, derived from a master key (at least 32 random bytes) with
 * HKDF-SHA-256 and `info` naming the purpose and its version (`nexus/webhook-secrets/v1`).
 */
export function deriveSealingKey(master: Uint8Array | KeyObject, info: string): KeyObject {
  const size = master instanceof Uint8Array ? master.length : (master.symmetricKeySize ?? 0);
  if (size < KEY_BYTES) {
    throw new SealError('SEALING_KEY', `a master key of ${size} bytes is too short to derive from`);
  }
  if (info.length === 0) throw new SealError('SEALING_KEY', 'a derived key needs an info label');
  const ikm = master instanceof Uint8Array ? Buffer.from(master) : master;
  return createSecretKey(Buffer.from(hkdfSync('sha256', ikm, HKDF_SALT, info, KEY_BYTES)));
}

/** Whether a stored value is in the sealed form (it may still fail to open). */
export function isSealed(value: string): boolean {
  return value.startsWith(SEALED_PREFIX);
}

/** Seals and opens text under one key; `context` is bound to the ciphertext (AES-GCM AAD). */
export class Sealer {
  private readonly key: KeyObject;

  constructor(key: KeyObject) {
    if (key.type !== 'secret' || key.symmetricKeySize !== KEY_BYTES) {
      throw new SealError('SEALING_KEY', `a sealing key must be a ${KEY_BYTES}-byte secret key`);
    }
    this.key = key;
  }

  seal(plaintext: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const blob = Buffer.concat([iv, cipher.getAuthTag(), ciphertext]);
    return SEALED_PREFIX + blob.toString('base64');
  }

  /**
   * The plaintext of a value `seal` made with this key and this context. Throws SealError:
   * SEALED_MALFORMED (not the sealed form), SEALED_AUTH_FAILED (another key, another context,
   * or altered).
   */
  open(sealed: string, context: string): string {
    const body = isSealed(sealed) ? sealed.slice(SEALED_PREFIX.length) : '';
    if (!BASE64.test(body)) {
      throw new SealError('SEALED_MALFORMED', 'the value is not in the sealed:v1: form');
    }
    const blob = Buffer.from(body, 'base64');
    if (blob.length < IV_BYTES + TAG_BYTES) {
      throw new SealError('SEALED_MALFORMED', 'the sealed value is too short');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.key, blob.subarray(0, IV_BYTES), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(blob.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    try {
      const plain = Buffer.concat([
        decipher.update(blob.subarray(IV_BYTES + TAG_BYTES)),
        decipher.final(),
      ]);
      return plain.toString('utf8');
    } catch {
      throw new SealError(
        'SEALED_AUTH_FAILED',
        'the sealed value does not authenticate: sealed under another key, for another context, or altered',
      );
    }
  }
}
