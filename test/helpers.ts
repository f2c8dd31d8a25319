import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseIndexKey } from '../src/pack/keys.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin', 'snapfill');
export const IS_ROOT = process.getuid?.() === 0;

/** A fresh temp directory removed at process exit. */
const tmpDirs: string[] = [];
process.once('exit', () => {
  for (const d of tmpDirs) {
    try {
      fs.rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
});

export function tmpDir(prefix = 'snapfill-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(d);
  return d;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json: any;
}

/** Runs the real executable, as a user would. */
export function cli(args: string[], env: Record<string, string> = {}, opts: { input?: string; cwd?: string } = {}): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    input: opts.input,
    cwd: opts.cwd,
    maxBuffer: 256 * 1024 * 1024,
  });
  let json: any = null;
  if (args.includes('--json')) {
    try {
      json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
    } catch {
      json = null;
    }
  }
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

/** The password of every test repository (repoEnv points SNAPFILL_PASSWORD_FILE at a file holding it). */
export const TEST_PASSWORD = 'correct horse battery staple';
/** Repository.init options for tests: encrypted, with the cheapest scrypt (stored in the key object). */
export const TEST_INIT = { password: TEST_PASSWORD, kdf: { N: 1024, r: 8, p: 1 } } as const;
/** The password source for Repository.open in tests. */
export const testPassword = async (): Promise<string> => TEST_PASSWORD;

/**
 * A repository + catalog location pair for one test. Repositories are encrypted by default:
 * SNAPFILL_PASSWORD_FILE names the test password file, and SNAPFILL_INSECURE_TEST_KDF
 * makes `init` use cheap scrypt parameters (test-only; readers use the stored parameters).
 */
export function repoEnv(base: string): Record<string, string> {
  return {
    SNAPFILL_REPO: path.join(base, 'repo'),
    SNAPFILL_CACHE: path.join(base, 'cache'),
    SNAPFILL_PASSWORD_FILE: testPasswordFile(),
    SNAPFILL_INSECURE_TEST_KDF: '1',
  };
}

/**
 * The catalog file the CLI uses for `env`'s repository (SNAPFILL_CACHE/<repository id>/catalog.db):
 * what a session opened inside the test process must be given, since that process has no
 * SNAPFILL_CACHE of its own (its default, as root, is the machine's /var/cache/snapfill).
 */
export function catalogOf(env: Record<string, string>): string {
  const id = (JSON.parse(fs.readFileSync(path.join(env.SNAPFILL_REPO, 'config'), 'utf8')) as { id: string }).id;
  return path.join(env.SNAPFILL_CACHE, id, 'catalog.db');
}

let passwordFile: string | null = null;

/** One password file for the whole test process, outside every test's own directories (creating none of them). */
export function testPasswordFile(): string {
  if (passwordFile) return passwordFile;
  const f = path.join(tmpDir('snapfill-pw-'), 'password');
  fs.writeFileSync(f, TEST_PASSWORD + '\n', { mode: 0o600 });
  fs.chmodSync(path.dirname(f), 0o755); // readable by the unprivileged user some tests run the CLI as
  fs.chmodSync(f, 0o644);
  return (passwordFile = f);
}

export function write(file: string, content: string | Buffer, mode?: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  if (mode !== undefined) fs.chmodSync(file, mode);
}

/**
 * A comparable description of a tree: type, mode, owner, size, mtime, content hash, link target.
 * mtimes are compared to the nanosecond: the restore sets them exactly (futimens / utimensat through the
 * native addon, docs/FORMAT.md "Restored times").
 */
export function describeTree(root: string, opts: { mtimeDirs?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: Buffer, rel: string) => {
    for (const nameB of (fs.readdirSync(dir, { encoding: 'buffer' }) as Buffer[]).sort(Buffer.compare)) {
      const full = Buffer.concat([dir, Buffer.from('/'), nameB]);
      const r = rel + '/' + nameB.toString('latin1');
      const st = fs.lstatSync(full, { bigint: true });
      let desc = `${st.mode.toString(8)} ${st.uid}:${st.gid}`;
      if (st.isFile()) {
        const h = require_crypto().createHash('sha256').update(fs.readFileSync(full)).digest('hex').slice(0, 16);
        desc += ` f ${st.size} ${st.mtimeNs} ${h} nl${st.nlink}`;
      } else if (st.isSymbolicLink()) desc += ` l ${fs.readlinkSync(full, { encoding: 'buffer' }).toString('latin1')}`;
      else if (st.isDirectory()) desc += ` d${opts.mtimeDirs ? ' ' + st.mtimeNs : ''}`;
      else desc += ` o ${st.rdev}`;
      out.set(r, desc);
      if (st.isDirectory()) walk(full, r);
    }
  };
  walk(Buffer.from(root), '');
  return out;
}

import * as crypto from 'node:crypto';
function require_crypto() {
  return crypto;
}

export function diffTrees(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} != ${b.get(k) ?? '(missing)'}`);
  for (const k of b.keys()) if (!a.has(k)) out.push(`${k}: (missing) != ${b.get(k)}`);
  return out;
}

/** Whether a command is on the PATH. */
export function hasCmd(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v '${cmd.replace(/'/g, '')}'`]).status === 0;
}

/** In CI (CI=true, as .ci/run and most CI services set it) a missing dependency fails; elsewhere tests skip. */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test(env.CI ?? '');
}

/**
 * The one gate for tests that need something from the system. `present` says whether it is
 * there; `install` is how to get it (default: the apt-get line for `pkg`). When it is missing:
 * in CI, throws "missing system package PKG (INSTALL)", so the test (or the whole file, when
 * called at module level) fails naming the package: a test that skips in CI does not exist.
 * Elsewhere, prints the same reason once and returns false, for `describe.skipIf(!ok)` or an
 * early return in a test.
 */
export function requireSystem(pkg: string, present: boolean | (() => boolean), install = `apt-get install ${pkg}`): boolean {
  const ok = typeof present === 'function' ? present() : present;
  if (ok) return true;
  const reason = `missing system package ${pkg} (${install})`;
  if (inCI()) throw new Error(reason);
  if (!announced.has(reason)) {
    announced.add(reason);
    process.stdout.write(`skipped: ${reason}\n`);
  }
  return false;
}
const announced = new Set<string>();

/**
 * The pack index files of a local repository, by pack id: timed `index/t/<day>/<time>-<id>[.<blob
 * filter>]` (data packs), flat `index/<id>[.<blob filter>]` (data packs of older releases, and
 * their tree packs) or `index/<host tag>/<id>` (tree packs, issue 15).
 */
export function indexFiles(repo: string): Map<string, string> {
  const dir = path.join(repo, 'index');
  const out = new Map<string, string>();
  if (!fs.existsSync(dir)) return out;
  const walk = (d: string, key: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) walk(path.join(d, e.name), `${key}/${e.name}`);
      else {
        const k = parseIndexKey(`${key}/${e.name}`);
        if (k) out.set(k.id, path.join(d, e.name));
      }
    }
  };
  walk(dir, 'index');
  return out;
}

/**
 * The snapshot record files of a local repository, by id: `snapshots/<host tag>/<id>` (issue 15)
 * or the flat `snapshots/<id>` of older releases.
 */
export function snapshotRecordFiles(repo: string): Map<string, string> {
  const dir = path.join(repo, 'snapshots');
  const out = new Map<string, string>();
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.')) continue;
    if (e.isDirectory()) {
      for (const n of fs.readdirSync(path.join(dir, e.name))) if (!n.startsWith('.')) out.set(n, path.join(dir, e.name, n));
    } else out.set(e.name.split('.')[0], path.join(dir, e.name));
  }
  return out;
}
