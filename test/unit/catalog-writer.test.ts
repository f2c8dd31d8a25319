import { describe, expect, it } from 'vitest';
import { hex, openParts, SNAP_IDS, threeSnapshots, writeSnapshot, writeThree } from './catalog-fixture.js';

/** The catalog writer on real SQLite files: what it stores, shares, closes and forgets. */
describe('catalog writer', () => {
  it('shares unchanged rows between snapshots and writes a row only for what changed', () => {
    const { db, reader, writer } = openParts();
    const [s1, s2, s3] = writeThree(writer, reader);
    // f2 never changed: one row, valid in all three snapshots.
    const f2 = [s1, s2, s3].map((s) => reader.entry(s, '/a/f2')!.versionId);
    expect(new Set(f2).size).toBe(1);
    // f1 changed in s2: a second row, shared by s2 and s3.
    const f1 = [s1, s2, s3].map((s) => reader.entry(s, '/a/f1')!);
    expect(f1[0].versionId).not.toBe(f1[1].versionId);
    expect(f1[1].versionId).toBe(f1[2].versionId);
    expect(f1.map((v) => v.fp)).toEqual([hex('1', 16), hex('4', 16), hex('4', 16)]);
    // The deleted symlink, and the deleted directory with its subtree, are gone from later snapshots only.
    expect(reader.entry(s1, '/b')?.target).toBe('/a/f1');
    expect(reader.entry(s2, '/b')).toBeUndefined();
    expect(reader.entry(s2, '/d/x')!.versionId).toBe(reader.entry(s1, '/d/x')!.versionId);
    expect(reader.entry(s3, '/d')).toBeUndefined();
    expect(reader.entry(s3, '/d/x')).toBeUndefined();
    db.close();
  });

  it('records validity intervals: from the snapshot that wrote a row to the last one that has it', () => {
    const { db, reader, writer } = openParts();
    const [s1, s2, s3] = writeThree(writer, reader);
    const intervals = (p: string) => [...reader.findVersions((q) => q === p)].map((h) => h.snapshots.map((s) => s.id));
    expect(intervals('/a/f1')).toEqual([[s1.id], [s2.id, s3.id]]);
    expect(intervals('/a/f2')).toEqual([[s1.id, s2.id, s3.id]]);
    expect(intervals('/b')).toEqual([[s1.id]]);
    expect(intervals('/c')).toEqual([[s2.id], [s3.id]]);
    expect(intervals('/d/x')).toEqual([[s1.id, s2.id]]);
    db.close();
  });

  it('forgetSnapshot drops only the rows no other snapshot uses', () => {
    const { db, reader, writer } = openParts();
    const [s1, , s3] = writeThree(writer, reader);
    const before = { s1: [...reader.walk(s1)], s3: [...reader.walk(s3)] };
    writer.forgetSnapshot(SNAP_IDS[1]);
    expect(reader.snapshotById(SNAP_IDS[1])).toBeUndefined();
    expect(reader.listSnapshots().map((s) => s.id)).toEqual([SNAP_IDS[0], SNAP_IDS[2]]);
    // The neighbours read exactly as before, shared rows included.
    expect([...reader.walk(s1)]).toEqual(before.s1);
    expect([...reader.walk(s3)]).toEqual(before.s3);
    // /c's first row lived in s2 alone; f1's second row is still s3's.
    expect([...reader.findVersions((p) => p === '/c')].map((h) => h.version.fp)).toEqual([hex('6', 16)]);
    expect([...reader.findVersions((p) => p === '/a/f1')]).toHaveLength(2);
    // Forgetting the oldest keeps what continues into the newest.
    writer.forgetSnapshot(SNAP_IDS[0]);
    expect([...reader.walk(s3)]).toEqual(before.s3);
    expect([...reader.findVersions(() => true)].map((h) => h.path).sort()).toEqual(['/a', '/a/f1', '/a/f2', '/c']);
    db.close();
  });

  it('a pending snapshot stays invisible, and discarding it leaves no trace', () => {
    const { db, reader, writer } = openParts();
    const [s1, s2, s3] = threeSnapshots();
    const lineage = writer.lineageId('host', ['/']);
    writeSnapshot(writer, reader, lineage, SNAP_IDS[0], '2024-01-01T00:00:00Z', s1);
    const root = reader.pathId('/')!;
    const seq = writer.beginSnapshot(lineage, '2024-01-02T00:00:00Z', 'host', ['/'], []);
    const a = reader.openChildren(root, lineage, seq).get('a')!;
    writer.closeVersion(seq, a.versionId);
    writer.insertVersion(a.pathId, lineage, seq, s2.get('/a')!);
    writer.addDamage(seq, '/a', '/a', 'tree blob lost');
    db.flush();
    expect(reader.listSnapshots()).toHaveLength(1);
    // Superseded rows stay open until the commit: the parent's state is unchanged.
    expect(reader.openVersionByPath('/a', lineage, seq)!.versionId).toBe(a.versionId);
    expect(reader.entry(reader.snapshotById(SNAP_IDS[0])!, '/a')!.versionId).toBe(a.versionId);
    // A pending snapshot of this very process counts as abandoned (it is not running any more).
    expect(writer.discardAbandoned(() => true)).toBe(1);
    expect(reader.hasDamage(seq)).toBe(false);
    const snap1 = reader.snapshotById(SNAP_IDS[0])!;
    expect([...reader.findVersions((p) => p === '/a')].map((h) => h.snapshots.map((s) => s.id))).toEqual([[snap1.id]]);
    // The lineage continues from s1 as if nothing happened.
    writeSnapshot(writer, reader, lineage, SNAP_IDS[2], '2024-01-03T00:00:00Z', s3);
    expect(reader.entry(reader.snapshotById(SNAP_IDS[2])!, '/a/f2')!.versionId).toBe(reader.entry(snap1, '/a/f2')!.versionId);
    db.close();
  });

  it('lineages are keyed by host and the set of paths', () => {
    const { db, writer } = openParts();
    const a = writer.lineageId('h', ['/x', '/y']);
    expect(writer.lineageId('h', ['/y', '/x'])).toBe(a);
    expect(writer.lineageId('h2', ['/x', '/y'])).not.toBe(a);
    expect(writer.lineageId('h', ['/x'])).not.toBe(a);
    db.close();
  });

  it('paths are created once, with their ancestors', () => {
    const { db, reader, writer } = openParts();
    const id = writer.ensurePath('/p/q/r');
    expect(writer.ensurePath('/p/q/r')).toBe(id);
    const q = reader.pathId('/p/q')!;
    expect(q).toBeDefined();
    expect(writer.childPathId(q, '/p/q', 'r')).toBe(id);
    expect(writer.childPathId(q, '/p/q', 's')).not.toBe(id);
    expect(reader.pathId('/p/q/s')).toBeDefined();
    db.close();
  });

  it('tree digests are kept per tree id until cleared', () => {
    const { db, reader, writer } = openParts();
    writer.setTreeDigest(hex('a'), hex('f', 16));
    expect(reader.treeDigest(hex('a'))).toBe(hex('f', 16));
    expect(reader.treeDigest(hex('b'))).toBeUndefined();
    writer.clearTreeDigests();
    expect(reader.treeDigest(hex('a'))).toBeUndefined();
    db.close();
  });

  it("damage records belong to one snapshot; carryDamage copies a shared subtree's records", () => {
    const { db, reader, writer } = openParts();
    const [, s2t] = threeSnapshots();
    const lineage = writer.lineageId('host', ['/']);
    const seq1 = writer.beginSnapshot(lineage, '2024-01-01T00:00:00Z', 'host', ['/'], []);
    writer.addDamage(seq1, '/d', '/d', 'tree blob lost: directory contents lost');
    writer.addDamage(seq1, '/a', '/a/"bad"', 'unsafe entry name');
    writer.commitSnapshot(seq1, SNAP_IDS[0], hex('7'), null, {});
    const s1 = reader.snapshotById(SNAP_IDS[0])!;
    expect(reader.damagedUnder(s1, '/').map((d) => d.path)).toEqual(['/a/"bad"', '/d']);
    expect(reader.damagedUnder(s1, '/d/x')).toEqual([{ path: '/d', message: 'tree blob lost: directory contents lost' }]);
    expect(reader.dirLost(s1, '/d')).toMatch(/contents lost/);
    expect(reader.dirLost(s1, '/a')).toBeUndefined();
    const seq2 = writeSnapshot(writer, reader, lineage, SNAP_IDS[1], '2024-01-02T00:00:00Z', s2t);
    writer.carryDamage(seq1, seq2, '/d');
    const s2 = reader.snapshotById(SNAP_IDS[1])!;
    expect(reader.damagedUnder(s2, '/').map((d) => d.path)).toEqual(['/d']);
    expect(reader.damagedInAll('/').map((d) => [d.snapshot.id, d.path])).toEqual([
      [s1.id, '/a/"bad"'],
      [s1.id, '/d'],
      [s2.id, '/d'],
    ]);
    writer.forgetSnapshot(s1.id);
    expect(reader.hasDamage(seq1)).toBe(false);
    expect(reader.hasDamage(seq2)).toBe(true);
    db.close();
  });

  it('clearSnapshots empties snapshots, paths and versions', () => {
    const { db, reader, writer } = openParts();
    writeThree(writer, reader);
    writer.clearSnapshots();
    expect(reader.listSnapshots()).toEqual([]);
    expect(reader.pathId('/a')).toBeUndefined();
    expect([...reader.findVersions(() => true)]).toEqual([]);
    db.close();
  });
});
