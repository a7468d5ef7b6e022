import { describe, expect, it } from 'vitest';
import { isCanonicalUtcDateTime } from './date-time.js';
import { createAjv, RFC3339_DATE_TIME } from './validation.js';

const rfc3339 = RFC3339_DATE_TIME.validate;

/** Strings near the canonical form: every position changed in the ways that matter. */
function corpus(): string[] {
  const out = new Set<string>([
    '2024-02-29T12:00:00Z',
    '2023-02-29T12:00:00Z',
    '1900-02-29T00:00:00Z',
    '2000-02-29T00:00:00.000Z',
    '2026-12-31T23:59:59.999999Z',
    '2016-12-31T23:59:60Z',
    '2026-04-31T10:00:00Z',
    '2026-00-10T10:00:00Z',
    '2026-13-10T10:00:00Z',
    '2026-01-00T10:00:00Z',
    '2026-01-10T24:00:00Z',
    '2026-01-10T10:60:00Z',
    '2026-01-10T10:00:60Z',
    '2026-01-10T10:00:00.Z',
    '2026-01-10t10:00:00z',
    '2026-01-10 10:00:00Z',
    '2026-01-10T10:00:00+01:00',
    '2026-01-10T10:00:00',
    '2026-01-10T10:00Z',
    '２026-01-10T10:00:00Z',
    '2026-01-10T10:00:00.5ZZ',
    '',
  ]);
  for (let t = Date.UTC(1999, 0, 1); t < Date.UTC(2031, 0, 1); t += 7_777_777_777) {
    out.add(new Date(t).toISOString());
  }
  const base = '2024-02-29T23:59:59.123Z';
  for (let i = 0; i < base.length; i++) {
    for (const c of ['0', '1', '2', '3', '5', '9', '-', ':', 'T', 'Z', '.', ' ', 'x']) {
      out.add(base.slice(0, i) + c + base.slice(i + 1));
    }
    out.add(base.slice(0, i) + base.slice(i + 1));
  }
  return [...out];
}

describe('date-time fast path', () => {
  it('accepts only what ajv-formats accepts, and what toISOString writes', () => {
    for (const value of corpus()) {
      if (isCanonicalUtcDateTime(value)) expect(rfc3339(value), value).toBe(true);
    }
    for (let t = 0; t < 4e12; t += 123_456_789_012) {
      expect(isCanonicalUtcDateTime(new Date(t).toISOString())).toBe(true);
    }
  });

  it("gives the hub's validators ajv-formats' verdicts", () => {
    const validate = createAjv().compile({ type: 'string', format: 'date-time' });
    for (const value of corpus()) expect(validate(value), value).toBe(rfc3339(value));
  });
});
