#!/usr/bin/env node
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
// Where the time of a catalog sync's listing goes (issue 15, BENCHMARKS.md "Fleet"): s3rver's
// own cost of answering ListObjectsV2, or ours (the SDK's parsing, S3Store.list, the
// repository's key parsing). Starts s3rver on 127.0.0.1, stores K flat `index/` keys (and, to see
// what the delimiter saves, T tags of M keys each below `index/<tag>/`), then times, median of
// --reps runs each, for each K:
//   raw HTTP   one unsigned GET ?list-type=2&prefix=..&delimiter=/ (s3rver's time + loopback)
//   SDK        ListObjectsV2Command through @aws-sdk/client-s3 (adds signing + XML parsing)
//   S3Store    snapfill's store.list (adds its retry/limit wrapper)
//   repo       Repository.listPackIndexesBelow([]) (adds key parsing): what a sync's list phase does
//
//   npm run build && node bench/list-cost.mjs [--keys 10,50,150,500] [--tags 16 --per-tag 10] [--reps 15]
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : def;
};
const KEYS = arg('keys', '10,50,150,500').split(',').map(Number);
const TAGS = Number(arg('tags', '16'));
const PER_TAG = Number(arg('per-tag', '10'));
const REPS = Number(arg('reps', '15'));
const BUCKET = 'listcost';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function startS3rver(dir) {
  const bin = path.join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js');
  const child = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      bin,
      '-d',
      dir,
      '-a',
      '127.0.0.1',
      '-p',
      '0',
      '--no-vhost-buckets',
      '--configure-bucket',
      BUCKET,
      '--silent',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const on = (c) => {
      out += c;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (code) => reject(new Error(`s3rver exited ${code}: ${out}`)));
  });
  child.stdout.resume();
  child.stderr.resume();
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-list-cost-'));
  const s3 = await startS3rver(path.join(dir, 's3'));
  Object.assign(process.env, {
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
    SNAPFILL_S3_ENDPOINT: s3.url,
  });
  const { S3Client, ListObjectsV2Command, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ endpoint: s3.url, region: 'us-east-1', forcePathStyle: true });
  const store = await import(path.join(ROOT, 'dist', 'store', 's3.js'));
  const repoMod = await import(path.join(ROOT, 'dist', 'repo', 'repository.js'));
  const put = (key) => client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomBytes(200) }));
  const rows = [];
  try {
    let have = 0;
    const prefix = 'r';
    // The repository's config (Repository.open reads it) and the tags (constant across K).
    const s = store.S3Store.fromUrl(`s3://${BUCKET}/${prefix}`);
    await s.put(
      'config',
      Buffer.from(
        JSON.stringify({
          format: 'snapfill',
          version: 1,
          id: 'f'.repeat(32),
          created: new Date().toISOString(),
          chunk_size: 8388608,
          pack_size: 16777216,
        }),
      ),
    );
    for (let t = 0; t < TAGS; t++) {
      const tag = randomBytes(8).toString('hex');
      for (let i = 0; i < PER_TAG; i++) await put(`${prefix}/index/${tag}/${randomBytes(32).toString('hex')}`);
    }
    const repo = await repoMod.Repository.open(s);
    for (const k of KEYS) {
      while (have < k) {
        await put(`${prefix}/index/${randomBytes(32).toString('hex')}`);
        have++;
      }
      const q = `${s3.url}/${BUCKET}?list-type=2&prefix=${encodeURIComponent(`${prefix}/index/`)}&delimiter=%2F`;
      const times = { raw: [], sdk: [], store: [], repo: [] };
      for (let r = 0; r < REPS; r++) {
        let t0 = performance.now();
        const body = await (await fetch(q)).text();
        times.raw.push(performance.now() - t0);
        if (r === 0 && !body.includes('<KeyCount>')) throw new Error(`unsigned listing refused: ${body.slice(0, 200)}`);
        t0 = performance.now();
        await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${prefix}/index/`, Delimiter: '/' }));
        times.sdk.push(performance.now() - t0);
        t0 = performance.now();
        let n = 0;
        for await (const _ of s.list('index/', { shallow: true })) n++;
        times.store.push(performance.now() - t0);
        if (n !== k) throw new Error(`listed ${n} keys, expected ${k}`);
        t0 = performance.now();
        await repo.listPackIndexesBelow([]);
        times.repo.push(performance.now() - t0);
      }
      rows.push({ keys: k, raw: median(times.raw), sdk: median(times.sdk), store: median(times.store), repo: median(times.repo) });
    }
  } finally {
    client.destroy();
    await s3.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `flat index keys listed (shallow; plus ${TAGS} tags x ${PER_TAG} keys below index/<tag>/ skipped by the delimiter), median of ${REPS}, ms:`,
  );
  console.log('| keys | raw HTTP (s3rver) | SDK ListObjectsV2 | S3Store.list | Repository.listPackIndexesBelow |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(`| ${r.keys} | ${r.raw.toFixed(1)} | ${r.sdk.toFixed(1)} | ${r.store.toFixed(1)} | ${r.repo.toFixed(1)} |`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
