/** Resident memory of a process, read from /proc (Linux): current, peak, and sampled peaks. */
import { readFileSync } from 'node:fs';

/** A field of /proc/PID/status in bytes (VmRSS, VmHWM), or NaN when the process is gone. */
export function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Samples VmRSS of some processes every `everyMs` and keeps the highest value of each. */
export class RssSampler {
  readonly peak = new Map<number, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pids: number[],
    everyMs = 50,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    for (const pid of this.pids) {
      const rss = statusBytes(pid, 'VmRSS');
      if (!Number.isNaN(rss)) this.peak.set(pid, Math.max(this.peak.get(pid) ?? 0, rss));
    }
  }

  /** Stops sampling; returns the peaks. */
  stop(): Map<number, number> {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

/** Median RSS over a few samples `gapMs` apart, after a pause to let the process settle. */
export async function settledRss(pid: number, settleMs: number, samples = 5, gapMs = 200) {
  await new Promise((r) => setTimeout(r, settleMs));
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    values.push(statusBytes(pid, 'VmRSS'));
    await new Promise((r) => setTimeout(r, gapMs));
  }
  values.sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
}
