/**
 * One run of an async task per key at a time: callers that arrive while it runs share its result.
 * Token refreshes go through this so that twenty jobs meeting an expired token cause one call to
 * the token endpoint, and a rotated refresh token is never spent twice.
 */

/** Shares one in-flight promise per key among concurrent callers. */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();

  /** True while a run for the key has not settled. */
  has(key: string): boolean {
    return this.running.has(key);
  }

  /** Runs `task` unless a run for `key` is in flight, in which case its promise is returned. */
  run(key: string, task: () => Promise<T>): Promise<T> {
    const current = this.running.get(key);
    if (current) return current;
    const started = (async () => {
      try {
        return await task();
      } finally {
        // Settled runs leave at once: the next caller after a failure gets a fresh attempt.
        this.running.delete(key);
      }
    })();
    this.running.set(key, started);
    return started;
  }
}
