import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { NexusError } from '../../model/errors.js';
import { MASTER_KEY_BYTES } from './crypto/index.js';

/**
 * Where the master key comes from, in this order:
 * 1. `tokenization.masterKey` (or NEXUS_MASTER_KEY): base64 of 32 bytes;
 * 2. `tokenization.masterKeyFile` (or NEXUS_MASTER_KEY_FILE): a file holding that base64 text;
 * 3. embedded SQLite only: `master.key` next to the database file, generated (0600) on the
 *    first start of a fresh database and reused after;
 * 4. otherwise (PostgreSQL) the hub refuses to start: several processes share the database and
 *    must share the key, so it has to be configured.
 * Never from the database: a dump of it must not be enough to read the vault.
 */
export interface MasterKeySettings {
  masterKey?: string | undefined;
  masterKeyFile?: string | undefined;
}

export interface MasterKeyPlace {
  dialect: 'sqlite' | 'postgres';
  /** The SQLite database file (':memory:' for a throwaway database). */
  sqliteFile?: string;
}

export interface ResolvedMasterKey {
  key: Buffer;
  /** For messages: where the key came from (never the key). */
  origin: string;
}

const invalid = (message: string) => new NexusError('CONFIG_INVALID', message);

function decode(text: string, origin: string): Buffer {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/_-]+=*$/.test(trimmed)
    ? Buffer.from(trimmed, 'base64')
    : Buffer.alloc(0);
  if (key.length !== MASTER_KEY_BYTES) {
    throw invalid(
      `the master key from ${origin} must be base64 of ${MASTER_KEY_BYTES} random bytes (it decodes to ${key.length} bytes)`,
    );
  }
  return key;
}

function readKeyFile(path: string, origin: string, warn: (line: string) => void): Buffer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw invalid(`cannot read the master key file ${path} (${origin}): ${reason}`);
  }
  try {
    if ((statSync(path).mode & 0o077) !== 0) {
      warn(`the master key file ${path} can be read by other users; chmod 600 it`);
    }
  } catch {
    // The permission check is advice; the key was read.
  }
  return decode(text, `${path} (${origin})`);
}

/** The default key file of an embedded hub: beside its database file. */
export function defaultKeyFile(sqliteFile: string): string {
  return join(dirname(resolve(sqliteFile)), 'master.key');
}

/**
 * Finds (or, for a fresh embedded database, generates) the master key. `hasKeys` says whether
 * the database already has key versions, i.e. data written under some master: then a missing
 * key is an error, never a reason to make a new one.
 */
export function resolveMasterKey(
  settings: MasterKeySettings,
  place: MasterKeyPlace,
  hasKeys: boolean,
  log: { info: (line: string) => void; warn: (line: string) => void },
): ResolvedMasterKey {
  if (settings.masterKey !== undefined) {
    const origin = 'tokenization.masterKey / NEXUS_MASTER_KEY';
    return { key: decode(settings.masterKey, origin), origin };
  }
  if (settings.masterKeyFile !== undefined) {
    const path = resolve(settings.masterKeyFile);
    const origin = `key file ${path}`;
    return {
      key: readKeyFile(path, 'tokenization.masterKeyFile / NEXUS_MASTER_KEY_FILE', log.warn),
      origin,
    };
  }
  if (place.dialect === 'postgres') {
    throw invalid(
      'tokenization needs a master key with PostgreSQL: set NEXUS_MASTER_KEY to base64 of 32 random bytes (e.g. `openssl rand -base64 32`) or tokenization.masterKeyFile, the same in every hub process',
    );
  }
  if (place.sqliteFile === undefined || place.sqliteFile === ':memory:') {
    // A throwaway database: the key lives and dies with it.
    return { key: randomBytes(MASTER_KEY_BYTES), origin: 'a key for this in-memory database' };
  }
  const path = defaultKeyFile(place.sqliteFile);
  const origin = `key file ${path}`;
  if (existsSync(path)) return { key: readKeyFile(path, 'the default key file', log.warn), origin };
  if (hasKeys) {
    throw invalid(
      `the database holds tokenized data but its master key file ${path} is missing; restore it, or set NEXUS_MASTER_KEY to the key the data was written with`,
    );
  }
  const key = randomBytes(MASTER_KEY_BYTES);
  try {
    // 'wx': never overwrite a key another process wrote a moment ago.
    writeFileSync(path, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      return { key: readKeyFile(path, 'the default key file', log.warn), origin };
    }
    throw invalid(`cannot write the master key file ${path}: ${String(error)}`);
  }
  log.info(
    `generated a master key at ${path} (mode 0600); back it up: without it the vault cannot be read`,
  );
  return { key, origin };
}
