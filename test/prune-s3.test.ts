import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { requireSystem, tmpDir, write } from './helpers.js';
import { startS3rver, s3rverBin, cliAsync, s3Env, S3_CREDENTIALS, type S3Server } from './support/s3server.js';
import { ObjectLockProxy } from './support/objectlock-proxy.js';
import { indexKey, packIdOfKey, packKey, parseIndexKey } from '../src/pack/keys.js';
import { S3Client, DeleteObjectCommand, ListObjectsV2Command, PutObjectRetentionCommand } from '@aws-sdk/client-s3';

/** The real SDK with s3rver's credentials, for what another party does to the bucket. */
function sdkClient(endpoint: string): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until the clock is past `when` (+ a little, so the store's second-granular dates agree). */
async function waitUntil(when: number): Promise<void> {
  const ms = when - Date.now() + 1_500;
  if (ms > 0) await sleep(ms);
}

const skip = !requireSystem('s3rver', s3rverBin() !== null, 'npm ci installs it as a devDependency');

describe.skipIf(skip)('forget and prune on S3 (real s3rver)', () => {
  let base: string;
  let server: S3Server;
  /** s3rver with Object Lock enforced (retention kept per object, DELETE refused with 403). */
  let lock: ObjectLockProxy;
  /** The same, for credentials without s3:GetObjectRetention (HEAD does not show retention). */
  let hidden: ObjectLockProxy;
  beforeAll(async () => {
    base = tmpDir('snapfill-prune-s3-');
    server = await startS3rver(path.join(base, 's3rver'), ['bkt', 'dflt']);
    lock = await new ObjectLockProxy(server, { lockedBuckets: ['bkt'] }).start();
    hidden = await new ObjectLockProxy(server, { lockedBuckets: ['dflt'], reportRetention: false }).start();
  });
  afterAll(async () => {
    await lock?.stop();
    await hidden?.stop();
    await server?.stop();
  });

  /** Keys (without `bkt/<prefix>/`) of objects the lock proxy holds under retention now. */
  function retainedKeys(prefix: string): string[] {
    const head = `bkt/${prefix}/`;
    return [...lock.retention.keys()].filter((k) => k.startsWith(head) && lock.activeRetention(k)).map((k) => k.slice(head.length));
  }
  /** The key of a pack's index: flat, or below a host tag for a tree pack (issue 15). */
  function indexKeyIn(prefix: string, id: string): string {
    const keys = [...lock.retention.keys()].map((k) => k.slice(`bkt/${prefix}/`.length)).filter((k) => /^index\//.test(k));
    // Tagged (tree packs), timed (data packs), flat (older releases), with or without a blob filter (issue 15).
    return keys.find((k) => parseIndexKey(k)?.id === id) ?? indexKey(id);
  }
  function untilOf(prefix: string, key: string): number {
    return lock.retention.get(`bkt/${prefix}/${key}`)!.until.getTime();
  }
  /** Whether s3rver still stores the object (its files on disk, not through the proxy). */
  function stored(bucket: string, key: string): boolean {
    return fs.existsSync(path.join(server.dir, bucket, `${key}._S3rver_object`));
  }

  it('forgets and prunes an S3 repository; the kept snapshot checks and restores', async () => {
    const src = path.join(base, 'src');
    write(path.join(src, 'keep.bin'), randomBytes(50_000));
    write(path.join(src, 'old.bin'), randomBytes(300_000));
    // Grace 0 (issue 15): the prune marks and, no snapshot running, deletes in the same run.
    const env = { ...s3Env(server.url, 's3://bkt/plain', path.join(base, 'cache-plain')), SNAPFILL_PRUNE_GRACE: '0s' };
    {
      const r = await cliAsync(['init'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    {
      const r = await cliAsync(['snapshot', src, '--time', '2026-10-01T00:00:00Z'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    fs.rmSync(path.join(src, 'old.bin'));
    {
      const r = await cliAsync(['snapshot', src, '--time', '2026-11-01T00:00:00Z'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    const f = await cliAsync(['--json', 'forget', '--keep-last', '1', '--prune'], env);
    expect(f.code, f.stderr).toBe(0);
    expect(f.json.removed).toHaveLength(1);
    expect(f.json.prune.bytes_freed).toBeGreaterThan(250_000);
    const c = await cliAsync(['--json', 'check', '--read-data'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const target = path.join(base, 'out');
    const r = await cliAsync(['--json', 'restore', 'latest', '--target', target, '--mode', 'all'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'keep.bin'))).toEqual(fs.readFileSync(path.join(src, 'keep.bin')));
    expect(fs.existsSync(path.join(target, src, 'old.bin'))).toBe(false);
  });

  it('keeps snapshots and packs still under Object Lock retention', async () => {
    const src = path.join(base, 'src-locked');
    write(path.join(src, 'a.bin'), randomBytes(100_000));
    const env = { ...s3Env(lock.url, 's3://bkt/locked', path.join(base, 'cache-locked')), SNAPFILL_PRUNE_GRACE: '0s' };
    {
      const r = await cliAsync(['init'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    {
      const r = await cliAsync(['--object-lock-days', '30', 'snapshot', src, '--time', '2026-10-01T00:00:00Z'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    write(path.join(src, 'a.bin'), randomBytes(100_000));
    {
      const r = await cliAsync(['--object-lock-days', '30', 'snapshot', src, '--time', '2026-11-01T00:00:00Z'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    const f = await cliAsync(['--json', 'forget', '--keep-last', '1'], env);
    expect(f.code, f.stderr).toBe(0);
    expect(f.json.removed).toEqual([]);
    expect(f.json.retained).toHaveLength(1);
    expect(new Date(f.json.retained[0].until).getTime()).toBeGreaterThan(Date.now() + 29 * 86400_000);
    expect((await cliAsync(['--json', 'snapshots'], env)).json.snapshots).toHaveLength(2);
    const p = await cliAsync(['--json', 'prune'], env);
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.snapshots).toBe(2);
    expect(p.json.packs_deleted + p.json.packs_repacked).toBe(0);
    // Live packs keep their retention; nothing under retention was deleted.
    expect(p.json.retained_kept).toEqual([]);
    // The server holds retention for every pack, index and snapshot record; snapfill never even
    // asked to delete one (it reads retention first), so the server refused nothing.
    const held = retainedKeys('locked');
    expect(held.filter((k) => k.startsWith('snapshots/'))).toHaveLength(2);
    expect(held.filter((k) => k.startsWith('data/')).length).toBeGreaterThanOrEqual(2);
    expect(held.filter((k) => k.startsWith('index/')).length).toBeGreaterThanOrEqual(2);
    for (const k of held) expect(stored('bkt', `locked/${k}`), k).toBe(true);
    expect(lock.eventsOf('delete-refused', 'bkt/locked/')).toEqual([]);
  });

  it('the server enforces the lock: a DELETE under retention is refused with 403 AccessDenied', async () => {
    const src = path.join(base, 'src-enforced');
    write(path.join(src, 'x.bin'), randomBytes(20_000));
    // A pack above the multipart threshold: its retention comes with CreateMultipartUpload.
    write(path.join(src, 'big.bin'), randomBytes(2 * 1024 * 1024));
    const env = s3Env(lock.url, 's3://bkt/enforced', path.join(base, 'cache-enforced'), {
      SNAPFILL_TEST_OBJECT_LOCK_SECONDS: '3600',
      SNAPFILL_S3_MULTIPART_THRESHOLD: String(1024 * 1024),
    });
    {
      const r = await cliAsync(['init'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    {
      const r = await cliAsync(['snapshot', src], env);
      expect(r.code, r.stderr).toBe(0);
    }
    // Every pack, index and the record are under retention, the multipart-uploaded pack too.
    const held = retainedKeys('enforced');
    const client0 = sdkClient(lock.url);
    try {
      const listed = await client0.send(new ListObjectsV2Command({ Bucket: 'bkt', Prefix: 'enforced/' }));
      const keys = (listed.Contents ?? []).map((o) => o.Key!.slice('enforced/'.length)).filter((k) => /^(data|index|snapshots)\//.test(k));
      expect(keys.length).toBeGreaterThanOrEqual(3);
      expect(held).toEqual(expect.arrayContaining(keys));
      expect(
        keys.some((k) => k.startsWith('data/') && (listed.Contents ?? []).find((o) => o.Key === `enforced/${k}`)!.Size! > 1024 * 1024),
      ).toBe(true);
    } finally {
      client0.destroy();
    }
    const pack = held.find((k) => k.startsWith('data/'))!;
    expect(pack).toBeTruthy();
    // A client that does not look first (the real SDK, straight at the proxy) gets S3's answer.
    const client = sdkClient(lock.url);
    try {
      const err = await client.send(new DeleteObjectCommand({ Bucket: 'bkt', Key: `enforced/${pack}` })).then(
        () => null,
        (e: any) => e,
      );
      expect(err?.name).toBe('AccessDenied');
      expect(err?.$metadata?.httpStatusCode).toBe(403);
    } finally {
      client.destroy();
    }
    expect(stored('bkt', `enforced/${pack}`)).toBe(true);
    // Retention is about an hour (the test-only seconds override), as the server reports it.
    expect(untilOf('enforced', pack) - Date.now()).toBeGreaterThan(3500_000);
    const c = await cliAsync(['--json', 'check'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
  });

  it('retention the client cannot see: the server refuses, the record is kept and reported (until unknown), the run goes on', async () => {
    // Another party (an administrator, a compliance job) put retention on objects snapfill wrote
    // without it, and snapfill's credentials lack s3:GetObjectRetention, so HEAD does not show
    // it (as on S3): snapfill learns of the lock only from the server's 403 on DELETE.
    const src = path.join(base, 'src-hidden');
    const P = 'hidden';
    const env = { ...s3Env(hidden.url, `s3://dflt/${P}`, path.join(base, 'cache-hidden')), SNAPFILL_PRUNE_GRACE: '0s' };
    {
      const r = await cliAsync(['init'], env);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const time of ['2026-10-01T00:00:00Z', '2026-11-01T00:00:00Z']) {
      write(path.join(src, 'a.bin'), randomBytes(60_000));
      const r = await cliAsync(['snapshot', src, '--time', time], env);
      expect(r.code, r.stderr).toBe(0);
    }
    const until = new Date(Date.now() + 3600_000);
    const client = sdkClient(hidden.url);
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: 'dflt', Prefix: `${P}/` }));
      const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => /\/(data|index|snapshots)\//.test(k));
      expect(keys.length).toBeGreaterThanOrEqual(6);
      for (const Key of keys)
        await client.send(
          new PutObjectRetentionCommand({ Bucket: 'dflt', Key, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: until } }),
        );
    } finally {
      client.destroy();
    }
    const f = await cliAsync(['--json', 'forget', '--keep-last', '1', '--prune'], env);
    // The server refused the delete of the older snapshot's record.
    expect(hidden.eventsOf('delete-refused', `dflt/${P}/snapshots/`)).toHaveLength(1);
    // A refusal whose date cannot be read (credentials without s3:GetObjectRetention) is an
    // answer, not a failure: the record is kept and reported, the run goes on.
    expect(f.code, f.stdout + f.stderr).toBe(0);
    expect(f.json.removed).toEqual([]);
    expect(f.json.retained).toHaveLength(1);
    expect(f.json.retained[0].until).toBe('unknown');
    const s = await cliAsync(['--json', 'snapshots'], env);
    expect(s.json.snapshots).toHaveLength(2);
    const c = await cliAsync(['--json', 'check', '--read-data'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
  });

  it(
    'short retention: prune keeps what is retained and says until when, extends live packs, deletes after expiry',
    { timeout: 300_000 },
    async () => {
      const R = 30; // seconds of retention (SNAPFILL_TEST_OBJECT_LOCK_SECONDS: the test-only stand-in for days)
      const P = 'short';
      const src = path.join(base, 'src-short');
      write(path.join(src, 'a.bin'), randomBytes(120_000));
      const env = {
        ...s3Env(lock.url, `s3://bkt/${P}`, path.join(base, 'cache-short')),
        SNAPFILL_PRUNE_GRACE: '0s',
        SNAPFILL_TEST_OBJECT_LOCK_SECONDS: String(R),
      };
      {
        const r = await cliAsync(['init'], env);
        expect(r.code, r.stderr).toBe(0);
      }
      const s1 = await cliAsync(['--json', 'snapshot', src], env);
      expect(s1.code, s1.stderr).toBe(0);
      const snap1 = s1.json.snapshot_id as string;
      const packIds = () =>
        retainedKeys(P)
          .filter((k) => k.startsWith('data/'))
          .map(packIdOfKey);
      const packs1 = packIds();
      write(path.join(src, 'a.bin'), randomBytes(120_000));
      const s2 = await cliAsync(['--json', 'snapshot', src], env);
      expect(s2.code, s2.stderr).toBe(0);
      const packs2 = packIds().filter((id) => !packs1.includes(id));
      expect(packs1.length).toBeGreaterThan(0);
      expect(packs2.length).toBeGreaterThan(0);

      // 1. Past half the period, both snapshots live: prune extends their packs' retention (and
      //    their indexes'), through PutObjectRetention the server accepted (COMPLIANCE: later only).
      const before1 = Math.min(...packs1.map((id) => untilOf(P, packKey(id))));
      await waitUntil(before1 - (R * 1000) / 2);
      const p1 = await cliAsync(['--json', 'prune'], env);
      expect(p1.code, p1.stderr).toBe(0);
      expect(p1.json.retention_extended).toBeGreaterThanOrEqual(packs1.length);
      expect(p1.json.packs_deleted).toBe(0);
      for (const id of packs1) {
        expect(untilOf(P, packKey(id)), id).toBeGreaterThan(before1 + 5_000);
        expect(untilOf(P, indexKeyIn(P, id)), id).toBeGreaterThan(before1 + 5_000);
      }
      expect(lock.eventsOf('retention-set', `bkt/${P}/`).length).toBeGreaterThanOrEqual(2 * packs1.length);
      expect(lock.eventsOf('retention-refused', `bkt/${P}/`)).toEqual([]);

      // 2. Once snapshot 1's record may go (records are not extended), forget removes it; its packs
      //    are garbage but still retained: kept, with the date the server holds, and no error.
      // (records lie below a tag of their host: snapshots/<tag>/<id>)
      const rec1 = [...lock.retention.keys()].find((k) => k.startsWith(`bkt/${P}/snapshots/`) && k.endsWith(`/${snap1}`))!;
      await waitUntil(untilOf(P, rec1.slice(`bkt/${P}/`.length)));
      const f = await cliAsync(['--json', 'forget', '--keep-last', '1', '--prune'], env);
      expect(f.code, f.stdout + f.stderr).toBe(0);
      expect(f.json.removed.map((r: any) => r.id ?? r)).toEqual([snap1]);
      const kept: { pack: string; until: string }[] = f.json.prune.retained_kept;
      // Snapshot 1's packs (its a.bin and its trees): nothing else uses them any more.
      expect(kept.length).toBeGreaterThan(0);
      for (const k of kept) expect(packs1).toContain(k.pack);
      for (const k of kept) {
        expect(new Date(k.until).getTime(), k.pack).toBe(untilOf(P, packKey(k.pack)));
        expect(stored('bkt', `${P}/${packKey(k.pack)}`)).toBe(true);
      }
      expect(f.json.prune.packs_deleted).toBe(0);
      // Snapshot 2's packs are live: extended when less than half the period was left, so they
      // still hold about half a period or more (minus the seconds since that prune).
      for (const id of packs2) expect(untilOf(P, packKey(id)) - Date.now(), id).toBeGreaterThan((R * 1000) / 2 - 10_000);
      // The text report says what was kept and until when.
      const t = await cliAsync(['prune'], env);
      expect(t.code, t.stderr).toBe(0);
      expect(t.stdout + t.stderr).toMatch(
        /\d+ packs are under object-lock retention and were kept \(the last until \S+\); a later prune deletes them/,
      );
      // Nothing was ever deleted under retention, and snapfill never had a delete refused.
      expect(lock.eventsOf('delete-refused', `bkt/${P}/`)).toEqual([]);

      // 3. After their retention ends, a later prune deletes them.
      await waitUntil(Math.max(...kept.map((k) => new Date(k.until).getTime())));
      const p3 = await cliAsync(['--json', 'prune'], env);
      expect(p3.code, p3.stderr).toBe(0);
      expect(p3.json.retained_kept).toEqual([]);
      expect(p3.json.packs_deleted + p3.json.orphan_packs_deleted).toBe(kept.length);
      for (const k of kept) {
        expect(stored('bkt', `${P}/${packKey(k.pack)}`), k.pack).toBe(false);
        expect(stored('bkt', `${P}/${indexKeyIn(P, k.pack)}`), k.pack).toBe(false);
      }
      expect(lock.eventsOf('delete-refused', `bkt/${P}/`)).toEqual([]);
      const c = await cliAsync(['--json', 'check', '--read-data'], env);
      expect(c.code, c.stdout + c.stderr).toBe(0);
      const target = path.join(base, 'out-short');
      const r = await cliAsync(['--json', 'restore', 'latest', '--target', target], env);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(path.join(target, src, 'a.bin'))).toEqual(fs.readFileSync(path.join(src, 'a.bin')));
    },
  );
});
