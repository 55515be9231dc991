// Builds dist/sea/terminal-agent: the terminal agent as one Node single executable.
//
// Steps: bundle the compiled agent (dist/agent/cli.js, made by `npm run build`) into one
// CommonJS file with esbuild, write the SEA blob with `node --experimental-sea-config`, copy the
// running `node` binary and inject the blob into the copy with postject. Files the executable
// needs at run time travel as SEA assets: better-sqlite3's native addon (loaded by
// agent/sea/native-sqlite.ts) and the Linux service files (used by `terminal-agent service`).
//
// Usage: node installers/sea/build-sea.mjs [--entry FILE] [--out FILE] [--node FILE]
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { build } from 'esbuild';
import { inject } from 'postject';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The fuse Node looks for to know that a blob was injected (from Node's SEA documentation). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** SEA asset key -> file in the repository. Keys are read by agent/sea and agent/service. */
const ASSETS = {
  'better_sqlite3.node': 'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
  'linux/install.sh': 'installers/linux/install.sh',
  'linux/uninstall.sh': 'installers/linux/uninstall.sh',
  'linux/outpost-agent.service': 'installers/linux/outpost-agent.service',
};

const { values } = parseArgs({
  options: {
    entry: { type: 'string', default: join(root, 'dist', 'agent', 'cli.js') },
    out: { type: 'string', default: join(root, 'dist', 'sea', 'terminal-agent') },
    node: { type: 'string', default: process.execPath },
  },
});

const entry = resolve(values.entry);
const out = resolve(values.out);
const work = join(dirname(out), 'build');

function fail(message) {
  console.error(`build-sea: ${message}`);
  process.exit(1);
}

if (!existsSync(entry)) fail(`${relative(root, entry)} is missing; run \`npm run build\` first.`);
for (const [key, file] of Object.entries(ASSETS)) {
  if (!existsSync(join(root, file))) fail(`asset ${key} (${file}) is missing.`);
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

// 1. One CommonJS file. Inside the executable `require` reaches built-in modules only, so
// everything else must be in the bundle. `import.meta.url` has no meaning in CommonJS; it is
// replaced by the executable's own file URL so that code using it still gets a usable value.
const bundle = join(work, 'terminal-agent.cjs');
await build({
  entryPoints: [entry],
  outfile: bundle,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  logLevel: 'warning',
  // ws tries these optional native speed-ups with a bare `require` in try/catch and works
  // without them. Left external, that `require` still runs inside the executable, where Node
  // answers any non-built-in name with a process warning on stderr for every command. ws skips
  // the attempt when WS_NO_BUFFER_UTIL / WS_NO_UTF_8_VALIDATE are set (its documented switches),
  // so both are fixed to "1" in the bundle: the `require` calls stay in dead branches. (Node 20's
  // own buffer.isUtf8 already replaces utf-8-validate; bufferutil only speeds up masking.)
  external: ['bufferutil', 'utf-8-validate'],
  // Packages resolve from this repository even for an --entry kept elsewhere.
  nodePaths: [join(root, 'node_modules')],
  define: {
    'import.meta.url': '__outpostImportMetaUrl',
    'process.env.WS_NO_BUFFER_UTIL': '"1"',
    'process.env.WS_NO_UTF_8_VALIDATE': '"1"',
  },
  banner: {
    js: "const __outpostImportMetaUrl = require('node:url').pathToFileURL(__filename).href;",
  },
});

// 2. The blob. No code cache: it would tie the blob to this exact Node build and platform.
const blob = join(work, 'sea-prep.blob');
const config = join(work, 'sea-config.json');
const assets = Object.fromEntries(Object.entries(ASSETS).map(([k, f]) => [k, join(root, f)]));
writeFileSync(
  config,
  JSON.stringify(
    {
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: false,
      assets,
    },
    null,
    2,
  ),
);
execFileSync(values.node, ['--experimental-sea-config', config], { stdio: 'inherit' });

// 3. A copy of node with the blob injected. The copy is made writable first; node binaries
// are often installed read-only.
rmSync(out, { force: true });
copyFileSync(values.node, out);
chmodSync(out, 0o755);
await inject(out, 'NODE_SEA_BLOB', await readFile(blob), { sentinelFuse: SEA_FUSE });

console.log(`build-sea: wrote ${relative(root, out)}`);
