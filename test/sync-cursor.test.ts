// A catalog sync lists only the data pack indexes new since its last one (issue 15): their keys
// are named by store time and listed from a window before the newest stamp the catalog saw; what
// prune deleted comes from its deletion records. Through the CLI, on a local repository, with
// index keys moved by hand to stamps a writer could (inside the window) or could not (behind it)
// have given them.
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { cli, describeTree, diffTrees, indexFiles, repoEnv, tmpDir, write } from './helpers.js';
import { parseIndexKey, timedIndexKey } from '../src/pack/keys.js';
import { STAMP_WINDOW_MS } from '../src/repo/clock.js';

function catalogFile(cache: string): string {
  const dirs = fs.readdirSync(cache).filter((d) => fs.existsSync(path.join(cache, d, 'catalog.db')));
  expect(dirs).toHaveLength(1);
  return path.join(cache, dirs[0], 'catalog.db');
}

function withDb<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const cursorOf = (file: string) =>
  JSON.parse(withDb(file, (db) => (db.prepare(`SELECT value FROM meta WHERE key='sync_cursor'`).get() as { value: string }).value));
const hasPack = (file: string, id: string) =>
  withDb(
    file,
    (db) => db.prepare(`SELECT 1 FROM packs WHERE hash=? UNION SELECT 1 FROM unread_packs WHERE hash=?`).get(id, id) !== undefined,
  );

describe('catalog sync from a cursor (issue 15)', () => {
  it('lists data indexes from a window before the newest it saw, learns deletions from records, lists everything when it must', () => {
    const base = tmpDir('sync-cursor');
    const common = repoEnv(base);
    const env = (host: string) => ({ ...common, SNAPFILL_CACHE: path.join(base, `cache-${host}`), SNAPFILL_HOST: host });
    const repo = common.SNAPFILL_REPO;
    const src = path.join(base, 'src');
    expect(cli(['init'], env('a')).code).toBe(0);
    write(`${src}/f1.dat`, 'one '.repeat(5000));
    expect(cli(['snapshot', src, '-q'], env('a')).code).toBe(0);

    // B's first sync lists everything; its second resumes and reads nothing.
    const b0 = cli(['--json', 'catalog', 'sync', '--all-packs'], env('b'));
    expect(b0.code, b0.stderr).toBe(0);
    expect(b0.json.listing).toBe('full');
    expect(b0.json.packs_added).toBeGreaterThan(0);
    const b1 = cli(['--json', 'catalog', 'sync'], env('b'));
    expect(b1.code, b1.stderr).toBe(0);
    expect(b1.json.listing).toBe('resumed');
    expect(b1.json.objects_read).toBe(0);
    const catB = catalogFile(path.join(base, 'cache-b'));
    const seen = cursorOf(catB).index_ms as number;
    expect(seen).toBeGreaterThan(Date.now() - 3_600_000);

    // Two more data packs of A, their index keys moved: one to a stamp inside B's window (a
    // writer whose stamp was that far behind the store), one behind it (which no writer gives).
    const moveIndex = (id: string, stampMs: number) => {
      const from = indexFiles(repo).get(id)!;
      const k = parseIndexKey(path.relative(repo, from))!;
      const to = path.join(repo, timedIndexKey(stampMs, id, k.filter));
      fs.mkdirSync(path.dirname(to), { recursive: true });
      fs.renameSync(from, to);
    };
    const newDataPacks = (before: Set<string>) =>
      [...indexFiles(repo).entries()].filter(([id, f]) => !before.has(id) && f.includes(`${path.sep}t${path.sep}`)).map(([id]) => id);
    let before = new Set(indexFiles(repo).keys());
    write(`${src}/f2.dat`, 'two '.repeat(5000));
    expect(cli(['snapshot', src, '-q'], env('a')).code).toBe(0);
    const [behind] = newDataPacks(before);
    moveIndex(behind, seen - 3_600_000);
    before = new Set(indexFiles(repo).keys());
    write(`${src}/f3.dat`, 'three '.repeat(5000));
    expect(cli(['snapshot', src, '-q'], env('a')).code).toBe(0);
    const [inside] = newDataPacks(before);
    moveIndex(inside, seen - STAMP_WINDOW_MS / 2);
    const b2 = cli(['--json', 'catalog', 'sync', '--all-packs'], env('b'));
    expect(b2.code, b2.stderr).toBe(0);
    expect(b2.json.listing).toBe('resumed');
    expect(hasPack(catB, inside)).toBe(true);
    expect(hasPack(catB, behind)).toBe(false);
    // --full lists everything: the pack behind the cursor is found.
    const b3 = cli(['--json', 'catalog', 'sync', '--full', '--all-packs'], env('b'));
    expect(b3.code, b3.stderr).toBe(0);
    expect(b3.json.listing).toBe('full');
    expect(hasPack(catB, behind)).toBe(true);

    // A prune deletes A's old packs: B's resumed sync drops them, told by the deletion record.
    fs.rmSync(`${src}`, { recursive: true });
    write(`${src}/f4.dat`, 'four '.repeat(5000));
    expect(cli(['snapshot', src, '-q'], env('a')).code).toBe(0);
    const f = cli(['--json', 'forget', '--keep-last', '1', '--prune', '--grace', '0s'], env('pruner'));
    expect(f.code, f.stderr).toBe(0);
    expect(f.json.prune.packs_marked).toBeGreaterThanOrEqual(3);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
    const p = cli(['--json', 'prune', '--grace', '0s'], env('pruner'));
    expect(p.code, p.stderr).toBe(0);
    // A grace of 0 s may let the first run delete what it marked: one record per run that deleted.
    expect(f.json.prune.packs_deleted + p.json.packs_deleted).toBeGreaterThanOrEqual(3);
    const records = fs.readdirSync(path.join(repo, 'deleted'));
    expect(records).toHaveLength((f.json.prune.packs_deleted ? 1 : 0) + (p.json.packs_deleted ? 1 : 0));
    const b4 = cli(['--json', 'catalog', 'sync'], env('b'));
    expect(b4.code, b4.stderr).toBe(0);
    expect(b4.json.listing).toBe('resumed');
    expect(b4.json.deletion_records_read).toBe(records.length);
    expect(b4.json.packs_removed).toBeGreaterThanOrEqual(3);
    for (const id of [inside, behind]) expect(hasPack(catB, id)).toBe(false);
    // Read once: the next resumed sync lists the record again (inside the window) but skips it.
    const b5 = cli(['--json', 'catalog', 'sync'], env('b'));
    expect(b5.json.deletion_records_read).toBe(0);
    expect(b5.json.objects_read).toBe(0);
    // B's catalog is what a full listing would give: check compares it with every index.
    const chk = cli(['--json', 'check'], env('b'));
    expect(chk.code, JSON.stringify(chk.json?.errors)).toBe(0);

    // A deletion record that cannot be read: what went is unknown, so every sync lists
    // everything while it is there; check names it.
    const bad = path.join(repo, 'deleted', `29991231235959-${'0'.repeat(64)}`);
    fs.writeFileSync(bad, 'not a record');
    for (let i = 0; i < 2; i++) {
      const b6 = cli(['--json', 'catalog', 'sync'], env('b'));
      expect(b6.code, b6.stderr).toBe(0);
      expect(b6.json.listing).toBe('full');
      expect(b6.stderr).toMatch(
        /warning: deletion record deleted\/29991231235959-0+ cannot be read.*every pack index is listed while it is there/,
      );
    }
    const chkBad = cli(['--json', 'check'], env('b'));
    expect(chkBad.code).toBe(1);
    expect(chkBad.json.errors.map((e: { path: string }) => e.path)).toEqual([`deleted/29991231235959-${'0'.repeat(64)}`]);
    fs.rmSync(bad);
    expect(cli(['--json', 'catalog', 'sync'], env('b')).json.listing).toBe('full');
    expect(cli(['--json', 'catalog', 'sync'], env('b')).json.listing).toBe('resumed');

    // A cursor older than deletion records are kept: records may be gone, so everything is listed.
    withDb(catB, (db) => {
      const c = cursorOf(catB);
      db.prepare(`UPDATE meta SET value=? WHERE key='sync_cursor'`).run(JSON.stringify({ ...c, at_ms: Date.now() - 14 * 86_400_000 }));
    });
    const b7 = cli(['--json', 'catalog', 'sync'], env('b'));
    expect(b7.json.listing).toBe('full');
    expect(cli(['--json', 'catalog', 'sync'], env('b')).json.listing).toBe('resumed');

    // What is left restores on B, and on a fresh machine.
    for (const host of ['b', 'fresh']) {
      const target = path.join(base, `out-${host}`);
      const r = cli(['--json', 'restore', 'latest', '--host', 'a', '--target', target], env(host));
      expect(r.code, r.stderr).toBe(0);
      expect(diffTrees(describeTree(src), describeTree(path.join(target, src)))).toEqual([]);
    }
  }, 120_000);
});
