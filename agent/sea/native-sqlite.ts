/**
 * Loads better-sqlite3's native addon inside the single executable.
 *
 * Inside a Node single executable `require` reaches built-in modules only, so the addon cannot
 * be found on disk the usual way. The build (installers/sea/build-sea.mjs) embeds
 * better_sqlite3.node as the SEA asset `better_sqlite3.node`; here it is written once to a
 * versioned cache folder, loaded with `process.dlopen`, and the loaded module object is handed
 * to better-sqlite3 as its `nativeBinding` option (a path there would go through `require`).
 * Outside a single executable nothing of this runs and better-sqlite3 finds its addon itself.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getAsset, isSea } from 'node:sea';

import Database from 'better-sqlite3';

import { PRODUCT_VERSION } from '../../shared/version.js';

/** The SEA asset key under which the build embeds the addon. */
export const SQLITE_ADDON_ASSET = 'better_sqlite3.node';

/** Where the loader may write the addon. */
export interface NativeBindingOptions {
  /**
   * The folder under which the versioned cache folder is made; `os.tmpdir()` by default. Give
   * the agent's data dir when the temp folder may be mounted `noexec`.
   */
  cacheRoot?: string;
}

let loaded: object | undefined;

/** True when this process runs as the Outpost single executable. */
export function isSingleExecutable(): boolean {
  return isSea();
}

/**
 * The better-sqlite3 addon module object to pass as `nativeBinding`, or `undefined` when not
 * running inside a single executable (plain `node`, tests), where better-sqlite3 loads its own.
 * The first call writes and loads the addon; later calls return the same object.
 */
export function sqliteNativeBinding(options: NativeBindingOptions = {}): object | undefined {
  if (!isSea()) return undefined;
  if (loaded !== undefined) return loaded;

  const addon = Buffer.from(getAsset(SQLITE_ADDON_ASSET));
  const digest = createHash('sha256').update(addon).digest('hex');
  const folder = join(
    options.cacheRoot ?? tmpdir(),
    `outpost-agent-${PRODUCT_VERSION}-${digest.slice(0, 16)}`,
  );
  const file = join(folder, SQLITE_ADDON_ASSET);

  ensurePrivateFolder(folder);
  if (!holdsSameBytes(file, digest)) writeAtomically(file, addon);

  const module = { exports: {} as object };
  process.dlopen(module, file);
  loaded = module.exports;
  return loaded;
}

/**
 * Opens a better-sqlite3 database, adding the single executable's `nativeBinding` when there is
 * one. Use this instead of `new Database(...)` everywhere in the agent.
 */
export function openDatabase(
  filename: string,
  options: Database.Options = {},
  bindingOptions: NativeBindingOptions = {},
): Database.Database {
  const binding = sqliteNativeBinding(bindingOptions);
  if (binding === undefined) return new Database(filename, options);
  // better-sqlite3 takes the module object here (its lib/database.js checks for one), but
  // @types/better-sqlite3 9.6 still types the option as a path only.
  return new Database(filename, { ...options, nativeBinding: binding as unknown as string });
}

/**
 * Makes the cache folder (mode 0700) and refuses one that another user could have planted:
 * in a shared temp folder someone else could pre-create it to get their own code loaded.
 */
function ensurePrivateFolder(folder: string): void {
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const stat = lstatSync(folder);
  if (!stat.isDirectory()) {
    throw new Error(`The addon cache ${folder} is not a folder; remove it and start again.`);
  }
  if (process.platform === 'win32') return;

  if (process.getuid !== undefined && stat.uid !== process.getuid()) {
    throw new Error(
      `The addon cache ${folder} belongs to another user; remove it and start again.`,
    );
  }
  if ((stat.mode & 0o077) !== 0) chmodSync(folder, 0o700);
}

/** True when the file exists and its bytes hash to the digest (a torn or stale copy does not). */
function holdsSameBytes(file: string, digest: string): boolean {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex') === digest;
  } catch {
    return false;
  }
}

/** Writes beside the target, flushes, then renames, so that no process loads a half file. */
function writeAtomically(file: string, bytes: Buffer): void {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(temp, 'wx', 0o700);
  try {
    writeFileSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}
