/**
 * `npm run bench`: every benchmark of Outpost in one run on this machine, on loopback only, with
 * a table of figures, targets and verdicts at the end. Each part starts fresh processes from
 * dist/ and stops them. Environment knobs (for quicker runs while profiling):
 * `OUTPOST_BENCH_ONLY=relay,stream,idle`, `OUTPOST_BENCH_SECONDS` (each load run, default 5),
 * `OUTPOST_BENCH_STREAM_MB` (default 1024), `OUTPOST_BENCH_TERMINALS` (default 2000),
 * `OUTPOST_BENCH_PROFILE_DIR` (CPU profiles of the processes started).
 */
import os from 'node:os';

import { idleTerminalsBench, type IdleResults } from './idle-terminals-bench.js';
import { relayBench, type RelayResults } from './relay-bench.js';
import { mb, ms, table, type Row } from './report.js';
import { streamBench, type StreamResults } from './stream-bench.js';

/** The whole run is bounded: past this, it stops (and ends its children) by itself. */
const WATCHDOG_MS = 9 * 60_000;

function knob(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

function relayRows(r: RelayResults): Row[] {
  const rows: Row[] = [];
  for (const c of [1, 64] as const) {
    const d = r.direct[c];
    const j = r.relayed[c];
    const ratio = j.perSecond / d.perSecond;
    rows.push({
      what: `c${c} throughput, relayed / direct`,
      figure: `${j.perSecond.toFixed(0)} / ${d.perSecond.toFixed(0)} req/s = ${ratio.toFixed(2)}`,
      target: c === 64 ? '>= 0.50' : '',
      pass: c === 64 ? ratio >= 0.5 : undefined,
    });
    const added = j.p50Ms - d.p50Ms;
    rows.push({
      what: `c${c} p50, relayed / direct`,
      figure: `${ms(j.p50Ms)} / ${ms(d.p50Ms)} = x${(j.p50Ms / d.p50Ms).toFixed(1)}, +${ms(added)}`,
      target: c === 1 ? '<= +1.00 ms' : '',
      pass: c === 1 ? added <= 1 : undefined,
    });
    rows.push({
      what: `c${c} p99, relayed / direct`,
      figure: `${ms(j.p99Ms)} / ${ms(d.p99Ms)} = x${(j.p99Ms / d.p99Ms).toFixed(1)}`,
      target: '',
    });
    const errors = d.errors + j.errors;
    if (errors > 0)
      rows.push({ what: `c${c} errors`, figure: String(errors), target: '0', pass: false });
  }
  return rows;
}

function streamRows(s: StreamResults): Row[] {
  const rate = s.bytesPerSecond / 2 ** 20;
  const growth = (p: StreamResults['agent']) => Math.max(p.hwm, p.peakSampled) - p.baseline;
  const mem = (name: string, p: StreamResults['agent']): Row => ({
    what: `${name} RSS growth (peak - before)`,
    figure: `${mb(growth(p))} (${mb(p.baseline)} -> ${mb(Math.max(p.hwm, p.peakSampled))})`,
    target: '< 100 MB',
    pass: growth(p) < 100 * 2 ** 20,
  });
  return [
    {
      what: `stream ${mb(s.bytes)} via /body`,
      figure: `${rate.toFixed(0)} MB/s (${s.seconds.toFixed(2)} s)`,
      target: '>= 200 MB/s',
      pass: rate >= 200,
    },
    mem('control plane', s.controlPlane),
    mem('agent', s.agent),
  ];
}

function idleRows(r: IdleResults): Row[] {
  return [
    {
      what: `idle terminals connected`,
      figure: `${r.connected} of ${r.terminals} (ulimit -n ${r.fdLimit})`,
      target: `${r.terminals}`,
      pass: r.connected === r.terminals,
    },
    {
      what: 'control plane RSS per idle terminal',
      figure: `${(r.perTerminal / 1024).toFixed(1)} KB (${mb(r.rssBefore)} -> ${mb(r.rssAfter)})`,
      target: '<= 50 KB',
      pass: r.perTerminal <= 50 * 1024,
    },
    {
      what: 'load process RSS (for reference)',
      figure: mb(r.loadProcessRss),
      target: '',
    },
  ];
}

async function main(): Promise<void> {
  const only = new Set((process.env.OUTPOST_BENCH_ONLY ?? 'relay,stream,idle').split(','));
  const seconds = knob('OUTPOST_BENCH_SECONDS', 5);
  const streamBytes = knob('OUTPOST_BENCH_STREAM_MB', 1024) * 2 ** 20;
  const terminals = knob('OUTPOST_BENCH_TERMINALS', 2000);
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `Outpost benchmarks: Node ${process.version}, ${os.cpus().length} cores (${cpu}), ` +
      `${mb(os.totalmem())} memory, ${os.platform()} ${os.release()}\n`,
  );
  const rows: Row[] = [];
  const step = async <T>(name: string, run: () => Promise<T>, toRows: (r: T) => Row[]) => {
    if (!only.has(name)) return;
    const t0 = Date.now();
    console.log(`running ${name} ...`);
    try {
      const r = await run();
      console.log(`  ${name} done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
      rows.push(...toRows(r));
    } catch (err) {
      console.log(`  ${name} FAILED: ${(err as Error).message}`);
      rows.push({ what: name, figure: 'failed to run', target: '', pass: false });
    }
  };
  await step('relay', () => relayBench(seconds), relayRows);
  await step('stream', () => streamBench(streamBytes), streamRows);
  await step('idle', () => idleTerminalsBench(terminals), idleRows);
  console.log(`\n${table(rows)}\n`);
  // A missed target is a figure to report, not a failure of the run; a part that broke is.
  process.exitCode = rows.some((r) => r.figure === 'failed to run') ? 1 : 0;
}

setTimeout(() => {
  console.error('bench: stopped by its watchdog after 9 minutes');
  process.exit(2);
}, WATCHDOG_MS).unref();
void main();
