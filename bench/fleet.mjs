#!/usr/bin/env node
// A fleet in one bucket (issue 15). N simulated hosts (own host name via SNAPFILL_HOST, own
// catalog cache, own source tree, about half of its content shared with every other host)
// snapshot concurrently in rounds into ONE s3rver on 127.0.0.1, while another process runs
// `forget --prune` in a loop. After the storm: `check --read-data`, and every kept snapshot is
// restored (by a fresh machine: empty cache, so other hosts' trees are imported on demand) and
// compared byte for byte with the tree it was taken of.
//
//   npm run build && node bench/fleet.mjs [--hosts 1,4,16] [--rounds 4] [--files 200] [--grace 20s]
//                                         [--spread SECONDS] [--gap SECONDS] [--kill] [--seed 1] [--dir DIR]
//                                         [--keep] [--json]
//
// --kill SIGKILLs a random host's snapshot and the pruner now and then (test/fleet.test.ts).
// --spread S starts the hosts of a round one after another over S seconds, in a random order
// (as a fleet's randomised schedules do), instead of all within a few seconds: a host then
// usually sees the shared content another host stored earlier, and stores it only once.
// --gap S waits S seconds between rounds (the pruner runs on): with more than a sync's 2-minute
// window, host 1's sync after a round lists only what that round wrote, as between a real
// fleet's snapshots hours apart.
// Reported per N: snapshots that failed or waited because of locks, prunes that could not run
// because a snapshot was running, check/restore results, host 1's catalog size and incremental
// sync time, and how often shared content is stored. Numbers are reported, never asserted here.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import * as crypto from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freezeBuild } from './freeze-build.mjs';
import { startS3rver } from './s3rver.mjs';
import Database from 'better-sqlite3';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const PASSWORD = 'fleet-bench-password';

function args() {
  const a = process.argv.slice(2);
  const o = {
    hosts: [1, 4, 16],
    rounds: 4,
    files: 200,
    grace: '20s',
    kill: false,
    seed: 1,
    dir: null,
    keep: false,
    json: false,
    frozen: true,
    spread: null, // seconds over which a round's host starts are spread (null: all within a few seconds)
    gap: 0, // seconds between rounds (a fleet's schedules are hours apart)
  };
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--hosts') o.hosts = a[++i].split(',').map(Number);
    else if (a[i] === '--rounds') o.rounds = Number(a[++i]);
    else if (a[i] === '--files') o.files = Number(a[++i]);
    else if (a[i] === '--grace') o.grace = a[++i];
    else if (a[i] === '--kill') o.kill = true;
    else if (a[i] === '--seed') o.seed = Number(a[++i]);
    else if (a[i] === '--dir') o.dir = a[++i];
    else if (a[i] === '--keep') o.keep = true;
    else if (a[i] === '--json') o.json = true;
    else if (a[i] === '--no-freeze') o.frozen = false;
    else if (a[i] === '--spread') o.spread = Number(a[++i]);
    else if (a[i] === '--gap') o.gap = Number(a[++i]);
    else {
      console.log(
        'usage: node bench/fleet.mjs [--hosts 1,4,16] [--rounds N] [--files N] [--grace 20s] [--spread SECONDS] [--gap SECONDS] [--kill] [--seed N] [--dir DIR] [--keep] [--json]',
      );
      process.exit(a[i] === '--help' ? 0 : 2);
    }
  }
  if (
    o.hosts.some((n) => !Number.isInteger(n) || n < 1) ||
    !(o.rounds >= 1) ||
    !(o.files >= 4) ||
    (o.spread !== null && !(o.spread >= 0)) ||
    !(o.gap >= 0)
  ) {
    console.error('fleet: --hosts are positive integers, --rounds >= 1, --files >= 4, --spread and --gap >= 0 seconds');
    process.exit(2);
  }
  return o;
}

const opts = args();
const log = (m) => process.stderr.write(`[fleet] ${m}\n`);
const BIN = opts.frozen ? freezeBuild(ROOT, { log }) : path.join(ROOT, 'bin', 'snapfill');

// ---- a deterministic random stream --------------------------------------------------------

function bytesFor(label, size) {
  // Incompressible and reproducible: the same label gives the same content on every host.
  const out = Buffer.alloc(size);
  let off = 0;
  for (let i = 0; off < size; i++) {
    const h = crypto.createHash('sha256').update(`${opts.seed}:${label}:${i}`).digest();
    off += h.copy(out, off);
  }
  return out;
}

function rnd(label) {
  return crypto.createHash('sha256').update(`${opts.seed}:${label}`).digest().readUInt32LE(0) / 2 ** 32;
}

const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');

// ---- the hosts' source trees ---------------------------------------------------------------

/**
 * Host h's tree: `shared/` (the same files with the same content on every host: the
 * WordPress core of the issue) and `own/` (content only this host has), files/2 each. Each
 * round changes a tenth of the shared files (the same change on every host: an update) and a
 * tenth of the own files. Returns the plain bytes of shared content written this round.
 */
function writeRound(srcDir, host, round) {
  const half = Math.floor(opts.files / 2);
  let sharedBytes = 0;
  for (let k = 0; k < half; k++) {
    const sharedGen = round === 0 || k % 10 === round % 10 ? round : null;
    if (sharedGen !== null) {
      const size = 2048 + Math.floor(rnd(`shared-size:${k}:${sharedGen}`) * 30000);
      const f = path.join(srcDir, 'shared', `d${k % 8}`, `f${k}.php`);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, bytesFor(`shared:${k}:${sharedGen}`, size));
      sharedBytes += size;
    }
    const ownGen = round === 0 || (k + host) % 10 === round % 10 ? round : null;
    if (ownGen !== null) {
      const size = 2048 + Math.floor(rnd(`own-size:${host}:${k}:${ownGen}`) * 30000);
      const f = path.join(srcDir, 'own', `d${k % 8}`, `f${k}.dat`);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, bytesFor(`own:${host}:${k}:${ownGen}`, size));
    }
  }
  return sharedBytes;
}

/** Relative path -> sha256 of every regular file below `dir`. */
function manifest(dir) {
  const out = new Map();
  const walk = (d, rel) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(p, r);
      else if (e.isFile()) out.set(r, sha(fs.readFileSync(p)));
    }
  };
  walk(dir, '');
  return out;
}

// ---- processes -----------------------------------------------------------------------------

/** Runs the CLI; `onSpawn` receives the child (to SIGKILL it). Resolves with code, stdout, stderr, json, ms. */
function run(argv, env, onSpawn) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [BIN, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('close', (code, signal) => {
      let json = null;
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {
        json = null;
      }
      resolve({ code: code ?? -1, signal, stdout, stderr, json, ms: Date.now() - t0 });
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A lock refusal or a wait for a lock, as the CLI reports it (exit 4, or a line naming a lock). */
const LOCK_FAIL = /\blocked\b|lock(ed)? by|holds the (exclusive )?(repository )?lock|RepoLocked/i;
const LOCK_WAIT = /waiting for .*lock|lock.*(wait|retry)/i;

function dirBytes(d, match = () => true) {
  let n = 0;
  if (!fs.existsSync(d)) return 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    if (e.isDirectory()) n += dirBytes(p, match);
    else if (match(e.name)) n += fs.statSync(p).size;
  }
  return n;
}

/** Bytes per table and index of the catalog below a cache directory (SQLite dbstat), largest first. */
function catalogTables(cache) {
  const out = {};
  const find = (d) => {
    for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) find(p);
      else if (e.name === 'catalog.db') {
        const db = new Database(p, { readonly: true });
        try {
          for (const t of db.prepare('SELECT name, sum(pgsize) AS b FROM dbstat GROUP BY name ORDER BY b DESC').all()) out[t.name] = t.b;
        } finally {
          db.close();
        }
      }
    }
  };
  find(cache);
  return out;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

// ---- one fleet -----------------------------------------------------------------------------

async function fleet(n, base) {
  fs.rmSync(base, { recursive: true, force: true });
  fs.mkdirSync(base, { recursive: true });
  const pw = path.join(base, 'password');
  fs.writeFileSync(pw, PASSWORD + '\n', { mode: 0o600 });
  const s3 = await startS3rver(path.join(base, 's3'), 'fleet', { logFile: path.join(base, 's3rver.log') });
  const common = {
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    SNAPFILL_S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
    SNAPFILL_REPO: 's3://fleet/repo',
    SNAPFILL_PASSWORD_FILE: pw,
    SNAPFILL_INSECURE_TEST_KDF: '1',
    SNAPFILL_S3_RETRY_BASE_MS: '20',
    SNAPFILL_S3_RETRY_MAX_MS: '500',
    SNAPFILL_S3_RETRIES: '12',
    SNAPFILL_DEBUG: process.env.SNAPFILL_DEBUG ?? '',
  };
  const hostEnv = (h) => ({ ...common, SNAPFILL_HOST: `host-${h}`, SNAPFILL_CACHE: path.join(base, `cache-${h}`) });
  const init = await run(['init'], { ...common, SNAPFILL_CACHE: path.join(base, 'cache-init') });
  if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
  // s3rver removes a directory when its last object is deleted, and crashes (ENOENT, unhandled)
  // when a PUT into that directory runs at the same moment: 16 hosts writing and deleting
  // locks/ and tmp/ probes hit that now and then. A plain file (not an s3rver object: never
  // listed) keeps each directory the repository uses from becoming empty.
  const repoDir = path.join(base, 's3', 'fleet', 'repo');
  const hex2 = [...Array(256).keys()].map((i) => i.toString(16).padStart(2, '0'));
  for (const d of ['tmp', 'locks', 'garbage', 'index', 'snapshots', 'keys', ...hex2.map((h) => `data/${h}`)]) {
    fs.mkdirSync(path.join(repoDir, d), { recursive: true });
    fs.writeFileSync(path.join(repoDir, d, '.fleet-bench-keep'), '');
  }

  const r = {
    hosts: n,
    rounds: opts.rounds,
    snapshots: 0,
    snapshots_ok: 0,
    snapshots_killed: 0,
    snapshots_lock_failed: 0,
    snapshots_lock_waited: 0,
    snapshots_failed_other: 0,
    prunes: 0,
    prunes_ok: 0,
    prunes_killed: 0,
    prunes_locked: 0,
    prunes_failed_other: 0,
    check_read_data: null,
    kept_snapshots: 0,
    restored_identical: 0,
    restore_failures: [],
    host1_catalog_bytes: 0,
    host1_sync_s: [],
    host1_sync_median_s: 0,
    host1_sync_phases_ms: [],
    host1_sync_objects_read: [],
    host1_sync_objects_kinds: [],
    host1_snapshot_indexes_read: [],
    host1_sync_unread: [],
    host1_sync_listing: [],
    host1_sync_deletions_read: [],
    host1_catalog_tables: {},
    shared_plain_bytes: 0,
    data_blob_bytes: 0,
    duplicate_blob_bytes: 0,
    duplicate_bytes_marked: 0,
    duplicate_bytes_concurrent: 0,
    duplicate_bytes_later: 0,
    shared_copies: 0,
    settled_copies: 0,
    errors: [],
  };
  const expected = new Map(); // snapshot id -> { host, src, files: Map }
  // Per round: when it ran and each host's tree then, for snapshots the bench saw no output of
  // (a process killed after its record was written).
  const roundLog = [];
  const srcOf = (h) => path.join(base, 'src', `host-${h}`);

  // The pruner: forget --prune in a loop, as its own host with its own cache, until stopped.
  let storm = true;
  let pruner = null;
  // Host 1's measured sync runs with the pruner between two runs: on this one machine the
  // pruner's work (every index, every host's records) shares the cores and the server with it,
  // which a fleet's pruner on its own machine against S3 does not.
  let held = null; // { gate: a promise the pruner waits on } while host 1's sync is measured
  let prunerIdle = () => {};
  const holdPruner = async () => {
    let release;
    const gate = new Promise((res) => (release = res));
    const idle = new Promise((res) => (prunerIdle = res));
    held = { gate };
    if (pruner === null) prunerIdle();
    await idle;
    return () => {
      held = null;
      release();
    };
  };
  const prunerLoop = (async () => {
    const env = { ...common, SNAPFILL_HOST: 'pruner', SNAPFILL_CACHE: path.join(base, 'cache-pruner') };
    while (storm) {
      if (held) {
        prunerIdle();
        await held.gate;
      }
      const p = await run(['--json', 'forget', '--prune', '--keep-last', '2', '--grace', opts.grace], env, (c) => (pruner = c));
      pruner = null;
      r.prunes++;
      if (p.signal === 'SIGKILL') r.prunes_killed++;
      else if (p.code === 0) r.prunes_ok++;
      else if (p.code === 4 || LOCK_FAIL.test(p.stderr)) r.prunes_locked++;
      else {
        r.prunes_failed_other++;
        r.errors.push(
          `prune exit ${p.code}: ${p.stderr
            .trim()
            .split('\n')
            .filter((l) => !/^s3: retry/.test(l))
            .slice(-3)
            .join(' | ')}`,
        );
      }
      prunerIdle();
      await sleep(300);
    }
  })();

  for (let round = 0; round < opts.rounds; round++) {
    // --gap: the rounds as a fleet's schedules space them (the pruner keeps running meanwhile).
    // Longer than a sync's window (2 min), host 1's sync lists only what the round wrote.
    if (round > 0 && opts.gap > 0) await sleep(opts.gap * 1000);
    for (let h = 1; h <= n; h++) {
      const shared = writeRound(srcOf(h), h, round);
      if (h === 1) r.shared_plain_bytes += shared;
    }
    const manifests = new Map();
    for (let h = 1; h <= n; h++) manifests.set(h, manifest(srcOf(h)));
    const children = new Map();
    const roundEntry = { start: Date.now() - 1000, end: 0, manifests };
    roundLog.push(roundEntry);
    const killer =
      opts.kill &&
      (async () => {
        // One random host's snapshot, and the pruner, killed partway through the round.
        await sleep(300 + rnd(`kill-delay:${n}:${round}`) * 1500);
        const victim = 1 + Math.floor(rnd(`kill-host:${n}:${round}`) * n);
        children.get(victim)?.kill('SIGKILL');
        if (round % 2 === 0) pruner?.kill('SIGKILL');
      })();
    const jobs = [];
    // --spread: host h starts in slot slots[h-1] of n (a random permutation per round).
    const slots = [...Array(n).keys()].sort((a, b) => rnd(`slot:${n}:${round}:${a}`) - rnd(`slot:${n}:${round}:${b}`));
    for (let h = 1; h <= n; h++) {
      jobs.push(
        (async () => {
          // A random delay, as a fleet's schedules have: starts spread over a second or two, or
          // with --spread over that many seconds (random order; each host one slot of its own).
          if (opts.spread === null) await sleep(rnd(`delay:${n}:${round}:${h}`) * Math.min(4000, 250 * n));
          else await sleep((slots[h - 1] / Math.max(1, n)) * opts.spread * 1000);
          const t = await run(['--json', 'snapshot', srcOf(h)], hostEnv(h), (c) => children.set(h, c));
          r.snapshots++;
          if (LOCK_WAIT.test(t.stderr)) r.snapshots_lock_waited++;
          if (t.signal === 'SIGKILL') r.snapshots_killed++;
          else if (t.code === 0 && t.json?.snapshot_id) {
            r.snapshots_ok++;
            // Host 1's snapshot reads the other hosts' pack indexes its new blobs may be in (issue 15).
            if (h === 1 && t.json.indexes_read_on_demand !== undefined) r.host1_snapshot_indexes_read.push(t.json.indexes_read_on_demand);
            expected.set(t.json.snapshot_id, { host: h, src: srcOf(h), files: manifests.get(h) });
          } else if (t.code === 4 || LOCK_FAIL.test(t.stderr)) r.snapshots_lock_failed++;
          else {
            r.snapshots_failed_other++;
            r.errors.push(`snapshot host-${h} round ${round} exit ${t.code}: ${t.stderr.trim().split('\n').slice(-14).join(' | ')}`);
          }
        })(),
      );
    }
    await Promise.all(jobs);
    if (killer) await killer;
    roundEntry.end = Date.now() + 1000;
    // Host 1's incremental sync after the round: it reads what the other hosts wrote meanwhile.
    const release = await holdPruner();
    const s = await run(['--json', 'catalog', 'sync'], hostEnv(1));
    release();
    if (s.code === 0 && s.json) {
      r.host1_sync_s.push(s.json.duration_s);
      if (s.json.phases_ms) r.host1_sync_phases_ms.push(s.json.phases_ms);
      if (s.json.objects_read !== undefined) r.host1_sync_objects_read.push(s.json.objects_read);
      if (s.json.objects_read_kinds) r.host1_sync_objects_kinds.push(s.json.objects_read_kinds);
      if (s.json.packs_unread !== undefined) r.host1_sync_unread.push(s.json.packs_unread);
      if (s.json.listing) r.host1_sync_listing.push(s.json.listing);
      if (s.json.deletion_records_read !== undefined) r.host1_sync_deletions_read.push(s.json.deletion_records_read);
    } else r.errors.push(`host-1 catalog sync exit ${s.code}: ${s.stderr.trim().split('\n').pop()}`);
    log(`N=${n} round ${round + 1}/${opts.rounds}: ${r.snapshots_ok}/${r.snapshots} snapshots ok, ${r.prunes_ok}/${r.prunes} prunes ok`);
  }
  storm = false;
  await prunerLoop;
  // One last prune that runs alone, then the checks.
  const last = await run(['--json', 'forget', '--prune', '--keep-last', '2', '--grace', opts.grace], {
    ...common,
    SNAPFILL_HOST: 'pruner',
    SNAPFILL_CACHE: path.join(base, 'cache-pruner'),
  });
  if (last.code !== 0) r.errors.push(`final prune exit ${last.code}: ${last.stderr.trim().split('\n').pop()}`);

  r.host1_catalog_bytes = dirBytes(path.join(base, 'cache-1'), (f) => /\.db(-wal)?$/.test(f));
  r.host1_catalog_tables = catalogTables(path.join(base, 'cache-1'));
  r.host1_sync_median_s = median(r.host1_sync_s);

  // How often content is stored, right after the storm's last prune; then the grace period passes
  // and one more prune runs alone (what the bucket settles to with no new writes, its delete
  // phase included), and only then come the checks below, so they see what that prune left.
  // Counted through the API with a cache of its own (the checks' machine starts empty).
  Object.assign(process.env, { ...common, SNAPFILL_HOST: 'counter', SNAPFILL_CACHE: path.join(base, 'cache-counter') });
  const api = await import(path.join(path.dirname(path.dirname(BIN)), 'dist', 'api', 'index.js'));
  const garbage = await import(path.join(path.dirname(path.dirname(BIN)), 'dist', 'repo', 'garbage.js'));
  Object.assign(r, await countCopies(api, garbage, roundLog));
  await sleep(durationMs(opts.grace) + 2000);
  const settle = await run(['--json', 'prune', '--grace', opts.grace], {
    ...common,
    SNAPFILL_HOST: 'pruner',
    SNAPFILL_CACHE: path.join(base, 'cache-pruner'),
  });
  if (settle.code !== 0) r.errors.push(`prune after the grace exit ${settle.code}: ${settle.stderr.trim().split('\n').pop()}`);
  const settled = await countCopies(api, garbage, roundLog);

  // A fresh machine: empty cache, host name of none of them.
  const fresh = { ...common, SNAPFILL_HOST: 'verifier', SNAPFILL_CACHE: path.join(base, 'cache-verifier') };
  const chk = await run(['--json', 'check', '--read-data'], fresh);
  r.check_read_data = chk.code === 0 ? 'pass' : `FAIL (exit ${chk.code}: ${chk.stderr.trim().split('\n').slice(-2).join(' | ')})`;
  const list = await run(['--json', 'snapshots'], fresh);
  const kept = Array.isArray(list.json) ? list.json : (list.json?.snapshots ?? []);
  r.kept_snapshots = kept.length;
  for (const k of kept) {
    let exp = expected.get(k.id);
    if (!exp) {
      // Its process died (or failed) after the record was written: the tree of its host in the round it ran.
      const h = Number(String(k.host).replace('host-', ''));
      const t = Date.parse(k.time);
      const rd = roundLog.find((x) => x.start <= t && t <= x.end);
      if (rd && rd.manifests.has(h)) exp = { host: h, src: srcOf(h), files: rd.manifests.get(h) };
      else {
        r.restore_failures.push(`${k.id.slice(0, 8)}: host ${k.host} at ${k.time} is no round of the bench`);
        continue;
      }
    }
    const target = path.join(base, 'restore', k.id.slice(0, 12));
    const rs = await run(['--json', 'restore', k.id, '--target', target], fresh);
    if (rs.code !== 0) {
      r.restore_failures.push(`${k.id.slice(0, 8)}: restore exit ${rs.code}: ${rs.stderr.trim().split('\n').pop()}`);
      continue;
    }
    const got = manifest(path.join(target, exp.src));
    const bad = [...exp.files].filter(([f, h]) => got.get(f) !== h).map(([f]) => f);
    const extra = [...got.keys()].filter((f) => !exp.files.has(f));
    if (bad.length || extra.length)
      r.restore_failures.push(
        `${k.id.slice(0, 8)} (host-${exp.host}): ${bad.length} files differ, ${extra.length} extra (${[...bad, ...extra].slice(0, 3).join(', ')})`,
      );
    else r.restored_identical++;
    fs.rmSync(target, { recursive: true, force: true });
  }

  // Unique content is only ever written by its own host: duplicates are shared content stored again.
  r.shared_copies = 1 + r.duplicate_blob_bytes / Math.max(1, r.shared_plain_bytes);
  r.settled_copies = 1 + settled.duplicate_blob_bytes / Math.max(1, r.shared_plain_bytes);
  await s3.stop();
  if (!opts.keep) fs.rmSync(base, { recursive: true, force: true });
  return r;
}

/**
 * Every data blob entry of every pack index, against the distinct ones: bytes stored, bytes
 * stored more than once, and why. By origin: copies written in the round the blob was first
 * stored in are concurrent first writes (hosts storing the same new blob at once, neither having
 * seen the other's pack: expected without coordination); copies written in a later round are
 * re-stores (a repack's copy, a snapshot's copy out of a marked pack, docs/FORMAT.md s4/s6). By
 * state: extra copies in packs a prune already marked await their deletion (grace period) and go
 * with the first prune after it.
 */
async function countCopies(api, garbage, roundLog) {
  const c = {
    data_blob_bytes: 0,
    duplicate_blob_bytes: 0,
    duplicate_bytes_concurrent: 0,
    duplicate_bytes_later: 0,
    duplicate_bytes_marked: 0,
  };
  const session = await api.openSession({ noSync: true, readOnly: true });
  try {
    const homes = new Map(); // blob id -> { length, packs }
    for await (const id of session.repo.listPackIndexes()) {
      const idx = await session.repo.loadPackIndex(id);
      if (idx.type !== 'data') continue;
      for (const b of idx.blobs) {
        c.data_blob_bytes += b.length;
        const h = homes.get(b.id);
        if (h) {
          c.duplicate_blob_bytes += b.length;
          h.packs.push(idx.pack);
        } else homes.set(b.id, { length: b.length, packs: [idx.pack] });
      }
    }
    const marked = new Set(garbage.markedPacks(await garbage.listGarbage(session.repo)).keys());
    const packTime = new Map();
    for await (const p of session.repo.listPacks()) packTime.set(p.id, p.mtime?.getTime());
    const roundOf = (t) => (t === undefined ? -1 : roundLog.findIndex((x) => x.start <= t && t <= x.end));
    for (const { length, packs } of homes.values()) {
      const extra = packs.length - 1;
      if (!extra) continue;
      const rounds = packs.map((p) => roundOf(packTime.get(p))).filter((x) => x >= 0);
      const first = rounds.length ? Math.min(...rounds) : -1;
      const inFirst = Math.max(1, rounds.filter((x) => x === first).length);
      c.duplicate_bytes_concurrent += (inFirst - 1) * length;
      c.duplicate_bytes_later += (extra - (inFirst - 1)) * length;
      c.duplicate_bytes_marked += Math.min(extra, packs.filter((p) => marked.has(p)).length) * length;
    }
  } finally {
    await session.close();
  }
  return c;
}

/** A duration as the CLI takes it (`20s`, `5m`, `1h`, `1d`; a bare number is seconds), in ms. */
function durationMs(d) {
  const m = /^(\d+(?:\.\d+)?)([smhd]?)$/.exec(String(d).trim());
  if (!m) throw new Error(`bad duration: ${d}`);
  return Number(m[1]) * { '': 1000, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2]];
}

// ---- main ----------------------------------------------------------------------------------

const root = opts.dir ?? fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'snapfill-fleet-'));
const results = [];
for (const n of opts.hosts) {
  log(`N=${n}: ${n} hosts x ${opts.rounds} rounds x ${opts.files} files, grace ${opts.grace}${opts.kill ? ', with SIGKILLs' : ''}`);
  results.push(await fleet(n, path.join(root, `n${n}`)));
}
if (!opts.keep && !opts.dir) fs.rmSync(root, { recursive: true, force: true });

const base1 = results.find((x) => x.hosts === 1) ?? results[0];
const row = (label, f, target) => `| ${label} | ${results.map(f).join(' | ')} | ${target} |`;
const ratio = (a, b) => (b > 0 ? (a / b).toFixed(2) + 'x' : 'n/a');
const table = [
  `| figure | ${results.map((x) => `N=${x.hosts}`).join(' | ')} | target |`,
  `|---|${results.map(() => '---').join('|')}|---|`,
  row('snapshots ok / run (killed)', (x) => `${x.snapshots_ok}/${x.snapshots} (${x.snapshots_killed})`, 'all'),
  row('snapshots that failed or waited because of locks', (x) => x.snapshots_lock_failed + x.snapshots_lock_waited, '0'),
  row('snapshots failed otherwise', (x) => x.snapshots_failed_other, '0'),
  row('prunes ok / run (killed)', (x) => `${x.prunes_ok}/${x.prunes} (${x.prunes_killed})`, ''),
  row('prunes that could not run (lock)', (x) => x.prunes_locked, '0'),
  row('prunes failed otherwise', (x) => x.prunes_failed_other, '0'),
  row('`check --read-data` after the storm', (x) => x.check_read_data, 'pass'),
  row('kept snapshots restored byte-identical', (x) => `${x.restored_identical}/${x.kept_snapshots}`, 'all'),
  row(
    'host 1 catalog size',
    (x) => `${(x.host1_catalog_bytes / 1024).toFixed(0)} KiB (${ratio(x.host1_catalog_bytes, base1.host1_catalog_bytes)})`,
    '<= 1.5x',
  ),
  row(
    'host 1 incremental sync, median per round (the pruner paused while it runs)',
    (x) => `${(x.host1_sync_median_s * 1000).toFixed(0)} ms (${ratio(x.host1_sync_median_s, base1.host1_sync_median_s)})`,
    '<= 1.5x',
  ),
  row("copies of shared content stored, right after the storm's last prune", (x) => x.shared_copies.toFixed(2), ''),
  row('copies of shared content stored, once the grace period passed and a prune ran', (x) => x.settled_copies.toFixed(2), '~1'),
  row(
    'extra copies by origin: concurrent first writes / later re-stores; of all extra, in marked packs (freed after the grace)',
    (x) =>
      [x.duplicate_bytes_concurrent, x.duplicate_bytes_later].map((b) => (b / Math.max(1, x.shared_plain_bytes)).toFixed(2)).join(' / ') +
      `; ${(x.duplicate_bytes_marked / Math.max(1, x.shared_plain_bytes)).toFixed(2)}`,
    '',
  ),
  row('host 1 sync: objects read per round (median)', (x) => String(median(x.host1_sync_objects_read)), ''),
  row(
    'host 1 sync: data indexes / tree indexes / records read per round (median)',
    (x) => ['data_indexes', 'tree_indexes', 'records'].map((k) => String(median(x.host1_sync_objects_kinds.map((o) => o[k])))).join(' / '),
    '',
  ),
  row(
    'host 1 sync: listings resumed from its cursor / full; deletion records read (total)',
    (x) =>
      `${x.host1_sync_listing.filter((l) => l === 'resumed').length} / ${x.host1_sync_listing.filter((l) => l === 'full').length}; ` +
      `${x.host1_sync_deletions_read.reduce((a, b) => a + b, 0)}`,
    '',
  ),
  row(
    "host 1 sync: other hosts' data packs left unread (filter in the name) per round (median)",
    (x) => (x.host1_sync_unread.length ? String(median(x.host1_sync_unread)) : '–'),
    '',
  ),
  row(
    'host 1 snapshot: unread indexes read on demand per round (median / total)',
    (x) =>
      x.host1_snapshot_indexes_read.length
        ? `${median(x.host1_snapshot_indexes_read)} / ${x.host1_snapshot_indexes_read.reduce((a, b) => a + b, 0)}`
        : '–',
    '',
  ),
  row(
    'host 1 catalog, largest tables (KiB)',
    (x) =>
      Object.entries(x.host1_catalog_tables)
        .slice(0, 4)
        .map(([t, b]) => `${t} ${(b / 1024).toFixed(0)}`)
        .join(', '),
    '',
  ),
  row(
    'host 1 sync phases, median ms: list / get / insert / import',
    (x) => ['list', 'get', 'insert', 'import'].map((k) => median(x.host1_sync_phases_ms.map((p) => p[k])).toFixed(0)).join(' / '),
    '',
  ),
];
for (const x of results) {
  for (const e of [...x.errors, ...x.restore_failures].slice(0, 10)) log(`N=${x.hosts}: ${e}`);
}
console.log(table.join('\n'));
if (opts.json) console.log(JSON.stringify({ results }));
