#!/usr/bin/env node
// Throttling benchmark (issue 7): measured read and upload rates of a real snapshot against
// the configured --limit-read / --limit-upload. Target: within 10% of the limit.
//
//   node bench/throttle.mjs                          # 64 MB source, read 20 MB/s, upload 10 MB/s
//   node bench/throttle.mjs --size 32 --read 16 --upload 8 --json
//
// Works under /dev/shm (tmpfs) unless --work DIR, so the disk's own noise does not hide the
// limiter. Uses the library (dist/) with the same hooks `snapfill run` installs; each rate is
// bytes / wall time of the whole snapshot. Upload bytes are the pack bytes that landed in the
// repository (what a disk or network sees), read bytes are the source bytes read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(HERE, '..', 'dist');
const { LocalStore } = await import(path.join(dist, 'store', 'local.js'));
const { Repository } = await import(path.join(dist, 'repo', 'repository.js'));
const { Catalog } = await import(path.join(dist, 'index', 'catalog.js'));
const { Snapshotter } = await import(path.join(dist, 'snapshot', 'snapshotter.js'));
const { throttleHooks } = await import(path.join(dist, 'util', 'throttle.js'));

const o = { size: 64, read: 20, upload: 10, work: null, json: false };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const v = () => process.argv[++i];
  if (a === '--size') o.size = Number(v());
  else if (a === '--read') o.read = Number(v());
  else if (a === '--upload') o.upload = Number(v());
  else if (a === '--work') o.work = v();
  else if (a === '--json') o.json = true;
  else {
    console.error(`unknown option ${a}`);
    process.exit(2);
  }
}
const MB = 1_000_000;
const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
const work = fs.mkdtempSync(path.join(o.work ?? shm, 'snapfill-bench-throttle-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

const src = path.join(work, 'src');
fs.mkdirSync(src);
for (let i = 0; i < o.size; i++) fs.writeFileSync(path.join(src, `f${i}.bin`), randomBytes(MB)); // random: nothing dedups

function dirBytes(d) {
  let n = 0;
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    const p = path.join(d, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return n;
}

let runN = 0;
async function snapshot(limits) {
  const dir = path.join(work, `repo${runN++}`);
  fs.mkdirSync(dir);
  const repo = await Repository.init(new LocalStore(dir));
  const catalog = Catalog.open(path.join(work, `cat${runN}.db`), repo.config.id);
  const th = throttleHooks(limits, (m) => process.stderr.write(m + '\n'));
  const t0 = process.hrtime.bigint();
  const r = await new Snapshotter(repo, catalog, { paths: [src], onRead: th.onRead, onUpload: th.onUpload }).run();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  catalog.close();
  const packBytes = dirBytes(path.join(dir, 'data'));
  return { seconds: s, bytes_read: r.bytes_read, pack_bytes: packBytes, read_mbps: r.bytes_read / s / MB, upload_mbps: packBytes / s / MB };
}

const base = await snapshot({});
const read = await snapshot({ limitReadMBps: o.read });
const upload = await snapshot({ limitUploadMBps: o.upload });
const rows = [
  { what: 'unthrottled', configured: null, measured: base.read_mbps, upload: base.upload_mbps, seconds: base.seconds },
  { what: '--limit-read', configured: o.read, measured: read.read_mbps, seconds: read.seconds },
  { what: '--limit-upload', configured: o.upload, measured: upload.upload_mbps, seconds: upload.seconds },
];
for (const r of rows)
  if (r.configured) {
    r.ratio = r.measured / r.configured;
    r.within_10pct = Math.abs(r.ratio - 1) <= 0.1;
  }
if (o.json) {
  console.log(JSON.stringify({ size_mb: o.size, fs: o.work ?? shm, rows }));
} else {
  console.log(`throttle bench: ${o.size} MB of random files on ${o.work ?? shm}, ${os.cpus().length} cores`);
  console.log(
    `${'scenario'.padEnd(16)}${'configured'.padStart(12)}${'measured'.padStart(12)}${'ratio'.padStart(8)}${'time'.padStart(9)}  within 10%`,
  );
  for (const r of rows) {
    const m = r.what === 'unthrottled' ? `${r.measured.toFixed(1)} rd / ${r.upload.toFixed(1)} up` : r.measured.toFixed(2);
    console.log(
      `${r.what.padEnd(16)}${(r.configured ? `${r.configured} MB/s` : '-').padStart(12)}  ${m.padStart(12)}${(r.ratio ? r.ratio.toFixed(3) : '').padStart(8)}${(r.seconds.toFixed(2) + 's').padStart(9)}  ${r.configured ? (r.within_10pct ? 'yes' : 'NO') : ''}`,
    );
  }
  console.log('A limit is a cap: a rate well below it means the machine could not go faster (compare the unthrottled row).');
}
const failed = rows.some((r) => r.configured && !r.within_10pct);
process.exitCode = failed ? 1 : 0;
