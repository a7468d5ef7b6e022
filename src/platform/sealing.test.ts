import { createDecipheriv, createSecretKey, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveSealingKey, isSealed, SealError, SEALED_PREFIX, Sealer } from './sealing.js';

const MASTER = Buffer.from(
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  'hex',
);
const INFO = 'nexus/webhook-secrets/v1';

function failure(run: () => unknown): SealError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(SealError);
    return error as SealError;
  }
  throw new Error('expected a SealError');
}

describe('Sealer', () => {
  const sealer = new Sealer(deriveSealingKey(MASTER, INFO));
  const secret = 'whsec_TNWwVZ6rG0XxbmCkU0x2Jc1hT6p6qO5yQwS3vE4ZtY0';

  it('round-trips, with a fresh IV each time, in the sealed:v1: form', () => {
    const a = sealer.seal(secret, 'sub-1');
    const b = sealer.seal(secret, 'sub-1');
    expect(a).not.toBe(b);
    for (const sealed of [a, b]) {
      expect(sealed).toMatch(/^sealed:v1:[A-Za-z0-9+/]+={0,2}$/);
      expect(isSealed(sealed)).toBe(true);
      expect(sealed).not.toContain(secret.slice(6));
      expect(sealer.open(sealed, 'sub-1')).toBe(secret);
    }
    expect(isSealed(secret)).toBe(false);
    expect(sealer.open(sealer.seal('', 'x'), 'x')).toBe('');
  });

  it('lays a value out as iv | tag | ciphertext under the documented key and AAD', () => {
    const sealed = sealer.seal(secret, 'sub-1');
    const blob = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
    expect(blob).toHaveLength(12 + 16 + secret.length);
    const key = Buffer.from(hkdfSync('sha256', MASTER, Buffer.from('nexus-hub/sealing'), INFO, 32));
    const decipher = createDecipheriv('aes-256-gcm', key, blob.subarray(0, 12));
    decipher.setAuthTag(blob.subarray(12, 28));
    decipher.setAAD(Buffer.from('sub-1'));
    const plain = Buffer.concat([decipher.update(blob.subarray(28)), decipher.final()]);
    expect(plain.toString('utf8')).toBe(secret);
  });

  it('does not open for another context, another key, or an altered value', () => {
    const sealed = sealer.seal(secret, 'sub-1');
    expect(failure(() => sealer.open(sealed, 'sub-2')).code).toBe('SEALED_AUTH_FAILED');
    const other = new Sealer(deriveSealingKey(MASTER, 'nexus/other/v1'));
    expect(failure(() => other.open(sealed, 'sub-1')).code).toBe('SEALED_AUTH_FAILED');
    const otherMaster = new Sealer(deriveSealingKey(Buffer.alloc(32, 7), INFO));
    expect(failure(() => otherMaster.open(sealed, 'sub-1')).code).toBe('SEALED_AUTH_FAILED');

    const blob = Buffer.from(sealed.slice(SEALED_PREFIX.length), 'base64');
    for (const at of [0, 12, 28, blob.length - 1]) {
      const altered = Buffer.from(blob);
      altered[at] = altered[at]! ^ 1;
      const text = SEALED_PREFIX + altered.toString('base64');
      const error = failure(() => sealer.open(text, 'sub-1'));
      expect(error.code).toBe('SEALED_AUTH_FAILED');
      expect(error.message).not.toContain(secret);
    }
  });

  it('refuses values that are not in the sealed form', () => {
    for (const value of [secret, 'sealed:v1:', 'sealed:v1:not base64!', 'sealed:v1:AAAA']) {
      expect(failure(() => sealer.open(value, 'sub-1')).code).toBe('SEALED_MALFORMED');
    }
  });

  it('derives one key per label and refuses short masters and keys', () => {
    const a = deriveSealingKey(MASTER, INFO).export();
    expect(deriveSealingKey(MASTER, INFO).export().equals(a)).toBe(true);
    expect(deriveSealingKey(createSecretKey(MASTER), INFO).export().equals(a)).toBe(true);
    expect(deriveSealingKey(MASTER, 'nexus/webhook-secrets/v2').export().equals(a)).toBe(false);
    // Not a tokenization key, even under one of its labels (another salt).
    const vault = Buffer.from(
      hkdfSync('sha256', MASTER, Buffer.from('nexus-hub/tokenization'), 'nexus/vault/v1', 32),
    );
    expect(deriveSealingKey(MASTER, 'nexus/vault/v1').export().equals(vault)).toBe(false);
    expect(failure(() => deriveSealingKey(Buffer.alloc(16), INFO)).code).toBe('SEALING_KEY');
    expect(failure(() => deriveSealingKey(MASTER, '')).code).toBe('SEALING_KEY');
    expect(failure(() => new Sealer(createSecretKey(Buffer.alloc(16)))).code).toBe('SEALING_KEY');
  });
});
