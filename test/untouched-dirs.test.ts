import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import Database from 'better-sqlite3';
import { catalogOf, cli, describeTree, IS_ROOT, repoEnv, tmpDir, write } from './helpers.js';
import { ShortcutProbe } from '../src/util/shortcutprobe.js';

/**
 * Issue 17: a metadata repair and a verify skip a directory whose live stat digest (names,
 * modes, owners, sizes, mtimes, ctimes, inodes, links) equals the one the snapshot recorded for
 * its tree: nothing in it can differ. Its rows are not read. Everywhere else the full compare
 * runs, and the two give the same report and the same tree (SNAPFILL_TEST_NO_DIGEST_SKIP=1 turns
 * the shortcut off).
 */
describe.skipIf(!IS_ROOT)('metadata repair and verify of directories untouched since the snapshot', () => {
  function setup() {
    const base = tmpDir('snapfill-untouched-');
    const env = repoEnv(path.join(base, 'r'));
    const src = path.join(base, 'src');
    write(`${src}/a/f1`, 'one\n', 0o644);
    write(`${src}/a/f2`, 'two\n', 0o640);
    write(`${src}/a/sub/g`, 'g\n');
    fs.symlinkSync('f1', `${src}/a/link`);
    write(`${src}/b/h1`, 'linked\n');
    fs.linkSync(`${src}/b/h1`, `${src}/b/h2`);
    fs.mkdirSync(`${src}/c`);
    execFileSync('mkfifo', [`${src}/c/fifo`]);
    write(`${src}/c/plain`, 'p\n');
    for (let i = 0; i < 50; i++) write(`${src}/d/file-${i}`, `${i}\n`, 0o600);
    fs.chownSync(`${src}/d/file-7`, 1234, 1235);
    expect(cli(['init'], env).code).toBe(0);
    const s = cli(['snapshot', src], env);
    expect(s.code, s.stderr).toBe(0);
    return { base, env, src };
  }
  const repair = (env: Record<string, string>, src: string, slow = false) => {
    const r = cli(['--json', 'restore', 'latest', src, '--mode', 'metadata'], slow ? { ...env, SNAPFILL_TEST_NO_DIGEST_SKIP: '1' } : env);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    delete j.duration_s;
    return j;
  };

  it('reports an intact tree as the full compare does, and reads no row of an untouched directory', () => {
    const { env, src } = setup();
    const fast = repair(env, src);
    expect(fast.metadata_fixed).toBe(0);
    expect(fast.errors).toEqual([]);
    expect(repair(env, src, true)).toEqual(fast);
    // The proof is the digest, not the rows: a row changed behind its back in the catalog (never
    // done by snapfill) is not read for an untouched directory, and is for a touched one.
    const db = new Database(catalogOf(env));
    db.prepare(`UPDATE versions SET mode = mode | 4 WHERE to_seq IS NULL AND path = (SELECT id FROM paths WHERE path = ?)`).run(
      Buffer.from(`${src}/d/file-3`, 'latin1'),
    );
    db.close();
    expect(repair(env, src).metadata_fixed).toBe(0);
    expect(fs.statSync(`${src}/d/file-3`).mode & 0o7777).toBe(0o600);
    fs.chmodSync(`${src}/d/file-4`, 0o600); // the same mode: only its ctime moves, and d's digest with it
    expect(repair(env, src).metadata_fixed).toBe(1);
    expect(fs.statSync(`${src}/d/file-3`).mode & 0o7777).toBe(0o604);
  });

  it('repairs damage exactly as the full compare does', () => {
    const { env, src } = setup();
    const before = describeTree(src, { mtimeDirs: true });
    const damage = () => {
      fs.chmodSync(`${src}/a/f2`, 0o666);
      fs.chownSync(`${src}/a/sub`, 4321, 4321);
      fs.chmodSync(`${src}/c/plain`, 0o600);
      fs.lchownSync(`${src}/b/h2`, 99, 99);
      fs.chownSync(`${src}/d/file-7`, 0, 0);
      const old = fs.statSync(`${src}/a/sub/g`).mtime;
      fs.utimesSync(`${src}/a/sub/g`, old, new Date(old.getTime() + 5000));
    };
    damage();
    const fast = repair(env, src);
    const fastTree = describeTree(src, { mtimeDirs: true });
    damage();
    const slow = repair(env, src, true);
    expect(fast).toEqual(slow);
    expect(describeTree(src, { mtimeDirs: true })).toEqual(fastTree);
    expect(fast.errors).toEqual([]);
    expect(fast.metadata_fixed).toBe(7); // h1 and h2 are one inode: both names are fixed
    expect(fastTree).toEqual(before);
  });

  const verify = (env: Record<string, string>, slow = false, extra: string[] = []) => {
    const r = cli(['--json', 'verify', 'latest', ...extra], slow ? { ...env, SNAPFILL_TEST_NO_DIGEST_SKIP: '1' } : env);
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    delete j.duration_s;
    for (const k of Object.keys(j))
      if (Array.isArray(j[k])) j[k].sort((a: unknown, b: unknown) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
    return { code: r.code, j };
  };

  it('verify: the same findings as the full compare, intact and damaged, and no row read where untouched', () => {
    const { env, src } = setup();
    const intact = verify(env);
    expect(intact.code).toBe(0);
    expect(intact.j).toMatchObject({ ok: true, missing: 0, changed: 0, metadata_mismatch: 0, extra: 0 });
    expect(verify(env, true)).toEqual(intact);
    const db = new Database(catalogOf(env));
    db.prepare(`UPDATE versions SET size = size + 1 WHERE to_seq IS NULL AND path = (SELECT id FROM paths WHERE path = ?)`).run(
      Buffer.from(`${src}/d/file-3`, 'latin1'),
    );
    db.close();
    expect(verify(env).j.changed).toBe(0);
    expect(verify(env, true).j.changed).toBe(1);
    fs.chmodSync(`${src}/d/file-4`, 0o600); // the same mode: only d's digest moves
    expect(verify(env).j.changed).toBe(1);

    fs.chmodSync(`${src}/a/f2`, 0o600);
    fs.rmSync(`${src}/a/sub/g`);
    write(`${src}/c/new`, 'new\n');
    fs.appendFileSync(`${src}/d/file-9`, 'more');
    fs.lchownSync(`${src}/a/link`, 77, 77);
    const fast = verify(env);
    expect(fast.code).toBe(3);
    // changed: file-9 and the row altered above (d is touched now); metadata: f2, the link's owner, and the mtimes of a/sub and c.
    expect(fast.j).toMatchObject({ missing: 1, changed: 2, metadata_mismatch: 4, extra: 1 });
    expect(verify(env, true)).toEqual(fast);
    // --checksum reads content: no shortcut, and the same findings.
    expect(verify(env, false, ['--checksum'])).toEqual(verify(env, true, ['--checksum']));
  });
});

describe('ShortcutProbe', () => {
  it('stops trying a shortcut that keeps failing, tries every 16th, and resumes once it pays again', () => {
    const p = new ShortcutProbe(1 / 3);
    for (let i = 0; i < 4; i++) {
      expect(p.worth()).toBe(true);
      p.saw(false);
    }
    expect(p.likely).toBe(false);
    const tried = Array.from({ length: 32 }, () => p.worth());
    expect(tried.filter(Boolean).length).toBe(2);
    expect(tried[15]).toBe(true);
    for (let i = 0; i < 4; i++) p.saw(true);
    expect(p.likely).toBe(true);
    expect([p.worth(), p.worth(), p.worth()]).toEqual([true, true, true]);
    // A share: missing mode reports the part of a directory's names found present.
    const names = new ShortcutProbe(0.5);
    names.saw(0.1);
    names.saw(0.1);
    expect(names.likely).toBe(true); // 0.75 * 0.775 + 0.025 = 0.606
    names.saw(0.1);
    expect(names.likely).toBe(false);
  });
});
