import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { openObjectSync } from './support/craft.js';
import { cli, repoEnv, tmpDir, write, snapshotRecordFiles, indexFiles } from './helpers.js';
import { openSession } from '../src/api/session.js';
import { compareCatalog } from '../src/check/check.js';

/**
 * Damaged repositories: a flipped byte, a truncated pack, a deleted pack. `check` must find
 * each and name the snapshots and paths affected; a restore meeting a broken blob must restore
 * everything else, write no wrong bytes, list the affected paths and exit non-zero.
 */
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

interface PackInfo {
  id: string;
  file: string;
  index: { type: string; size: number; blobs: { id: string; offset: number; length: number }[] };
}

/** Pack indexes are JSON, gzipped when written by a snapfill that compresses them. */
function readIndex(repo: string, file: string): PackInfo['index'] {
  // Encrypted (the default): unsealed with the test password's key first.
  return JSON.parse(openObjectSync(repo, fs.readFileSync(file)).toString('utf8'));
}

function packs(repo: string): PackInfo[] {
  return [...indexFiles(repo)].map(([id, indexFile]) => ({
    id,
    file: path.join(repo, 'data', id.slice(0, 2), id),
    index: readIndex(repo, indexFile),
  }));
}

function packOf(repo: string, blob: string): { pack: PackInfo; offset: number; length: number } {
  for (const p of packs(repo)) {
    const b = p.index.blobs.find((x) => x.id === blob);
    if (b) return { pack: p, offset: b.offset, length: b.length };
  }
  throw new Error(`blob ${blob} not in any pack`);
}

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0x40;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

describe('corrupted repository data', () => {
  let base: string;
  let src: string;
  let snaps: string[];
  const content = {
    one: 'first file, unique content 1\n',
    two: 'second file, unique content 2\n',
    three: 'third file, only in the second snapshot\n',
  };
  let big: Buffer;
  /** The id of big.bin's last chunk (content-defined cuts: read from the catalog, not computed). */
  let bigTail: string;

  /** A private copy of the pristine repository and catalog for one damage scenario. */
  function copy(name: string): { env: Record<string, string>; repo: string; dir: string } {
    const dir = path.join(base, name);
    fs.cpSync(path.join(base, 'orig', 'repo'), path.join(dir, 'repo'), { recursive: true });
    fs.cpSync(path.join(base, 'orig', 'cache'), path.join(dir, 'cache'), { recursive: true });
    return { env: repoEnv(dir), repo: path.join(dir, 'repo'), dir };
  }

  beforeAll(async () => {
    base = tmpDir();
    src = path.join(base, 'src');
    const env = repoEnv(path.join(base, 'orig'));
    expect(cli(['init'], env).code).toBe(0);
    write(`${src}/site/one.txt`, content.one);
    write(`${src}/site/two.txt`, content.two);
    // Incompressible, so it is stored as is and any flipped byte changes it (a flip inside a
    // deflate stream can land in bits that do not change the output: no damage to find).
    big = randomBytes(9 * 1024 * 1024);
    write(`${src}/site/big.bin`, big); // several content-defined chunks
    snaps = [cli(['--json', 'snapshot', src], env).json.snapshot_id];
    write(`${src}/site/three.txt`, content.three);
    snaps.push(cli(['--json', 'snapshot', src], env).json.snapshot_id);
    expect(snaps.every(Boolean)).toBe(true);
    const ok = cli(['--json', 'check', '--read-data'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json.ok).toBe(true);
    expect(ok.json.errors).toEqual([]);
    const s = await openSession({
      repo: env.SNAPFILL_REPO,
      catalog: fs.readdirSync(env.SNAPFILL_CACHE).map((d) => path.join(env.SNAPFILL_CACHE, d, 'catalog.db'))[0],
      noSync: true,
      readOnly: true,
      passwordFile: env.SNAPFILL_PASSWORD_FILE,
    });
    try {
      const content = s.catalog.entry(s.catalog.snapshotById(snaps[1])!, `${src}/site/big.bin`)!.content!;
      expect(content.length).toBeGreaterThan(1);
      bigTail = content[content.length - 1];
    } finally {
      await s.close();
    }
  });

  it('a flipped byte in a blob: check --read-data names the pack, both snapshots and the exact path', () => {
    const c = copy('flip');
    const loc = packOf(c.repo, sha(content.two));
    flipByte(loc.pack.file, loc.offset + 3);
    // Structure alone cannot see a same-size flip inside file content...
    expect(cli(['--json', 'check'], c.env).json.ok).toBe(true);
    // ...reading the data does.
    const r = cli(['--json', 'check', '--read-data'], c.env);
    expect(r.code).toBe(1);
    expect(r.json.ok).toBe(false);
    const bp = r.json.broken_packs.find((b: any) => b.pack === loc.pack.id);
    expect(bp, JSON.stringify(r.json)).toBeTruthy();
    expect(bp.bad_blobs).toBe(1);
    expect(bp.snapshots.sort()).toEqual([...snaps].sort());
    expect(new Set(bp.paths.map((p: any) => p.path))).toEqual(new Set([`${src}/site/two.txt`]));
    expect(r.stderr + r.stdout).not.toContain('one.txt');
    // Human output names the pack and the path too.
    const h = cli(['check', '--read-data'], c.env);
    expect(h.code).toBe(1);
    expect(h.stderr).toContain(`broken pack ${loc.pack.id}`);
    expect(h.stderr).toContain(`${src}/site/two.txt`);
  });

  it('the runbook repair: quarantine a lost pack, re-store from the live files, older snapshots are whole again', () => {
    const c = copy('heal');
    const loc = packOf(c.repo, sha(content.two));
    const q = path.join(c.dir, 'quarantine');
    fs.mkdirSync(q);
    fs.renameSync(loc.pack.file, path.join(q, loc.pack.id));
    fs.renameSync(indexFiles(c.repo).get(loc.pack.id)!, path.join(q, `${loc.pack.id}.index`));
    expect(cli(['check'], c.env).code).toBe(1);
    expect(cli(['catalog', 'sync'], c.env).code).toBe(0);
    const heal = cli(['--json', 'snapshot', src, '--host', 'heal-test', '--tag', 'heal'], c.env);
    expect(heal.code, heal.stderr).toBe(0);
    const r = cli(['--json', 'check', '--read-data'], c.env);
    expect(r.json.errors, JSON.stringify(r.json.errors).slice(0, 500)).toEqual([]);
    const target = path.join(c.dir, 'target');
    expect(cli(['restore', snaps[0], '--target', target], c.env).code).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'site', 'two.txt'), 'utf8')).toBe(content.two);
  });

  it('a truncated pack: found by the structural check, with the files whose blobs are cut off', () => {
    const c = copy('trunc');
    const loc = packOf(c.repo, bigTail);
    fs.truncateSync(loc.pack.file, loc.offset + 10);
    const r = cli(['--json', 'check'], c.env);
    expect(r.code).toBe(1);
    const bp = r.json.broken_packs.find((b: any) => b.pack === loc.pack.id);
    expect(bp.problem).toContain('truncated');
    expect(bp.paths.map((p: any) => p.path)).toContain(`${src}/site/big.bin`);
    expect(bp.snapshots.sort()).toEqual([...snaps].sort());
    expect(r.json.errors.some((e: any) => e.message.includes('truncated'))).toBe(true);
  });

  it('a deleted pack: check names every file that had a blob in it', () => {
    const c = copy('delete');
    const loc = packOf(c.repo, sha(content.three));
    const inPack = new Set(loc.pack.index.blobs.map((b) => b.id));
    fs.rmSync(loc.pack.file);
    const r = cli(['--json', 'check'], c.env);
    expect(r.json, r.stderr + r.stdout).toBeTruthy();
    expect(r.code).toBe(1);
    const bp = r.json.broken_packs.find((b: any) => b.pack === loc.pack.id);
    expect(bp.problem).toContain('missing');
    const expected: string[] = [];
    for (const [name, text] of Object.entries(content)) if (inPack.has(sha(text))) expected.push(`${src}/site/${name}.txt`);
    const paths = new Set(bp.paths.map((p: any) => p.path));
    for (const p of expected) expect(paths.has(p)).toBe(true);
    expect(bp.paths.filter((p: any) => p.path === `${src}/site/three.txt`).map((p: any) => p.snapshot_id)).toEqual([snaps[1]]);
  });

  it('a damaged tree blob: the structural check finds it and names the directory', () => {
    const c = copy('tree');
    const tp = packs(c.repo).find((p) => p.index.type === 'tree')!;
    const b = tp.index.blobs[0];
    // Trees are stored compressed; damage several bytes so the change cannot be a no-op.
    for (let k = 1; k <= 8; k++) flipByte(tp.file, b.offset + Math.floor((b.length * k) / 9));
    const r = cli(['--json', 'check'], c.env);
    expect(r.code).toBe(1);
    const bp = r.json.broken_packs.find((x: any) => x.pack === tp.id);
    expect(bp).toBeTruthy();
    expect(bp.paths.length).toBeGreaterThan(0);
  });

  it('a damaged snapshot record is reported by its id', () => {
    const c = copy('snaprec');
    const f = snapshotRecordFiles(c.repo).get(snaps[0])!;
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace('"v": 1', '"v": 2'));
    const r = cli(['--json', 'check'], c.env);
    expect(r.code).toBe(1);
    expect(r.json.errors.some((e: any) => e.path.includes(snaps[0]) && e.message.includes('hash mismatch'))).toBe(true);
  });

  it('catalog and repository disagreeing (a catalog not synced, or a sync bug) is reported both ways', async () => {
    const c = copy('catalog');
    const s = await openSession({
      repo: c.repo,
      catalog: fs.readdirSync(path.join(c.dir, 'cache')).map((d) => path.join(c.dir, 'cache', d, 'catalog.db'))[0],
      noSync: true,
      passwordFile: c.env.SNAPFILL_PASSWORD_FILE,
    });
    try {
      // The repository loses a snapshot record and gains a pack the catalog never saw.
      fs.renameSync(snapshotRecordFiles(c.repo).get(snaps[0])!, path.join(c.dir, 'gone'));
      const idx = packs(c.repo)[0];
      fs.copyFileSync(indexFiles(c.repo).get(idx.id)!, path.join(c.repo, 'index', 'f'.repeat(64)));
      const { errors: errs } = await compareCatalog(s.repo, s.catalog);
      expect(errs.map((e) => e.path).sort()).toEqual([`pack ${'f'.repeat(64)}`, `snapshot ${snaps[0]}`]);
      expect(errs.every((e) => e.message.includes('catalog rebuild'))).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('--read-data-subset: n/m parts cover every pack (a part with no pack of its own reads one anyway); a percentage reads a share', () => {
    const c = copy('subset');
    const total = packs(c.repo).length;
    let sum = 0;
    for (let part = 1; part <= 3; part++) {
      const r = cli(['--json', 'check', '--read-data-subset', `${part}/3`], c.env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.packs_read).toBeGreaterThanOrEqual(1);
      sum += r.json.packs_read;
    }
    // Each pack is in exactly one part; an empty part borrows one pack (check.ts selectSubset).
    expect(sum).toBeGreaterThanOrEqual(total);
    expect(sum).toBeLessThanOrEqual(total + 2);
    expect(cli(['--json', 'check', '--read-data-subset', '100%'], c.env).json.packs_read).toBe(total);
    const bad = cli(['check', '--read-data-subset', '0%'], c.env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('percentage');
  });

  it('restore meeting a broken blob restores everything else, writes no wrong bytes, lists the paths, exits non-zero', () => {
    const c = copy('restore');
    const loc = packOf(c.repo, sha(content.two));
    flipByte(loc.pack.file, loc.offset + 3);
    const bigLoc = packOf(c.repo, bigTail);
    flipByte(bigLoc.pack.file, bigLoc.offset + 100); // the last chunk of a several-chunk file
    const target = path.join(c.dir, 'target');
    const r = cli(['--json', 'restore', 'latest', '--target', target], c.env);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.code).not.toBe(1); // finished, with per-path errors
    const errPaths = new Set(r.json.errors.map((e: any) => e.path));
    expect(errPaths).toEqual(new Set([`${src}/site/two.txt`, `${src}/site/big.bin`]));
    const t = (n: string) => path.join(target, src, 'site', n);
    expect(fs.readFileSync(t('one.txt'), 'utf8')).toBe(content.one);
    expect(fs.readFileSync(t('three.txt'), 'utf8')).toBe(content.three);
    // No wrong bytes: the damaged files are absent (not partially or wrongly written).
    for (const n of ['two.txt', 'big.bin']) {
      if (fs.existsSync(t(n))) {
        const want = n === 'big.bin' ? big : Buffer.from(content.two);
        expect(fs.readFileSync(t(n)).equals(want)).toBe(true);
      }
    }
    // Nothing half-written is left behind either.
    expect(fs.readdirSync(path.join(target, src, 'site')).sort()).toEqual(['one.txt', 'three.txt']);
  });

  it('restore in place over a damaged blob leaves the existing file untouched', () => {
    const c = copy('inplace');
    const loc = packOf(c.repo, sha(content.two));
    flipByte(loc.pack.file, loc.offset + 3);
    const live = path.join(c.dir, 'live');
    fs.cpSync(src, path.join(live, src), { recursive: true });
    const mine = path.join(live, src, 'site', 'two.txt');
    fs.writeFileSync(mine, 'local edit that is newer\n');
    fs.utimesSync(mine, new Date(2000, 1, 1), new Date(2000, 1, 1)); // older than the snapshot
    const r = cli(['--json', 'restore', 'latest', '--target', live, '--mode', 'all'], c.env);
    expect(r.code).toBe(3);
    expect(r.json.errors.map((e: any) => e.path)).toContain(`${src}/site/two.txt`);
    expect(fs.readFileSync(mine, 'utf8')).toBe('local edit that is newer\n');
  });
});
