// Per-host cost of a fleet in one bucket (issue 15), through the CLI against a real s3rver:
// a catalog sync reads only the objects that are new since the last one (counted at the HTTP
// level, by a proxy in front of s3rver), other hosts' packs get compact rows in the catalog,
// and hosts that snapshot one after another store shared content once; every snapshot still
// restores byte-identically on its own host, on another host and on a fresh machine.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { requireSystem, tmpDir, write, describeTree, diffTrees } from './helpers.js';
import { startS3rver, s3rverBin, cliAsync, s3Env, type S3Server } from './support/s3server.js';
import { FaultProxy } from './support/faultproxy.js';
import { parseIndexKey } from '../src/pack/keys.js';

const skip = !requireSystem('s3rver', s3rverBin() !== null, 'npm ci installs it as a devDependency');

/** Incompressible bytes, the same for the same label on every host. */
function bytesFor(label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0, off = 0; off < size; i++) off += createHash('sha256').update(`${label}:${i}`).digest().copy(out, off);
  return out;
}

/** The catalog file below a cache directory (one repository: one catalog). */
function catalogFile(cache: string): string {
  const dirs = fs
    .readdirSync(cache, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(cache, d.name, 'catalog.db')));
  expect(dirs.length).toBe(1);
  return path.join(cache, dirs[0].name, 'catalog.db');
}

function query<T>(file: string, sql: string): T {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(sql).get() as T;
  } finally {
    db.close();
  }
}

describe.skipIf(skip)('catalog sync in a fleet (issue 15, real s3rver)', () => {
  let base: string;
  let server: S3Server;
  let proxy: FaultProxy;
  beforeAll(async () => {
    base = tmpDir('snapfill-sync-fleet-');
    server = await startS3rver(path.join(base, 's3rver'), ['fleet']);
    proxy = await new FaultProxy(server).start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  /** Runs `fn` with an S3 client of s3rver itself (not through the proxy: nothing it does is counted). */
  async function direct<T>(
    fn: (c: import('@aws-sdk/client-s3').S3Client, s3: typeof import('@aws-sdk/client-s3')) => Promise<T>,
  ): Promise<T> {
    const s3 = await import('@aws-sdk/client-s3');
    const c = new s3.S3Client({
      endpoint: server.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    try {
      return await fn(c, s3);
    } finally {
      c.destroy();
    }
  }

  /** Keys below `prefix` in the bucket, listed through s3rver directly (not counted by the proxy). */
  async function listKeys(prefix: string): Promise<string[]> {
    return direct(async (c, s3) => {
      const r = await c.send(new s3.ListObjectsV2Command({ Bucket: 'fleet', Prefix: prefix }));
      return (r.Contents ?? []).map((o) => o.Key!);
    });
  }

  /** GETs of pack indexes and snapshot records since the last resetCounts (keys without the repository prefix). */
  function objectGets(prefix: string): string[] {
    return proxy.log
      .filter((r) => r.method === 'GET' && !r.query.includes('list-type') && r.key.startsWith(`${prefix}/`))
      .map((r) => r.key.slice(prefix.length + 1))
      .filter((k) => k.startsWith('index/') || k.startsWith('snapshots/'));
  }

  it('sync reads only new objects; hosts snapshotting one after another store shared content once; all restores match', async () => {
    const repo = 's3://fleet/r1';
    const env = (host: string) => s3Env(proxy.url, repo, path.join(base, `cache-${host}`), { SNAPFILL_HOST: host });
    const src = (host: string) => path.join(base, 'src', host);
    // Half of each tree is the same bytes on every host (the shared "WordPress core").
    for (const host of ['host-a', 'host-b', 'host-c']) {
      for (let i = 0; i < 6; i++) write(`${src(host)}/shared/f${i}.php`, bytesFor(`shared:${i}`, 20_000 + i * 1000));
      for (let i = 0; i < 6; i++) write(`${src(host)}/own/g${i}.dat`, bytesFor(`${host}:${i}`, 20_000 + i * 1000));
    }
    const sharedBytes = [...Array(6).keys()].reduce((n, i) => n + 20_000 + i * 1000, 0);
    expect((await cliAsync(['init'], env('host-a'))).code).toBe(0);

    const a1 = await cliAsync(['--json', 'snapshot', src('host-a')], env('host-a'));
    expect(a1.code, a1.stderr).toBe(0);
    // B and C snapshot after A: the shared files are A's blobs, known to them by their sync.
    const b1 = await cliAsync(['--json', 'snapshot', src('host-b')], env('host-b'));
    expect(b1.code, b1.stderr).toBe(0);
    expect(b1.json.blobs_added).toBeGreaterThan(0);
    // Its own files only: half of what A stored (the shared files are as large as the own ones).
    expect(b1.json.bytes_added).toBeLessThan(a1.json.bytes_added * 0.6);
    expect(b1.json.bytes_added).toBeGreaterThan(sharedBytes * 0.9);
    const c1 = await cliAsync(['--json', 'snapshot', src('host-c')], env('host-c'));
    expect(c1.code, c1.stderr).toBe(0);
    expect(c1.json.blobs_added).toBe(b1.json.blobs_added); // same shape: 6 own files + trees, no shared file

    // Records are stored below a tag of their host (a keyed hash: no host name in the store).
    const recordKeys = (await listKeys('r1/snapshots/')).map((k) => k.slice('r1/'.length));
    expect(recordKeys).toHaveLength(3);
    for (const k of recordKeys) expect(k).toMatch(/^snapshots\/[0-9a-f]{16}\/[0-9a-f]{64}$/);
    expect(new Set(recordKeys.map((k) => k.split('/')[1])).size).toBe(3);
    expect(recordKeys.join(' ')).not.toMatch(/host/);

    // A's routine sync reads no object B or C wrote: their data packs are small, so their index
    // names carry blob filters and are recorded unread; and it lists only its own host's records
    // (issue 15).
    proxy.resetCounts();
    const s1 = await cliAsync(['--json', 'catalog', 'sync'], env('host-a'));
    expect(s1.code, s1.stderr).toBe(0);
    const got1 = objectGets('r1');
    expect(got1).toEqual([]);
    expect(s1.json.packs_unread).toBeGreaterThanOrEqual(2); // B's and C's data packs
    expect(got1.filter((k) => k.startsWith('snapshots/'))).toEqual([]);
    // Nor listed.
    const lists1 = proxy.log
      .filter((r) => r.method === 'GET' && /(^|&)prefix=/.test(r.query))
      .map((r) => new URLSearchParams(r.query))
      .filter((q) => q.get('prefix')!.startsWith('r1/snapshots/'))
      .map((q) => `${q.get('prefix')} ${q.get('delimiter') ?? ''}`);
    const tagA = recordKeys.find((k) => k.endsWith(a1.json.snapshot_id))!.split('/')[1];
    // A's own prefix only: the flat layout of older releases (one level, delimiter /, one common
    // prefix per host) was listed by A's first sync, which found no record there.
    expect(lists1).toEqual([`r1/snapshots/${tagA}/ `]);
    expect(new Set(got1).size).toBe(got1.length); // nothing read twice
    // Tree pack indexes lie below their host's tag (index/<tag>/<id>): A lists only the flat
    // indexes (one level) and its own tag, and reads no tree index of B or C.
    const indexKeys = (await listKeys('r1/index/')).map((k) => k.slice('r1/'.length));
    const treeIndexOf = (tag: string) => indexKeys.filter((k) => k.startsWith(`index/${tag}/`));
    const tagB = recordKeys.find((k) => k.endsWith(b1.json.snapshot_id))!.split('/')[1];
    const tagC = recordKeys.find((k) => k.endsWith(c1.json.snapshot_id))!.split('/')[1];
    for (const tag of [tagA, tagB, tagC]) expect(treeIndexOf(tag).length).toBeGreaterThan(0);
    // Every index is a tree pack's below its host's tag or a data pack's named by its store time.
    for (const k of indexKeys) expect(k).toMatch(/^index\/([0-9a-f]{16}\/[0-9a-f]{64}|t\/\d{8}\/\d{6}-[0-9a-f]{64}(\.[A-Za-z0-9_-]+)?)$/);
    expect(got1.filter((k) => k.split('/').length > 2)).toEqual([]);
    expect(s1.json.objects_read_kinds.tree_indexes).toBe(0);
    const indexLists1 = proxy.log
      .filter((r) => r.method === 'GET' && /(^|&)prefix=/.test(r.query))
      .map((r) => new URLSearchParams(r.query))
      .filter((q) => q.get('prefix')!.startsWith('r1/index/'))
      .map((q) => `${q.get('prefix')} ${q.get('delimiter') ?? ''}${q.has('start-after') ? 'from' : ''}`);
    // A's catalog synced before (its snapshot): the data indexes are listed from its cursor on
    // (start-after), and the flat layout of older releases is not listed again.
    expect(indexLists1.sort()).toEqual(['r1/index/t/ from', `r1/index/${tagA}/ `].sort());
    expect(s1.json.listing).toBe('resumed');
    expect(s1.json.objects_read).toBe(got1.length);
    expect(s1.json.packs_added).toBe(got1.length);
    expect(s1.json.remote_added).toBe(0);
    // Nothing new: a second sync reads no object at all (it lists keys only).
    proxy.resetCounts();
    const s2 = await cliAsync(['--json', 'catalog', 'sync'], env('host-a'));
    expect(s2.code, s2.stderr).toBe(0);
    expect(objectGets('r1')).toEqual([]);
    expect(s2.json.objects_read).toBe(0);

    // A command over every host reads the other hosts' records on demand, once: `snapshots`
    // lists all three; B's and C's records are read now (and kept as records), not again.
    proxy.resetCounts();
    const all = await cliAsync(['--json', 'snapshots'], env('host-a'));
    expect(all.code, all.stderr).toBe(0);
    expect(all.json.snapshots.map((x: any) => x.id).sort()).toEqual([a1, b1, c1].map((x) => x.json.snapshot_id).sort());
    const gotAll = objectGets('r1').filter((k) => k.startsWith('snapshots/'));
    expect(gotAll.map((k) => k.split('/')[2]).sort()).toEqual([b1.json.snapshot_id, c1.json.snapshot_id].sort());
    proxy.resetCounts();
    const onlyB = await cliAsync(['--json', 'snapshots', '--host', 'host-b'], env('host-a'));
    expect(onlyB.code, onlyB.stderr).toBe(0);
    expect(onlyB.json.snapshots.map((x: any) => x.id)).toEqual([b1.json.snapshot_id]);
    expect(objectGets('r1')).toEqual([]);
    expect(query<{ n: number }>(catalogFile(path.join(base, 'cache-host-a')), `SELECT count(*) AS n FROM remote_snapshots`).n).toBe(2);

    // A's catalog: the packs it wrote have full rows, B's and C's data packs compact ones (read
    // by the sync of `snapshots`, which reads every unread pack first: its command may need any
    // blob; issue 15), and it has no row at all of their tree packs (not even hints).
    const catA = catalogFile(path.join(base, 'cache-host-a'));
    const count = (file: string, sql: string) => query<{ n: number }>(file, sql).n;
    expect(count(catA, `SELECT count(*) AS n FROM unread_packs`)).toBe(0);
    expect(count(catA, `SELECT count(*) AS n FROM packs WHERE far<>0`)).toBe(s1.json.packs_unread);
    expect(count(catA, `SELECT count(*) AS n FROM packs WHERE far=1`)).toBeGreaterThan(0);
    expect(count(catA, `SELECT count(*) AS n FROM packs WHERE far=2`)).toBe(0);
    expect(count(catA, `SELECT count(*) AS n FROM packs WHERE type='tree' AND far<>0`)).toBe(0);
    const treePacksA = count(catA, `SELECT count(*) AS n FROM packs WHERE type='tree'`);
    expect(treePacksA).toBe(treeIndexOf(tagA).length);
    expect(count(catA, `SELECT count(*) AS n FROM packs WHERE far=0`)).toBeGreaterThan(0);
    expect(count(catA, `SELECT count(*) AS n FROM blobs b JOIN packs p ON p.id=b.pack WHERE p.far<>0`)).toBe(0);
    // B's catalog knows A's pack as compact rows: its snapshot read that index on demand, when
    // the first shared file's blob hit the filter in its name.
    const catB = catalogFile(path.join(base, 'cache-host-b'));
    expect(query<{ n: number }>(catB, `SELECT count(*) AS n FROM far_blobs`).n).toBeGreaterThan(6);
    expect(b1.json.indexes_read_on_demand).toBeGreaterThanOrEqual(1);

    // Shared content was stored once: every data blob of every pack index, against the distinct ones.
    const check = await cliAsync(['--json', 'check', '--read-data'], env('host-a'));
    expect(check.code, check.stderr).toBe(0);

    // Restores: B's own snapshot on B (its shared files are in A's packs: compact rows), B's on
    // A (imported on demand), and every snapshot on a fresh machine.
    const restoreAndCompare = async (host: string, snap: string, of: string, target: string) => {
      const r = await cliAsync(['--json', 'restore', snap, '--target', target], env(host));
      expect(r.code, r.stderr).toBe(0);
      expect(diffTrees(describeTree(src(of)), describeTree(path.join(target, src(of))))).toEqual([]);
    };
    await restoreAndCompare('host-b', b1.json.snapshot_id, 'host-b', path.join(base, 'out-b-on-b'));
    proxy.resetCounts();
    await restoreAndCompare('host-a', b1.json.snapshot_id, 'host-b', path.join(base, 'out-b-on-a'));
    // Importing B's trees on demand listed B's tag and read B's tree indexes (full rows), and
    // never C's.
    const gotRestore = objectGets('r1');
    expect(gotRestore.filter((k) => k.startsWith(`index/${tagB}/`)).sort()).toEqual(treeIndexOf(tagB).sort());
    expect(gotRestore.filter((k) => k.startsWith(`index/${tagC}/`))).toEqual([]);
    expect(count(catA, `SELECT count(*) AS n FROM packs WHERE type='tree'`)).toBe(treePacksA + treeIndexOf(tagB).length);
    // B is followed now: a routine sync lists B's tag too (and still not C's), reading nothing new.
    proxy.resetCounts();
    const s3 = await cliAsync(['--json', 'catalog', 'sync'], env('host-a'));
    expect(s3.code, s3.stderr).toBe(0);
    expect(objectGets('r1')).toEqual([]);
    const indexLists3 = proxy.log
      .filter((r) => r.method === 'GET' && /(^|&)prefix=/.test(r.query))
      .map((r) => new URLSearchParams(r.query).get('prefix')!)
      .filter((p) => p.startsWith('r1/index/'));
    expect(indexLists3.sort()).toEqual(['r1/index/t/', `r1/index/${tagA}/`, `r1/index/${tagB}/`].sort());
    await restoreAndCompare('host-a', a1.json.snapshot_id, 'host-a', path.join(base, 'out-a-on-a'));
    for (const [snap, of] of [
      [a1.json.snapshot_id, 'host-a'],
      [b1.json.snapshot_id, 'host-b'],
      [c1.json.snapshot_id, 'host-c'],
    ])
      await restoreAndCompare('fresh', snap, of, path.join(base, `out-${of}-fresh`));
  }, 240_000);

  it("other hosts' small data packs: recorded by the filter in their index names, read only for a blob they may hold, forgotten when pruned unread", async () => {
    const repo = 's3://fleet/r3';
    const env = (host: string) => s3Env(proxy.url, repo, path.join(base, `r3-cache-${host}`), { SNAPFILL_HOST: host });
    const src = (host: string) => path.join(base, 'r3-src', host);
    for (let i = 0; i < 5; i++) write(`${src('host-a')}/shared/f${i}.php`, bytesFor(`r3-shared:${i}`, 8_000));
    write(`${src('host-a')}/own/a.dat`, bytesFor('r3-a', 8_000));
    write(`${src('host-b')}/own/b.dat`, bytesFor('r3-b', 8_000));
    expect((await cliAsync(['init'], env('host-a'))).code).toBe(0);
    const a1 = await cliAsync(['--json', 'snapshot', src('host-a')], env('host-a'));
    expect(a1.code, a1.stderr).toBe(0);
    // Every data pack index of so few blobs names its filter; each name fits one path component
    // of a local repository and of s3rver's store (255 bytes, with its 22-byte suffixes).
    const dataIndexes = (await listKeys('r3/index/t/')).map((k) => k.slice(k.lastIndexOf('/') + 1));
    expect(dataIndexes.length).toBeGreaterThan(0);
    for (const k of dataIndexes) {
      expect(k).toMatch(/^\d{6}-[0-9a-f]{64}\.[A-Za-z0-9_-]+$/);
      expect(k.length + 22).toBeLessThanOrEqual(255);
    }
    // B's routine sync reads none of them.
    proxy.resetCounts();
    const s1 = await cliAsync(['--json', 'catalog', 'sync'], env('host-b'));
    expect(s1.code, s1.stderr).toBe(0);
    expect(objectGets('r3')).toEqual([]);
    expect(s1.json.packs_unread).toBe(dataIndexes.length);
    const catB = catalogFile(path.join(base, 'r3-cache-host-b'));
    expect(query<{ n: number }>(catB, `SELECT count(*) AS n FROM unread_packs`).n).toBe(dataIndexes.length);
    // B gets the shared files: its snapshot reads A's index on demand and stores none of them again.
    for (let i = 0; i < 5; i++) write(`${src('host-b')}/shared/f${i}.php`, bytesFor(`r3-shared:${i}`, 8_000));
    proxy.resetCounts();
    const b1 = await cliAsync(['--json', 'snapshot', src('host-b')], env('host-b'));
    expect(b1.code, b1.stderr).toBe(0);
    expect(b1.json.indexes_read_on_demand).toBe(1);
    expect(objectGets('r3').filter((k) => /^index\/t\/\d{8}\/\d{6}-[0-9a-f]{64}\./.test(k))).toHaveLength(1);
    // It found that index by the key its catalog kept (its sync resumed from a cursor, which did
    // not list it again): no listing of every index.
    const indexListsB1 = proxy.log
      .filter((r) => r.method === 'GET' && /(^|&)prefix=/.test(r.query))
      .map((r) => new URLSearchParams(r.query))
      .filter((q) => q.get('prefix')!.startsWith('r3/index/'))
      .map((q) => `${q.get('prefix')}${q.has('start-after') ? ' from' : ''}`);
    expect(new Set(indexListsB1.filter((l) => !/^r3\/index\/[0-9a-f]{16}\/$/.test(l)))).toEqual(new Set(['r3/index/t/ from']));
    expect(b1.json.bytes_added).toBeLessThan(5 * 8_000);
    // A pack pruned (here: deleted) before B read it. B's sync lists A's next pack unread; the
    // pack and its index go; B's snapshot of the same content finds nothing there and stores it.
    const before = new Set(await listKeys('r3/index/'));
    write(`${src('host-a')}/shared/late.php`, bytesFor('r3-late', 8_000));
    const a2 = await cliAsync(['--json', 'snapshot', src('host-a')], env('host-a'));
    expect(a2.code, a2.stderr).toBe(0);
    expect((await cliAsync(['catalog', 'sync'], env('host-b'))).code).toBe(0);
    const unread = (await listKeys('r3/index/')).filter((k) => !before.has(k) && /^r3\/index\/t\/\d{8}\/\d{6}-[0-9a-f]{64}\./.test(k));
    expect(unread).toHaveLength(1);
    const lateId = parseIndexKey(unread[0].slice('r3/'.length))!.id;
    await direct(async (c, s3) => {
      for (const key of [unread[0], `r3/data/${lateId.slice(0, 2)}/${lateId}`])
        await c.send(new s3.DeleteObjectCommand({ Bucket: 'fleet', Key: key }));
    });
    write(`${src('host-b')}/shared/late.php`, bytesFor('r3-late', 8_000));
    const b2 = await cliAsync(['--json', 'snapshot', src('host-b')], env('host-b'));
    expect(b2.code, b2.stderr).toBe(0);
    expect(b2.json.bytes_added).toBeGreaterThan(8_000);
    expect(query<{ n: number }>(catB, `SELECT count(*) AS n FROM unread_packs WHERE hash='${lateId}'`).n).toBe(0);
    // Everything B has restores on a fresh machine; restore's own sync reads every unread pack first.
    const target = path.join(base, 'r3-out');
    const r = await cliAsync(['--json', 'restore', b2.json.snapshot_id, '--target', target], env('fresh'));
    expect(r.code, r.stderr).toBe(0);
    expect(diffTrees(describeTree(src('host-b')), describeTree(path.join(target, src('host-b'))))).toEqual([]);
    const onB = await cliAsync(['--json', 'restore', b2.json.snapshot_id, '--target', path.join(base, 'r3-out-b')], env('host-b'));
    expect(onB.code, onB.stderr).toBe(0);
    expect(query<{ n: number }>(catB, `SELECT count(*) AS n FROM unread_packs`).n).toBe(0);
  }, 120_000);

  it('a pack pruned away takes its compact rows with it; the shared blobs stay known in the packs that remain', async () => {
    const repo = 's3://fleet/r2';
    const env = (host: string) => s3Env(proxy.url, repo, path.join(base, `r2-cache-${host}`), { SNAPFILL_HOST: host });
    const src = (host: string) => path.join(base, 'r2-src', host);
    for (const host of ['host-a', 'host-b']) {
      for (let i = 0; i < 4; i++) write(`${src(host)}/shared/f${i}.php`, bytesFor(`r2-shared:${i}`, 30_000));
      write(`${src(host)}/own/x.dat`, bytesFor(`r2-${host}`, 30_000));
    }
    expect((await cliAsync(['init'], env('host-a'))).code).toBe(0);
    const a1 = await cliAsync(['--json', 'snapshot', src('host-a')], env('host-a'));
    expect(a1.code, a1.stderr).toBe(0);
    // B's own file changes and B snapshots again: its first snapshot's own data becomes garbage.
    const b1 = await cliAsync(['--json', 'snapshot', src('host-b')], env('host-b'));
    expect(b1.code, b1.stderr).toBe(0);
    write(`${src('host-b')}/own/x.dat`, bytesFor('r2-host-b-v2', 30_000));
    const b2 = await cliAsync(['--json', 'snapshot', src('host-b')], env('host-b'));
    expect(b2.code, b2.stderr).toBe(0);
    // Every index read (not left unread by its filter): the compact rows this test is about.
    const s0 = await cliAsync(['catalog', 'sync', '--all-packs'], env('host-a'));
    expect(s0.code, s0.stderr).toBe(0);
    const catA = catalogFile(path.join(base, 'r2-cache-host-a'));
    const farBefore = query<{ n: number }>(catA, `SELECT count(*) AS n FROM far_blobs`).n;
    const hintsBefore = query<{ n: number }>(catA, `SELECT count(*) AS n FROM tree_hints`).n;
    // Forget B's first snapshot and prune with no grace, twice (mark, then delete).
    const pruneEnv = env('pruner');
    const f = await cliAsync(['--json', 'forget', '--host', 'host-b', '--keep-last', '1', '--prune', '--grace', '0s'], pruneEnv);
    expect(f.code, f.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 2500));
    const p = await cliAsync(['--json', 'prune', '--grace', '0s'], pruneEnv);
    expect(p.code, p.stderr).toBe(0);
    const s = await cliAsync(['--json', 'catalog', 'sync'], env('host-a'));
    expect(s.code, s.stderr).toBe(0);
    const farAfter = query<{ n: number }>(catA, `SELECT count(*) AS n FROM far_blobs`).n;
    expect(s.json.packs_removed).toBeGreaterThan(0);
    expect(farAfter).toBeLessThan(farBefore);
    expect(query<{ n: number }>(catA, `SELECT count(*) AS n FROM tree_hints`).n).toBeLessThanOrEqual(hintsBefore);
    // No row points at a pack the catalog no longer has.
    expect(query<{ n: number }>(catA, `SELECT count(*) AS n FROM far_blobs f LEFT JOIN packs p ON p.id=f.pack WHERE p.id IS NULL`).n).toBe(
      0,
    );
    // A snapshots again: the shared files are its own blobs, nothing of them is stored again.
    const a2 = await cliAsync(['--json', 'snapshot', src('host-a')], env('host-a'));
    expect(a2.code, a2.stderr).toBe(0);
    const target = path.join(base, 'r2-out');
    const r = await cliAsync(['--json', 'restore', b2.json.snapshot_id, '--target', target], env('fresh'));
    expect(r.code, r.stderr).toBe(0);
    expect(diffTrees(describeTree(src('host-b')), describeTree(path.join(target, src('host-b'))))).toEqual([]);
    const chk = await cliAsync(['--json', 'check', '--read-data'], env('host-a'));
    expect(chk.code, chk.stderr).toBe(0);
  }, 240_000);
});
