import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import { CatalogDb } from '../../src/catalog/db.js';
import { CatalogReader } from '../../src/catalog/reader.js';
import { CatalogWriter } from '../../src/catalog/writer.js';
import type { SnapshotRow } from '../../src/catalog/rows.js';
import { sameEntry, type Entry } from '../../src/repo/tree.js';
import { basename, dirname, join, type RawPath } from '../../src/util/rawpath.js';

/**
 * Shared by the catalog unit tests: real catalog files in temp dirs, entries, and a lineage of
 * three snapshots written through the writer the way an import writes them (sync.ts).
 */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

export function tempCatalogFile(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-catalog-'));
  dirs.push(d);
  return path.join(d, 'catalog.db');
}

export const REPO_ID = 'a'.repeat(64);

export function openParts(file = tempCatalogFile()): { db: CatalogDb; reader: CatalogReader; writer: CatalogWriter; file: string } {
  const db = CatalogDb.open(file, REPO_ID);
  const reader = new CatalogReader(db);
  return { db, reader, writer: new CatalogWriter(db, reader), file };
}

export const hex = (c: string, n = 64): string => c.repeat(n);

/** An entry at `p` (its name is the last component); fields as a snapshot walk would record them. */
export function entry(p: RawPath, type: Entry['type'], over: Partial<Entry> = {}): Entry {
  return {
    name: basename(p),
    type,
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 1000,
    gid: 1000,
    user: 'u',
    group: 'g',
    size: 0,
    mtime: 1_700_000_000_123_456_789n,
    ctime: 1_700_000_000_123_456_789n,
    ino: 1n,
    dev: 2n,
    nlink: 1,
    rdev: 0,
    target: null,
    fp: null,
    content: null,
    tree: type === 'dir' ? hex('d') : null,
    flags: 0,
    ...over,
  };
}

/** A snapshot's tree as a flat map path -> entry (the root '/' itself is not an entry). */
export type TreeSpec = Map<RawPath, Entry>;

/**
 * Writes one committed snapshot of `tree` in `lineage`, as sync's importTree does: per
 * directory, the parent's open children are compared; unchanged rows are shared, changed ones
 * superseded, vanished ones closed (with their subtree when they were directories).
 */
export function writeSnapshot(w: CatalogWriter, r: CatalogReader, lineage: number, id: string, time: string, tree: TreeSpec): number {
  const seq = w.beginSnapshot(lineage, time, 'host', ['/'], []);
  const rootId = w.ensurePath('/');
  writeDir(w, r, lineage, seq, '/', rootId, tree);
  w.commitSnapshot(seq, id, hex('7'), null, { id });
  return seq;
}

function writeDir(w: CatalogWriter, r: CatalogReader, lineage: number, seq: number, dir: RawPath, dirId: number, tree: TreeSpec): void {
  const prevChildren = r.openChildren(dirId, lineage, seq);
  const children = [...tree.keys()].filter((p) => p !== '/' && dirname(p) === dir).sort();
  for (const p of children) {
    const e = tree.get(p)!;
    const prev = prevChildren.get(e.name);
    prevChildren.delete(e.name);
    const pathId = prev?.pathId ?? w.childPathId(dirId, dir, e.name);
    if (prev && sameEntry(prev, e)) continue; // shared row: for a directory, its whole subtree too
    if (prev) {
      w.closeVersion(seq, prev.versionId);
      if (prev.type === 'dir' && e.type !== 'dir') w.closeSubtree(seq, lineage, p);
    }
    w.insertVersion(pathId, lineage, seq, e);
    if (e.type === 'dir') writeDir(w, r, lineage, seq, p, pathId, tree);
  }
  for (const [name, prev] of prevChildren) {
    w.closeVersion(seq, prev.versionId);
    if (prev.type === 'dir') w.closeSubtree(seq, lineage, join(dir, name));
  }
}

/**
 * Three snapshots of one lineage:
 *   s1: /a/ /a/f1 /a/f2 /b (symlink) /d/ /d/x
 *   s2: /a/f1 changed, /a/f2 and /d/ unchanged, /b deleted, /c added
 *   s3: /d/ deleted with /d/x, /c changed, the rest unchanged
 * A directory whose subtree changes gets a new tree id (as in a Merkle tree).
 */
export function threeSnapshots(): TreeSpec[] {
  const f1 = entry('/a/f1', 'file', { size: 5, fp: hex('1', 16), content: [hex('1')] });
  const f2 = entry('/a/f2', 'file', { size: 7, fp: hex('2', 16), content: [hex('2')], ino: 9n });
  const d = entry('/d', 'dir', { tree: hex('e') });
  const x = entry('/d/x', 'file', { size: 3, fp: hex('3', 16), content: [hex('3')] });
  const s1: TreeSpec = new Map([
    ['/a', entry('/a', 'dir', { tree: hex('a') })],
    ['/a/f1', f1],
    ['/a/f2', f2],
    ['/b', entry('/b', 'symlink', { target: '/a/f1' })],
    ['/d', d],
    ['/d/x', x],
  ]);
  const f1b = { ...f1, size: 6, mtime: f1.mtime + 1000n, fp: hex('4', 16), content: [hex('4')] };
  const c = entry('/c', 'file', { size: 1, fp: hex('5', 16), content: [hex('5')] });
  const s2: TreeSpec = new Map([
    ['/a', entry('/a', 'dir', { tree: hex('b') })],
    ['/a/f1', f1b],
    ['/a/f2', f2],
    ['/c', c],
    ['/d', d],
    ['/d/x', x],
  ]);
  const s3: TreeSpec = new Map([
    ['/a', entry('/a', 'dir', { tree: hex('b') })],
    ['/a/f1', f1b],
    ['/a/f2', f2],
    ['/c', { ...c, size: 2, fp: hex('6', 16), content: [hex('6')] }],
  ]);
  return [s1, s2, s3];
}

export const SNAP_IDS = [hex('1'), hex('2'), hex('3')];

/** Writes threeSnapshots() and returns their rows, oldest first. */
export function writeThree(w: CatalogWriter, r: CatalogReader): SnapshotRow[] {
  const lineage = w.lineageId('host', ['/']);
  threeSnapshots().forEach((t, i) => writeSnapshot(w, r, lineage, SNAP_IDS[i], `2024-01-0${i + 1}T00:00:00Z`, t));
  return SNAP_IDS.map((id) => r.snapshotById(id)!);
}
