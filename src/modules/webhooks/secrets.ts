import { isSealed, type Sealer } from '../../platform/sealing.js';

/**
 * Signing secrets at rest. `webhook_subscriptions.secret` and `previous_secret` hold
 * `sealed:v1:<base64 iv|tag|ciphertext>` (platform/sealing.ts), AES-256-GCM under a key derived
 * from the hub's master key for this purpose only, with the subscription id bound as additional
 * data: a sealed secret copied onto another row does not open. A `whsec_` value is one stored
 * before secrets were sealed (or by a hub of the previous version during a rolling upgrade); the
 * next start seals it (WebhooksService.sealStoredSecrets).
 */

/** The HKDF label of the key webhook secrets are sealed under (app.ts derives it). */
export const WEBHOOK_SECRETS_KEY_INFO = 'nexus/webhook-secrets/v1';

/**
 * The code a delivery's error starts with (`lastError`, the attempt log) when the subscription's
 * signing secret cannot be opened: nothing was sent. Rotating the secret repairs it.
 */
export const WEBHOOK_SECRET_UNREADABLE = 'WEBHOOK_SECRET_UNREADABLE';

const CLEAR_PREFIX = 'whsec_';

export type SecretColumn = 'secret' | 'previous_secret';

export class WebhookSecretUnreadableError extends Error {
  override readonly name: string = 'WebhookSecretUnreadableError';
  readonly code = WEBHOOK_SECRET_UNREADABLE;

  constructor(
    readonly subscriptionId: string,
    readonly column: SecretColumn,
    cause: unknown,
  ) {
    super(
      `the ${column === 'secret' ? 'signing secret' : 'previous signing secret'} of this subscription cannot be opened (altered, copied from another subscription, or sealed under another master key); nothing was sent: rotate the secret`,
      { cause },
    );
  }
}

const context = (subscriptionId: string) => `webhook_subscriptions/${subscriptionId}`;

/** Seals and opens one subscription's signing secrets. */
export class WebhookSecrets {
  constructor(private readonly sealer: Sealer) {}

  seal(subscriptionId: string, secret: string): string {
    return this.sealer.seal(secret, context(subscriptionId));
  }

  /** The secret as stored, opened; throws WebhookSecretUnreadableError. */
  open(subscriptionId: string, stored: string, column: SecretColumn = 'secret'): string {
    if (!isSealed(stored)) {
      if (stored.startsWith(CLEAR_PREFIX)) return stored;
      throw new WebhookSecretUnreadableError(subscriptionId, column, 'neither sealed nor whsec_');
    }
    try {
      return this.sealer.open(stored, context(subscriptionId));
    } catch (error) {
      throw new WebhookSecretUnreadableError(subscriptionId, column, error);
    }
  }

  /** The sealed form of a stored secret that opens (sealed now if it was clear), else null. */
  resealed(subscriptionId: string, stored: string): string | null {
    let secret: string;
    try {
      secret = this.open(subscriptionId, stored);
    } catch {
      return null;
    }
    return isSealed(stored) ? stored : this.seal(subscriptionId, secret);
  }
}

const CACHE_LIMIT = 10_000;

/**
 * Opened secrets per subscription and column, each valid while the stored text is the one it
 * was opened from. The dispatcher reads the subscription row before every delivery, so a
 * rotation (a new sealed text) is seen at once and no expiry is needed; a delivery costs a
 * string comparison instead of a decryption. Keyed by subscription, never by the sealed text
 * alone, so a sealed value copied onto another row is opened (and refused) for that row.
 */
export class OpenedSecrets {
  private readonly cache = new Map<string, { stored: string; secret: string }>();

  constructor(private readonly secrets: WebhookSecrets) {}

  get(subscriptionId: string, stored: string, column: SecretColumn): string {
    const key = `${column}/${subscriptionId}`;
    const hit = this.cache.get(key);
    if (hit?.stored === stored) return hit.secret;
    this.cache.delete(key);
    const secret = this.secrets.open(subscriptionId, stored, column);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, { stored, secret });
    return secret;
  }
}
