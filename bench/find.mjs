#!/usr/bin/env node
// Browsing benchmark (issue 8): "which snapshots hold a version of this file, and how do they
// differ" on a 200k-file, 21-snapshot repository, and listing a 100k-entry directory through
// the FUSE mount.
//
//   node bench/find.mjs                    # 200k files + a 100k-entry directory, 21 snapshots
//   node bench/find.mjs --files 20000 --bigdir 10000 --snapshots 5     # a quick look
//   node bench/find.mjs --reuse            # skip the build when the work dir holds a finished one
//
// It runs the committed code (git HEAD, built in a private temp dir); --use-checkout runs dist/.
// Builds under /dev/shm (tmpfs: this measures snapfill, not the noisy disk) unless --work DIR.
// The repository is built with `snapfill snapshot --time` (one snapshot per 8 hours, ~0.2% churn
// in between, and one tracked file rewritten every 4th snapshot). Each timing is the median of
// --runs runs of the real command line, node start-up and catalog open included.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generate, churn } from './gen-dataset.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
let BIN = path.join(ROOT, 'bin', 'snapfill');

/**
 * Builds the committed tree (git HEAD) in a private directory, so that work in progress in the
 * shared checkout (a half-edited file, a rebuild of dist/) cannot change the program mid-run.
 */
function freezeCommittedBuild() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-find-bench-build-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const head = spawnSync('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
  const archive = spawnSync('sh', ['-c', `git -C "${ROOT}" archive HEAD | tar -x -C "${dir}"`], { encoding: 'utf8' });
  if (archive.status !== 0) throw new Error(`git archive failed: ${archive.stderr}`);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
  if (tsc.status !== 0) throw new Error(`building HEAD failed: ${tsc.stdout}${tsc.stderr}`);
  // The native addons load from build/Release beside dist/ (built by `npm ci`; C, not TypeScript).
  fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  for (const f of fs.readdirSync(path.join(ROOT, 'build', 'Release')))
    if (f.endsWith('.node')) fs.copyFileSync(path.join(ROOT, 'build', 'Release', f), path.join(dir, 'build', 'Release', f));
  log(`built HEAD ${head} in ${dir}`);
  return { bin: path.join(dir, 'bin', 'snapfill'), head };
}

function parseArgs(argv) {
  const o = { files: 200_000, bigdir: 100_000, snapshots: 21, runs: 5, work: null, reuse: false, churn: 0.002, build: 'head' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--files') o.files = Number(v());
    else if (a === '--bigdir') o.bigdir = Number(v());
    else if (a === '--snapshots') o.snapshots = Number(v());
    else if (a === '--runs') o.runs = Number(v());
    else if (a === '--work') o.work = v();
    else if (a === '--churn') o.churn = Number(v());
    else if (a === '--reuse') o.reuse = true;
    else if (a === '--use-checkout') o.build = 'checkout';
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'usage: node bench/find.mjs [--files N] [--bigdir N] [--snapshots N] [--runs N] [--churn F] [--work DIR] [--reuse] [--use-checkout]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a}`);
  }
  o.work ??= fs.existsSync('/dev/shm')
    ? `/dev/shm/snapfill-bench-find-${o.files}`
    : path.join(HERE, '..', '.bench-work', `find-${o.files}`);
  return o;
}

const log = (m) => process.stderr.write(`[find-bench] ${m}\n`);

function sf(env, args, { allowFail = false } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 512 * 1024 * 1024,
  });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0 && !allowFail) throw new Error(`snapfill ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { s, stdout: r.stdout, stderr: r.stderr };
}

function timed(cmd, args) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { s, stdout: r.stdout };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (s) => `${s.toFixed(3)} s`;

function build(o, env, src, tracked) {
  fs.rmSync(o.work, { recursive: true, force: true });
  fs.mkdirSync(src, { recursive: true });
  const g = generate({ out: src, files: o.files, createUsers: false, log });
  log(`generated ${g.files} files in ${g.seconds.toFixed(1)} s (${g.owners})`);
  const big = path.join(src, 'big', 'files');
  fs.mkdirSync(big, { recursive: true });
  for (let i = 0; i < o.bigdir; i++) fs.writeFileSync(path.join(big, `f${String(i).padStart(6, '0')}.dat`), String(i));
  log(`wrote a ${o.bigdir}-entry directory`);
  fs.mkdirSync(path.dirname(tracked), { recursive: true });
  fs.writeFileSync(tracked, 'version 0\n');
  sf(env, ['init']);
  const t0 = Date.UTC(2026, 9, 1, 3, 0, 0);
  const times = [];
  for (let i = 0; i < o.snapshots; i++) {
    if (i > 0) {
      churn(path.join(src, 'home'), { seed: 1, round: i, fraction: o.churn });
      if (i % 4 === 0) fs.writeFileSync(tracked, `version ${i}\n`.repeat(i));
    }
    const r = sf(env, ['--json', '-q', 'snapshot', src, '--time', new Date(t0 + i * 8 * 3600_000).toISOString()]);
    const res = JSON.parse(r.stdout);
    if (!res.snapshot_id || res.files_total < 0.9 * o.files) throw new Error(`snapshot ${i + 1} looks wrong: ${r.stdout.slice(0, 300)}`);
    times.push(r.s);
    log(`snapshot ${i + 1}/${o.snapshots}: ${fmt(r.s)}`);
  }
  fs.writeFileSync(path.join(o.work, 'built.json'), JSON.stringify({ ...o, snapshot_seconds: times }));
  return times;
}

function isMounted(mnt) {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === mnt);
}

async function mountBench(o, env, src, results) {
  const mnt = path.join(o.work, 'mnt');
  fs.mkdirSync(mnt, { recursive: true });
  if (isMounted(mnt)) spawnSync('fusermount', ['-uz', mnt]);
  const child = spawn(process.execPath, [BIN, 'mount', mnt, '--accounts-root', path.join(src, 'home')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    out += d;
  });
  const until = Date.now() + 60_000;
  while (!(isMounted(mnt) && out.includes('Ctrl-C'))) {
    if (child.exitCode !== null || Date.now() > until) {
      log(`mount unavailable: ${out.trim()}`);
      results.mount = { skipped: out.trim() };
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  try {
    const dir = path.join(mnt, 'latest', src, 'big', 'files');
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) / 1024;
    // CPU seconds the mount process spent: steadier than wall time on a shared, loaded machine.
    const cpu = () => {
      const f = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) / 100;
    };
    const rssBefore = rss();
    const plain = [];
    const long = [];
    const plainCpu = [];
    const longCpu = [];
    // First runs are cold (nothing cached in the mount process or the kernel); later ones warm.
    for (let i = 0; i < o.runs; i++) {
      let c0 = cpu();
      const a = timed('ls', ['-f', dir]);
      plain.push(a.s);
      plainCpu.push(cpu() - c0);
      const entries = a.stdout.split('\n').filter((x) => x && x !== '.' && x !== '..').length;
      if (entries !== o.bigdir) throw new Error(`ls listed ${entries} entries, expected ${o.bigdir}`);
      c0 = cpu();
      long.push(timed('ls', ['-l', '--color=never', dir]).s);
      longCpu.push(cpu() - c0);
    }
    // Another snapshot's copy of the same directory: cold for the mount's attribute cache.
    const snaps = fs.readdirSync(path.join(mnt, 'snapshots')).sort();
    const other = path.join(mnt, 'snapshots', snaps[0], src, 'big', 'files');
    const coldLong = timed('ls', ['-l', '--color=never', other]).s;
    const account = fs.readdirSync(path.join(mnt, 'accounts')).sort()[0];
    const acctDir = path.join(mnt, 'accounts', account);
    const findAll = timed('find', [path.join(acctDir, fs.readdirSync(acctDir).sort().pop())]);
    results.mount = {
      dir_entries: o.bigdir,
      ls_f_first_s: plain[0],
      ls_f_median_s: median(plain),
      ls_l_first_s: long[0],
      ls_l_median_s: median(long),
      ls_l_other_snapshot_cold_s: coldLong,
      mount_cpu_s_ls_f_median: median(plainCpu),
      mount_cpu_s_ls_l_first: longCpu[0],
      mount_cpu_s_ls_l_median: median(longCpu),
      load_average: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
      find_one_account_s: findAll.s,
      find_one_account_entries: findAll.stdout.split('\n').length - 1,
      mount_rss_mib_before: Math.round(rssBefore),
      mount_rss_mib_after: Math.round(rss()),
    };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  // snapfill encrypts by default: a fixed password from a file keeps the run unattended.
  // Beside the work directory, not in it: building the dataset empties that directory.
  const passwordFile = `${o.work}.password`;
  fs.mkdirSync(path.dirname(passwordFile), { recursive: true });
  fs.writeFileSync(passwordFile, 'snapfill-bench-fixed-password\n', { mode: 0o600 });
  const env = {
    SNAPFILL_PASSWORD_FILE: passwordFile,
    SNAPFILL_REPO: path.join(o.work, 'repo'),
    SNAPFILL_CACHE: path.join(o.work, 'cache'),
  };
  const src = path.join(o.work, 'src');
  const tracked = path.join(src, 'home', 'sfb00001', 'public_html', 'tracked-report.txt');
  const results = { files: o.files, bigdir: o.bigdir, snapshots: o.snapshots, work: o.work };
  if (o.build === 'head') {
    const b = freezeCommittedBuild();
    BIN = b.bin;
    results.commit = b.head;
  } else results.commit = 'working checkout';
  if (o.reuse && fs.existsSync(path.join(o.work, 'built.json'))) log(`reusing ${o.work}`);
  else results.snapshot_seconds = build(o, env, src, tracked);

  const stats = JSON.parse(sf(env, ['--json', 'stats']).stdout);
  results.repo = stats;
  if (stats.snapshots !== o.snapshots) throw new Error(`the repository holds ${stats.snapshots} snapshots, expected ${o.snapshots}`);
  const exact = [];
  const exactJson = [];
  const account = [];
  for (let i = 0; i < o.runs; i++) {
    const a = sf(env, ['find', tracked]);
    exact.push(a.s);
    const b = sf(env, ['--json', 'find', tracked]);
    exactJson.push(b.s);
    if (i === 0) {
      const m = JSON.parse(b.stdout).matches;
      results.tracked_versions = m.length;
      results.tracked_snapshots = m.reduce((n, x) => n + x.snapshots.length, 0);
      results.find_output_sample = a.stdout.split('\n').slice(0, 8).join('\n');
    }
    account.push(sf(env, ['find', 'tracked-report.txt', '--account', 'sfb00001', '--accounts-root', path.join(src, 'home')]).s);
  }
  const fullScan = sf(env, ['--json', 'find', '*.php', '--min-size', '60k']);
  const noop = [];
  for (let i = 0; i < o.runs; i++) noop.push(sf(env, ['--json', 'snapshots']).s);
  results.find = {
    exact_path_median_s: median(exact),
    exact_path_json_median_s: median(exactJson),
    name_in_one_account_median_s: median(account),
    glob_whole_repo_with_size_filter_s: fullScan.s,
    glob_whole_repo_matches: JSON.parse(fullScan.stdout).matches.length,
    cli_baseline_snapshots_command_median_s: median(noop),
  };
  await mountBench(o, env, src, results);
  process.stdout.write(JSON.stringify(results, null, 2) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.stack ?? e}\n`);
  process.exit(1);
});
