import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signatures, in the scheme common providers use:
 *
 *   Nexus-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>[,v1=...]
 *
 * The key is the whole secret string (`whsec_...`) as UTF-8. While a rotated secret's overlap
 * lasts, one `v1=` per valid secret is sent, and a subscriber accepts the request when any of
 * them matches the secret it knows. The timestamp is signed too, so a captured request cannot
 * be replayed after the tolerance window.
 */
export const SIGNATURE_HEADER = 'Nexus-Signature';

/** A fresh signing secret: `whsec_` and 32 random bytes, base64url. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}

/** Hex HMAC-SHA256 of `<t>.<raw body>` under `secret`. */
export function computeSignature(
  secret: string,
  timestamp: number,
  rawBody: Buffer | string,
): string {
  return createHmac('sha256', secret)
    .update(`${timestamp}.`)
    .update(typeof rawBody === 'string' ? Buffer.from(rawBody, 'utf8') : rawBody)
    .digest('hex');
}

/** The header value: `t=...` and one `v1=` per secret (current first). */
export function signatureHeader(
  secrets: readonly string[],
  timestamp: number,
  rawBody: Buffer | string,
): string {
  return [
    `t=${timestamp}`,
    ...secrets.map((secret) => `v1=${computeSignature(secret, timestamp, rawBody)}`),
  ].join(',');
}

/**
 * For subscribers (and our tests): true when `header` carries a `v1` signature of `rawBody`
 * made with `secret`, and its timestamp is within `toleranceSeconds` of `nowSeconds` (unix
 * seconds). Pass the body exactly as received (bytes, before any JSON parsing). Comparison is
 * constant-time.
 */
export function verifyWebhookSignature(
  secret: string,
  header: string | undefined | null,
  rawBody: Buffer | string,
  toleranceSeconds = 300,
  nowSeconds: number = Math.floor(Date.now() / 1000),
): boolean {
  if (!header) return false;
  let timestamp: number | null = null;
  const candidates: Buffer[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== null || !/^\d{1,12}$/.test(value)) return false;
      timestamp = Number(value);
    } else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) {
      candidates.push(Buffer.from(value, 'hex'));
    }
  }
  if (timestamp === null || candidates.length === 0) return false;
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(computeSignature(secret, timestamp, rawBody), 'hex');
  let match = false;
  // Every candidate is compared (no early exit), each in constant time.
  for (const candidate of candidates) {
    if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) match = true;
  }
  return match;
}
