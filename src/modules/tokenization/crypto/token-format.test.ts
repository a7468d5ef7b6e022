import { describe, expect, it } from 'vitest';
import { TokenFormatError } from './errors.js';
import { FIELD_CLASSES } from './field-class.js';
import { formatToken, isToken, parseToken, type TokenParts } from './token-format.js';

const VAULT_BODY = 'AbCdEfGh_jKl-nOpQrStUvWx'; // 24 characters
const CONVERGENT_BODY = '0123456789abcdefghij_-ABCDEFGHIJ'; // 32 characters

describe('formatToken / parseToken', () => {
  it('round-trips every kind, field class and version range', () => {
    const parts: TokenParts[] = [];
    for (const fieldClass of FIELD_CLASSES) {
      for (const keyVersion of [1, 9, 10, 255, 65_535]) {
        parts.push({ kind: 'vault', keyVersion, fieldClass, body: VAULT_BODY });
        parts.push({ kind: 'convergent', keyVersion, fieldClass, body: CONVERGENT_BODY });
        parts.push({ kind: 'fpe', keyVersion, fieldClass, body: '4111111111111111' });
      }
    }
    for (const part of parts) expect(parseToken(formatToken(part))).toEqual(part);
  });

  it('lays tokens out as tok_<letter><version>_<class>_<body>', () => {
    expect(
      formatToken({ kind: 'vault', keyVersion: 1, fieldClass: 'email', body: VAULT_BODY }),
    ).toBe(`tok_v1_email_${VAULT_BODY}`);
    expect(
      formatToken({
        kind: 'convergent',
        keyVersion: 12,
        fieldClass: 'phone',
        body: CONVERGENT_BODY,
      }),
    ).toBe(`tok_c12_phone_${CONVERGENT_BODY}`);
    expect(formatToken({ kind: 'fpe', keyVersion: 3, fieldClass: 'card', body: '12345678' })).toBe(
      'tok_f3_card_12345678',
    );
  });

  it('splits at the first three underscores: the body may contain more', () => {
    const body = '____________________-___'; // base64url can be all underscores
    expect(parseToken(`tok_v2_name_${body}`)).toEqual({
      kind: 'vault',
      keyVersion: 2,
      fieldClass: 'name',
      body,
    });
    expect(parseToken('tok_f1_generic_a_b-c').body).toBe('a_b-c');
  });

  it('refuses strings that are not tokens', () => {
    const bad = [
      '',
      'tok',
      'tok_',
      'tok_v1',
      'tok_v1_email',
      'tok_v1_email_',
      `TOK_v1_email_${VAULT_BODY}`,
      `tok_x1_email_${VAULT_BODY}`,
      `tok_V1_email_${VAULT_BODY}`,
      `tok_v_email_${VAULT_BODY}`,
      `tok_v0_email_${VAULT_BODY}`,
      `tok_v01_email_${VAULT_BODY}`,
      `tok_v-1_email_${VAULT_BODY}`,
      `tok_v65536_email_${VAULT_BODY}`,
      `tok_v123456_email_${VAULT_BODY}`,
      `tok_v1_Email_${VAULT_BODY}`,
      `tok_v1_iban_${VAULT_BODY}`,
      `tok_v1__${VAULT_BODY}`,
      `tok_v1_email_${VAULT_BODY}A`,
      `tok_v1_email_${VAULT_BODY.slice(1)}`,
      `tok_c1_email_${VAULT_BODY}`,
      `tok_v1_email_${CONVERGENT_BODY}`,
      `tok_v1_email_${VAULT_BODY.slice(0, 23)}=`,
      `tok_v1_email_${VAULT_BODY.slice(0, 23)}+`,
      ` tok_v1_email_${VAULT_BODY}`,
      `tok_v1_email_${VAULT_BODY}\n`,
      `tok_f1_card_${'1'.repeat(257)}`,
      'tok_f1_card_12 34',
      'jane.doe@example.com',
    ];
    for (const token of bad) {
      expect(() => parseToken(token), JSON.stringify(token)).toThrow(TokenFormatError);
      expect(isToken(token), JSON.stringify(token)).toBe(false);
    }
    expect(isToken(`tok_v1_email_${VAULT_BODY}`)).toBe(true);
    expect(isToken(`tok_f1_card_${'1'.repeat(256)}`)).toBe(true);
  });

  it('says what is wrong, with a stable code, and never repeats the input', () => {
    const attempts: Array<[string, RegExp]> = [
      [
        'jane.doe@example.com',
        /not of the form tok_<v\|c\|f><version>_<field class>_<base64url body>/,
      ],
      [`tok_v70000_email_${VAULT_BODY}`, /key version 70000 is outside 1\.\.65535/],
      [`tok_v1_iban_${VAULT_BODY}`, /unknown field class 'iban'/],
      [`tok_v1_email_abc`, /a vault body has 24 characters/],
      [`tok_c1_email_abc`, /a convergent body has 32 characters/],
    ];
    for (const [token, message] of attempts) {
      try {
        parseToken(token);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(TokenFormatError);
        expect((error as TokenFormatError).code).toBe('TOKEN_FORMAT');
        expect((error as Error).message).toMatch(message);
      }
    }
    try {
      parseToken('jane.doe@example.com');
    } catch (error) {
      expect((error as Error).message).not.toContain('jane');
    }
  });

  it('refuses to format parts it could not parse back', () => {
    const ok: TokenParts = { kind: 'vault', keyVersion: 1, fieldClass: 'email', body: VAULT_BODY };
    expect(() => formatToken({ ...ok, keyVersion: 0 })).toThrow(/key version 0/);
    expect(() => formatToken({ ...ok, keyVersion: 1.5 })).toThrow(/key version 1.5/);
    expect(() => formatToken({ ...ok, keyVersion: 65_536 })).toThrow(/key version 65536/);
    expect(() => formatToken({ ...ok, body: 'short' })).toThrow(/24 characters/);
    expect(() => formatToken({ ...ok, body: `${VAULT_BODY.slice(1)}/` })).toThrow(/base64url/);
    expect(() => formatToken({ ...ok, kind: 'fpe', body: '' })).toThrow(/empty/);
    expect(() => formatToken({ ...ok, fieldClass: 'iban' as 'email' })).toThrow(
      /field class 'iban'/,
    );
    expect(() => formatToken({ ...ok, kind: 'wrapped' as 'vault' })).toThrow(
      /unknown kind 'wrapped'/,
    );
  });
});
