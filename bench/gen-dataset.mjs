#!/usr/bin/env node
// Deterministic hosting-like dataset for the benchmarks (plain Node ESM, no build step).
//
//   node bench/gen-dataset.mjs --out DIR [--seed 1] [--files 200000 | --profile quick|default|1m]
//                              [--big-file] [--no-create-users] [--json]
//
// Writes DIR/home/<account>/... : WordPress-like installs whose core files are byte-identical
// across accounts, per-site uploads (incompressible binary), Maildirs (many tiny files), logs,
// modes 644/755 with some 600/700, public_html group `nobody`, one uid/gid per account,
// symlinks, a few hardlinks, mtimes spread over the last 60 days. Contents, names, modes and
// ages depend only on --seed and --files; mtimes are relative to the generation time (so that
// "older than 7 days" always selects the same files) and whole seconds (so tar's 1-second
// timestamps do not count as a restore error).
//
// Files are written with synchronous fs calls: for tiny files the cost is per-call overhead
// (DESIGN.md section 3), and sync calls are ~4x cheaper than promises.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PROFILES = { tiny: 300, quick: 20_000, default: 200_000, '1m': 1_000_000 };
const DAY = 86_400;
// Names that carry a time (Maildir, uploads/YYYY/MM) count from a fixed epoch so that names
// stay identical whenever the dataset is generated; only mtimes follow the clock.
const NAME_EPOCH = 1_700_000_000;
const BIG_FILE_BYTES = 1_100 * 1024 * 1024; // > 1 GB, real bytes (a read benchmark needs real data)

/** mulberry32: a small, fast, seedable PRNG; streams are derived from (seed, label). */
export function rng(seed, label = '') {
  let a = crypto.createHash('sha256').update(`${seed}:${label}`).digest().readUInt32LE(0);
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)), // inclusive
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    logUniform: (lo, hi) => Math.round(Math.exp(Math.log(lo) + next() * (Math.log(hi) - Math.log(lo)))),
  };
}

const WORDS = (
  'the function return array string wp_query post meta option user admin plugin theme ' +
  'content header footer sidebar widget echo isset empty foreach if else while class public private ' +
  'static new this value key data result error message mail from to subject date received message-id ' +
  'hello thanks order invoice customer account password reset link click please regards team support ' +
  'http https www com net org html body div span style script src href img alt title width height'
).split(' ');

/** A pool of text with realistic compressibility; text files are unique slices of it plus a header. */
function textPool(seed, bytes) {
  const r = rng(seed, 'textpool');
  const parts = [];
  let n = 0;
  while (n < bytes) {
    let line = '';
    const words = r.int(3, 14);
    for (let i = 0; i < words; i++) line += (i ? ' ' : '') + r.pick(WORDS);
    line += r.next() < 0.3 ? ` ${r.int(0, 999999)};\n` : '\n';
    parts.push(line);
    n += line.length;
  }
  return Buffer.from(parts.join(''), 'latin1');
}

/** Incompressible, deterministic bytes (AES-CTR keystream keyed by seed and a label). */
function binary(seed, label, size) {
  const key = crypto.createHash('sha256').update(`${seed}:bin:${label}`).digest();
  const c = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return c.update(Buffer.alloc(size));
}

/** Resolves account owners: real users (root, allowed), numeric ids (root, not allowed), or ourselves. */
function owners(accounts, { createUsers }) {
  const isRoot = process.getuid?.() === 0;
  const nobodyGid = groupId('nobody') ?? groupId('nogroup') ?? 65534;
  const nobodyName = groupId('nobody') !== undefined ? 'nobody' : groupId('nogroup') !== undefined ? 'nogroup' : '65534';
  if (!isRoot) {
    return {
      mode: `not root: every file owned by uid ${process.getuid?.()} gid ${process.getgid?.()} (no chown possible)`,
      chown: false,
      ids: accounts.map(() => ({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 })),
      nobodyGid: process.getgid?.() ?? 0,
    };
  }
  if (!createUsers) {
    return {
      mode: `root, --no-create-users: account i owned by numeric uid/gid ${20000}+i (no names); public_html group ${nobodyName} (${nobodyGid})`,
      chown: true,
      ids: accounts.map((_a, i) => ({ uid: 20000 + i, gid: 20000 + i })),
      nobodyGid,
    };
  }
  const created = [];
  const ids = accounts.map((name) => {
    let uid = userId(name);
    if (uid === undefined) {
      if (groupId(name) === undefined) run('groupadd', [name]);
      run('useradd', ['--no-create-home', '--home-dir', `/home/${name}`, '--shell', '/usr/sbin/nologin', '--gid', name, name]);
      created.push(name);
      uid = userId(name);
    }
    return { uid, gid: groupId(name) };
  });
  return {
    mode: `root: users/groups ${accounts[0]}..${accounts[accounts.length - 1]} (${created.length} created now, ${accounts.length - created.length} existed); public_html group ${nobodyName} (${nobodyGid})`,
    chown: true,
    ids,
    nobodyGid,
  };
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error}`);
}

function lookup(file, name) {
  try {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name) return Number(f[2]);
    }
  } catch {
    /* no such file */
  }
  return undefined;
}
const userId = (n) => lookup('/etc/passwd', n);
const groupId = (n) => lookup('/etc/group', n);

/** Plans the dataset: how many accounts and files of each kind for a total file count. */
function plan(files) {
  const accounts = Math.max(2, Math.round(files / 800));
  const wpAccounts = Math.max(1, Math.round(accounts * 0.8));
  return {
    accounts,
    wpAccounts,
    coreFiles: Math.max(20, Math.round((files * 0.55) / wpAccounts)), // identical in every WP account
    mailPerAccount: Math.max(5, Math.round((files * 0.32) / accounts)),
    uploadsPerWp: Math.max(1, Math.round((files * 0.03) / wpAccounts)),
    uniquePerAccount: Math.max(6, Math.round((files * 0.09) / accounts)),
  };
}

/**
 * Writes the dataset under `out/home`. Returns a summary (counts, bytes, owner mode).
 * `bigFile` adds one real (not sparse) file over 1 GB.
 */
export function generate({ out, seed = 1, files = PROFILES.default, bigFile = false, createUsers = true, log = () => {} }) {
  const t0 = Date.now();
  const now = Math.floor(Date.now() / 1000);
  const oldUmask = process.umask(0);
  const home = path.join(out, 'home');
  fs.rmSync(home, { recursive: true, force: true });
  fs.mkdirSync(home, { recursive: true, mode: 0o755 });
  const p = plan(files);
  const names = Array.from({ length: p.accounts }, (_v, i) => `sfb${String(i + 1).padStart(5, '0')}`);
  const own = owners(names, { createUsers });
  log(`dataset: ${files} files in ${p.accounts} accounts; owners: ${own.mode}`);
  const pool = textPool(seed, 4 * 1024 * 1024);
  const r = rng(seed, 'layout');
  const stats = { files: 0, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 0, older_than_7d: 0, accounts: p.accounts, owners: own.mode };
  const dirTimes = [];

  const textOf = (label, size) => {
    const head = Buffer.from(`<?php /* ${label} */\n`, 'latin1');
    const off = r.int(0, pool.length - size - 1);
    return Buffer.concat([head, pool.subarray(off, off + Math.max(0, size - head.length))]);
  };
  // WordPress core: generated once, written into every WP account byte for byte.
  const coreDirs = [
    'wp-admin',
    'wp-admin/includes',
    'wp-admin/css',
    'wp-admin/js',
    'wp-includes',
    'wp-includes/js',
    'wp-includes/css',
    'wp-includes/blocks',
    'wp-content/themes/twentytwenty',
    'wp-content/plugins/akismet',
  ];
  const core = [];
  for (let i = 0; i < p.coreFiles; i++) {
    const dir = i < 3 ? '' : coreDirs[i % coreDirs.length];
    const ext = dir.includes('css') ? 'css' : dir.includes('js') ? 'js' : 'php';
    const size = r.next() < 0.03 ? r.int(8192, 65536) : r.int(100, 8192);
    core.push({ rel: path.join(dir, i === 0 ? 'index.php' : `f${i}.${ext}`), data: textOf(`wp core ${i}`, size) });
  }
  const coreAge = (ai) => (8 + ((ai * 7) % 50)) * DAY; // each install is weeks old

  const mkdir = (d, mode, uid, gid, age) => {
    fs.mkdirSync(d, { mode });
    if (own.chown) fs.chownSync(d, uid, gid);
    dirTimes.push([d, now - age]);
    stats.dirs++;
  };
  const made = new Set();
  const ensureDir = (root, rel, mode, uid, gid, age) => {
    let cur = root;
    for (const part of rel.split('/')) {
      if (!part) continue;
      cur = path.join(cur, part);
      if (!made.has(cur)) {
        made.add(cur);
        mkdir(cur, mode, uid, gid, age);
      }
    }
  };
  const write = (file, data, mode, uid, gid, age) => {
    const fd = fs.openSync(file, 'wx', mode);
    try {
      fs.writeSync(fd, data);
      if (own.chown) fs.fchownSync(fd, uid, gid);
      fs.futimesSync(fd, now - age, now - age);
    } finally {
      fs.closeSync(fd);
    }
    stats.files++;
    stats.bytes += data.length;
    if (age > 7 * DAY) stats.older_than_7d++;
  };
  const symlink = (target, at, uid, gid, age) => {
    fs.symlinkSync(target, at);
    if (own.chown) fs.lchownSync(at, uid, gid);
    fs.lutimesSync(at, now - age, now - age);
    stats.symlinks++;
  };

  for (let ai = 0; ai < p.accounts; ai++) {
    const name = names[ai];
    const { uid, gid } = own.ids[ai];
    const acct = path.join(home, name);
    const isWp = ai < p.wpAccounts;
    const age = () => r.int(60, 60 * DAY);
    mkdir(acct, 0o711, uid, gid, 60 * DAY);
    made.add(acct);
    const web = path.join(acct, 'public_html');
    mkdir(web, 0o750, uid, own.nobodyGid, coreAge(ai));
    made.add(web);
    symlink('public_html', path.join(acct, 'www'), uid, gid, 60 * DAY);
    if (isWp) {
      for (const c of core) {
        const d = path.dirname(c.rel);
        if (d !== '.') ensureDir(web, d, 0o755, uid, gid, coreAge(ai));
        write(path.join(web, c.rel), c.data, 0o644, uid, gid, coreAge(ai));
      }
      write(path.join(web, 'wp-config.php'), textOf(`wp-config ${name} secret ${r.int(0, 1e9)}`, 3000), 0o600, uid, gid, coreAge(ai));
      for (let u = 0; u < p.uploadsPerWp; u++) {
        const a = age();
        const when = new Date((NAME_EPOCH - a) * 1000);
        const rel = `wp-content/uploads/${when.getUTCFullYear()}/${String(when.getUTCMonth() + 1).padStart(2, '0')}`;
        ensureDir(web, rel, 0o755, uid, gid, a);
        write(path.join(web, rel, `img-${u}.jpg`), binary(seed, `${name}/upload/${u}`, r.logUniform(8192, 262144)), 0o644, uid, gid, a);
      }
      ensureDir(web, 'wp-content/uploads', 0o755, uid, gid, coreAge(ai));
      symlink('../../wp-content/uploads', path.join(web, 'wp-content/themes/uploads-link'), uid, gid, coreAge(ai));
    } else {
      write(path.join(web, 'index.html'), textOf(`static site ${name}`, r.int(500, 8000)), 0o644, uid, gid, age());
    }
    // Site-unique small files: caches, custom code, dotfiles.
    ensureDir(acct, 'public_html/cache', 0o755, uid, gid, 2 * DAY);
    ensureDir(acct, 'etc', 0o750, uid, gid, 30 * DAY);
    ensureDir(acct, 'tmp', 0o700, uid, gid, DAY);
    for (let u = 0; u < p.uniquePerAccount; u++) {
      const kind = u % 4;
      const file =
        kind === 0
          ? `public_html/cache/c${u}.html`
          : kind === 1
            ? `public_html/custom-${u}.php`
            : kind === 2
              ? `etc/conf-${u}`
              : `tmp/sess_${u}`;
      write(
        path.join(acct, file),
        textOf(`${name} unique ${u}`, r.int(100, 8192)),
        kind >= 2 ? 0o600 : 0o644,
        uid,
        gid,
        kind === 0 ? r.int(60, 3 * DAY) : age(),
      );
    }
    write(path.join(acct, '.bashrc'), textOf(`bashrc ${name}`, 400), 0o644, uid, gid, 60 * DAY - 1);
    // Maildir: many tiny files in cur/new/tmp.
    const md = `mail/example-${ai}.com/info`;
    for (const sub of ['cur', 'new', 'tmp']) ensureDir(acct, `${md}/${sub}`, 0o700, uid, gid, DAY);
    for (let m = 0; m < p.mailPerAccount; m++) {
      const a = age();
      const sub = a < 2 * DAY && m % 3 === 0 ? 'new' : 'cur';
      write(
        path.join(acct, md, sub, `${NAME_EPOCH - a}.M${m}P${ai}.host:2,S`),
        textOf(`mail ${name} ${m}`, r.int(300, 8192)),
        0o600,
        uid,
        gid,
        a,
      );
    }
    // A few hardlinks (one per ~10 accounts) and a dangling absolute symlink (one per ~20).
    if (ai % 10 === 0) {
      const src = path.join(acct, '.bashrc');
      fs.linkSync(src, path.join(acct, 'etc', 'bashrc.link'));
      stats.hardlinks++;
    }
    if (ai % 20 === 5) symlink('/var/cagefs/missing/' + name, path.join(acct, '.cagefs'), uid, gid, 60 * DAY);
    // Logs: a few large ones (text), recent.
    ensureDir(acct, 'logs', 0o750, uid, gid, 0);
    if (ai % 25 === 0) {
      const size = Math.min(8 << 20, Math.max(64 << 10, Math.round(files * 40)));
      const parts = [];
      for (let n = 0; n < size; n += pool.length) parts.push(pool.subarray(0, Math.min(pool.length, size - n)));
      parts[0] = Buffer.concat([Buffer.from(`${name} access log\n`), parts[0]]);
      write(path.join(acct, 'logs', 'access.log'), Buffer.concat(parts), 0o640, uid, gid, r.int(0, 3600));
    }
  }
  if (bigFile) {
    // One file over 1 GB, written in chunks (real bytes, incompressible).
    const { uid, gid } = own.ids[0];
    const f = path.join(home, names[0], 'backup-site.tar.gz');
    const fd = fs.openSync(f, 'wx', 0o600);
    const key = crypto.createHash('sha256').update(`${seed}:bigfile`).digest();
    const c = crypto.createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    const zero = Buffer.alloc(8 << 20);
    for (let n = 0; n < BIG_FILE_BYTES; n += zero.length) fs.writeSync(fd, c.update(zero));
    if (own.chown) fs.fchownSync(fd, uid, gid);
    fs.futimesSync(fd, now - 20 * DAY, now - 20 * DAY);
    fs.closeSync(fd);
    stats.files++;
    stats.bytes += BIG_FILE_BYTES;
    stats.older_than_7d++;
  }
  // Directory mtimes last: creating entries inside a directory moves its mtime.
  for (const [d, t] of dirTimes) fs.utimesSync(d, t, t);
  fs.utimesSync(home, now - 60 * DAY, now - 60 * DAY);
  process.umask(oldUmask);
  return { ...stats, plan: p, seed, seconds: (Date.now() - t0) / 1000, home };
}

/** Lists every regular file under dir, sorted (deterministic order for churn and damage). */
export function listFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const f = path.join(d, e.name);
      if (e.isDirectory()) walk(f);
      else if (e.isFile()) out.push(f);
    }
  };
  walk(dir);
  return out;
}

/**
 * 1% churn between snapshots, deterministic from (seed, round): rewrite 60% of the share,
 * add 30% as new mail, delete 10%. Touched files and their directories get a whole-second
 * mtime of now. Returns the counts.
 */
export function churn(home, { seed = 1, round = 1, fraction = 0.01 } = {}) {
  const r = rng(seed, `churn:${round}`);
  const now = Math.floor(Date.now() / 1000);
  const files = listFiles(home);
  const n = Math.max(3, Math.round(files.length * fraction));
  const touchedDirs = new Set();
  const counts = { modified: 0, added: 0, deleted: 0 };
  const chosen = new Set();
  const pickFile = () => {
    for (;;) {
      const f = files[r.int(0, files.length - 1)];
      if (chosen.has(f)) continue;
      const st = fs.lstatSync(f);
      if (st.nlink > 1) continue; // keep hardlink pairs stable
      chosen.add(f);
      return { f, st };
    }
  };
  for (let i = 0; i < Math.round(n * 0.6); i++) {
    const { f, st } = pickFile();
    const data = binary(seed, `churn:${round}:${f}`, Math.max(100, Math.min(st.size + r.int(-50, 200), 262144)));
    fs.writeFileSync(f, data);
    fs.utimesSync(f, now, now);
    counts.modified++;
  }
  const mailDirs = files.filter((f) => f.includes('/cur/')).map((f) => path.dirname(f).replace(/\/cur$/, '/new'));
  // A tree that is not a generated one (bench --source) has no mail: new files go beside others.
  if (!mailDirs.length) mailDirs.push(...new Set(files.map((f) => path.dirname(f))));
  for (let i = 0; i < Math.round(n * 0.3); i++) {
    const d = mailDirs[r.int(0, mailDirs.length - 1)];
    const f = path.join(d, `${NAME_EPOCH + round}.R${round}N${i}.host`);
    if (fs.existsSync(f)) continue;
    const st = fs.statSync(d);
    fs.writeFileSync(f, binary(seed, `new:${round}:${i}`, r.int(300, 8192)), { mode: 0o600 });
    fs.chownSync(f, st.uid, st.gid);
    fs.utimesSync(f, now, now);
    touchedDirs.add(d);
    counts.added++;
  }
  for (let i = 0; i < Math.round(n * 0.1); i++) {
    const { f } = pickFile();
    fs.unlinkSync(f);
    touchedDirs.add(path.dirname(f));
    counts.deleted++;
  }
  for (const d of touchedDirs) fs.utimesSync(d, now, now);
  return counts;
}

function parseArgs(argv) {
  const o = { seed: 1, files: PROFILES.default, bigFile: false, createUsers: true, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') o.out = v();
    else if (a === '--seed') o.seed = Number(v());
    else if (a === '--files') o.files = Number(v());
    else if (a === '--profile') {
      const p = v();
      if (!(p in PROFILES)) throw new Error(`unknown profile ${p} (${Object.keys(PROFILES).join(', ')})`);
      o.files = PROFILES[p];
      if (p === '1m') o.bigFile = true;
    } else if (a === '--big-file') o.bigFile = true;
    else if (a === '--no-create-users') o.createUsers = false;
    else if (a === '--json') o.json = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'usage: node bench/gen-dataset.mjs --out DIR [--seed N] [--files N | --profile tiny|quick|default|1m] [--big-file] [--no-create-users] [--json]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!o.out) throw new Error('--out DIR is required');
  if (!Number.isInteger(o.files) || o.files < 50) throw new Error('--files must be an integer >= 50');
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const o = parseArgs(process.argv.slice(2));
    const s = generate({ ...o, log: (m) => process.stderr.write(m + '\n') });
    if (o.json) process.stdout.write(JSON.stringify(s) + '\n');
    else
      process.stdout.write(
        `${s.files} files (${(s.bytes / 1048576).toFixed(0)} MiB), ${s.dirs} dirs, ${s.symlinks} symlinks, ${s.hardlinks} hardlinks, ` +
          `${s.accounts} accounts, ${s.older_than_7d} files older than 7 days, in ${s.seconds.toFixed(1)} s under ${s.home}\n`,
      );
  } catch (e) {
    process.stderr.write(`gen-dataset: ${e.message}\n`);
    process.exit(1);
  }
}
