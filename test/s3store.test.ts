import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { requireSystem, tmpDir } from './helpers.js';
import { FaultProxy } from './support/faultproxy.js';
import { startS3rver, s3rverBin, S3_CREDENTIALS, type S3Server } from './support/s3server.js';
import { S3Store } from '../src/store/s3.js';
import { resolveS3Settings, parseS3Url } from '../src/store/s3config.js';
import { ObjectExistsError, ObjectNotFoundError, ObjectRetainedError } from '../src/store/store.js';
import { isRetryable, backoffDelay } from '../src/store/retry.js';

const skip = !requireSystem('s3rver', s3rverBin() !== null, 'npm ci installs it as a devDependency');

const FAST_RETRY = {
  SNAPFILL_S3_RETRY_BASE_MS: '10',
  SNAPFILL_S3_RETRY_MAX_MS: '200',
  SNAPFILL_S3_RETRIES: '15',
  SNAPFILL_S3_TIMEOUT_MS: '3000',
};

function store(
  endpoint: string,
  url: string,
  env: Record<string, string> = {},
  opts: Parameters<typeof resolveS3Settings>[1] = {},
): S3Store {
  Object.assign(process.env, S3_CREDENTIALS);
  const s = resolveS3Settings(url, { s3Endpoint: endpoint, ...opts }, { ...FAST_RETRY, ...env });
  return new S3Store(s, S3Store.makeClient(s));
}

describe.skipIf(skip)('S3 store over a real s3rver', () => {
  let server: S3Server;
  let proxy: FaultProxy;

  beforeAll(async () => {
    server = await startS3rver(path.join(tmpDir(), 's3'), ['unit-bucket']);
    proxy = await new FaultProxy({ host: server.host, port: server.port }, 7).start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it('parses URLs and settings, flags over environment', () => {
    expect(parseS3Url('s3://my-bucket/a/b/')).toEqual({ bucket: 'my-bucket', prefix: 'a/b/' });
    expect(parseS3Url('s3://my-bucket')).toEqual({ bucket: 'my-bucket', prefix: '' });
    expect(() => parseS3Url('s3://ab/x')).toThrow(/bucket name/);
    expect(() => parseS3Url('s3://bucket/../x')).toThrow(/prefix/);
    const s = resolveS3Settings(
      's3://bkt/p',
      { s3Region: 'eu-west-1' },
      { SNAPFILL_S3_REGION: 'us-west-2', SNAPFILL_S3_ENDPOINT: 'http://h:1' },
    );
    expect(s.region).toBe('eu-west-1');
    expect(s.endpoint).toBe('http://h:1');
    expect(s.pathStyle).toBe(true); // custom endpoint defaults to path style
    expect(s.checksums).toBe('WHEN_REQUIRED');
    expect(resolveS3Settings('s3://bkt', {}, { SNAPFILL_S3_PATH_STYLE: '0', SNAPFILL_S3_ENDPOINT: 'http://h:1' }).pathStyle).toBe(false);
    expect(resolveS3Settings('s3://bkt', {}, { SNAPFILL_S3_CHECKSUMS: 'when_supported' }).checksums).toBe('WHEN_SUPPORTED');
    expect(() => resolveS3Settings('s3://bkt', {}, { SNAPFILL_S3_CHECKSUMS: 'sometimes' })).toThrow(/SNAPFILL_S3_CHECKSUMS/);
  });

  it('classifies errors for retry and backs off with jitter', () => {
    expect(isRetryable({ name: 'SlowDown', $metadata: { httpStatusCode: 503 } })).toBe(true);
    expect(isRetryable({ name: 'InternalError', $metadata: { httpStatusCode: 500 } })).toBe(true);
    expect(isRetryable({ name: 'Error', code: 'ECONNRESET' })).toBe(true);
    expect(isRetryable({ name: 'TimeoutError' })).toBe(true);
    expect(isRetryable({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } })).toBe(false);
    expect(isRetryable({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })).toBe(false);
    expect(isRetryable({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } })).toBe(false);
    const p = { attempts: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(p, 0, () => 0.999)).toBeLessThan(100);
    expect(backoffDelay(p, 3, () => 0.999)).toBeLessThan(800);
    expect(backoffDelay(p, 10, () => 0.999)).toBeLessThan(1000);
  });

  it('puts, gets, ranges, lists, heads and deletes under a prefix', async () => {
    const st = store(server.url, 's3://unit-bucket/repo-a');
    const other = store(server.url, 's3://unit-bucket/repo-b');
    const data = randomBytes(100_000);
    await st.put('data/ab/ab01', data);
    await st.put('index/ab01', Buffer.from('{}'));
    await other.put('data/ab/zz', Buffer.from('x'));
    expect((await st.get('data/ab/ab01')).equals(data)).toBe(true);
    expect((await st.getRange('data/ab/ab01', 1000, 5000)).equals(data.subarray(1000, 6000))).toBe(true);
    await expect(st.getRange('data/ab/ab01', 99_990, 100)).rejects.toThrow(/short read/);
    const keys: string[] = [];
    for await (const o of st.list('data/')) keys.push(`${o.key}:${o.size}`);
    expect(keys).toEqual(['data/ab/ab01:100000']); // repo-b's objects are not ours
    expect(await st.head('index/ab01')).toMatchObject({ key: 'index/ab01', size: 2 }); // plus the store's mtime (issue 15 clock)
    expect(await st.head('index/nope')).toBeNull();
    await expect(st.get('index/nope')).rejects.toBeInstanceOf(ObjectNotFoundError);
    await st.delete('index/ab01');
    await st.delete('index/ab01'); // missing is fine
    expect(await st.head('index/ab01')).toBeNull();
    await st.close();
    await other.close();
  });

  it('lists past one page', async () => {
    const st = store(server.url, 's3://unit-bucket/many');
    await Promise.all(Array.from({ length: 1100 }, (_, i) => st.put(`snapshots/${String(i).padStart(5, '0')}`, Buffer.from('s'))));
    let n = 0;
    for await (const _ of st.list('snapshots/')) n++;
    expect(n).toBe(1100);
    expect(st.stats.list).toBeGreaterThanOrEqual(2);
    await st.close();
  });

  it('a shallow listing (delimiter /) does not descend below the prefix (issue 15: host-tagged records)', async () => {
    const st = store(server.url, 's3://unit-bucket/shallow');
    for (const k of ['snapshots/flat1', 'snapshots/flat2', 'snapshots/0123456789abcdef/rec1', 'snapshots/fedcba9876543210/rec2'])
      await st.put(k, Buffer.from('s'));
    const keys = async (prefix: string, shallow: boolean) => {
      const out: string[] = [];
      for await (const o of st.list(prefix, { shallow })) out.push(o.key);
      return out.sort();
    };
    expect(await keys('snapshots/', true)).toEqual(['snapshots/flat1', 'snapshots/flat2']);
    expect(await keys('snapshots/', false)).toHaveLength(4);
    expect(await keys('snapshots/0123456789abcdef/', true)).toEqual(['snapshots/0123456789abcdef/rec1']);
    await st.close();
  });

  it('lists from a cursor (StartAfter), also past one page (issue 15: a sync resumes its listing)', async () => {
    const st = store(server.url, 's3://unit-bucket/after');
    await Promise.all(Array.from({ length: 1100 }, (_, i) => st.put(`index/t/20261202/${String(i).padStart(6, '0')}-x`, Buffer.from('i'))));
    const list = async (startAfter: string) => {
      const out: string[] = [];
      for await (const o of st.list('index/t/', { startAfter })) out.push(o.key);
      return out;
    };
    expect(await list('index/t/20261202/000100')).toHaveLength(1000);
    expect((await list('index/t/20261202/000100'))[0]).toBe('index/t/20261202/000100-x');
    expect(await list('index/t/20261202/001099-x')).toEqual([]);
    expect(await list('index/t/2026')).toHaveLength(1100); // before every key: all of them, over two pages
    await st.close();
  });

  it('detects that s3rver ignores If-None-Match and falls back to HEAD-then-PUT', async () => {
    const st = store(server.url, 's3://unit-bucket/cond');
    await st.put('config', Buffer.from('one'), { ifAbsent: true });
    await expect(st.put('config', Buffer.from('two'), { ifAbsent: true })).rejects.toBeInstanceOf(ObjectExistsError);
    expect((await st.get('config')).toString()).toBe('one');
    expect(await st.supportsConditionalWrites()).toBe(false);
    let probes = 0;
    for await (const o of st.list('')) if (o.key.includes('probe')) probes++;
    expect(probes).toBe(0); // the probe cleans up after itself
    await st.close();
  });

  it('uploads large objects as multipart with parallel parts', async () => {
    const st = store(proxy.url, 's3://unit-bucket/mp', {
      SNAPFILL_S3_MULTIPART_THRESHOLD: String(6 * 1024 * 1024),
      SNAPFILL_S3_PART_SIZE: String(5 * 1024 * 1024),
    });
    proxy.resetCounts();
    const data = randomBytes(12 * 1024 * 1024 + 123);
    await st.put('data/cd/cd01', data);
    const partPuts = proxy.log.filter((r) => r.method === 'PUT' && /partNumber=/.test(r.query));
    expect(partPuts.length).toBe(3);
    expect(partPuts.every((r) => typeof r.headers['content-md5'] === 'string')).toBe(true);
    expect((await st.get('data/cd/cd01')).equals(data)).toBe(true);
    await st.close();
  });

  it('a multipart upload whose completion answer is lost (applied, connection cut) is recognised as done', async () => {
    const st = store(proxy.url, 's3://unit-bucket/mp-lost', {
      SNAPFILL_S3_MULTIPART_THRESHOLD: String(6 * 1024 * 1024),
      SNAPFILL_S3_PART_SIZE: String(5 * 1024 * 1024),
    });
    let cut = false;
    proxy.faults = { drop: 1, only: (r) => r.method === 'POST' && /uploadId=/.test(r.query) && !cut && (cut = true) };
    proxy.resetCounts();
    const data = randomBytes(7 * 1024 * 1024);
    try {
      await st.put('data/aa/lost', data);
    } finally {
      proxy.faults = {};
    }
    expect(cut).toBe(true);
    // the retry first looks for the object, finds it complete, and does not complete again
    const completes = proxy.log.findIndex((r) => r.method === 'POST' && /uploadId=/.test(r.query));
    expect(proxy.log.filter((r) => r.method === 'POST' && /uploadId=/.test(r.query)).length).toBe(1);
    expect(proxy.log.slice(completes + 1).some((r) => r.method === 'HEAD' && r.key.endsWith('data/aa/lost'))).toBe(true);
    expect((await st.get('data/aa/lost')).equals(data)).toBe(true);
    await st.close();
  });

  it('sends no SDK checksum headers by default (third-party servers reject them), only Content-MD5', async () => {
    const st = store(proxy.url, 's3://unit-bucket/cks');
    proxy.resetCounts();
    await st.put('index/x', Buffer.from('hello'));
    const put = proxy.log.find((r) => r.method === 'PUT')!;
    expect(Object.keys(put.headers).filter((h) => h.startsWith('x-amz-checksum-') || h === 'x-amz-sdk-checksum-algorithm')).toEqual([]);
    expect(put.headers['content-md5']).toBeDefined();
    await st.close();
  });

  it('retries 500/503, mid-body drops and delays until every transfer is correct', async () => {
    const st = store(proxy.url, 's3://unit-bucket/faulty', { SNAPFILL_S3_TIMEOUT_MS: '400' });
    proxy.faults = { error500: 0.15, error503: 0.15, drop: 0.15, delay: 0.1, delayMs: 700 };
    proxy.resetCounts();
    const objs = Array.from({ length: 40 }, (_, i) => ({
      key: `data/${String(i % 4).padStart(2, '0')}/obj${i}`,
      data: randomBytes(20_000 + i * 997),
    }));
    try {
      await Promise.all(objs.map((o) => st.put(o.key, o.data)));
      for (const o of objs) {
        expect((await st.get(o.key)).equals(o.data)).toBe(true);
        expect((await st.getRange(o.key, 5000, 9000)).equals(o.data.subarray(5000, 14000))).toBe(true);
      }
      let n = 0;
      for await (const _ of st.list('data/')) n++;
      expect(n).toBe(40);
    } finally {
      proxy.faults = {};
    }
    expect(proxy.counts.faults).toBeGreaterThan(20);
    expect(st.stats.retries).toBeGreaterThan(10);
    expect(proxy.log.some((r) => r.fault === 'drop' && r.method === 'GET')).toBe(true);
    await st.close();
  });

  it('fails cleanly when retries run out', async () => {
    const st = store(proxy.url, 's3://unit-bucket/hopeless', { SNAPFILL_S3_RETRIES: '3' });
    proxy.faults = { error503: 1 };
    try {
      await expect(st.put('index/y', Buffer.from('y'))).rejects.toThrow(/after 3 attempts/);
    } finally {
      proxy.faults = {};
    }
    expect(await st.head('index/y')).toBeNull();
    await st.close();
  });

  it('object lock: retention on write-once keys only, and no early delete', async () => {
    const st = store(proxy.url, 's3://unit-bucket/locked', {}, { objectLockDays: 7, objectLockMode: 'GOVERNANCE' });
    proxy.resetCounts();
    await st.put('data/ef/ef01', Buffer.from('pack'));
    await st.put('locks/abc', Buffer.from('{}'), { mutable: true }); // as src/repo/lock.ts writes locks
    const packPut = proxy.log.find((r) => r.method === 'PUT' && r.key.endsWith('data/ef/ef01'))!;
    const lockPut = proxy.log.find((r) => r.method === 'PUT' && r.key.endsWith('locks/abc'))!;
    expect(packPut.headers['x-amz-object-lock-mode']).toBe('GOVERNANCE');
    const until = Date.parse(String(packPut.headers['x-amz-object-lock-retain-until-date']));
    expect(until).toBeGreaterThan(Date.now() + 6.9 * 86_400_000);
    expect(lockPut.headers['x-amz-object-lock-mode']).toBeUndefined();
    const retained = await st.retainedUntil('data/ef/ef01');
    expect(retained?.getTime()).toBeGreaterThan(Date.now() + 6 * 86_400_000);
    expect(await st.retainedUntil('locks/abc')).toBeNull();
    // a process without --object-lock-days still honours the retention recorded on the object
    const plain = store(server.url, 's3://unit-bucket/locked');
    await expect(plain.delete('data/ef/ef01')).rejects.toBeInstanceOf(ObjectRetainedError);
    expect(await plain.head('data/ef/ef01')).not.toBeNull();
    await plain.delete('locks/abc');
    expect(await plain.head('locks/abc')).toBeNull();
    await st.close();
    await plain.close();
  });
});
