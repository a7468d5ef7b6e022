/**
 * Every key of the tokenization core, derived from one 32-byte master key with HKDF-SHA-256
 * (RFC 5869) and a label per purpose and version:
 *
 * | purpose                      | HKDF info                         |
 * | ---------------------------- | --------------------------------- |
 * | vault data key, version n    | `nexus/vault/v<n>`                |
 * | convergent key, per class    | `nexus/convergent/v<n>/<class>`   |
 * | FF1 key, per class           | `nexus/fpe/v<n>/<class>`          |
 * | either, erasure epoch e > 0  | the same with `/e<e>` appended    |
 * | key check value              | `nexus/key-check`                 |
 *
 * Why derived keys and not random data keys wrapped by the master: the master key comes from
 * configuration and never from the database, and with derivation nothing secret is stored
 * anywhere else either. A database dump holds no key material, not even wrapped; every hub
 * configured with the same master computes the same keys without sharing a key table; adding a
 * version is a configuration change, not a migration. The cost is that all versions stand or fall
 * with the master: versions bound how much data one key protects (AES-GCM with random IVs allows
 * about 2^32 encryptions per key) and let data move forward to a fresh key, but replacing a
 * leaked master is a re-encryption job (decrypt with a ring on the old master, encrypt with a
 * ring on the new one), which wrapped keys would have made a re-wrap. For a hub whose master sits
 * in its configuration next to the database credentials, storing no secrets wins.
 *
 * The master must be 32 random bytes (not a password: nothing here stretches it). It is kept in
 * a KeyObject, out of the JavaScript heap.
 */
import {
  createHmac,
  createSecretKey,
  hkdfSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { KeyCheckMismatchError, KeyRingError } from './errors.js';
import type { FieldClass } from './field-class.js';
import { MAX_KEY_VERSION, MIN_KEY_VERSION } from './token-format.js';

export const MASTER_KEY_BYTES = 32;
/** A fixed, public salt: RFC 5869 allows it, and it separates these keys from any other HKDF use of the same master. */
const HKDF_SALT = Buffer.from('nexus-hub/tokenization', 'utf8');
const KEY_CHECK_LABEL = 'nexus key check value';
const KEY_CHECK_PREFIX = 'kcv1_';
const KEY_CHECK_BYTES = 16;

function masterKeyObject(master: Uint8Array): KeyObject {
  if (master.length !== MASTER_KEY_BYTES) {
    throw new KeyRingError(
      'KEY_RING',
      `key ring: the master key is ${master.length} bytes; it must be ${MASTER_KEY_BYTES}`,
    );
  }
  return createSecretKey(Buffer.from(master));
}

/** Epoch 0 keeps the label it had before erasure epochs existed, so its tokens stay the same. */
function epochLabel(epoch: number): string {
  if (!Number.isInteger(epoch) || epoch < 0) {
    throw new KeyRingError(
      'KEY_RING',
      `key ring: erasure epoch ${epoch} is not a whole number >= 0`,
    );
  }
  return epoch === 0 ? '' : `/e${epoch}`;
}

function derive(master: KeyObject, info: string, length = 32): Buffer {
  return Buffer.from(hkdfSync('sha256', master, HKDF_SALT, info, length));
}

function keyCheckOf(master: KeyObject): string {
  const mac = createHmac('sha256', derive(master, 'nexus/key-check'))
    .update(KEY_CHECK_LABEL)
    .digest();
  return KEY_CHECK_PREFIX + mac.subarray(0, KEY_CHECK_BYTES).toString('base64url');
}

/**
 * The key check value of a master key: `kcv1_` and 16 bytes of HMAC over a fixed label, under a
 * key derived for nothing else. Store it when the master is first configured and compare it at
 * every start (`KeyRing.verifyKeyCheck`): a hub started with the wrong master then stops at once
 * instead of writing tokens nobody can resolve. It is safe to store and log: it reveals nothing
 * usable about the master or any derived key.
 */
export function keyCheckValue(master: Uint8Array): string {
  return keyCheckOf(masterKeyObject(master));
}

export interface KeyRingOptions {
  /** The version new tokens and ciphertexts use; default the highest of `versions`. */
  currentVersion?: number;
}

/**
 * The master key and the key versions in use. Rotation is adding a version and making it current;
 * the old versions stay in the list for as long as data under them must be readable. A version
 * can be listed before it becomes current, so every hub can read it before any writes it.
 */
export class KeyRing {
  /** Ascending. */
  readonly versions: readonly number[];
  readonly currentVersion: number;
  private readonly master: KeyObject;
  private readonly known: ReadonlySet<number>;

  constructor(master: Uint8Array, versions: readonly number[], options: KeyRingOptions = {}) {
    this.master = masterKeyObject(master);
    if (versions.length === 0) {
      throw new KeyRingError('KEY_RING', 'key ring: at least one key version is needed');
    }
    for (const version of versions) {
      if (!Number.isInteger(version) || version < MIN_KEY_VERSION || version > MAX_KEY_VERSION) {
        throw new KeyRingError(
          'KEY_RING',
          `key ring: key version ${String(version)} is outside ${MIN_KEY_VERSION}..${MAX_KEY_VERSION}`,
        );
      }
    }
    this.known = new Set(versions);
    if (this.known.size !== versions.length) {
      throw new KeyRingError('KEY_RING', 'key ring: a key version is listed twice');
    }
    this.versions = [...versions].sort((a, b) => a - b);
    this.currentVersion = options.currentVersion ?? Math.max(...versions);
    if (!this.known.has(this.currentVersion)) {
      throw new KeyRingError(
        'KEY_RING',
        `key ring: the current version ${String(this.currentVersion)} is not one of the versions`,
      );
    }
  }

  has(version: number): boolean {
    return this.known.has(version);
  }

  /** The AES-256-GCM data key of the vault for `version`. */
  vaultKey(version: number): Buffer {
    return derive(this.master, `nexus/vault/v${this.checked(version)}`);
  }

  /**
   * The HMAC-SHA-256 key of convergent tokens of one field class. `epoch` counts the erasures a
   * value's token has been through (D26): each epoch has its own key, so a value erased once
   * gets a token unrelated to the one that was erased.
   */
  convergentKey(version: number, fieldClass: FieldClass, epoch = 0): Buffer {
    return derive(
      this.master,
      `nexus/convergent/v${this.checked(version)}/${fieldClass}${epochLabel(epoch)}`,
    );
  }

  /** An AES-256 key for FF1 on one field class, per erasure epoch as `convergentKey`. */
  fpeKey(version: number, fieldClass: FieldClass, epoch = 0): Buffer {
    return derive(
      this.master,
      `nexus/fpe/v${this.checked(version)}/${fieldClass}${epochLabel(epoch)}`,
    );
  }

  /** This ring's master key check value; see `keyCheckValue`. */
  keyCheckValue(): string {
    return keyCheckOf(this.master);
  }

  /** Throws KeyCheckMismatchError unless `stored` is this master's key check value. */
  verifyKeyCheck(stored: string): void {
    const expected = Buffer.from(this.keyCheckValue());
    const actual = Buffer.from(stored);
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      throw new KeyCheckMismatchError(
        'key ring: the configured master key does not match the stored key check value; it is not the key this data was tokenized with',
      );
    }
  }

  private checked(version: number): number {
    if (!this.known.has(version)) {
      throw new KeyRingError(
        'KEY_VERSION_UNKNOWN',
        `key ring: key version ${String(version)} is not configured`,
      );
    }
    return version;
  }
}
