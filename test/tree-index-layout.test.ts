// Where tree pack indexes are stored (issue 15): below the tag of the host whose snapshot wrote
// them (`index/<tag>/<id>`), data pack indexes flat (`index/<id>`). Through the CLI against a
// real s3rver: other hosts' trees are read on demand (also a tree stored below a third host's
// tag), prune with tagged tree indexes deletes nothing referenced and repacks a tree pack below
// its tag, and a repository of the older layout (flat tree indexes) keeps working.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { requireSystem, tmpDir, write, describeTree, diffTrees } from './helpers.js';
import { startS3rver, s3rverBin, cliAsync, s3Env, type S3Server } from './support/s3server.js';
import { FaultProxy } from './support/faultproxy.js';

const skip = !requireSystem('s3rver', s3rverBin() !== null, 'npm ci installs it as a devDependency');
const BUCKET = 'trees';

/** Incompressible bytes, the same for the same label on every host. */
function bytesFor(label: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0, off = 0; off < size; i++) off += createHash('sha256').update(`${label}:${i}`).digest().copy(out, off);
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip)('tree pack indexes below their host tag (issue 15, real s3rver)', () => {
  let base: string;
  let server: S3Server;
  let proxy: FaultProxy;
  beforeAll(async () => {
    base = tmpDir('snapfill-tree-index-');
    server = await startS3rver(path.join(base, 's3rver'), [BUCKET]);
    proxy = await new FaultProxy(server).start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  async function s3<T>(f: (c: any, m: any) => Promise<T>): Promise<T> {
    const m = await import('@aws-sdk/client-s3');
    const c = new m.S3Client({
      endpoint: server.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    });
    try {
      return await f(c, m);
    } finally {
      c.destroy();
    }
  }

  /** Keys below `prefix` (the repository's prefix stripped), listed directly (not through the proxy). */
  const listKeys = (repoPrefix: string, prefix: string): Promise<string[]> =>
    s3(async (c, m) => {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const r = await c.send(new m.ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${repoPrefix}/${prefix}`, ContinuationToken: token }));
        for (const o of r.Contents ?? []) out.push(o.Key.slice(repoPrefix.length + 1));
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return out;
    });

  /** Tagged tree index keys, by tag. */
  async function treeIndexes(repoPrefix: string): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const k of await listKeys(repoPrefix, 'index/')) {
      const parts = k.split('/');
      if (parts.length === 3) out.set(parts[1], [...(out.get(parts[1]) ?? []), k]);
    }
    return out;
  }

  const tagOfRecord = async (repoPrefix: string, snapshotId: string) =>
    (await listKeys(repoPrefix, 'snapshots/')).find((k) => k.endsWith(snapshotId))!.split('/')[1];

  function setup(name: string) {
    const repo = `s3://${BUCKET}/${name}`;
    const env = (host: string, cache = host) => s3Env(proxy.url, repo, path.join(base, name, `cache-${cache}`), { SNAPFILL_HOST: host });
    const src = (host: string) => path.join(base, name, 'src', host);
    const run = async (args: string[], host: string, cache = host) => {
      const r = await cliAsync(['--json', ...args], env(host, cache));
      expect(r.code, `${args.join(' ')} on ${cache}: ${r.stderr}`).toBe(0);
      return r;
    };
    const restoreAndCompare = async (snap: string, of: string, host: string, cache = host) => {
      const target = path.join(base, name, 'out', `${snap.slice(0, 8)}-${cache}-${Math.random().toString(36).slice(2, 8)}`);
      await run(['restore', snap, '--target', target], host, cache);
      expect(diffTrees(describeTree(src(of)), describeTree(path.join(target, src(of))))).toEqual([]);
    };
    return { repo, env, src, run, restoreAndCompare };
  }

  it('older layout: flat tree indexes (releases before) still sync and restore; new tree packs go below the tag; prune and check see both', async () => {
    const { env, src, run, restoreAndCompare } = setup('old');
    for (const host of ['host-a', 'host-b']) {
      write(`${src(host)}/shared/f.php`, bytesFor('old-shared', 30_000));
      write(`${src(host)}/own/g.dat`, bytesFor(`old-${host}`, 30_000));
      fs.mkdirSync(`${src(host)}/own/sub/deeper`, { recursive: true });
      write(`${src(host)}/own/sub/deeper/h.txt`, `${host}\n`);
    }
    expect((await cliAsync(['init'], env('host-a'))).code).toBe(0);
    const a1 = (await run(['snapshot', src('host-a')], 'host-a')).json.snapshot_id as string;
    const b1 = (await run(['snapshot', src('host-b')], 'host-b')).json.snapshot_id as string;
    // The layout of older releases: every tree index flat (same bytes, same pack id).
    const tagged = [...(await treeIndexes('old')).values()].flat();
    expect(tagged.length).toBeGreaterThanOrEqual(2);
    await s3(async (c, m) => {
      for (const k of tagged) {
        const flat = `index/${k.split('/')[2]}`;
        await c.send(new m.CopyObjectCommand({ Bucket: BUCKET, CopySource: `${BUCKET}/old/${k}`, Key: `old/${flat}` }));
        await c.send(new m.DeleteObjectCommand({ Bucket: BUCKET, Key: `old/${k}` }));
      }
    });
    expect((await treeIndexes('old')).size).toBe(0);

    // Fresh catalogs of both hosts: their own and each other's snapshots restore.
    await restoreAndCompare(a1, 'host-a', 'host-a', 'a-fresh');
    await restoreAndCompare(b1, 'host-b', 'host-a', 'a-fresh');
    await restoreAndCompare(a1, 'host-a', 'host-b', 'b-fresh');
    // The old catalogs sync (their tree packs vanished from no listing: nothing is dropped).
    const sA = await run(['catalog', 'sync'], 'host-a');
    expect(sA.json.packs_removed).toBe(0);

    // A new snapshot writes its tree index below its host's tag, beside the flat ones.
    write(`${src('host-a')}/own/new.txt`, 'a second snapshot\n');
    const a2 = (await run(['snapshot', src('host-a')], 'host-a')).json.snapshot_id as string;
    const tagA = await tagOfRecord('old', a2);
    expect([...(await treeIndexes('old')).keys()]).toEqual([tagA]);

    // Forget A's first snapshot and prune (mark, then delete): only unreferenced packs go.
    await run(['forget', '--host', 'host-a', '--keep-last', '1'], 'pruner');
    const p1 = await run(['prune', '--grace', '0s', '--repack-threshold', '0.01'], 'pruner');
    expect(p1.json.packs_marked).toBeGreaterThan(0);
    await sleep(2500);
    const p2 = await run(['prune', '--grace', '0s'], 'pruner');
    // (A grace of 0 may let the first run delete already.)
    expect(p1.json.packs_deleted + p2.json.packs_deleted).toBeGreaterThan(0);
    await run(['check', '--read-data'], 'host-a', 'checker');
    await restoreAndCompare(a2, 'host-a', 'host-a', 'fresh-2');
    await restoreAndCompare(b1, 'host-b', 'host-b', 'fresh-2');
    await restoreAndCompare(a2, 'host-a', 'host-a');
  }, 240_000);

  it("a tree reused from a followed host's tree pack (below that host's tag) is found when a third catalog imports it", async () => {
    const { env, src, run, restoreAndCompare } = setup('cross');
    // B's snapshot holds an empty directory; its tree blob (no entries) is the same on every host.
    write(`${src('host-b')}/data/b.txt`, 'b\n');
    fs.mkdirSync(`${src('host-b')}/empty`, { recursive: true });
    write(`${src('host-a')}/data/a.txt`, 'a\n');
    fs.mkdirSync(`${src('host-a')}/empty`, { recursive: true });
    expect((await cliAsync(['init'], env('host-b'))).code).toBe(0);
    const b1 = (await run(['snapshot', src('host-b')], 'host-b')).json.snapshot_id as string;
    // A restores B's snapshot first: A follows B now, B's tree packs are in A's catalog.
    await restoreAndCompare(b1, 'host-b', 'host-a');
    // A's first snapshot reuses the empty directory's tree from B's tree pack (below B's tag).
    const a1 = (await run(['snapshot', src('host-a')], 'host-a')).json.snapshot_id as string;
    const tagA = await tagOfRecord('cross', a1);
    const tagB = await tagOfRecord('cross', b1);
    expect(tagA).not.toBe(tagB);

    // A fresh machine restores A's snapshot: the listing of A's tag lacks that tree; the search
    // over every tag finds it below B's; it is no damage.
    proxy.resetCounts();
    await restoreAndCompare(a1, 'host-a', 'host-c', 'c-fresh');
    const gets = proxy.log.filter((r) => r.method === 'GET' && !r.query.includes('list-type')).map((r) => r.key);
    const bTree = (await treeIndexes('cross')).get(tagB)!;
    expect(gets.some((k) => bTree.some((t) => k.endsWith(t)))).toBe(true);
    // Its catalog lists B's tag from now on: a routine sync drops nothing and reads nothing.
    const s = await run(['catalog', 'sync'], 'host-c', 'c-fresh');
    expect(s.json.packs_removed).toBe(0);
    expect(s.json.objects_read).toBe(0);
    // Prune over both hosts keeps the shared tree (B's pack) while A's snapshot needs it.
    await run(['forget', '--host', 'host-b', '--keep-last', '1'], 'pruner');
    await run(['prune', '--grace', '0s'], 'pruner');
    await sleep(2500);
    await run(['prune', '--grace', '0s'], 'pruner');
    await run(['check', '--read-data'], 'host-a', 'checker');
    await restoreAndCompare(a1, 'host-a', 'host-a', 'a-fresh');
  }, 240_000);

  it("prune after both hosts snapshot deletes nothing referenced; a repacked tree pack stays below its host's tag; the other host's sync reads no tree index", async () => {
    const { env, src, run, restoreAndCompare } = setup('prune');
    for (const host of ['host-a', 'host-b']) {
      write(`${src(host)}/shared/f.php`, bytesFor('prune-shared', 30_000));
      for (const d of ['one', 'two', 'three']) write(`${src(host)}/${d}/x.txt`, `${host} ${d}\n`);
    }
    expect((await cliAsync(['init'], env('host-a'))).code).toBe(0);
    await run(['snapshot', src('host-a')], 'host-a');
    await run(['snapshot', src('host-b')], 'host-b');
    // A changes one directory: its next snapshot reuses the trees of the others from its first
    // tree pack, whose other trees nothing will use once the first snapshot is forgotten.
    write(`${src('host-a')}/three/x.txt`, 'changed\n');
    const a2 = (await run(['snapshot', src('host-a')], 'host-a')).json.snapshot_id as string;
    write(`${src('host-b')}/three/x.txt`, 'changed too\n');
    const b2 = (await run(['snapshot', src('host-b')], 'host-b')).json.snapshot_id as string;
    const tagA = await tagOfRecord('prune', a2);
    const tagB = await tagOfRecord('prune', b2);
    const before = await treeIndexes('prune');
    await run(['catalog', 'sync'], 'host-b');

    await run(['forget', '--keep-last', '1'], 'pruner');
    await sleep(2500); // the packs age past the clock slack (none is a running snapshot's)
    const p1 = await run(['prune', '--grace', '0s', '--repack-threshold', '0.01'], 'pruner');
    expect(p1.json.packs_repacked).toBeGreaterThan(0);
    // Every new tree pack lies below the tag of the pack it was repacked from: no flat tree index.
    const after = await treeIndexes('prune');
    expect([...after.keys()].sort()).toEqual([tagA, tagB].sort());
    const fresh = (tag: string) => after.get(tag)!.filter((k) => !before.get(tag)!.includes(k));
    expect(fresh(tagA).length + fresh(tagB).length).toBeGreaterThan(0);
    await sleep(2500);
    const p2 = await run(['prune', '--grace', '0s'], 'pruner');
    expect(p1.json.packs_deleted + p2.json.packs_deleted).toBeGreaterThan(0);

    // B's routine sync reads the new data indexes (if any) and none of A's tree indexes.
    proxy.resetCounts();
    const sB = await run(['catalog', 'sync'], 'host-b');
    expect(sB.json.objects_read_kinds.tree_indexes).toBe(fresh(tagB).length);
    const gets = proxy.log.filter((r) => r.method === 'GET' && !r.query.includes('list-type')).map((r) => r.key);
    expect(gets.filter((k) => k.includes(`/index/${tagA}/`))).toEqual([]);
    await run(['check', '--read-data'], 'host-a', 'checker');
    await restoreAndCompare(a2, 'host-a', 'host-a');
    await restoreAndCompare(b2, 'host-b', 'host-b');
    await restoreAndCompare(a2, 'host-a', 'host-b');
    await restoreAndCompare(b2, 'host-b', 'host-a', 'a-fresh');
  }, 240_000);
});
