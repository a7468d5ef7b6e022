/**
 * Token buckets per caller, in memory: `perMinute` tokens, refilled continuously, and at most
 * `perMinute` held (so a quiet caller may spend a minute's worth at once, never more). Each hub
 * process keeps its own buckets: with N processes a caller gets at most N times the rate, which
 * is never unlimited, and costs no database write per call (see decisions.md).
 */
export interface RateDecision {
  allowed: boolean;
  /** When refused: milliseconds until the request would be allowed. */
  retryAfterMs: number;
  /** Tokens left after the decision. */
  remaining: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    readonly perMinute: number,
    private readonly now: () => number = Date.now,
  ) {
    this.perMs = perMinute / 60_000;
  }

  /** Takes `cost` tokens from `caller`'s bucket, all or none. */
  take(caller: string, cost = 1): RateDecision {
    const now = this.now();
    const bucket = this.refilled(caller, now);
    if (bucket.tokens >= cost) {
      bucket.tokens -= cost;
      return { allowed: true, retryAfterMs: 0, remaining: Math.floor(bucket.tokens) };
    }
    const missing = cost - bucket.tokens;
    return {
      allowed: false,
      retryAfterMs: cost > this.perMinute ? Infinity : Math.ceil(missing / this.perMs),
      remaining: Math.floor(bucket.tokens),
    };
  }

  private refilled(caller: string, now: number): Bucket {
    let bucket = this.buckets.get(caller);
    if (bucket === undefined) {
      if (this.buckets.size >= 10_000) this.forgetFull(now);
      bucket = { tokens: this.perMinute, at: now };
      this.buckets.set(caller, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.perMs);
    bucket.at = now;
    return bucket;
  }

  /** Drops buckets that are full again: they hold no memory of past calls. */
  private forgetFull(now: number): void {
    for (const [caller, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.perMinute) {
        this.buckets.delete(caller);
      }
    }
  }
}
