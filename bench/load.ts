/**
 * A closed-loop load generator: `concurrency` workers each send one request after another for a
 * fixed time (after a warm-up), and every request's latency is kept for percentiles.
 */

/** What one run of load measured. */
export interface LoadResult {
  concurrency: number;
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Options of a load run. */
export interface LoadOptions {
  concurrency: number;
  /** Requests before measuring (JIT, pools, caches), spread over the workers. */
  warmupRequests: number;
  durationMs: number;
  /** A cap on measured requests, so that a run stays bounded in count as well as time. */
  maxRequests: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `send` under load; `send` throws (or rejects) when a request failed. */
export async function runLoad(
  options: LoadOptions,
  send: () => Promise<void>,
): Promise<LoadResult> {
  const { concurrency } = options;
  let warm = options.warmupRequests;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (warm-- > 0) await send().catch(() => undefined);
    }),
  );
  const latencies: number[] = [];
  let errors = 0;
  let started = 0;
  const t0 = performance.now();
  const until = t0 + options.durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until && started < options.maxRequests) {
        started++;
        const s = performance.now();
        try {
          await send();
          latencies.push(performance.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    concurrency,
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}
