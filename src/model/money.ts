import { NexusError } from './errors.js';

/**
 * ISO 4217 minor units for the currencies we expect; anything else defaults to 2.
 * Amounts travel as decimal strings ("12.99") and are computed as bigint minor units, never
 * as binary floats.
 */
const MINOR_UNITS: Record<string, number> = {
  BHD: 3,
  CLP: 0,
  IQD: 3,
  ISK: 0,
  JOD: 3,
  JPY: 0,
  KRW: 0,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  UGX: 0,
  VND: 0,
  XAF: 0,
  XOF: 0,
};

export const minorUnits = (currency: string): number => MINOR_UNITS[currency] ?? 2;

export interface Money {
  currency: string;
  amount: string;
}

const DECIMAL = /^-?(0|[1-9]\d{0,17})(\.\d{1,4})?$/;

/** Parses "12.99" in EUR to 1299n; refuses more decimals than the currency has. */
export function toMinor(money: Money, pointer = '/amount'): bigint {
  const match = DECIMAL.exec(money.amount);
  if (!match) {
    throw new NexusError('VALIDATION_FAILED', `'${money.amount}' is not a decimal amount`, {
      errors: [{ pointer, detail: 'must be a decimal string such as "12.99"' }],
    });
  }
  const digits = minorUnits(money.currency);
  const [whole, fraction = ''] = money.amount.replace('-', '').split('.') as [string, string?];
  if (fraction.length > digits) {
    throw new NexusError('VALIDATION_FAILED', `${money.currency} has ${digits} decimals`, {
      errors: [{ pointer, detail: `${money.currency} amounts have at most ${digits} decimals` }],
    });
  }
  const minor = BigInt(whole) * 10n ** BigInt(digits) + BigInt(fraction.padEnd(digits, '0') || '0');
  return money.amount.startsWith('-') ? -minor : minor;
}
