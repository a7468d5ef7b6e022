/**
 * Display masks: what a support screen or a log line may show of a value instead of the value.
 * Irreversible (nothing of the hidden part survives, not even its length: the filler is always
 * `***`) and per field class:
 *
 * | class            | input                    | mask               | rule                                   |
 * | ---------------- | ------------------------ | ------------------ | -------------------------------------- |
 * | email            | jane.doe@example.com     | j***@example.com   | first character of the local part (if it has 2+), domain kept |
 * | phone            | +49 151 23456789         | +49 *** ***89      | country code and the last 2 digits (if 6+ digits follow the code) |
 * | phone (national) | 030 1234567              | *** ***67          | last 2 digits (if 6+ digits)           |
 * | name             | Jane Doe                 | J***               | first character (if the name has 2+)   |
 * | card             | 4111 1111 1111 1234      | **** 1234          | last 4 digits (if 12+ digits)          |
 * | address, birthdate, generic | anything      | ***                | nothing                                |
 *
 * "Character" means a user-perceived character (an extended grapheme cluster), so `Élodie`
 * written with a combining accent keeps `É`, and an emoji is never cut in half. A value that
 * is empty or only whitespace masks to the empty string: there is nothing to hide. A value that
 * does not look like its class (an "email" without `@`) shows nothing (`***`).
 *
 * Pure: no I/O.
 */
import type { FieldClass } from './field-class.js';

/** The filler that stands for everything hidden; constant, so it leaks no length. */
export const MASK = '***';
export const PHONE_VISIBLE_DIGITS = 2;
/** Below this many digits after the country code, no digit is shown. */
export const PHONE_MIN_DIGITS_TO_REVEAL = 6;
export const CARD_VISIBLE_DIGITS = 4;
/** Below this many digits, no digit is shown: at least two thirds of the number stay hidden. */
export const CARD_MIN_DIGITS_TO_REVEAL = 12;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const NON_DIGITS = /[^0-9]/g;

/** The first user-perceived character, and whether there is more than one. */
function firstGrapheme(text: string): { first: string; more: boolean } {
  const iterator = graphemes.segment(text)[Symbol.iterator]();
  const first = iterator.next();
  if (first.done === true) return { first: '', more: false };
  return { first: first.value.segment, more: iterator.next().done !== true };
}

/** First character + `***`, or only `***` when the text is a single character. */
function keepFirst(text: string): string {
  const { first, more } = firstGrapheme(text);
  return more ? first + MASK : MASK;
}

export function maskEmail(value: string): string {
  const email = value.normalize('NFC').trim();
  if (email === '') return '';
  // The last `@`: a quoted local part may itself contain one.
  const at = email.lastIndexOf('@');
  if (at < 0 || at === email.length - 1) return MASK;
  const local = email.slice(0, at);
  return `${local === '' ? MASK : keepFirst(local)}@${email.slice(at + 1)}`;
}

/**
 * E.164 country codes are prefix-free: 1 and 7 have one digit, the codes below two, all others
 * three. Good enough to show `+49` and hide the rest; not a numbering-plan validator.
 */
const ONE_DIGIT_CODES = new Set(['1', '7']);
const TWO_DIGIT_CODES = new Set(
  (
    '20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56 57 58 ' +
    '60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98'
  ).split(' '),
);

function countryCode(digits: string): string {
  if (digits.startsWith('0')) return '';
  if (ONE_DIGIT_CODES.has(digits.slice(0, 1))) return digits.slice(0, 1);
  if (TWO_DIGIT_CODES.has(digits.slice(0, 2))) return digits.slice(0, 2);
  return digits.slice(0, 3);
}

export function maskPhone(value: string): string {
  const phone = value.normalize('NFKC').trim();
  if (phone === '') return '';
  const digits = phone.replace(NON_DIGITS, '');
  if (digits === '') return MASK;
  const code = phone.startsWith('+') ? countryCode(digits) : '';
  const subscriber = digits.slice(code.length);
  const visible =
    subscriber.length >= PHONE_MIN_DIGITS_TO_REVEAL ? subscriber.slice(-PHONE_VISIBLE_DIGITS) : '';
  return `${code === '' ? '' : `+${code} `}${MASK} ${MASK}${visible}`;
}

export function maskName(value: string): string {
  const name = value.normalize('NFC').trim();
  return name === '' ? '' : keepFirst(name);
}

export function maskCard(value: string): string {
  const card = value.normalize('NFKC').trim();
  if (card === '') return '';
  const digits = card.replace(NON_DIGITS, '');
  return digits.length >= CARD_MIN_DIGITS_TO_REVEAL
    ? `**** ${digits.slice(-CARD_VISIBLE_DIGITS)}`
    : MASK;
}

export function maskGeneric(value: string): string {
  return value.trim() === '' ? '' : MASK;
}

/** The display mask of `value` as a `fieldClass` value. */
export function mask(value: string, fieldClass: FieldClass): string {
  switch (fieldClass) {
    case 'email':
      return maskEmail(value);
    case 'phone':
      return maskPhone(value);
    case 'name':
      return maskName(value);
    case 'card':
      return maskCard(value);
    case 'address':
    case 'birthdate':
    case 'generic':
      return maskGeneric(value);
  }
}
