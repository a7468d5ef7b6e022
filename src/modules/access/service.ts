import { createHash, randomBytes } from 'node:crypto';
import { NexusError, notFound } from '../../model/errors.js';
import { CHANNELS, type Channel } from '../../model/schemas/common.js';
import type { Executor } from '../../platform/db/storage.js';
import { findByHash, insertKey, listKeys, revokeKey, touchKey, type ApiKeyRow } from './store.js';

/** Every scope a key can carry. `*` grants all of them (operators only). */
export const SCOPES = [
  'markets:read',
  'markets:write',
  'locations:read',
  'locations:write',
  'catalog:read',
  'catalog:write',
  'inventory:read',
  'inventory:write',
  'inventory:reserve',
  'inventory:pos',
  'events:write',
  'events:admin',
  'registry:read',
  'registry:write',
  'webhooks:read',
  'webhooks:write',
  'keys:admin',
  // Personal data (modules/tokenization): detokenizing needs pii:detokenize and, per field
  // class, pii:detokenize:<class>; erasure, the audit log and tokenizing over HTTP have their own.
  'pii:detokenize',
  'pii:detokenize:email',
  'pii:detokenize:phone',
  'pii:detokenize:name',
  'pii:detokenize:address',
  'pii:detokenize:birthdate',
  'pii:detokenize:card',
  'pii:detokenize:generic',
  'pii:tokenize',
  'pii:erase',
  'pii:audit',
  '*',
] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKey {
  id: string;
  name: string;
  /** Shown in lists so a person can tell keys apart; the secret itself is never stored. */
  prefix: string;
  channel: Channel;
  markets: string[] | null;
  scopes: string[];
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface NewApiKey {
  name: string;
  channel: Channel;
  scopes: string[];
  markets?: string[];
}

/**
 * API keys are 256-bit random secrets, so one SHA-256 is enough to store them safely (a slow
 * password hash protects low-entropy secrets; these are not). Lookups are by hash, and a short
 * cache keeps the database off the hot path; a revocation reaches every process within
 * CACHE_MS.
 */
const CACHE_MS = 5_000;
const KEY_PATTERN = /^nx_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$/;

const hashOf = (secret: string) => createHash('sha256').update(secret).digest('hex');

function toApiKey(row: ApiKeyRow): ApiKey {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    channel: row.channel as Channel,
    markets: row.markets === null ? null : (JSON.parse(row.markets) as string[]),
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: new Date(row.created_at).toISOString(),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at).toISOString(),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at).toISOString(),
  };
}

export class AccessService {
  private readonly cache = new Map<string, { key: ApiKey | null; until: number }>();
  private readonly touched = new Map<string, number>();

  constructor(private readonly db: Executor) {}

  /** Creates a key; the returned secret is shown once and cannot be recovered. */
  async create(input: NewApiKey): Promise<{ key: ApiKey; secret: string }> {
    const unknownScopes = input.scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknownScopes.length > 0 || input.scopes.length === 0) {
      throw new NexusError(
        'VALIDATION_FAILED',
        `unknown scope(s): ${unknownScopes.join(', ') || '(none given)'}`,
        {
          errors: [
            { pointer: '/scopes', detail: `each scope must be one of ${SCOPES.join(', ')}` },
          ],
        },
      );
    }
    if (!(CHANNELS as readonly string[]).includes(input.channel)) {
      throw new NexusError('VALIDATION_FAILED', `unknown channel '${input.channel}'`, {
        errors: [{ pointer: '/channel', detail: `must be one of ${CHANNELS.join(', ')}` }],
      });
    }
    const id = randomBytes(4).toString('hex');
    const secret = `nx_${id}_${randomBytes(32).toString('base64url')}`;
    const row: ApiKeyRow = {
      id,
      name: input.name,
      prefix: `nx_${id}`,
      secret_hash: hashOf(secret),
      channel: input.channel,
      markets: input.markets && input.markets.length > 0 ? JSON.stringify(input.markets) : null,
      scopes: JSON.stringify([...new Set(input.scopes)].sort()),
      created_at: Date.now(),
      revoked_at: null,
      last_used_at: null,
    };
    await insertKey(this.db, row);
    return { key: toApiKey(row), secret };
  }

  /** The active key for a presented secret, or null. */
  async authenticate(secret: string): Promise<ApiKey | null> {
    if (!KEY_PATTERN.test(secret)) return null;
    const hash = hashOf(secret);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until > now) return cached.key;
    const row = await findByHash(this.db, hash);
    const key = row && row.revoked_at === null ? toApiKey(row) : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { key, until: now + CACHE_MS });
    if (key && (this.touched.get(key.id) ?? 0) < now - 60_000) {
      // last_used_at is for people auditing keys: minute precision is plenty.
      this.touched.set(key.id, now);
      await touchKey(this.db, key.id, now);
    }
    return key;
  }

  async list(includeRevoked = false): Promise<ApiKey[]> {
    return (await listKeys(this.db, includeRevoked)).map(toApiKey);
  }

  async revoke(id: string): Promise<void> {
    if (!(await revokeKey(this.db, id, Date.now()))) throw notFound('active API key', id);
    this.cache.clear();
  }
}

/** Whether a key's scopes allow `needed`. */
export const hasScope = (scopes: ReadonlySet<string>, needed: string): boolean =>
  scopes.has('*') || scopes.has(needed);
