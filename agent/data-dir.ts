/** Where the agent keeps its state, by the rules of API.md. */
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The default data dir: env, systemd, the system folder, Windows' ProgramData, or per user. */
export function defaultDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform = process.platform,
): string {
  if (env.OUTPOST_AGENT_DATA_DIR) return env.OUTPOST_AGENT_DATA_DIR;
  // systemd may list several folders separated by ':'; the first is ours.
  if (env.STATE_DIRECTORY) return env.STATE_DIRECTORY.split(':')[0]!;
  if (platform !== 'win32' && existsSync('/var/lib/outpost-agent')) return '/var/lib/outpost-agent';
  if (platform === 'win32') {
    return path.join(env.ProgramData ?? env.PROGRAMDATA ?? 'C:\\ProgramData', 'Outpost', 'agent');
  }
  const base = env.XDG_STATE_HOME ?? path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'outpost-agent');
}
