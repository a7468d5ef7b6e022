import { describe, expect, it } from 'vitest';
import { RateLimiter } from './rate-limit.js';

describe('RateLimiter', () => {
  it('allows a minute of tokens at once, then refills continuously, per caller', () => {
    let now = 0;
    const limiter = new RateLimiter(60, () => now);
    expect(limiter.take('a', 60)).toMatchObject({ allowed: true, remaining: 0 });
    expect(limiter.take('a', 1)).toMatchObject({ allowed: false, retryAfterMs: 1000 });
    expect(limiter.take('b', 1)).toMatchObject({ allowed: true });
    now += 1000;
    expect(limiter.take('a', 1)).toMatchObject({ allowed: true });
    expect(limiter.take('a', 2)).toMatchObject({ allowed: false, retryAfterMs: 2000 });
    now += 120_000;
    // Never more than a minute's worth banked.
    expect(limiter.take('a', 61)).toMatchObject({ allowed: false, retryAfterMs: Infinity });
    expect(limiter.take('a', 60)).toMatchObject({ allowed: true });
  });

  it('refuses all or nothing', () => {
    const limiter = new RateLimiter(10, () => 0);
    expect(limiter.take('a', 8).allowed).toBe(true);
    expect(limiter.take('a', 3).allowed).toBe(false);
    expect(limiter.take('a', 2).allowed).toBe(true);
  });
});
