/**
 * Envelope encryption of vault values: AES-256-GCM under a versioned data key from the KeyRing
 * (HKDF-SHA-256 of the master with info `nexus/vault/v<n>`; key-ring.ts says why keys are derived
 * rather than wrapped). A blob is laid out as
 *
 * | offset | size | content                                   |
 * | ------ | ---- | ----------------------------------------- |
 * | 0      | 2    | key version, unsigned 16-bit big-endian   |
 * | 2      | 12   | IV, random per value                      |
 * | 14     | 16   | GCM tag                                   |
 * | 30     | n    | ciphertext, as long as the plaintext      |
 *
 * The associated data binds a blob to its row: the token, the field class and the key version.
 * A blob copied to another token's row, relabelled as another class, or with its version bytes
 * changed fails authentication rather than decrypting to the wrong person's data.
 *
 * IVs are random, so one key version should encrypt well under 2^32 values (NIST SP 800-38D's
 * bound for random 96-bit IVs); rotate long before. Random bytes come from a small pool refilled
 * from the CSPRNG: one `randomFillSync` per few hundred values instead of one per value.
 *
 * Pure: node:crypto only.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomFillSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { VaultCipherError } from './errors.js';
import type { FieldClass } from './field-class.js';
import type { KeyRing } from './key-ring.js';
import { formatToken, VAULT_TOKEN_BODY_BYTES } from './token-format.js';

export { KeyRing, keyCheckValue, MASTER_KEY_BYTES, type KeyRingOptions } from './key-ring.js';

export const VAULT_IV_BYTES = 12;
export const VAULT_TAG_BYTES = 16;
export const VAULT_HEADER_BYTES = 2 + VAULT_IV_BYTES + VAULT_TAG_BYTES;

/** What a vault blob is bound to; the key version is the blob's own. */
export interface VaultAad {
  token: string;
  fieldClass: FieldClass;
}

/** CSPRNG bytes handed out in slices; `take` returns a view valid until the next `take`. */
class RandomPool {
  private readonly pool = Buffer.allocUnsafe(4096);
  private offset = this.pool.length;

  take(bytes: number): Buffer {
    if (this.offset + bytes > this.pool.length) {
      randomFillSync(this.pool);
      this.offset = 0;
    }
    const slice = this.pool.subarray(this.offset, this.offset + bytes);
    this.offset += bytes;
    return slice;
  }
}

/**
 * The associated data: version (2 bytes), class length (1 byte), class, token (UTF-8, last, so
 * it needs no length). Unambiguous: no two (token, class, version) triples encode alike.
 */
function associatedData(version: number, aad: VaultAad): Buffer {
  const classLength = aad.fieldClass.length;
  const tokenLength = Buffer.byteLength(aad.token, 'utf8');
  const out = Buffer.allocUnsafe(3 + classLength + tokenLength);
  out.writeUInt16BE(version, 0);
  out[2] = classLength;
  out.write(aad.fieldClass, 3, 'latin1');
  out.write(aad.token, 3 + classLength, 'utf8');
  return out;
}

export class VaultCipher {
  private readonly dataKeys = new Map<number, KeyObject>();
  private readonly random = new RandomPool();

  constructor(private readonly keys: KeyRing) {}

  get currentVersion(): number {
    return this.keys.currentVersion;
  }

  /**
   * A new random vault token, `tok_v<version>_<class>_<24 base64url characters>`. The version is
   * the one current at issue: informative only, since `reencrypt` may later move the value's blob
   * to a newer key; the blob header is what decryption goes by.
   */
  newToken(fieldClass: FieldClass): string {
    return formatToken({
      kind: 'vault',
      keyVersion: this.keys.currentVersion,
      fieldClass,
      body: this.random.take(VAULT_TOKEN_BODY_BYTES).toString('base64url'),
    });
  }

  /** Encrypts `plaintext` (a string as UTF-8) under the current key version. */
  encrypt(plaintext: string | Uint8Array, aad: VaultAad): Buffer {
    return this.encryptWith(this.keys.currentVersion, plaintext, aad);
  }

  /** Decrypts a blob written for the same token and field class; throws VaultCipherError otherwise. */
  decrypt(blob: Uint8Array, aad: VaultAad): Buffer {
    const version = this.blobVersion(blob);
    const data = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    const decipher = createDecipheriv(
      'aes-256-gcm',
      this.dataKey(version),
      data.subarray(2, 2 + VAULT_IV_BYTES),
      { authTagLength: VAULT_TAG_BYTES },
    );
    decipher.setAuthTag(data.subarray(2 + VAULT_IV_BYTES, VAULT_HEADER_BYTES));
    decipher.setAAD(associatedData(version, aad));
    const head = decipher.update(data.subarray(VAULT_HEADER_BYTES));
    try {
      const tail = decipher.final();
      return tail.length === 0 ? head : Buffer.concat([head, tail]);
    } catch {
      // Nothing of `head` leaves: unauthenticated plaintext is never returned.
      head.fill(0);
      throw new VaultCipherError(
        'VAULT_AUTH_FAILED',
        `vault: the blob does not authenticate for this token, field class '${aad.fieldClass}' and key version ${version} (moved from another row, altered, or another master key)`,
      );
    }
  }

  decryptString(blob: Uint8Array, aad: VaultAad): string {
    return this.decrypt(blob, aad).toString('utf8');
  }

  /**
   * Moves a blob to the current key version: decrypts (so a blob that does not authenticate is
   * refused, never carried forward) and encrypts anew. A blob already under the current version
   * comes back unchanged; `blobVersion` lets a rotation job skip those without decrypting.
   */
  reencrypt(blob: Uint8Array, aad: VaultAad): Buffer {
    const plaintext = this.decrypt(blob, aad);
    try {
      if (this.blobVersion(blob) === this.keys.currentVersion) return Buffer.from(blob);
      return this.encryptWith(this.keys.currentVersion, plaintext, aad);
    } finally {
      plaintext.fill(0);
    }
  }

  /** The key version in a blob's header; throws VaultCipherError for a malformed blob or unknown version. */
  blobVersion(blob: Uint8Array): number {
    if (blob.byteLength < VAULT_HEADER_BYTES) {
      throw new VaultCipherError(
        'VAULT_BLOB_MALFORMED',
        `vault: a blob of ${blob.byteLength} bytes is shorter than the ${VAULT_HEADER_BYTES}-byte header`,
      );
    }
    const version = ((blob[0] ?? 0) << 8) | (blob[1] ?? 0);
    if (!this.keys.has(version)) {
      throw new VaultCipherError(
        'KEY_VERSION_UNKNOWN',
        `vault: the blob is under key version ${version}, which is not configured`,
      );
    }
    return version;
  }

  private encryptWith(version: number, plaintext: string | Uint8Array, aad: VaultAad): Buffer {
    const input = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    // GCM is a stream mode: the ciphertext is exactly as long as the plaintext.
    const out = Buffer.allocUnsafe(VAULT_HEADER_BYTES + input.byteLength);
    out.writeUInt16BE(version, 0);
    this.random.take(VAULT_IV_BYTES).copy(out, 2);
    const cipher = createCipheriv(
      'aes-256-gcm',
      this.dataKey(version),
      out.subarray(2, 2 + VAULT_IV_BYTES),
      { authTagLength: VAULT_TAG_BYTES },
    );
    cipher.setAAD(associatedData(version, aad));
    const body = cipher.update(input);
    const tail = cipher.final();
    body.copy(out, VAULT_HEADER_BYTES);
    tail.copy(out, VAULT_HEADER_BYTES + body.length);
    cipher.getAuthTag().copy(out, 2 + VAULT_IV_BYTES);
    return out;
  }

  private dataKey(version: number): KeyObject {
    let key = this.dataKeys.get(version);
    if (key === undefined) {
      const raw = this.keys.vaultKey(version);
      key = createSecretKey(raw);
      raw.fill(0); // the KeyObject holds its own copy, outside the JavaScript heap
      this.dataKeys.set(version, key);
    }
    return key;
  }
}
