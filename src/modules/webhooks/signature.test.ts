import { describe, expect, it } from 'vitest';
import {
  computeSignature,
  generateWebhookSecret,
  signatureHeader,
  verifyWebhookSignature,
} from './signature.js';

describe('webhook signatures', () => {
  const secret = generateWebhookSecret();
  const body = '{"id":"e-1","type":"market.created.v1"}';
  const t = 1_760_000_000;

  it('generates whsec_ secrets of 32 random bytes', () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(secret.slice(6), 'base64url')).toHaveLength(32);
    expect(generateWebhookSecret()).not.toBe(secret);
  });

  it('signs "<t>.<raw body>" with HMAC-SHA256 and verifies it', () => {
    const header = signatureHeader([secret], t, body);
    expect(header).toMatch(/^t=1760000000,v1=[0-9a-f]{64}$/);
    expect(header).toBe(`t=${t},v1=${computeSignature(secret, t, body)}`);
    expect(verifyWebhookSignature(secret, header, body, 300, t + 10)).toBe(true);
    expect(verifyWebhookSignature(secret, header, Buffer.from(body), 300, t - 10)).toBe(true);
  });

  it('refuses a wrong secret, a tampered body, a stale or future timestamp', () => {
    const header = signatureHeader([secret], t, body);
    expect(verifyWebhookSignature(generateWebhookSecret(), header, body, 300, t)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body.replace('e-1', 'e-2'), 300, t)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, 300, t + 301)).toBe(false);
    expect(verifyWebhookSignature(secret, header, body, 300, t - 301)).toBe(false);
    // The timestamp is signed: moving it forward breaks the signature.
    const moved = header.replace(`t=${t}`, `t=${t + 100}`);
    expect(verifyWebhookSignature(secret, moved, body, 300, t + 100)).toBe(false);
  });

  it('refuses malformed headers', () => {
    const v1 = computeSignature(secret, t, body);
    for (const header of [
      undefined,
      '',
      `v1=${v1}`,
      `t=${t}`,
      `t=abc,v1=${v1}`,
      `t=${t},t=${t},v1=${v1}`,
      `t=${t},v1=${v1.slice(2)}`,
      `t=${t},v0=${v1}`,
    ]) {
      expect(verifyWebhookSignature(secret, header, body, 300, t)).toBe(false);
    }
  });

  it('accepts any one of several v1 signatures (secret rotation)', () => {
    const previous = generateWebhookSecret();
    const header = signatureHeader([secret, previous], t, body);
    expect(header.split(',')).toHaveLength(3);
    expect(verifyWebhookSignature(secret, header, body, 300, t)).toBe(true);
    expect(verifyWebhookSignature(previous, header, body, 300, t)).toBe(true);
    expect(verifyWebhookSignature(generateWebhookSecret(), header, body, 300, t)).toBe(false);
  });
});
