import { createHmac, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConvergentTokenizer, normalizeValue } from './convergent.js';
import { KeyRingError, TokenInputError } from './errors.js';
import { FIELD_CLASSES } from './field-class.js';
import { KeyRing } from './key-ring.js';
import { parseToken } from './token-format.js';

const MASTER = Buffer.from(
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  'hex',
);

describe('normalizeValue', () => {
  it('trims and lowercases email addresses (after NFC)', () => {
    expect(normalizeValue('  Jane.Doe@Example.COM \n', 'email')).toBe('jane.doe@example.com');
    expect(normalizeValue('E\u0301LODIE@exemple.fr', 'email')).toBe('\u00e9lodie@exemple.fr');
  });

  it('keeps only digits and a leading + of phone numbers', () => {
    expect(normalizeValue(' +49 (151) 234-567-89 ', 'phone')).toBe('+4915123456789');
    expect(normalizeValue('030 / 123 45 67', 'phone')).toBe('0301234567');
    expect(normalizeValue('tel: 0049 151 234', 'phone')).toBe('0049151234');
    expect(normalizeValue('＋４９ １５１', 'phone')).toBe('+49151');
    expect(normalizeValue('1+2', 'phone')).toBe('12');
  });

  it('keeps only digits of card numbers', () => {
    expect(normalizeValue('4111 1111-1111 1111', 'card')).toBe('4111111111111111');
  });

  it('applies NFC and trim, and nothing else, to names, addresses and generic values', () => {
    for (const fieldClass of ['name', 'address', 'generic'] as const) {
      expect(normalizeValue('  Ma\u0308rta  van  Berg ', fieldClass)).toBe('M\u00e4rta  van  Berg');
    }
  });

  it('refuses a value of which nothing is left', () => {
    expect(() => normalizeValue('   ', 'email')).toThrow(TokenInputError);
    expect(() => normalizeValue('n/a', 'phone')).toThrow(
      /nothing is left of the value after phone normalization/,
    );
    expect(() => normalizeValue('+', 'phone')).toThrow(TokenInputError);
    expect(() => normalizeValue('', 'generic')).toThrow(TokenInputError);
    expect(() => normalizeValue('----', 'card')).toThrow(TokenInputError);
  });
});

describe('ConvergentTokenizer', () => {
  const ring = new KeyRing(MASTER, [1, 2]);
  const tokenizer = new ConvergentTokenizer(ring);

  it('is HMAC-SHA-256 of the normalized value under the HKDF-derived class key, truncated to 24 bytes', () => {
    const key = Buffer.from(
      hkdfSync(
        'sha256',
        MASTER,
        Buffer.from('nexus-hub/tokenization'),
        'nexus/convergent/v1/email',
        32,
      ),
    );
    const body = createHmac('sha256', key)
      .update('jane.doe@example.com')
      .digest()
      .subarray(0, 24)
      .toString('base64url');
    expect(tokenizer.token('Jane.Doe@Example.com', 'email', 1)).toBe(`tok_c1_email_${body}`);
    // Pinned: convergent tokens are stored and compared; they must not change between releases.
    expect(tokenizer.token('Jane.Doe@Example.com', 'email', 1)).toBe(
      'tok_c1_email_fnyDYq0tDpeaV_8uY4I_YRN8JvG-JUz0',
    );
    expect(tokenizer.token('+49 151 23456789', 'phone', 2)).toBe(
      'tok_c2_phone_L18Seu-YwQQV9FeIulUffh-QXpvWeACU',
    );
  });

  it('is deterministic and meets spellings of the same value', () => {
    const token = tokenizer.token('jane.doe@example.com', 'email');
    expect(tokenizer.token(' JANE.DOE@EXAMPLE.COM', 'email')).toBe(token);
    expect(
      new ConvergentTokenizer(new KeyRing(MASTER, [1, 2])).token('jane.doe@example.com', 'email'),
    ).toBe(token);
    expect(tokenizer.token('+49 151 23456789', 'phone')).toBe(
      tokenizer.token('+49-151-234 567 89', 'phone'),
    );
    expect(tokenizer.token('+4915123456789', 'phone')).not.toBe(
      tokenizer.token('004915123456789', 'phone'),
    );
    expect(tokenizer.token('Ma\u0308rta', 'name')).toBe(tokenizer.token('M\u00e4rta', 'name'));
    expect(tokenizer.token('Marta', 'name')).not.toBe(tokenizer.token('marta', 'name'));
  });

  it('carries kind, version and class in the token, the current version by default', () => {
    const token = tokenizer.token('jane.doe@example.com', 'email');
    const parts = parseToken(token);
    expect(parts).toMatchObject({ kind: 'convergent', keyVersion: 2, fieldClass: 'email' });
    expect(parts.body).toHaveLength(32);
    expect(token).toMatch(/^tok_c2_email_[A-Za-z0-9_-]{32}$/);
  });

  it('gives unrelated tokens per field class, version and master', () => {
    const value = '4111111111111111';
    const bodies = [
      ...FIELD_CLASSES.map((fieldClass) => tokenizer.token(value, fieldClass)),
      tokenizer.token(value, 'card', 1),
      new ConvergentTokenizer(new KeyRing(Buffer.alloc(32, 1), [2])).token(value, 'card'),
    ].map((token) => parseToken(token).body);
    expect(new Set(bodies).size).toBe(bodies.length);
  });

  it('gives each erasure epoch its own key; epoch 0 is the token as it always was', () => {
    const value = 'jane.doe@example.com';
    const epochs = [0, 1, 2].map((epoch) => tokenizer.token(value, 'email', 1, epoch));
    expect(epochs[0]).toBe(tokenizer.token(value, 'email', 1));
    expect(new Set(epochs).size).toBe(3);
    expect(tokenizer.token(' Jane.Doe@Example.com', 'email', 1, 2)).toBe(epochs[2]);
    expect(() => tokenizer.token(value, 'email', 1, -1)).toThrow(KeyRingError);
    expect(() => tokenizer.token(value, 'email', 1, 0.5)).toThrow(KeyRingError);
  });

  it('lists the token under every version, current first, for lookups across a rotation', () => {
    const staged = new ConvergentTokenizer(new KeyRing(MASTER, [1, 2, 3], { currentVersion: 2 }));
    const candidates = staged.candidates(' Jane.Doe@example.com', 'email');
    expect(candidates.map((token) => parseToken(token).keyVersion)).toEqual([2, 3, 1]);
    expect(candidates[0]).toBe(staged.token('jane.doe@example.com', 'email'));
    expect(candidates[2]).toBe(tokenizer.token('jane.doe@example.com', 'email', 1));
  });

  it('refuses an unknown version and a value with nothing to tokenize', () => {
    expect(() => tokenizer.token('jane@example.com', 'email', 3)).toThrow(KeyRingError);
    expect(() => tokenizer.token('  ', 'name')).toThrow(TokenInputError);
  });
});
