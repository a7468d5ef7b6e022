import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveSealingKey, Sealer } from '../../platform/sealing.js';
import {
  OpenedSecrets,
  WEBHOOK_SECRET_UNREADABLE,
  WEBHOOK_SECRETS_KEY_INFO,
  WebhookSecrets,
  WebhookSecretUnreadableError,
} from './secrets.js';
import { generateWebhookSecret } from './signature.js';

/** Counts decryptions, to see what the cache saves. */
class CountingSealer extends Sealer {
  opened = 0;
  override open(sealed: string, context: string): string {
    this.opened++;
    return super.open(sealed, context);
  }
}

const sealer = () =>
  new CountingSealer(deriveSealingKey(randomBytes(32), WEBHOOK_SECRETS_KEY_INFO));

function unreadable(run: () => unknown): WebhookSecretUnreadableError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WebhookSecretUnreadableError);
    return error as WebhookSecretUnreadableError;
  }
  throw new Error('expected a WebhookSecretUnreadableError');
}

describe('webhook secrets at rest', () => {
  const secret = generateWebhookSecret();

  it('opens a secret only for the subscription it was sealed for', () => {
    const secrets = new WebhookSecrets(sealer());
    const stored = secrets.seal('sub-a', secret);
    expect(stored).not.toContain(secret.slice(6));
    expect(secrets.open('sub-a', stored)).toBe(secret);
    const error = unreadable(() => secrets.open('sub-b', stored, 'previous_secret'));
    expect(error.code).toBe(WEBHOOK_SECRET_UNREADABLE);
    expect(error).toMatchObject({ subscriptionId: 'sub-b', column: 'previous_secret' });
    expect(error.message).not.toContain(secret);
    // Under another master key.
    expect(() => new WebhookSecrets(sealer()).open('sub-a', stored)).toThrow(
      WebhookSecretUnreadableError,
    );
  });

  it('takes a whsec_ value as one stored before sealing, and refuses anything else', () => {
    const secrets = new WebhookSecrets(sealer());
    expect(secrets.open('sub-a', secret)).toBe(secret);
    expect(() => secrets.open('sub-a', 'garbage')).toThrow(WebhookSecretUnreadableError);
  });

  it('reseals for a rotation: sealed kept as is, clear sealed, unreadable dropped', () => {
    const secrets = new WebhookSecrets(sealer());
    const stored = secrets.seal('sub-a', secret);
    expect(secrets.resealed('sub-a', stored)).toBe(stored);
    const fromClear = secrets.resealed('sub-a', secret)!;
    expect(fromClear).toMatch(/^sealed:v1:/);
    expect(secrets.open('sub-a', fromClear)).toBe(secret);
    expect(secrets.resealed('sub-b', stored)).toBeNull();
  });

  it('caches an opened secret per subscription while its stored text is unchanged', () => {
    const counting = sealer();
    const secrets = new WebhookSecrets(counting);
    const cache = new OpenedSecrets(secrets);
    const stored = secrets.seal('sub-a', secret);
    for (let i = 0; i < 5; i++) expect(cache.get('sub-a', stored, 'secret')).toBe(secret);
    expect(counting.opened).toBe(1);

    // A rotation stores a new text: opened again.
    const fresh = generateWebhookSecret();
    const rotated = secrets.seal('sub-a', fresh);
    expect(cache.get('sub-a', rotated, 'secret')).toBe(fresh);
    expect(cache.get('sub-a', stored, 'previous_secret')).toBe(secret);
    expect(counting.opened).toBe(3);

    // The same sealed text on another row is opened for that row, and refused.
    expect(() => cache.get('sub-b', rotated, 'secret')).toThrow(WebhookSecretUnreadableError);
    expect(() => cache.get('sub-b', rotated, 'secret')).toThrow(WebhookSecretUnreadableError);
    expect(counting.opened).toBe(5);
  });
});
