#!/usr/bin/env node
// Side-by-side benchmarks: snapfill against tar, rsync, restic and borg on the same generated
// hosting-like tree, in the same run, alternating the tools (A B A B) over several runs, on
// tmpfs and on disk. Every result is checked (a fast but wrong tool is flagged, not ranked).
//
//   npm run bench                      # 200k files, 3 runs, tmpfs + disk
//   npm run bench:quick                # ~20k files
//   node bench/run.mjs --profile 1m    # 1M files + one real >1 GB file
//   node bench/run.mjs --help
//
// Writes bench/results/<date>-<profile>.json and the profile's section of BENCHMARKS.md.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generate, churn, listFiles, PROFILES, rng } from './gen-dataset.mjs';
import { freezeBuild } from './freeze-build.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
// The snapfill executable; main() points it at a private copy of the build (see freezeBuild).
let BIN = path.join(ROOT, 'bin', 'snapfill');
// With --baseline DIR, a second build of snapfill (another commit, built) runs as tool
// `snapfill_base` beside this one, alternating, so a change is measured against its parent in
// the same run: its ratio column reads "this build / baseline".
let BASE_BIN = null;
const SNAPFILLS = ['snapfill', 'snapfill_base'];
const isSnapfill = (tool) => SNAPFILLS.includes(tool);
const binOf = (tool) => (tool === 'snapfill_base' ? BASE_BIN : BIN);
const DAY = 86_400;
// restic always encrypts and needs a password; a fixed one keeps the runs unattended.
const RESTIC_PASSWORD = 'snapfill-bench-fixed-password';
// snapfill encrypts by default too: the same fixed password, from a file (its real key derivation is measured).
let passwordFile = null;
function snapfillPasswordFile() {
  if (!passwordFile) {
    passwordFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-bench-pw-')), 'password');
    fs.writeFileSync(passwordFile, RESTIC_PASSWORD + '\n', { mode: 0o600 });
    process.once('exit', () => fs.rmSync(path.dirname(passwordFile), { recursive: true, force: true }));
  }
  return passwordFile;
}
const PEERS = ['restic', 'borg', 'tar', 'rsync'];
const ALL_TOOLS = ['snapfill', 'snapfill_base', ...PEERS];

/** Which tools take part in each scenario, in the order they alternate. */
const SCENARIOS = [
  { key: 'full_snapshot', title: 'full snapshot', tools: ['snapfill', 'snapfill_base', 'restic', 'borg', 'tar'] },
  { key: 'nochange_snapshot', title: 'no-change snapshot', tools: ['snapfill', 'snapfill_base', 'restic', 'borg'] },
  { key: 'churn_snapshot', title: '1% churn snapshot', tools: ['snapfill', 'snapfill_base', 'restic', 'borg'] },
  {
    key: 'repo_size',
    title: 'repository size after 3 snapshots (MiB)',
    tools: ['snapfill', 'snapfill_base', 'restic', 'borg'],
    size: true,
  },
  { key: 'full_restore', title: 'full restore to an empty target', tools: ['snapfill', 'snapfill_base', 'tar', 'restic', 'borg', 'rsync'] },
  {
    key: 'restore_missing_7d',
    title: 'restore missing after deleting files older than 7 days',
    tools: ['snapfill', 'snapfill_base', 'rsync'],
  },
  { key: 'restore_missing_10pct', title: 'restore missing after deleting 10% of files', tools: ['snapfill', 'snapfill_base', 'rsync'] },
  { key: 'metadata_repair', title: 'metadata repair after chmod/chown damage', tools: ['snapfill', 'snapfill_base', 'rsync'] },
  // Issue 17: the passes over the intact tree itself, in place (nothing lost, nothing to do).
  { key: 'intact_missing', title: 'restore missing in place, nothing missing', tools: ['snapfill', 'snapfill_base', 'rsync'] },
  { key: 'intact_metadata', title: 'metadata repair in place, nothing to fix', tools: ['snapfill', 'snapfill_base', 'rsync'] },
  {
    key: 'account_restore',
    title: 'single-account restore (account deleted)',
    tools: ['snapfill', 'snapfill_base', 'restic', 'borg', 'rsync'],
  },
];

function usage() {
  return `usage: node bench/run.mjs [options]
  --profile tiny|quick|default|1m   dataset size (300 / 20k / 200k / 1M files; default: default)
  --files N          explicit file count (overrides the profile's)
  --seed N           dataset seed (default 1)
  --runs N           runs per scenario, tools alternate within each run (default 3)
  --fs LIST          tmpfs,disk (default both)
  --tmpfs-dir DIR    default /dev/shm/snapfill-bench
  --disk-dir DIR     default /var/tmp/snapfill-bench
  --tools LIST       subset of ${ALL_TOOLS.join(',')}
  --scenarios LIST   subset of ${SCENARIOS.map((s) => s.key).join(',')},catalog_growth
  --no-install       do not apt-get install missing peers (they are skipped)
  --no-create-users  map accounts to numeric ids instead of creating users
  --drop-caches      drop the page cache before each timed disk operation (if the kernel allows)
  --results-dir DIR  where the JSON goes (default bench/results)
  --markdown FILE    where the rendered section goes (default BENCHMARKS.md; "none" to skip)
  --keep             keep the bench directories afterwards
  --render FILE      only re-render a results JSON into the markdown file (no run)
  --baseline DIR     also run the snapfill build in DIR (a checkout of another commit with
                     dist/ built) as tool snapfill_base, alternating with this build
  --source DIR,...   a real tree instead of the generated one: each DIR is copied (cp -a) under
                     the bench's home (e.g. /usr/share,/usr/include: system files and packages);
                     results go to their own section (bench:source)
`;
}

function parseArgs(argv) {
  const o = {
    profile: 'default',
    files: undefined,
    seed: 1,
    runs: 3,
    fs: ['tmpfs', 'disk'],
    tmpfsDir: '/dev/shm/snapfill-bench',
    diskDir: '/var/tmp/snapfill-bench',
    tools: ALL_TOOLS,
    scenarios: [...SCENARIOS.map((s) => s.key), 'catalog_growth'],
    install: true,
    createUsers: true,
    dropCaches: false,
    resultsDir: path.join(HERE, 'results'),
    markdown: path.join(ROOT, 'BENCHMARKS.md'),
    keep: false,
  };
  const list = (s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--profile') {
      o.profile = v();
      if (!(o.profile in PROFILES)) throw new Error(`unknown profile ${o.profile}`);
    } else if (a === '--files') o.files = Number(v());
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--fs') o.fs = list(v());
    else if (a === '--tmpfs-dir') o.tmpfsDir = path.resolve(v());
    else if (a === '--disk-dir') o.diskDir = path.resolve(v());
    else if (a === '--tools') o.tools = list(v());
    else if (a === '--scenarios') o.scenarios = list(v());
    else if (a === '--no-install') o.install = false;
    else if (a === '--no-create-users') o.createUsers = false;
    else if (a === '--drop-caches') o.dropCaches = true;
    else if (a === '--results-dir') o.resultsDir = path.resolve(v());
    else if (a === '--markdown') {
      const m = v();
      o.markdown = m === 'none' ? null : path.resolve(m);
    } else if (a === '--keep') o.keep = true;
    else if (a === '--render') o.render = path.resolve(v());
    else if (a === '--baseline') o.baseline = path.resolve(v());
    else if (a === '--source') o.source = list(v()).map((d) => path.resolve(d));
    else if (a === '-h' || a === '--help') {
      process.stdout.write(usage());
      process.exit(0);
    } else throw new Error(`unknown argument ${a}\n${usage()}`);
  }
  if (o.source) {
    for (const d of o.source)
      if (!fs.statSync(d, { throwIfNoEntry: false })?.isDirectory()) throw new Error(`--source: ${d} is not a directory`);
    o.profile = 'source';
    o.files ??= countFiles(o.source);
  }
  o.files ??= PROFILES[o.profile];
  if (!o.baseline) o.tools = o.tools.filter((t) => t !== 'snapfill_base');
  if (!Number.isInteger(o.runs) || o.runs < 1) throw new Error('--runs must be >= 1');
  for (const t of o.tools) if (!ALL_TOOLS.includes(t)) throw new Error(`unknown tool ${t}`);
  for (const f of o.fs) if (f !== 'tmpfs' && f !== 'disk') throw new Error(`unknown fs ${f}`);
  if (!o.tools.includes('snapfill')) throw new Error('--tools must include snapfill (ratios are snapfill/peer)');
  return o;
}

const log = (m) => process.stderr.write(m + '\n');

// ---------------------------------------------------------------------------------------------
// Processes

/** Runs an untimed helper command; throws with its stderr on failure. */
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, ...opts });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}: ${(r.stderr || String(r.error ?? '')).slice(-2000)}`);
  }
  return r;
}

const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
const TIME = '/usr/bin/time';

/**
 * Runs one timed command. Wall time is measured here (hrtime); peak RSS comes from GNU time's
 * %M (wait4 rusage of the child, the only per-child RSS source: Node does not expose it).
 */
function timed(cmd, args, { cwd, env, syncDir, dropCaches } = {}) {
  if (syncDir) spawnSync('sync', ['-f', syncDir]); // earlier writeback must not bill this run
  if (dropCaches) {
    try {
      fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    } catch {
      /* reported at start */
    }
  }
  const rssFile = path.join(os.tmpdir(), `snapfill-bench-rss-${process.pid}`);
  const useTime = fs.existsSync(TIME);
  const argv = useTime ? ['-f', '%M', '-o', rssFile, cmd, ...args] : args;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(useTime ? TIME : cmd, argv, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 1 << 30 });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  let rssKb = null;
  if (useTime) {
    try {
      const lines = fs.readFileSync(rssFile, 'utf8').trim().split('\n');
      rssKb = Number(lines[lines.length - 1]) || null;
      fs.rmSync(rssFile, { force: true });
    } catch {
      /* no rss */
    }
  }
  return { seconds, rssKb, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function lastJson(stdout) {
  const lines = stdout.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    try {
      return JSON.parse(lines[i]);
    } catch {
      /* not json */
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Tree manifests: the quick comparison that tells a correct restore from a fast but wrong one.

/** A stable per-path choice: content is hashed for every file, or a 1-in-N sample by path. */
function sampled(rel, mod) {
  if (mod === 0) return false;
  if (mod === 1) return true;
  return crypto.createHash('md5').update(rel).digest().readUInt32LE(0) % mod === 0;
}

/**
 * Describes a tree: rel path -> { d: type/mode/owner/size/mtime/link/(hash), dm: dir mtime, ino }.
 * Symlink mtimes are not compared (tools differ and nobody relies on them).
 */
export function manifest(root, { hashMod = 1 } = {}) {
  const out = new Map();
  const walk = (abs, rel) => {
    const st = fs.lstatSync(abs, { bigint: true });
    const own = `${(Number(st.mode) & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isDirectory()) {
      out.set(rel, { d: `d ${own}`, dm: String(st.mtimeNs), ino: st.ino });
      const names = fs
        .readdirSync(abs, { encoding: 'buffer' })
        .map((b) => b.toString('latin1'))
        .sort();
      for (const n of names) walk(path.join(abs, Buffer.from(n, 'latin1').toString()), rel + '/' + n);
    } else if (st.isFile()) {
      let d = `f ${own} ${st.size} ${st.mtimeNs} nl${st.nlink}`;
      if (sampled(rel, hashMod)) d += ' ' + crypto.createHash('sha1').update(fs.readFileSync(abs)).digest('hex').slice(0, 16);
      out.set(rel, { d, ino: st.ino });
    } else if (st.isSymbolicLink()) {
      out.set(rel, { d: `l ${st.uid}:${st.gid} ${fs.readlinkSync(abs)}` });
    } else out.set(rel, { d: `o ${own} ${st.rdev}` });
  };
  walk(root, '');
  return out;
}

/**
 * Compares an expected manifest with a tree. Options: `under` (only this rel prefix),
 * `dirMtime` (compare directory mtimes), `inodes` (files must keep these inode numbers).
 */
function compare(expected, actualRoot, { hashMod = 1, under = '', dirMtime = true, inodes = null } = {}) {
  if (!fs.existsSync(actualRoot)) return { ok: false, problems: [`restored tree not found at ${actualRoot}`] };
  const actual = manifest(actualRoot + under, { hashMod: 0 });
  const problems = [];
  let missing = 0,
    extra = 0,
    differ = 0,
    rewritten = 0;
  const note = (m) => {
    if (problems.length < 5) problems.push(m);
  };
  for (const [rel0, e] of expected) {
    if (under && !(rel0 === under || rel0.startsWith(under + '/'))) continue;
    const rel = rel0.slice(under.length);
    const a = actual.get(rel);
    if (!a) {
      missing++;
      note(`missing ${rel0}`);
      continue;
    }
    let ad = a.d;
    if (e.d.startsWith('f ') && e.d.split(' ').length === 7) {
      const abs = path.join(actualRoot + under, rel);
      ad += ' ' + crypto.createHash('sha1').update(fs.readFileSync(abs)).digest('hex').slice(0, 16);
    }
    if (ad !== e.d) {
      differ++;
      note(`${rel0}: want "${e.d}" got "${ad}"`);
    } else if (dirMtime && e.dm !== undefined && e.dm !== a.dm) {
      differ++;
      note(`${rel0}: dir mtime want ${e.dm} got ${a.dm}`);
    }
    if (inodes && inodes.has(rel0) && inodes.get(rel0) !== a.ino) rewritten++;
  }
  for (const rel of actual.keys()) {
    if (!expected.has(under + rel)) {
      extra++;
      note(`unexpected ${under + rel}`);
    }
  }
  if (rewritten) problems.unshift(`${rewritten} files were rewritten (new inode) by a metadata repair`);
  void hashMod;
  return { ok: missing + extra + differ + rewritten === 0, missing, extra, differ, rewritten, problems };
}

function apparentBytes(dir) {
  let n = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else n += fs.lstatSync(f).size;
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Damage: what the incidents did to the live tree (untimed preparation).

/** Deletes regular files older than `days` (like `find -type f -mtime +N -delete`). */
function deleteOlderThan(home, days) {
  const limit = Date.now() / 1000 - days * DAY;
  let n = 0;
  for (const f of listFiles(home))
    if (fs.lstatSync(f).mtimeMs / 1000 < limit) {
      fs.unlinkSync(f);
      n++;
    }
  return n;
}

/** Deletes a deterministic 10% of the regular files (hardlinked ones are left alone). */
function deleteShare(home, share, seed) {
  const r = rng(seed, 'delete-share');
  let n = 0;
  for (const f of listFiles(home)) {
    if (r.next() >= share) continue;
    if (fs.lstatSync(f).nlink > 1) continue;
    fs.unlinkSync(f);
    n++;
  }
  return n;
}

/**
 * Data written after the snapshot (must survive a `missing` restore untouched): a few remaining
 * files modified and a few new ones. Returns their rel paths.
 */
function writeAfterSnapshot(home, seed) {
  const r = rng(seed, 'after-snapshot');
  const files = listFiles(home);
  const touched = [];
  const n = Math.max(2, Math.round(files.length * 0.002));
  for (let i = 0; i < n && files.length; i++) {
    const f = files[r.int(0, files.length - 1)];
    if (fs.lstatSync(f).nlink > 1) continue;
    fs.writeFileSync(f, `modified after the snapshot ${i}\n`);
    touched.push(f);
  }
  const dirs = [...new Set(files.map((f) => path.dirname(f)))];
  for (let i = 0; i < n && dirs.length; i++) {
    const f = path.join(dirs[r.int(0, dirs.length - 1)], `new-after-snapshot-${i}`);
    fs.writeFileSync(f, `new file ${i}\n`);
    touched.push(f);
  }
  return touched.map((f) => f.slice(home.length));
}

/**
 * tar's archive format: GNU tar's default keeps whole seconds, which is all a generated tree has;
 * a real tree (--source) has nanosecond mtimes, which only the POSIX (pax) format keeps, so tar
 * restores what the others do. Only the mtime: pax's default atime and ctime records dropped.
 */
function tarFormat(o) {
  return o.source ? ['--format=posix', '--pax-option=delete=atime,delete=ctime'] : [];
}

/** Regular files under the trees (for --source: the size of the run, as --files is otherwise). */
function countFiles(dirs) {
  let n = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name));
      else if (e.isFile()) n++;
    }
  };
  for (const d of dirs) walk(d);
  return n;
}

/**
 * --source: the real trees copied under `home`, one directory each (named after its path), with
 * the dataset's numbers as generate() reports them. The copies keep owners, modes, times and
 * hard links (cp -a); "accounts" are the copied trees.
 */
function copySource(dirs, home) {
  const t0 = Date.now();
  fs.mkdirSync(home, { recursive: true });
  for (const d of dirs) sh('cp', ['-a', d, path.join(home, d.replace(/^\/+/, '').replace(/\//g, '_'))]);
  const stats = { files: 0, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 0, older_than_7d: 0, accounts: dirs.length };
  const weekAgo = Date.now() - 7 * 86400_000;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      const st = fs.lstatSync(f);
      if (st.isDirectory()) {
        stats.dirs++;
        walk(f);
      } else if (st.isSymbolicLink()) stats.symlinks++;
      else if (st.isFile()) {
        stats.files++;
        stats.bytes += st.size;
        if (st.nlink > 1) stats.hardlinks++;
        if (st.mtimeMs < weekAgo) stats.older_than_7d++;
      }
    }
  };
  walk(home);
  return { ...stats, owners: `as in ${dirs.join(', ')}`, seconds: (Date.now() - t0) / 1000, home };
}

/** A permissions script gone wrong: every entry owned by nobody, files 600, dirs 700. */
function damageMetadata(home) {
  const nobody = 65534;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const f = path.join(d, e.name);
      fs.lchownSync(f, nobody, nobody);
      if (e.isDirectory()) {
        walk(f);
        fs.chmodSync(f, 0o700);
      } else if (e.isFile()) fs.chmodSync(f, 0o600);
    }
  };
  walk(home);
  fs.lchownSync(home, nobody, nobody);
}

// ---------------------------------------------------------------------------------------------
// Machine and peers

function installPeers(o, notes) {
  const want = { restic: 'restic', borg: 'borgbackup', rsync: 'rsync', tar: 'tar' };
  const missing = Object.entries(want)
    .filter(([cmd]) => o.tools.includes(cmd) && !have(cmd))
    .map(([, pkg]) => pkg);
  if (!fs.existsSync(TIME)) missing.push('time');
  if (!missing.length) return;
  if (!o.install) {
    notes.push(`not installed (--no-install): ${missing.join(', ')}`);
    return;
  }
  if (process.getuid?.() !== 0) {
    notes.push(`cannot apt-get install ${missing.join(', ')} (not root)`);
    return;
  }
  log(`installing from apt: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { encoding: 'utf8', env });
  if (r.status !== 0) {
    spawnSync('apt-get', ['update'], { encoding: 'utf8', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { encoding: 'utf8', env });
  }
  if (r.status !== 0) notes.push(`apt-get install ${missing.join(' ')} failed: ${(r.stderr || '').slice(-300)}`);
}

function versionOf(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout || r.stderr).split('\n')[0].trim() : null;
}

function machine() {
  const out = (c, a) => spawnSync(c, a, { encoding: 'utf8' }).stdout?.trim() ?? '';
  const git = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout?.trim();
  return {
    nproc: out('nproc', []),
    load_start: os.loadavg()[0].toFixed(1),
    cpu: os.cpus()[0]?.model ?? '',
    free: out('free', ['-m']),
    df: out('df', ['-h', '/dev/shm', '/var/tmp']),
    kernel: os.release(),
    node: process.version,
    snapfill: git || null,
    restic: versionOf('restic', ['version']),
    borg: versionOf('borg', ['--version']),
    tar: versionOf('tar', ['--version']),
    rsync: versionOf('rsync', ['--version']),
  };
}

// ---------------------------------------------------------------------------------------------
// The run

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return null;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

class Bench {
  constructor(o) {
    this.o = o;
    this.notes = [];
    this.results = []; // { fs, scenario, tool, run, seconds, rss_kb, ok, detail }
    this.skipped = []; // { fs, scenario, tool, reason }
    this.sizes = []; // { fs, run, tool, bytes, extra }
    this.catalogGrowth = null;
    this.datasets = {};
  }

  available(tool) {
    if (!this.o.tools.includes(tool)) return 'not selected (--tools)';
    if (tool === 'snapfill') return fs.existsSync(path.join(ROOT, 'dist', 'cli', 'program.js')) ? null : 'not built (run npx tsc -p .)';
    if (tool === 'snapfill_base') return BASE_BIN ? null : 'no --baseline build';
    return have(tool) ? null : `${tool} is not installed`;
  }

  wants(scenario) {
    return this.o.scenarios.includes(scenario);
  }

  record(ctx, scenario, tool, run, t, check) {
    let ok = t.status === 0;
    const errLines = (t.stderr || String(t.error ?? ''))
      .trim()
      .split('\n')
      .filter((l) => l.trim() && !/^\s+at /.test(l));
    let detail = ok ? '' : `exit ${t.status}: ${errLines.slice(0, 3).join(' | ').slice(0, 400)}`;
    const errs = ok ? null : lastJson(t.stdout)?.errors;
    if (Array.isArray(errs) && errs.length) {
      detail += ` ${errs.length} errors, e.g. ${errs
        .slice(0, 3)
        .map((e) => `${e.path}: ${e.message}`)
        .join('; ')}`.slice(0, 600);
    }
    if (ok && check) {
      try {
        const c = check(t);
        if (c !== true) {
          ok = false;
          detail = String(c);
        }
      } catch (e) {
        ok = false;
        detail = `check failed: ${e.message}`;
      }
    }
    const rec = { fs: ctx.fsName, scenario, tool, run, seconds: t.seconds, rss_kb: t.rssKb, ok, detail };
    this.results.push(rec);
    log(
      `  [${ctx.fsName}] ${scenario} ${tool} run ${run}: ${t.seconds.toFixed(2)} s, ${t.rssKb ? (t.rssKb / 1024).toFixed(0) + ' MiB' : '? MiB'}${ok ? '' : '  WRONG: ' + detail}`,
    );
    return rec;
  }

  skip(ctx, scenario, tool, reason) {
    if (!this.skipped.some((s) => s.fs === ctx.fsName && s.scenario === scenario && s.tool === tool)) {
      this.skipped.push({ fs: ctx.fsName, scenario, tool, reason });
      log(`  [${ctx.fsName}] ${scenario} ${tool}: skipped (${reason})`);
    }
  }

  /** The tools of a scenario that can run, logging why the others are skipped. */
  /**
   * The tools of a scenario in the order they run: reversed in every second run, so no tool is
   * always first of its pair (the first of a pair measured slower on a VM whose speed drifts:
   * a full restore read 1.21x against the baseline with snapfill always first, equal by hand).
   */
  toolsFor(ctx, key, run = 1) {
    const sc = SCENARIOS.find((s) => s.key === key);
    const out = [];
    for (const t of sc.tools) {
      const needsRestore = isSnapfill(t) && (sc.key.includes('restore') || sc.key === 'metadata_repair');
      const why = this.available(t) ?? (needsRestore ? this.restoreUnavailable() : null);
      if (why) this.skip(ctx, key, t, why);
      else out.push(t);
    }
    return run % 2 === 0 ? out.reverse() : out;
  }

  restoreUnavailable() {
    if (this._restoreMissing === undefined) {
      const r = spawnSync(process.execPath, [BIN, 'restore', '--help'], { encoding: 'utf8' });
      this._restoreMissing = r.status === 0 && /--mode/.test(r.stdout) ? null : 'this snapfill build has no `restore` command yet';
    }
    return this._restoreMissing;
  }

  env(ctx, tool) {
    if (isSnapfill(tool))
      return { SNAPFILL_REPO: ctx.repo[tool], SNAPFILL_CACHE: ctx.repo[tool + 'Cache'], SNAPFILL_PASSWORD_FILE: snapfillPasswordFile() };
    if (tool === 'restic') return { RESTIC_PASSWORD, RESTIC_CACHE_DIR: ctx.repo.resticCache };
    if (tool === 'borg') {
      return {
        BORG_PASSPHRASE: '',
        BORG_BASE_DIR: ctx.repo.borgBase,
        BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
        BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
      };
    }
    return {};
  }

  run1(ctx, tool, cmd, args, cwd) {
    return timed(cmd, args, {
      cwd,
      env: this.env(ctx, tool),
      syncDir: ctx.fsName === 'disk' ? ctx.root : null,
      dropCaches: this.o.dropCaches && ctx.fsName === 'disk',
    });
  }

  snapfill(ctx, args, cwd, tool = 'snapfill') {
    return this.run1(ctx, tool, process.execPath, [binOf(tool), '--json', ...args], cwd);
  }

  /** Fresh, empty repositories for one run (untimed). */
  initRepos(ctx, tools) {
    fs.rmSync(ctx.repoDir, { recursive: true, force: true });
    fs.mkdirSync(ctx.repoDir, { recursive: true });
    const r = ctx.repo;
    for (const d of [r.snapfillCache, r.snapfill_baseCache, r.resticCache, r.borgBase]) fs.mkdirSync(d, { recursive: true });
    for (const t of SNAPFILLS)
      if (tools.includes(t)) sh(process.execPath, [binOf(t), 'init'], { env: { ...process.env, ...this.env(ctx, t) } });
    if (tools.includes('restic')) sh('restic', ['-r', r.restic, 'init'], { env: { ...process.env, ...this.env(ctx, 'restic') } });
    if (tools.includes('borg')) sh('borg', ['init', '-e', 'none', r.borg], { env: { ...process.env, ...this.env(ctx, 'borg') } });
    if (tools.includes('tar')) fs.mkdirSync(r.tar, { recursive: true });
  }

  /** One snapshot by one tool; `n` is the snapshot's number in this run (1 full, 2 no change, 3 churn). */
  snapshot(ctx, tool, n, scenario, run, expect) {
    const r = ctx.repo;
    if (isSnapfill(tool)) {
      return this.record(ctx, scenario, tool, run, this.snapfill(ctx, ['snapshot', ctx.home], undefined, tool), (t) => {
        const j = lastJson(t.stdout);
        if (!j) return 'no JSON summary';
        if (j.errors?.length) return `${j.errors.length} errors, first: ${j.errors[0].path}: ${j.errors[0].message}`;
        if (Math.abs(j.files_total - expect.files) > expect.hardlinks) return `files_total ${j.files_total}, the tree has ${expect.files}`;
        if (n === 2 && (j.files_new || j.files_changed))
          return `no-change snapshot saw ${j.files_new} new and ${j.files_changed} changed files`;
        if (n === 3 && j.files_new + j.files_changed < expect.churned)
          return `churn snapshot saw ${j.files_new + j.files_changed} new/changed files, ${expect.churned} were written`;
        return true;
      });
    }
    if (tool === 'restic') {
      const t = this.run1(ctx, tool, 'restic', ['-r', r.restic, 'backup', '--json', ctx.home]);
      return this.record(ctx, scenario, tool, run, t, (tt) => {
        const sum = tt.stdout
          .split('\n')
          .map((l) => {
            try {
              return JSON.parse(l);
            } catch {
              return null;
            }
          })
          .find((j) => j?.message_type === 'summary');
        if (!sum) return 'no summary';
        if (Math.abs(sum.total_files_processed - expect.files) > expect.hardlinks)
          return `processed ${sum.total_files_processed} files, the tree has ${expect.files}`;
        if (n === 2 && (sum.files_new || sum.files_changed))
          return `no-change backup saw ${sum.files_new} new and ${sum.files_changed} changed`;
        return true;
      });
    }
    if (tool === 'borg') {
      const t = this.run1(ctx, tool, 'borg', ['create', '--json', `${r.borg}::s${n}`, ctx.home]);
      return this.record(ctx, scenario, tool, run, t, (tt) => {
        let j;
        try {
          j = JSON.parse(tt.stdout);
        } catch {
          j = lastJson(tt.stdout);
        }
        const nf = j?.archive?.stats?.nfiles;
        if (nf === undefined) return 'no stats';
        if (Math.abs(nf - expect.files) > expect.hardlinks) return `archived ${nf} files, the tree has ${expect.files}`;
        return true;
      });
    }
    if (tool === 'tar') {
      const t = this.run1(ctx, tool, 'tar', [
        ...tarFormat(this.o),
        '-cf',
        path.join(r.tar, 'full.tar'),
        '-C',
        path.dirname(ctx.home),
        path.basename(ctx.home),
      ]);
      return this.record(ctx, scenario, tool, run, t, () =>
        fs.statSync(path.join(r.tar, 'full.tar')).size >= expect.bytes ? true : 'archive smaller than the data',
      );
    }
    throw new Error(`no snapshot for ${tool}`);
  }

  /** Where a tool put the tree when restoring everything under `target`. */
  restoredHome(tool, target, home) {
    if (tool === 'tar' || tool === 'rsync') return path.join(target, 'home');
    const candidates = [path.join(target, home), path.join(target, 'home'), target];
    return candidates.find((c) => fs.existsSync(c) && fs.readdirSync(c).some((n) => n.startsWith('sfb'))) ?? candidates[0];
  }

  fullRestore(ctx, tool, run, ref) {
    const target = path.join(ctx.root, 'target');
    sh('rm', ['-rf', target]);
    fs.mkdirSync(target);
    const r = ctx.repo;
    let t;
    if (isSnapfill(tool)) t = this.snapfill(ctx, ['restore', 'latest', '--target', target], undefined, tool);
    else if (tool === 'tar') t = this.run1(ctx, tool, 'tar', ['-xf', path.join(r.tar, 'full.tar'), '-C', target]);
    else if (tool === 'restic') t = this.run1(ctx, tool, 'restic', ['-r', r.restic, 'restore', 'latest', '--target', target]);
    else if (tool === 'borg') t = this.run1(ctx, tool, 'borg', ['extract', `${r.borg}::s3`], target);
    else if (tool === 'rsync') t = this.run1(ctx, tool, 'rsync', ['-aH', ctx.plain + '/', path.join(target, 'home') + '/']);
    this.record(ctx, 'full_restore', tool, run, t, (tt) => {
      if (isSnapfill(tool)) {
        const j = lastJson(tt.stdout);
        if (j?.errors?.length) return `${j.errors.length} errors, first: ${j.errors[0].path}: ${j.errors[0].message}`;
      }
      const c = compare(ref, this.restoredHome(tool, target, ctx.home), { hashMod: ctx.hashMod });
      return c.ok || `${c.missing} missing, ${c.differ} differ, ${c.extra} unexpected; ${c.problems.join('; ')}`;
    });
    sh('rm', ['-rf', target]);
  }

  /**
   * In-place scenarios need a damaged live tree at the snapshotted path: the pristine source
   * is renamed aside, a copy takes its place, is damaged, restored, checked, then dropped.
   */
  withDamagedCopy(ctx, damage, body) {
    const pristine = ctx.src + '.pristine';
    fs.renameSync(ctx.src, pristine);
    try {
      sh('cp', ['-a', pristine, ctx.src]);
      const info = damage();
      body(info);
    } finally {
      sh('rm', ['-rf', ctx.src]);
      fs.renameSync(pristine, ctx.src);
    }
  }

  restoreMissing(ctx, tool, run, ref, scenario) {
    this.withDamagedCopy(
      ctx,
      () => {
        const deleted = scenario === 'restore_missing_7d' ? deleteOlderThan(ctx.home, 7) : deleteShare(ctx.home, 0.1, this.o.seed + run);
        const after = writeAfterSnapshot(ctx.home, this.o.seed + run);
        const expected = new Map(ref);
        for (const rel of after) expected.set(rel, manifest(ctx.home + rel).get(''));
        return { deleted, expected };
      },
      ({ deleted, expected }) => {
        let t;
        if (isSnapfill(tool)) t = this.snapfill(ctx, ['restore', 'latest', ctx.home, '--mode', 'missing'], undefined, tool);
        else t = this.run1(ctx, tool, 'rsync', ['-aH', '--ignore-existing', ctx.plain + '/', ctx.home + '/']);
        this.record(ctx, scenario, tool, run, t, (tt) => {
          if (isSnapfill(tool)) {
            const j = lastJson(tt.stdout);
            if (j?.errors?.length) return `${j.errors.length} errors, first: ${j.errors[0].path}: ${j.errors[0].message}`;
            if (j && j.files_restored < deleted) return `files_restored ${j.files_restored} < ${deleted} deleted`;
          }
          // Directory mtimes moved when files were deleted and written back: not comparable here.
          const c = compare(expected, ctx.home, { hashMod: ctx.hashMod, dirMtime: false });
          return c.ok || `${c.missing} missing, ${c.differ} differ, ${c.extra} unexpected; ${c.problems.join('; ')}`;
        });
      },
    );
  }

  /**
   * A pass over the snapshotted tree in place where nothing was lost: snapfill's `missing` or
   * `metadata` restore, rsync from the plain copy (`--ignore-existing`, or plain `-aH`). Nothing
   * may be written: every file keeps its inode and the tree still matches.
   */
  intactPass(ctx, tool, run, ref, scenario) {
    const inodes = new Map();
    for (const [rel, e] of manifest(ctx.home, { hashMod: 0 })) if (e.d.startsWith('f ')) inodes.set(rel, e.ino);
    const metadata = scenario === 'intact_metadata';
    let t;
    if (isSnapfill(tool))
      t = this.snapfill(ctx, ['restore', 'latest', ctx.home, '--mode', metadata ? 'metadata' : 'missing'], undefined, tool);
    else t = this.run1(ctx, tool, 'rsync', ['-aH', ...(metadata ? [] : ['--ignore-existing']), ctx.plain + '/', ctx.home + '/']);
    this.record(ctx, scenario, tool, run, t, (tt) => {
      if (isSnapfill(tool)) {
        const j = lastJson(tt.stdout);
        if (j?.errors?.length) return `${j.errors.length} errors, first: ${j.errors[0].path}: ${j.errors[0].message}`;
        if (j && (j.bytes_written || j.files_restored || j.metadata_fixed))
          return `an intact tree was changed: ${JSON.stringify(j.planned)}`;
      }
      const c = compare(ref, ctx.home, { hashMod: ctx.hashMod, inodes });
      return c.ok || `${c.missing} missing, ${c.differ} differ, ${c.extra} unexpected; ${c.problems.join('; ')}`;
    });
  }

  metadataRepair(ctx, tool, run, ref) {
    this.withDamagedCopy(
      ctx,
      () => {
        damageMetadata(ctx.home);
        const inodes = new Map();
        for (const [rel, e] of manifest(ctx.home, { hashMod: 0 })) if (e.d.startsWith('f ')) inodes.set(rel, e.ino);
        return { inodes };
      },
      ({ inodes }) => {
        let t;
        if (isSnapfill(tool)) t = this.snapfill(ctx, ['restore', 'latest', ctx.home, '--mode', 'metadata'], undefined, tool);
        else t = this.run1(ctx, tool, 'rsync', ['-aH', ctx.plain + '/', ctx.home + '/']);
        this.record(ctx, 'metadata_repair', tool, run, t, (tt) => {
          if (isSnapfill(tool)) {
            const j = lastJson(tt.stdout);
            if (j?.errors?.length) return `${j.errors.length} errors, first: ${j.errors[0].path}: ${j.errors[0].message}`;
            if (j && j.bytes_written) return `metadata mode wrote ${j.bytes_written} bytes of data`;
          }
          const c = compare(ref, ctx.home, { hashMod: ctx.hashMod, inodes });
          return c.ok || `${c.missing} missing, ${c.differ} differ, ${c.extra} unexpected; ${c.problems.join('; ')}`;
        });
      },
    );
  }

  accountRestore(ctx, tool, run, ref) {
    const name = ctx.account;
    const live = path.join(ctx.home, name);
    const stash = path.join(ctx.root, 'stash-' + name);
    const homeTimes = fs.statSync(ctx.home); // the rename moves /home's mtime; put it back after
    fs.renameSync(live, stash); // the customer deleted their home directory
    try {
      const r = ctx.repo;
      const others = fs.readdirSync(ctx.home).sort().join(',');
      let t;
      if (isSnapfill(tool)) t = this.snapfill(ctx, ['restore', 'latest', '--account', name, '--accounts-root', ctx.home], undefined, tool);
      else if (tool === 'restic')
        t = this.run1(ctx, tool, 'restic', ['-r', r.restic, 'restore', 'latest', '--target', '/', '--include', live]);
      else if (tool === 'borg') t = this.run1(ctx, tool, 'borg', ['extract', `${r.borg}::s3`, live.slice(1)], '/');
      else t = this.run1(ctx, tool, 'rsync', ['-aH', path.join(ctx.plain, name) + '/', live + '/']);
      this.record(ctx, 'account_restore', tool, run, t, (tt) => {
        if (isSnapfill(tool)) {
          const j = lastJson(tt.stdout);
          if (j?.errors?.length) return `${j.errors.length} errors, first: ${j.errors[0].path}: ${j.errors[0].message}`;
        }
        const now = fs
          .readdirSync(ctx.home)
          .filter((n) => n !== name)
          .sort()
          .join(',');
        if (now !== others) return 'other accounts changed';
        const c = compare(ref, ctx.home, { hashMod: ctx.hashMod, under: '/' + name });
        return c.ok || `${c.missing} missing, ${c.differ} differ, ${c.extra} unexpected; ${c.problems.join('; ')}`;
      });
    } finally {
      sh('rm', ['-rf', live]);
      fs.renameSync(stash, live);
      fs.utimesSync(ctx.home, homeTimes.atime, homeTimes.mtime);
    }
  }

  measureCatalogGrowth(ctx) {
    if (this.available('snapfill')) return;
    log(`[${ctx.fsName}] catalog growth over 10 no-change snapshots`);
    this.initRepos(ctx, ['snapfill']);
    const stats = () => {
      const r = sh(process.execPath, [BIN, '--json', 'stats'], { env: { ...process.env, ...this.env(ctx, 'snapfill') } });
      const j = lastJson(r.stdout);
      return {
        catalog_bytes: j.catalog_bytes,
        index_bytes: j.index_bytes,
        snapshot_bytes: j.snapshot_bytes,
        metadata_bytes: j.catalog_bytes + j.index_bytes + j.snapshot_bytes,
        pack_bytes: j.pack_bytes,
      };
    };
    const first = this.snapfill(ctx, ['snapshot', ctx.home]);
    if (first.status !== 0) {
      this.notes.push(`catalog growth: first snapshot failed: ${first.stderr.slice(-300)}`);
      return;
    }
    const s1 = stats();
    const times = [];
    for (let i = 0; i < 10; i++) {
      const t = this.snapfill(ctx, ['snapshot', ctx.home]);
      if (t.status !== 0) {
        this.notes.push(`catalog growth: snapshot ${i + 2} failed`);
        return;
      }
      times.push(t.seconds);
    }
    const s11 = stats();
    const growth = (s11.metadata_bytes - s1.metadata_bytes) / s1.metadata_bytes;
    this.catalogGrowth = {
      fs: ctx.fsName,
      after_first: s1,
      after_11: s11,
      growth,
      target: 0.1,
      ok: growth <= 0.1,
      nochange_median_s: median(times),
    };
    log(`  metadata ${s1.metadata_bytes} -> ${s11.metadata_bytes} bytes: +${(growth * 100).toFixed(1)}% (target <= 10%)`);
  }

  /** Everything on one file system. */
  runFs(fsName, base) {
    const o = this.o;
    const root = path.join(base, `${o.profile}-${o.files}`);
    const ctx = {
      fsName,
      root,
      src: path.join(root, 'src'),
      home: path.join(root, 'src', 'home'),
      repoDir: path.join(root, 'repos'),
      plain: path.join(root, 'plain', 'home'),
      hashMod: o.files <= 30_000 ? 1 : o.files <= 300_000 ? 10 : 50,
    };
    ctx.repo = {
      snapfill: path.join(ctx.repoDir, 'snapfill'),
      snapfillCache: path.join(ctx.repoDir, 'snapfill-cache'),
      snapfill_base: path.join(ctx.repoDir, 'snapfill-base'),
      snapfill_baseCache: path.join(ctx.repoDir, 'snapfill-base-cache'),
      restic: path.join(ctx.repoDir, 'restic'),
      resticCache: path.join(ctx.repoDir, 'restic-cache'),
      borg: path.join(ctx.repoDir, 'borg'),
      borgBase: path.join(ctx.repoDir, 'borg-base'),
      tar: path.join(ctx.repoDir, 'tar'),
    };
    // Room: source, a plain copy, a restore target or damaged copy, four repositories ~ 6x the data.
    const need = o.files * 7000 * 6 + (o.profile === '1m' ? 1.2e9 * 6 : 0);
    fs.mkdirSync(base, { recursive: true });
    const st = fs.statfsSync(base);
    const free = st.bavail * st.bsize;
    if (free < need) {
      this.notes.push(
        `${fsName}: skipped, ${base} has ${(free / 1e9).toFixed(1)} GB free and this profile needs ~${(need / 1e9).toFixed(1)} GB`,
      );
      log(this.notes[this.notes.length - 1]);
      return;
    }
    fs.rmSync(root, { recursive: true, force: true });
    fs.mkdirSync(root, { recursive: true });
    log(`[${fsName}] generating ${o.files} files under ${ctx.src}`);
    const ds = o.source
      ? copySource(o.source, ctx.home)
      : generate({ out: ctx.src, seed: o.seed, files: o.files, bigFile: o.profile === '1m', createUsers: o.createUsers, log });
    this.datasets[fsName] = { ...ds, plan: undefined };
    log(
      `[${fsName}] ${ds.files} files, ${(ds.bytes / 1048576).toFixed(0)} MiB, ${ds.older_than_7d} older than 7 days, generated in ${ds.seconds.toFixed(1)} s`,
    );
    ctx.account = fs.readdirSync(ctx.home).sort()[1] ?? fs.readdirSync(ctx.home)[0];

    const describe = () => {
      const m = manifest(ctx.home, { hashMod: ctx.hashMod });
      let files = 0,
        bytes = 0;
      for (const e of m.values())
        if (e.d.startsWith('f ')) {
          files++;
          bytes += Number(e.d.split(' ')[3]);
        }
      return { m, files, bytes, hardlinks: ds.hardlinks * 2 };
    };
    for (let run = 1; run <= o.runs; run++) {
      log(`[${fsName}] run ${run}/${o.runs}`);
      const snapTools = SCENARIOS[0].tools.filter((t) => !this.available(t));
      this.initRepos(ctx, snapTools);
      let cur = describe();
      const doSnap = (key, n, tools) => {
        for (const t of tools) {
          const rec = this.wants(key) ? this.snapshot(ctx, t, n, key, run, cur) : null;
          if (!rec && n > 1) this.snapshot(ctx, t, n, key + '_setup', run, cur); // later scenarios need the repository
        }
      };
      for (const t of this.toolsFor(ctx, 'full_snapshot', run)) {
        if (this.wants('full_snapshot')) this.snapshot(ctx, t, 1, 'full_snapshot', run, cur);
        else if (t !== 'tar') this.snapshot(ctx, t, 1, 'full_snapshot_setup', run, cur); // later scenarios need it
      }
      const incTools = this.toolsFor(ctx, 'nochange_snapshot', run);
      doSnap('nochange_snapshot', 2, incTools);
      const ch = churn(ctx.home, { seed: o.seed, round: run });
      cur = { ...describe(), churned: ch.modified + ch.added };
      doSnap('churn_snapshot', 3, incTools);
      const ref = cur.m;
      if (this.wants('repo_size')) {
        for (const t of this.toolsFor(ctx, 'repo_size', run)) {
          const bytes = apparentBytes(ctx.repo[t]);
          const extra = isSnapfill(t) ? { catalog_bytes: apparentBytes(ctx.repo[t + 'Cache']) } : {};
          this.sizes.push({ fs: fsName, run, tool: t, bytes, ...extra });
        }
      }
      // The peers' restore sources for the tree as of snapshot 3 (untimed).
      if (this.available('tar') === null) sh('tar', [...tarFormat(o), '-cf', path.join(ctx.repo.tar, 'full.tar'), '-C', ctx.src, 'home']);
      if (this.available('rsync') === null) {
        sh('rm', ['-rf', ctx.plain]);
        fs.mkdirSync(path.dirname(ctx.plain), { recursive: true });
        sh('rsync', ['-aH', ctx.home + '/', ctx.plain + '/']);
      }
      // Before any damage: the tree is still the one snapshot 3 read (same inodes).
      for (const key of ['intact_missing', 'intact_metadata']) {
        if (this.wants(key)) for (const t of this.toolsFor(ctx, key, run)) this.intactPass(ctx, t, run, ref, key);
      }
      if (this.wants('full_restore')) for (const t of this.toolsFor(ctx, 'full_restore', run)) this.fullRestore(ctx, t, run, ref);
      for (const key of ['restore_missing_7d', 'restore_missing_10pct']) {
        if (this.wants(key)) for (const t of this.toolsFor(ctx, key, run)) this.restoreMissing(ctx, t, run, ref, key);
      }
      if (this.wants('metadata_repair')) for (const t of this.toolsFor(ctx, 'metadata_repair', run)) this.metadataRepair(ctx, t, run, ref);
      if (this.wants('account_restore')) for (const t of this.toolsFor(ctx, 'account_restore', run)) this.accountRestore(ctx, t, run, ref);
    }
    if (this.wants('catalog_growth') && !this.catalogGrowth) this.measureCatalogGrowth(ctx);
    if (!o.keep) fs.rmSync(root, { recursive: true, force: true });
  }

  summary() {
    const rows = [];
    for (const fsName of this.o.fs) {
      for (const sc of SCENARIOS) {
        if (!this.wants(sc.key)) continue;
        const row = { fs: fsName, scenario: sc.key, title: sc.title, tools: {} };
        for (const t of sc.tools) {
          if (sc.size) {
            const xs = this.sizes.filter((s) => s.fs === fsName && s.tool === t).map((s) => s.bytes);
            if (xs.length) row.tools[t] = { median: median(xs) / 1048576, unit: 'MiB', ok: true, runs: xs.length };
            continue;
          }
          const recs = this.results.filter((r) => r.fs === fsName && r.scenario === sc.key && r.tool === t);
          const sk = this.skipped.find((s) => s.fs === fsName && s.scenario === sc.key && s.tool === t);
          if (!recs.length) {
            if (sk) row.tools[t] = { skipped: sk.reason };
            continue;
          }
          const good = recs.filter((r) => r.ok);
          row.tools[t] = {
            median: median(good.map((r) => r.seconds)),
            unit: 's',
            ok: good.length === recs.length,
            runs: recs.length,
            max_rss_mib: Math.max(0, ...recs.map((r) => r.rss_kb ?? 0)) / 1024,
            wrong: recs.filter((r) => !r.ok).map((r) => `run ${r.run}: ${r.detail}`),
          };
        }
        const s = row.tools.snapfill;
        for (const t of sc.tools) {
          const p = row.tools[t];
          if (t !== 'snapfill' && p?.median && s?.median && s.ok && p.ok) p.ratio = s.median / p.median;
        }
        rows.push(row);
      }
    }
    const rss = {};
    for (const r of this.results) rss[r.tool] = Math.max(rss[r.tool] ?? 0, (r.rss_kb ?? 0) / 1024);
    return { rows, peak_rss_mib: rss };
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

const fmt = (v, unit) =>
  v === null || v === undefined ? '–' : unit === 'MiB' ? `${v.toFixed(1)} MiB` : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} s`;

function cell(c) {
  if (!c) return '–';
  if (c.skipped) return 'skipped';
  if (!c.ok) return `**wrong** (${fmt(c.median, c.unit)})`;
  return fmt(c.median, c.unit) + (c.ratio !== undefined ? ` (**${c.ratio.toFixed(2)}x**)` : '');
}

export function renderTable(summary, fsName) {
  const lines = [
    `| scenario | ${ALL_TOOLS.join(' | ')} | peak RSS MiB (${ALL_TOOLS.join(' / ')}) |`,
    `|---|${ALL_TOOLS.map(() => '---').join('|')}|---|`,
  ];
  for (const row of summary.rows.filter((r) => r.fs === fsName)) {
    const rss = ALL_TOOLS.map((t) => (row.tools[t]?.max_rss_mib ? row.tools[t].max_rss_mib.toFixed(0) : '–')).join(' / ');
    lines.push(`| ${row.title} | ${ALL_TOOLS.map((t) => cell(row.tools[t])).join(' | ')} | ${row.scenario === 'repo_size' ? '' : rss} |`);
  }
  return lines.join('\n');
}

function renderMarkdown(res) {
  const o = res.options;
  const out = [];
  out.push(
    `### Profile \`${o.profile}\`: ${res.datasets.tmpfs?.files ?? res.datasets.disk?.files ?? o.files} files, ${o.runs} run(s), ${res.date}`,
  );
  out.push('');
  out.push(
    `Command: \`${res.command}\` (snapfill: the working tree's build at commit ${res.machine.snapfill ?? '?'}). Raw results: \`${res.results_file}\`. Took ${(res.seconds / 60).toFixed(0)} min.`,
  );
  if (res.machine.load_start)
    out.push(
      `Load average (1 min) at start ${res.machine.load_start}, at end ${res.machine.load_end} on ${res.machine.nproc} CPUs: other jobs were running.`,
    );
  out.push('');
  out.push(
    `Machine: ${res.machine.nproc} CPUs (${res.machine.cpu}), Linux ${res.machine.kernel}, Node ${res.machine.node}; ${res.machine.restic}; ${res.machine.borg}; ${res.machine.tar}; ${res.machine.rsync}.`,
  );
  out.push('');
  out.push('```');
  out.push(res.machine.free);
  out.push(res.machine.df);
  out.push('```');
  for (const fsName of Object.keys(res.datasets)) {
    const ds = res.datasets[fsName];
    out.push('');
    out.push(`#### ${fsName === 'tmpfs' ? "tmpfs (/dev/shm): the software's own cost" : 'disk: what a server sees (noisy)'}`);
    out.push('');
    out.push(
      `Dataset: ${ds.files} files, ${(ds.bytes / 1048576).toFixed(0)} MiB, ${ds.accounts} accounts, ${ds.symlinks} symlinks, ${ds.hardlinks} hardlinks, ${ds.older_than_7d} files older than 7 days; ${ds.owners}.`,
    );
    out.push('');
    out.push(
      'Median wall time; `(0.50x)` = snapfill time / peer time (below 1 means snapfill is faster). **wrong** = the result failed the check.',
    );
    out.push('');
    out.push(renderTable(res.summary, fsName));
  }
  out.push('');
  out.push(
    `Peak RSS over every scenario (MiB): ${Object.entries(res.summary.peak_rss_mib)
      .map(([t, v]) => `${t} ${v.toFixed(0)}`)
      .join(', ')}.`,
  );
  if (res.catalog_growth) {
    const g = res.catalog_growth;
    out.push('');
    out.push(
      `Catalog growth (${g.fs}): catalog + index + snapshot records ${g.after_first.metadata_bytes} bytes after the first snapshot, ${g.after_11.metadata_bytes} after 10 more no-change snapshots: **+${(g.growth * 100).toFixed(1)}%** (target <= 10%: ${g.ok ? 'met' : 'NOT met'}); no-change snapshot median ${g.nochange_median_s.toFixed(2)} s.`,
    );
  }
  const wrong = res.summary.rows.flatMap((r) =>
    Object.entries(r.tools)
      .filter(([, c]) => c.wrong?.length)
      .map(([t, c]) => `- ${r.fs} / ${r.title} / ${t}: ${c.wrong.join('; ')}`),
  );
  if (wrong.length) {
    out.push('');
    out.push('Failed checks:');
    out.push('');
    out.push(...wrong);
  }
  if (res.skipped.length) {
    out.push('');
    out.push('Skipped: ' + [...new Set(res.skipped.map((s) => `${s.tool} in ${s.scenario} (${s.reason})`))].join('; ') + '.');
  }
  if (res.notes.length) {
    out.push('');
    out.push('Notes: ' + res.notes.join(' '));
  }
  return out.join('\n');
}

/** Replaces (or appends) this profile's generated section in BENCHMARKS.md. */
function updateMarkdown(file, profile, section) {
  const begin = `<!-- bench:${profile}:begin -->`;
  const end = `<!-- bench:${profile}:end -->`;
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  const block = `${begin}\n${section}\n${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : text.trimEnd() + '\n\n' + block + '\n';
  const tmp = file + '.tmp';
  fs.writeFileSync(tmp, next);
  fs.renameSync(tmp, file);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (o.render) {
    const res = JSON.parse(fs.readFileSync(o.render, 'utf8'));
    const p = res.options;
    if (!o.markdown) throw new Error('--render needs a markdown file');
    updateMarkdown(
      o.markdown,
      p.profile === 'default' && p.files !== PROFILES.default ? `files-${p.files}` : p.profile,
      renderMarkdown(res),
    );
    process.stdout.write(`updated ${o.markdown} from ${o.render}\n`);
    return;
  }
  const bench = new Bench(o);
  const started = new Date();
  installPeers(o, bench.notes);
  if (fs.existsSync(path.join(ROOT, 'dist', 'cli', 'program.js'))) BIN = freezeBuild(ROOT, { notes: bench.notes, log });
  if (o.baseline) {
    if (!fs.existsSync(path.join(o.baseline, 'dist', 'cli', 'program.js')))
      throw new Error(`--baseline ${o.baseline} has no built dist/ (run npx tsc -p . there)`);
    BASE_BIN = freezeBuild(o.baseline, { notes: bench.notes, log });
    const rev = spawnSync('git', ['-C', o.baseline, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    bench.notes.push(`snapfill_base = the build of ${o.baseline}${rev ? ` (commit ${rev})` : ''}; its ratio is this build / baseline.`);
  }
  if (!fs.existsSync(TIME)) bench.notes.push('GNU time (/usr/bin/time) is missing: no peak RSS.');
  for (const t of ALL_TOOLS) {
    const why = bench.available(t);
    if (why && o.tools.includes(t)) log(`${t}: ${why}; its scenarios are skipped`);
  }
  let canDrop = false;
  try {
    fs.accessSync('/proc/sys/vm/drop_caches', fs.constants.W_OK);
    canDrop = true;
  } catch {
    /* read-only in a container */
  }
  bench.notes.push(
    canDrop
      ? o.dropCaches
        ? 'The page cache was dropped before each timed disk operation.'
        : 'The page cache was NOT dropped (it is machine-wide; pass --drop-caches on a quiet machine): disk reads may come from memory.'
      : 'The page cache cannot be dropped here (/proc/sys/vm/drop_caches is read-only in this container): disk numbers include warm-cache reads.',
  );
  bench.notes.push(
    `restic uses a fixed password (${RESTIC_PASSWORD}) because it always encrypts; borg runs with \`init -e none\`; snapfill encrypts (its default) with the same fixed password from a file.`,
    'rsync runs with -aH (hardlinks preserved) from a plain copy made untimed after the third snapshot.',
    'On disk a `sync -f` runs (untimed) before each timed command so earlier writeback is not billed to it.',
  );
  const machineInfo = machine();
  for (const fsName of o.fs) bench.runFs(fsName, fsName === 'tmpfs' ? o.tmpfsDir : o.diskDir);
  machineInfo.load_end = os.loadavg()[0].toFixed(1);
  const summary = bench.summary();
  const stamp = started.toISOString().replace(/:/g, '').replace(/\..*/, 'Z');
  fs.mkdirSync(o.resultsDir, { recursive: true });
  const resultsFile = path.join(o.resultsDir, `${stamp}-${o.profile}${o.files !== PROFILES[o.profile] ? '-' + o.files : ''}.json`);
  const res = {
    date: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    results_file: path.relative(ROOT, resultsFile),
    options: { ...o, markdown: o.markdown && path.relative(ROOT, o.markdown) },
    machine: machineInfo,
    datasets: bench.datasets,
    summary,
    sizes: bench.sizes,
    catalog_growth: bench.catalogGrowth,
    results: bench.results,
    skipped: bench.skipped,
    notes: bench.notes,
  };
  fs.writeFileSync(resultsFile, JSON.stringify(res, null, 1) + '\n');
  for (const fsName of Object.keys(bench.datasets)) {
    process.stdout.write(`\n${fsName}\n${renderTable(summary, fsName)}\n`);
  }
  if (bench.catalogGrowth)
    process.stdout.write(
      `\ncatalog growth over 10 no-change snapshots: +${(bench.catalogGrowth.growth * 100).toFixed(1)}% (target <= 10%)\n`,
    );
  process.stdout.write(
    `\npeak RSS (MiB): ${Object.entries(summary.peak_rss_mib)
      .map(([t, v]) => `${t} ${v.toFixed(0)}`)
      .join(', ')}\n`,
  );
  process.stdout.write(`results: ${resultsFile}\n`);
  if (o.markdown) {
    updateMarkdown(
      o.markdown,
      o.profile === 'default' && o.files !== PROFILES.default ? `files-${o.files}` : o.profile,
      renderMarkdown(res),
    );
    process.stdout.write(`updated ${o.markdown}\n`);
  }
  const wrong = summary.rows.some((r) => Object.values(r.tools).some((c) => c.ok === false));
  process.exitCode = wrong ? 3 : 0;
}

main().catch((e) => {
  process.stderr.write(`bench: ${e.stack ?? e.message}\n`);
  process.exitCode = 1;
});
