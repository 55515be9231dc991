/** Per-account rate limits (`settings.rateLimit`): a sliding window of start times. */

/** A limit of `requests` per `perSeconds`. */
export interface RateLimit {
  requests: number;
  perSeconds: number;
}

/** Reads `settings.rateLimit` when it is well formed (it was checked when saved). */
export function rateLimitOf(settings: Record<string, unknown>): RateLimit | undefined {
  const rl = settings.rateLimit as RateLimit | undefined;
  return rl && rl.requests > 0 && rl.perSeconds > 0 ? rl : undefined;
}

/** Remembers recent starts per account and says how long the next one must wait. */
export class RateLimiter {
  private readonly starts = new Map<string, number[]>();

  /** Milliseconds until a job of this account may start (0: now). */
  waitMs(accountId: string, limit: RateLimit | undefined, now = Date.now()): number {
    if (!limit) return 0;
    const windowMs = limit.perSeconds * 1000;
    const recent = (this.starts.get(accountId) ?? []).filter((t) => t > now - windowMs);
    this.starts.set(accountId, recent);
    if (recent.length < limit.requests) return 0;
    return recent[recent.length - limit.requests]! + windowMs - now;
  }

  /** Records that a job of this account started. */
  record(accountId: string, now = Date.now()): void {
    const list = this.starts.get(accountId) ?? [];
    list.push(now);
    this.starts.set(accountId, list);
  }
}
