import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { spawnSync } from 'node:child_process';
import { BIN, cli, describeTree, diffTrees, repoEnv, testPassword, tmpDir, write } from './helpers.js';
import { corruptBlob, dataKeySync, treeIdOf } from './support/craft.js';
import { seal } from '../src/pack/crypto.js';
import { LocalStore } from '../src/store/local.js';
import { Repository } from '../src/repo/repository.js';
import { parseIndexKey } from '../src/pack/keys.js';
import { openSession } from '../src/api/session.js';
import { SnapshotTree } from '../src/mount/snaptree.js';

/**
 * Issue 11 (C): one flipped byte in one tree blob loses that directory's listing, and only
 * that. With a fresh catalog (the server-lost case) the import records the directory as
 * damaged and goes on: restoring another account succeeds, restoring everything restores the
 * rest byte for byte and names the lost directory (exit 3), and so do catalog rebuild, ls,
 * verify and dump. A plain `check` must not trust a warm catalog either: it compares each
 * pack index in the repository with the catalog, and reads every tree from the store.
 */
describe('a damaged tree blob loses one directory, not the snapshot', () => {
  let base: string;
  let src: string;
  let snaps: string[];
  let docs: string;
  let docsTree: string;

  /** A private copy of the pristine repository (and, with `warm`, its catalog). */
  function copy(name: string, warm: boolean): { env: Record<string, string>; repo: string; dir: string } {
    const dir = path.join(base, name);
    fs.cpSync(path.join(base, 'orig', 'repo'), path.join(dir, 'repo'), { recursive: true });
    if (warm) fs.cpSync(path.join(base, 'orig', 'cache'), path.join(dir, 'cache'), { recursive: true });
    return { env: repoEnv(dir), repo: path.join(dir, 'repo'), dir };
  }

  /** The tree below `root` without the entries below `skip` (the lost directory's contents). */
  function treeWithout(root: string, skip: string): Map<string, string> {
    return new Map([...describeTree(root)].filter(([k]) => !k.startsWith(skip + '/')));
  }

  beforeAll(() => {
    base = tmpDir('snapfill-damaged-tree-');
    src = path.join(base, 'x');
    const env = repoEnv(path.join(base, 'orig'));
    write(`${src}/home/alice/a.txt`, 'alice a\n');
    write(`${src}/home/alice/docs/d1.txt`, 'alice doc 1\n');
    write(`${src}/home/alice/docs/inner/i.txt`, 'alice inner\n');
    write(`${src}/home/alice/public_html/index.php`, '<?php echo 1;\n');
    write(`${src}/home/bob/b.txt`, 'bob b\n');
    write(`${src}/home/bob/mail/cur/m1`, 'bob mail\n');
    expect(cli(['init'], env).code).toBe(0);
    snaps = [cli(['--json', 'snapshot', src], env).json.snapshot_id];
    // A second snapshot shares the unchanged (to be damaged) docs tree: the damage must reach it too.
    write(`${src}/home/bob/b2.txt`, 'bob b2\n');
    snaps.push(cli(['--json', 'snapshot', src], env).json.snapshot_id);
    expect(snaps.every(Boolean)).toBe(true);
    docs = `${src}/home/alice/docs`;
  });

  it('fresh catalog: another account restores whole, everything else restores byte for byte, the lost directory is named', async () => {
    const c = copy('fresh', false);
    docsTree = await treeIdOf(c.repo, snaps[1], docs);
    await corruptBlob(c.repo, docsTree);
    const lost = new RegExp(`tree blob ${docsTree.slice(0, 12)} is corrupt.*directory contents lost`);

    // Bob is not affected at all.
    const bobT = path.join(c.dir, 'bob');
    const bob = cli(['--json', 'restore', 'latest', '--account', 'bob', '--accounts-root', `${src}/home`, '--target', bobT], c.env);
    expect(bob.code, bob.stderr).toBe(0);
    expect(diffTrees(describeTree(`${src}/home/bob`), describeTree(`${bobT}${src}/home/bob`))).toEqual([]);

    // Everything: exit 3, the lost directory named, every other file identical.
    for (const snap of [snaps[1], snaps[0]]) {
      const t = path.join(c.dir, `all-${snap.slice(0, 8)}`);
      const r = cli(['--json', 'restore', snap, '--target', t], c.env);
      expect(r.code, r.stderr).toBe(3);
      expect(r.json.errors.map((e: any) => e.path)).toEqual([docs]);
      expect(r.json.errors[0].message).toMatch(lost);
      const want = treeWithout(src, '/home/alice/docs');
      if (snap === snaps[0]) want.delete('/home/bob/b2.txt');
      expect(diffTrees(want, treeWithout(`${t}${src}`, '/home/alice/docs'))).toEqual([]);
    }
    // --delete would read the lost listing as "empty": refused.
    const del = cli(['restore', 'latest', `${src}/home/alice`, '--delete', '--target', path.join(c.dir, 'del')], c.env);
    expect(del.code).toBe(1);
    expect(del.stderr).toContain('--delete refused');

    // ls, verify, dump name it too.
    const ls = cli(['ls', 'latest', `${src}/home/alice`], c.env);
    expect(ls.code).toBe(3);
    expect(ls.stderr).toContain(docs);
    const inner = cli(['ls', 'latest', `${docs}/inner`], c.env);
    expect(inner.code).toBe(1);
    expect(inner.stderr).toMatch(lost);
    const v = cli(['--json', 'verify', 'latest', `${src}/home/alice`], c.env);
    expect(v.json.errors.map((e: any) => e.path)).toContain(docs);
    const fd = fs.openSync(path.join(c.dir, 'alice.tar'), 'w');
    const d = spawnSync(process.execPath, [BIN, 'dump', 'latest', `${src}/home/alice`], {
      env: { ...process.env, ...c.env },
      stdio: ['ignore', fd, 'pipe'],
      encoding: 'utf8',
    });
    fs.closeSync(fd);
    expect(d.status).toBe(3);
    expect(d.stderr).toContain(docs);

    // catalog rebuild: exit 3, naming it in each snapshot.
    const rb = cli(['--json', 'catalog', 'rebuild'], c.env);
    expect(rb.code, rb.stderr).toBe(3);
    expect(rb.json.damaged.map((x: any) => [x.snapshot_id, x.path]).sort()).toEqual(snaps.map((s) => [s, docs]).sort());
    expect(rb.stderr).toMatch(lost);

    // The mount's view (what FUSE serves): listing the lost directory is an error (EIO), not an
    // empty directory; its parent lists normally.
    const s = await openSession({
      repo: c.repo,
      catalog: path.join(c.dir, 'view', 'catalog.db'),
      passwordFile: c.env.SNAPFILL_PASSWORD_FILE,
    });
    try {
      const view = new SnapshotTree(s.catalog);
      expect(() => view.list(`/latest${docs}`)).toThrow(lost);
      expect(view.list(`/latest${src}/home/alice`).names).toEqual(['a.txt', 'docs', 'public_html']);
    } finally {
      await s.close();
    }
  });

  it('plain check with a warm catalog reports a tampered pack index and a damaged tree blob, by object', async () => {
    const c = copy('warm', true);
    expect(cli(['check'], c.env).code).toBe(0);
    const repo = await Repository.open(new LocalStore(c.repo), testPassword);
    // The index of the data pack: two blobs swap places. The warm catalog still has the true
    // offsets (so restores here keep working), but a new machine would read the wrong bytes.
    // Sealed with the repository's key (format v2), so it is an authentic index that lies, as a
    // writer's bug would leave: not one that merely fails authentication.
    const key = dataKeySync(c.repo);
    let tampered = '';
    for await (const id of repo.listPackIndexes()) {
      const idx = await repo.loadPackIndex(id);
      if (idx.type !== 'data' || idx.blobs.length < 2) continue;
      [idx.blobs[0].offset, idx.blobs[1].offset] = [idx.blobs[1].offset, idx.blobs[0].offset];
      const gz = gzipSync(Buffer.from(JSON.stringify(idx)));
      await repo.store.put(await repo.indexKeyOf(id), key ? seal(key, gz) : gz);
      tampered = id;
      break;
    }
    expect(tampered).not.toBe('');
    const tree = await treeIdOf(c.repo, snaps[1], docs);
    const at = await corruptBlob(c.repo, tree);
    const r = cli(['--json', 'check'], c.env);
    expect(r.code, r.stderr).toBe(1);
    const idxErr = r.json.errors.find((e: any) => parseIndexKey(e.path)?.id === tampered);
    expect(idxErr?.message, JSON.stringify(r.json.errors)).toMatch(/differs from the catalog/);
    expect(
      r.json.errors.some(
        (e: any) => e.path === docs && e.message.includes(`tree blob ${tree.slice(0, 12)} in pack ${at.pack.slice(0, 12)}`),
      ),
    ).toBe(true);
  });
});
