import { describe, expect, it } from 'vitest';
import { FIELD_CLASSES } from './field-class.js';
import { mask, maskCard, maskEmail, maskGeneric, maskName, maskPhone } from './masking.js';

describe('maskEmail', () => {
  it('keeps the first character of the local part and the domain', () => {
    expect(maskEmail('jane.doe@example.com')).toBe('j***@example.com');
    expect(maskEmail('  Jane.Doe@Example.COM ')).toBe('J***@Example.COM');
    expect(maskEmail('jo@example.com')).toBe('j***@example.com');
  });

  it('hides a one-character local part entirely, and shows nothing of a non-email', () => {
    expect(maskEmail('j@example.com')).toBe('***@example.com');
    expect(maskEmail('@example.com')).toBe('***@example.com');
    expect(maskEmail('jane.doe')).toBe('***');
    expect(maskEmail('jane@')).toBe('***');
  });

  it('splits at the last @ (quoted local parts may hold one)', () => {
    expect(maskEmail('"a@b"@example.com')).toBe('"***@example.com');
  });

  it('treats user-perceived characters as one, in any script', () => {
    expect(maskEmail('élodie@exemple.fr')).toBe('é***@exemple.fr');
    // e + combining acute accent: NFC makes it one code point, and it stays whole either way.
    expect(maskEmail('e\u0301lodie@exemple.fr')).toBe('\u00e9***@exemple.fr');
    expect(maskEmail('👩‍👩‍👧x@example.com')).toBe('👩‍👩‍👧***@example.com');
    expect(maskEmail('👩‍👩‍👧@example.com')).toBe('***@example.com');
    expect(maskEmail('山田太郎@例え.jp')).toBe('山***@例え.jp');
  });

  it('masks empty and blank values to the empty string', () => {
    expect(maskEmail('')).toBe('');
    expect(maskEmail('   ')).toBe('');
  });
});

describe('maskPhone', () => {
  it('keeps the country code and the last two digits', () => {
    expect(maskPhone('+49 151 23456789')).toBe('+49 *** ***89');
    expect(maskPhone('+4915123456789')).toBe('+49 *** ***89');
    expect(maskPhone('+1 (555) 010-9999')).toBe('+1 *** ***99');
    expect(maskPhone('+7 912 345 67 80')).toBe('+7 *** ***80');
    expect(maskPhone('+353 87 123 4567')).toBe('+353 *** ***67');
    expect(maskPhone('+44 20 7946 0958')).toBe('+44 *** ***58');
  });

  it('keeps only the last two digits of a national number', () => {
    expect(maskPhone('030 1234567')).toBe('*** ***67');
    expect(maskPhone('0049 151 23456789')).toBe('*** ***89');
    expect(maskPhone('+0 123 456 789')).toBe('*** ***89');
  });

  it('shows no digit of a short number', () => {
    expect(maskPhone('+49 12345')).toBe('+49 *** ***');
    expect(maskPhone('+49 123456')).toBe('+49 *** ***56');
    expect(maskPhone('112')).toBe('*** ***');
    expect(maskPhone('+')).toBe('***');
    expect(maskPhone('call me')).toBe('***');
  });

  it('reads full-width digits and plus sign', () => {
    expect(maskPhone('＋４９ １５１ ２３４５６７８９')).toBe('+49 *** ***89');
  });

  it('masks empty and blank values to the empty string', () => {
    expect(maskPhone('')).toBe('');
    expect(maskPhone(' \t ')).toBe('');
  });
});

describe('maskName', () => {
  it('keeps the first character', () => {
    expect(maskName('Jane Doe')).toBe('J***');
    expect(maskName('  jane ')).toBe('j***');
    expect(maskName('Ørjan')).toBe('Ø***');
    expect(maskName('O\u0308zil')).toBe('\u00d6***');
    expect(maskName('김민준')).toBe('김***');
  });

  it('hides a one-character name entirely, and maps blank to empty', () => {
    expect(maskName('J')).toBe('***');
    expect(maskName('😀')).toBe('***');
    expect(maskName('')).toBe('');
    expect(maskName('  ')).toBe('');
  });
});

describe('maskCard', () => {
  it('keeps the last four digits', () => {
    expect(maskCard('4111 1111 1111 1234')).toBe('**** 1234');
    expect(maskCard('4111-1111-1111-1234')).toBe('**** 1234');
    expect(maskCard('378282246310005')).toBe('**** 0005');
    expect(maskCard('123456789012')).toBe('**** 9012');
  });

  it('shows no digit of a short number, and maps blank to empty', () => {
    expect(maskCard('12345678901')).toBe('***');
    expect(maskCard('1234')).toBe('***');
    expect(maskCard('no digits')).toBe('***');
    expect(maskCard('')).toBe('');
  });
});

describe('mask', () => {
  it('hides everything of generic and address values', () => {
    expect(maskGeneric('anything at all')).toBe('***');
    expect(maskGeneric('x')).toBe('***');
    expect(maskGeneric('')).toBe('');
    expect(mask('Hauptstraße 1, 10115 Berlin', 'address')).toBe('***');
  });

  it('dispatches by field class and never returns the input for a real value', () => {
    const values = [
      'jane.doe@example.com',
      '+49 151 23456789',
      'Jane Doe',
      '4111111111111234',
      'x',
    ];
    for (const fieldClass of FIELD_CLASSES) {
      for (const value of values) {
        const masked = mask(value, fieldClass);
        expect(masked, `${fieldClass}: ${value}`).not.toBe(value);
        expect(masked).toContain('***');
      }
    }
    expect(mask('jane.doe@example.com', 'email')).toBe('j***@example.com');
    expect(mask('+49 151 23456789', 'phone')).toBe('+49 *** ***89');
    expect(mask('Jane', 'name')).toBe('J***');
    expect(mask('4111111111111234', 'card')).toBe('**** 1234');
  });
});
