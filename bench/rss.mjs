#!/usr/bin/env node
// Peak RSS (and wall / CPU time) of each snapfill step on one existing tree: full snapshot,
// no-change snapshot, verify, restore --mode missing / metadata in place over the intact tree,
// full restore, restore --mode missing / metadata over the restored copy. Issue 17: every step
// stays at or under 300 MB at 1M files.
//
//   node bench/gen-dataset.mjs --out /dev/shm/x --files 1000000 --no-create-users
//   node bench/rss.mjs --src /dev/shm/x/home --dir /var/tmp/rss [--steps snapshot,nochange,verify,inplace,restore] [--keep]
//
// bench/run.mjs --profile 1m needs ~6x the data in free space (source, copies, four tools'
// repositories); this needs the tree, one repository and (for restore) one target. Peak RSS is
// GNU time's %M (the child's wait4 rusage). The build is a private frozen copy (freeze-build.mjs).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freezeBuild } from './freeze-build.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
};
const src = arg('--src');
const dir = arg('--dir');
if (!src || !dir) {
  process.stderr.write(
    'usage: node bench/rss.mjs --src TREE --dir WORKDIR [--steps snapshot,nochange,verify,inplace,restore,missing,metadata] [--keep]\n',
  );
  process.exit(2);
}
const steps = arg('--steps', 'snapshot,nochange,verify,inplace,restore,missing,metadata').split(',');
const keep = process.argv.includes('--keep');
const BIN = freezeBuild(ROOT);
fs.mkdirSync(dir, { recursive: true });
const pw = path.join(dir, 'password');
fs.writeFileSync(pw, 'snapfill-bench-fixed-password\n', { mode: 0o600 });
const env = { ...process.env, SNAPFILL_REPO: path.join(dir, 'repo'), SNAPFILL_CACHE: path.join(dir, 'cache'), SNAPFILL_PASSWORD_FILE: pw };
const target = path.join(dir, 'target');

function run(label, args, extraArgs = []) {
  const rss = path.join(os.tmpdir(), `snapfill-rss-${process.pid}`);
  const load = os.loadavg()[0].toFixed(2);
  const t0 = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M %U %S', '-o', rss, process.execPath, ...extraArgs, BIN, '-q', '--json', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 30,
    encoding: 'utf8',
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const [kb, u, s] = fs.readFileSync(rss, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  fs.rmSync(rss, { force: true });
  const out = {
    step: label,
    exit: r.status,
    wall_s: +wall.toFixed(2),
    cpu_s: +(u + s).toFixed(2),
    peak_rss_mib: +(kb / 1024).toFixed(0),
    load1: +load,
  };
  if (r.status !== 0 && r.status !== 3) out.stderr = r.stderr.split('\n').slice(-3).join(' | ');
  console.log(JSON.stringify(out));
  return out;
}

try {
  if (!fs.existsSync(path.join(dir, 'repo'))) spawnSync(process.execPath, [BIN, '-q', 'init'], { env, stdio: 'inherit' });
  const prof = process.env.RSS_NODE_ARGS ? process.env.RSS_NODE_ARGS.split(' ') : [];
  if (steps.includes('snapshot')) run('full snapshot', ['snapshot', src], prof);
  if (steps.includes('nochange')) run('no-change snapshot', ['snapshot', src], prof);
  if (steps.includes('verify')) run('verify', ['verify', 'latest'], prof);
  // The passes over the intact tree itself (the one just snapshotted): what a restore in place
  // costs where nothing was lost. Nothing to do, nothing written.
  if (steps.includes('inplace')) {
    run('restore --mode missing in place (intact tree)', ['restore', 'latest', src, '--mode', 'missing'], prof);
    run('restore --mode metadata in place (intact tree)', ['restore', 'latest', src, '--mode', 'metadata'], prof);
  }
  if (steps.includes('restore')) {
    fs.rmSync(target, { recursive: true, force: true });
    run('full restore', ['restore', 'latest', '--target', target], prof);
  }
  if (steps.includes('missing'))
    run('restore --mode missing (nothing missing)', ['restore', 'latest', '--target', target, '--mode', 'missing'], prof);
  if (steps.includes('metadata'))
    run('restore --mode metadata (nothing to fix)', ['restore', 'latest', '--target', target, '--mode', 'metadata'], prof);
} finally {
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
}
