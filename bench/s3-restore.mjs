#!/usr/bin/env node
// Restore from S3 (a real s3rver process on loopback) of a generated hosting-like tree.
// Reports files/s, MB/s and requests per restored file (counted by a pass-through proxy
// between snapfill and the server), for a full restore on a fresh machine (empty catalog cache,
// so the catalog rebuild from the bucket is part of it and reported separately) and for a
// single-file restore. Numbers are reported, never asserted.
//
//   npm run build && node bench/s3-restore.mjs [--files 20000] [--seed 1] [--dir /dev/shm/snapfill-s3-bench] [--keep] [--no-local]
//
// Unless --no-local, the same tree is also restored from a local repository in the same run, and
// the ratio is reported (the disk and the machine are noisy: compare within one run only).
//
// Target (issue 5): fewer than 0.05 GET requests per file for a full restore.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import * as os from 'node:os';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { generate, PROFILES } from './gen-dataset.mjs';
import { freezeBuild } from './freeze-build.mjs';
import { startS3rver } from './s3rver.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
let BIN = path.join(ROOT, 'bin', 'snapfill');

function args() {
  const a = process.argv.slice(2);
  const o = { files: PROFILES.quick, seed: 1, dir: '/dev/shm/snapfill-s3-bench', keep: false, noLocal: false };
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--files') o.files = Number(a[++i]);
    else if (a[i] === '--profile') o.files = PROFILES[a[++i]];
    else if (a[i] === '--seed') o.seed = Number(a[++i]);
    else if (a[i] === '--dir') o.dir = a[++i];
    else if (a[i] === '--keep') o.keep = true;
    else if (a[i] === '--no-local') o.noLocal = true;
    else {
      console.log('usage: node bench/s3-restore.mjs [--files N | --profile quick|default] [--seed N] [--dir DIR] [--keep] [--no-local]');
      process.exit(a[i] === '--help' ? 0 : 2);
    }
  }
  return o;
}

/** A streaming pass-through proxy that counts requests by kind and bytes sent back. */
async function countingProxy(targetPort) {
  const counts = { get: 0, ranged_get: 0, list: 0, head: 0, put: 0, other: 0, bytes_down: 0 };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const server = http.createServer((req, res) => {
    const [p, q = ''] = (req.url ?? '/').split('?');
    const key = p.split('/').slice(2).join('/');
    if (req.method === 'GET' && (key === '' || /(^|&)(list-type|prefix)=/.test(q))) counts.list++;
    else if (req.method === 'GET') {
      counts.get++;
      if (req.headers.range) counts.ranged_get++;
    } else if (req.method === 'HEAD') counts.head++;
    else if (req.method === 'PUT') counts.put++;
    else counts.other++;
    const up = http.request(
      { host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers, agent },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.on('data', (c) => {
          counts.bytes_down += c.length;
        });
        r.pipe(res);
      },
    );
    up.on('error', (e) => {
      res.writeHead(502);
      res.end(String(e));
    });
    req.pipe(up);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    reset() {
      for (const k of Object.keys(counts)) counts[k] = 0;
    },
    stop() {
      server.closeAllConnections();
      server.close();
      agent.destroy();
    },
  };
}

function run(argv, env) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [BIN, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => {
      out += c;
    });
    child.stderr.on('data', (c) => {
      err += c;
    });
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      let json = null;
      try {
        json = JSON.parse(out.trim().split('\n').pop());
      } catch {
        /* not json */
      }
      // 3 = finished with some path errors: counted and reported, not fatal for a measurement.
      if (code !== 0 && !(code === 3 && json))
        return reject(new Error(`snapfill ${argv.join(' ')} exited ${code}: ${err.slice(-2000)}${out.slice(-2000)}`));
      resolve({ seconds, json });
    });
  });
}

function countFiles(dir) {
  let n = 0;
  let bytes = 0;
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        n++;
        bytes += fs.statSync(p).size;
      }
    }
  };
  walk(dir);
  return { n, bytes };
}

async function main() {
  const o = args();
  BIN = freezeBuild(ROOT, { retryS: 10 });
  fs.rmSync(o.dir, { recursive: true, force: true });
  fs.mkdirSync(o.dir, { recursive: true });
  const src = path.join(o.dir, 'src');
  process.stderr.write(`generating ${o.files} files in ${src}...\n`);
  generate({ out: src, seed: o.seed, files: o.files, createUsers: false });
  const { n: files, bytes } = countFiles(src);
  const server = await startS3rver(path.join(o.dir, 's3rver'), 'bench-bucket');
  const proxy = await countingProxy(server.port);
  // snapfill encrypts by default: a fixed password from a file keeps the run unattended.
  const passwordFile = path.join(o.dir, 'password');
  fs.writeFileSync(passwordFile, 'snapfill-bench-fixed-password\n', { mode: 0o600 });
  const base = {
    SNAPFILL_PASSWORD_FILE: passwordFile,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    SNAPFILL_REPO: 's3://bench-bucket/repo',
    SNAPFILL_S3_ENDPOINT: proxy.url,
  };
  const result = { files, bytes, host: process.env.HOSTNAME ?? '', when: new Date().toISOString() };
  try {
    await run(['init'], { ...base, SNAPFILL_CACHE: path.join(o.dir, 'cache-backup') });
    process.stderr.write('snapshot to S3...\n');
    proxy.reset();
    const snap = await run(['--json', '-q', 'snapshot', src], { ...base, SNAPFILL_CACHE: path.join(o.dir, 'cache-backup') });
    result.snapshot = {
      seconds: snap.seconds,
      puts: proxy.counts.put,
      files_per_s: files / snap.seconds,
      mb_per_s: bytes / 1e6 / snap.seconds,
    };

    // Fresh machine: empty cache. First the catalog rebuild alone (what `snapshots` pays), then the restore.
    const fresh = { ...base, SNAPFILL_CACHE: path.join(o.dir, 'cache-fresh') };
    proxy.reset();
    process.stderr.write('fresh machine: snapshots (catalog rebuild from the bucket)...\n');
    const list = await run(['--json', '-q', 'snapshots'], fresh);
    result.catalog_rebuild = { seconds: list.seconds, ...proxy.counts };

    const target = path.join(o.dir, 'target');
    proxy.reset();
    process.stderr.write('full restore...\n');
    const rest = await run(['--json', '-q', 'restore', 'latest', '--target', target], fresh);
    const c = { ...proxy.counts };
    const restored = rest.json?.files_restored ?? files;
    result.full_restore = {
      seconds: rest.seconds,
      files_restored: restored,
      bytes_written: rest.json?.bytes_written,
      files_per_s: restored / rest.seconds,
      mb_per_s: (rest.json?.bytes_written ?? bytes) / 1e6 / rest.seconds,
      requests: c,
      get_per_file: c.get / restored,
      requests_per_file: (c.get + c.list + c.head) / restored,
      mb_downloaded: c.bytes_down / 1e6,
      errors: rest.json?.errors?.length ?? null,
      first_errors: rest.json?.errors?.slice(0, 3),
    };

    // The same restore from a local repository, same run: separates S3 cost from restore cost.
    if (!o.noLocal) {
      const local = {
        SNAPFILL_PASSWORD_FILE: passwordFile,
        SNAPFILL_REPO: path.join(o.dir, 'local-repo'),
        SNAPFILL_CACHE: path.join(o.dir, 'cache-local'),
      };
      await run(['init'], local);
      process.stderr.write('local repository: snapshot + full restore for comparison...\n');
      await run(['--json', '-q', 'snapshot', src], local);
      const lt = path.join(o.dir, 'target-local');
      const lr = await run(['--json', '-q', 'restore', 'latest', '--target', lt], local);
      result.local_restore = {
        seconds: lr.seconds,
        files_per_s: (lr.json?.files_restored ?? files) / lr.seconds,
        errors: lr.json?.errors?.length ?? null,
      };
      result.s3_over_local = rest.seconds / lr.seconds;
      fs.rmSync(lt, { recursive: true, force: true });
    }

    // One file back: ranged reads only, not whole packs.
    const one = (await run(['--json', '-q', 'ls', '-R', 'latest'], fresh)).json?.entries?.find((e) => e.type === 'file' && e.size > 1000);
    if (one) {
      proxy.reset();
      const r1 = await run(['--json', '-q', 'restore', 'latest', one.path, '--target', path.join(o.dir, 'target-one')], fresh);
      result.single_file_restore = { path: one.path, size: one.size, seconds: r1.seconds, ...proxy.counts };
    }
  } finally {
    proxy.stop();
    server.stop();
    if (!o.keep) fs.rmSync(o.dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify(result, null, 2));
  const fr = result.full_restore;
  process.stderr.write(
    `\nfull restore from S3: ${fr.files_restored} files in ${fr.seconds.toFixed(1)} s = ${fr.files_per_s.toFixed(0)} files/s, ${fr.mb_per_s.toFixed(1)} MB/s, ` +
      `${fr.requests.get} GETs (${fr.get_per_file.toFixed(4)} per file; target < 0.05)` +
      (result.local_restore
        ? `; local repository: ${result.local_restore.seconds.toFixed(1)} s (S3/local = ${result.s3_over_local.toFixed(2)})`
        : '') +
      '\n',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
