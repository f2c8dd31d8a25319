#!/usr/bin/env node
// Times `snapfill verify` (no --checksum) against a bare `find -printf` stat walk of the same tree.
//
//   node bench/verify.mjs [--files 200000] [--runs 5] [--dir /dev/shm/x] [--keep]
//
// Target (issue 6): verify <= 1.2x find. Disk timings swing 10x between runs on these machines
// (DESIGN.md section 3), so the two are run alternately on the same warm tree and medians are
// compared; the default tree lives on tmpfs (/dev/shm) so the ratio shows the software's cost.
// The whole-process time of verify is measured, startup and catalog opening included.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freezeBuild } from './freeze-build.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// A private copy of the build: a `tsc` in the working tree must not swap it halfway.
const BIN = process.argv.includes('--live-build') ? path.join(ROOT, 'bin', 'snapfill') : freezeBuild(ROOT);

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : dflt;
}
const files = Number(arg('--files', '200000'));
const runs = Number(arg('--runs', '5'));
const base = arg('--dir', fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'snapfill-bench-verify-')));
const keep = process.argv.includes('--keep');
const src = path.join(base, 'src');
// snapfill encrypts by default: a fixed password from a file keeps the run unattended.
fs.mkdirSync(base, { recursive: true });
const passwordFile = path.join(base, 'password');
fs.writeFileSync(passwordFile, 'snapfill-bench-fixed-password\n', { mode: 0o600 });
const env = {
  ...process.env,
  SNAPFILL_PASSWORD_FILE: passwordFile,
  SNAPFILL_REPO: path.join(base, 'repo'),
  SNAPFILL_CACHE: path.join(base, 'cache'),
};

/** Hosting-like layout: accounts / sites / directories of ~50 small files. */
function generate() {
  const perDir = 50;
  const dirs = Math.ceil(files / perDir);
  let made = 0;
  const buf = Buffer.alloc(512, 'x');
  for (let d = 0; d < dirs && made < files; d++) {
    const dir = path.join(src, `acct${d % 100}`, `site${Math.floor(d / 100) % 10}`, `d${d}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir && made < files; f++, made++) {
      fs.writeFileSync(path.join(dir, `f${f}.php`), buf.subarray(0, (made * 37) % 512));
    }
  }
}

function time(cmd, args, opts = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 1 << 30, ...opts });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return s;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  if (!fs.existsSync(src)) {
    process.stderr.write(`generating ${files} files under ${src}\n`);
    generate();
  }
  if (!fs.existsSync(path.join(base, 'repo'))) {
    process.stderr.write('taking the snapshot\n');
    time(process.execPath, [BIN, '-q', 'init'], { env });
    const t = time(process.execPath, [BIN, '-q', 'snapshot', src], { env });
    process.stderr.write(`snapshot: ${t.toFixed(1)} s\n`);
  }
  const find = [];
  const verify = [];
  // Warm both once (page cache, catalog pages), then alternate.
  time('sh', ['-c', `find "${src}" -printf '%p %s %T@ %m %U %G %y\\n' > /dev/null`]);
  time(process.execPath, [BIN, '-q', '--json', 'verify', 'latest'], { env });
  for (let i = 0; i < runs; i++) {
    find.push(time('sh', ['-c', `find "${src}" -printf '%p %s %T@ %m %U %G %y\\n' > /dev/null`]));
    verify.push(time(process.execPath, [BIN, '-q', '--json', 'verify', 'latest'], { env }));
  }
  const out = {
    files,
    runs,
    dir: base,
    find_s: find.map((x) => +x.toFixed(3)),
    verify_s: verify.map((x) => +x.toFixed(3)),
    find_median_s: +median(find).toFixed(3),
    verify_median_s: +median(verify).toFixed(3),
    ratio: +(median(verify) / median(find)).toFixed(2),
    target_ratio: 1.2,
  };
  console.log(JSON.stringify(out));
  process.stderr.write(`verify/find = ${out.ratio} (target <= 1.2): verify ${out.verify_median_s}s, find ${out.find_median_s}s\n`);
} finally {
  if (!keep) fs.rmSync(base, { recursive: true, force: true });
}
