/**
 * Is the agent process recorded in the store still the one running? `run` writes its pid and
 * start time; a clean stop writes `stoppedAt`, but SIGKILL, a power cut or an OOM kill leave the
 * record claiming a live, connected agent. The pid alone is not proof: it may be a zombie, or
 * reused by an unrelated process started later.
 */
import { existsSync, readFileSync } from 'node:fs';

/** Linux reports process start times in clock ticks of this fixed rate (USER_HZ). */
const USER_HZ = 100;
/** Slack for the start time check: btime has whole seconds and the clock may have been set. */
const START_SLACK_MS = 5000;

/**
 * True when a process with this pid exists, is not a zombie, and (on Linux) started no later
 * than the agent recorded its own start: a process started after that cannot be the agent.
 */
export function agentProcessAlive(pid: number | null, startedAt: string | null): boolean {
  if (pid === null || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to another user (status run by an operator, agent a service).
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  const started = linuxProcessStart(pid);
  if (started === 'gone') return false;
  if (started === undefined || startedAt === null) return true;
  return started <= Date.parse(startedAt) + START_SLACK_MS;
}

/**
 * The start time of a Linux process in ms since the epoch, 'gone' for a zombie or a process that
 * vanished, or undefined when /proc cannot tell (hidden by `hidepid`, or not mounted).
 */
function linuxProcessStart(pid: number): number | 'gone' | undefined {
  let stat: string;
  let bootTime: number;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (!btime) return undefined;
    bootTime = Number(btime[1]) * 1000;
  } catch (err) {
    // ENOENT means the process went away, unless there is no /proc to ask at all.
    const noProc = (err as NodeJS.ErrnoException).code !== 'ENOENT' || !existsSync('/proc/self');
    return noProc ? undefined : 'gone';
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  if (state === 'Z' || state === 'X') return 'gone';
  const ticks = Number(fields[19]);
  return Number.isFinite(ticks) ? bootTime + (ticks * 1000) / USER_HZ : undefined;
}
