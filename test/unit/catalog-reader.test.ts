import { describe, expect, it } from 'vitest';
import { CatalogReader, CONTENT_NOT_READ } from '../../src/catalog/reader.js';
import { chunkRefs } from '../../src/restore/context.js';
import { BlobIndex } from '../../src/catalog/blobindex.js';
import { ENTRY_TYPES } from '../../src/repo/tree.js';
import { entry, hex, openParts, SNAP_IDS, tempCatalogFile, writeSnapshot, writeThree } from './catalog-fixture.js';

/** Writes the three-snapshot lineage and hands back a read-only reader on the same file. */
function written(): { ro: CatalogReader; close: () => void } {
  const { db, reader, writer, file } = openParts();
  writeThree(writer, reader);
  db.flush();
  const ro = CatalogReader.openReadOnly(file);
  return {
    ro,
    close: () => {
      ro.close();
      db.close();
    },
  };
}

describe('catalog reader', () => {
  it('reads snapshots back on a read-only connection of its own', () => {
    const { ro, close } = written();
    expect(ro.listSnapshots().map((s) => s.id)).toEqual(SNAP_IDS);
    const [s1, s2, s3] = ro.listSnapshots();
    expect(s2.time).toBe('2024-01-02T00:00:00Z');
    expect(s2.record).toEqual({ id: SNAP_IDS[1] });
    expect(ro.lineageHead(s1.lineage)!.id).toBe(s3.id);
    const f1 = ro.entry(s1, '/a/f1')!;
    expect(f1).toMatchObject({ path: '/a/f1', name: 'f1', type: 'file', size: 5, fp: hex('1', 16), content: [hex('1')] });
    expect(f1.mtime).toBe(1_700_000_000_123_456_789n); // nanoseconds beyond 2^53 survive
    expect(ro.entry(s3, '/a/f1')!.size).toBe(6);
    expect(ro.entry(s1, '/nope')).toBeUndefined();
    close();
  });

  it('lists a directory by name and walks a subtree in path order, each directory before its contents', () => {
    const { ro, close } = written();
    const [s1, s2, s3] = ro.listSnapshots();
    expect([...ro.listDir(s2, '/')].map((v) => v.name)).toEqual(['a', 'c', 'd']);
    expect([...ro.listDir(s1, '/a')].map((v) => v.path)).toEqual(['/a/f1', '/a/f2']);
    expect([...ro.listDir(s1, '/absent')]).toEqual([]);
    expect([...ro.walk(s1)].map((v) => v.path)).toEqual(['/a', '/a/f1', '/a/f2', '/b', '/d', '/d/x']);
    expect([...ro.walk(s1, '/d')].map((v) => v.path)).toEqual(['/d', '/d/x']);
    expect([...ro.walk(s3)].map((v) => v.path)).toEqual(['/a', '/a/f1', '/a/f2', '/c']);
    expect(ro.countEntries(s1)).toEqual({ entries: 6, files: 3, bytes: 15 });
    const stat = ro.listDirStat(s1, '/');
    expect(stat.map((r) => [r.name, r.type])).toEqual([
      ['a', 'dir'],
      ['b', 'symlink'],
      ['d', 'dir'],
    ]);
    expect(stat[1]).toMatchObject({ target: '/a/f1', mtimeMs: 1_700_000_000_123 });
    close();
  });

  it('finds versions across snapshots, narrowed by an exact path or a subtree', () => {
    const { ro, close } = written();
    const all = [...ro.findVersions((p) => p.endsWith('x'))];
    expect(all.map((h) => [h.path, h.snapshots.length])).toEqual([['/d/x', 2]]);
    expect([...ro.findVersions(() => true, { exact: '/a/f2' })].map((h) => h.path)).toEqual(['/a/f2']);
    expect([...ro.findVersions(() => true, { under: '/a' })].map((h) => h.path)).toEqual(['/a', '/a', '/a/f1', '/a/f1', '/a/f2']); // /a's tree changed in s2
    close();
  });

  it('gives a restore worker the children of a directory: exact byte names, nanoseconds as text, owners and fingerprints only when asked', () => {
    const { db, reader, writer, file } = openParts();
    const [s1] = writeThree(writer, reader);
    new BlobIndex(db).addPackIndex({ v: 1, pack: hex('9'), type: 'data', size: 4096, blobs: [{ id: hex('1'), offset: 512, length: 5 }] });
    db.flush();
    const ro = CatalogReader.openReadOnly(file);
    const root = ro.childrenForRestore(ro.pathId('/')!, '/', s1, { owners: false, fingerprints: false });
    expect(root.map((r) => r.path)).toEqual(['/a', '/b', '/d']);
    const a = root[0];
    const rows = ro.childrenForRestore(a.pathId, a.path, s1, { owners: true, fingerprints: true });
    expect(rows.map((r) => r.path)).toEqual(['/a/f1', '/a/f2']);
    expect(rows[0]).toMatchObject({ mtimeNs: '1700000000123456789', nlink: 1, loc: null });
    // Locations are looked up per file written.
    expect(ro.blobLocation(rows[0].content![0])).toEqual({ pack: hex('9'), offset: 512, length: 5 });
    expect(ro.entryForRestore(s1, '/a/f1')!.loc).toEqual({ pack: hex('9'), offset: 512, length: 5 });
    // Metadata mode reads no blob ids: a file with content says so, and nothing can write it.
    const meta = ro.childrenForRestore(a.pathId, a.path, s1, { owners: false, fingerprints: false, content: false });
    expect(meta.map((r) => [r.path, r.content === CONTENT_NOT_READ, r.mode, r.mtimeNs])).toEqual(
      rows.map((r) => [r.path, r.content !== null, r.mode, r.mtimeNs]),
    );
    expect(() => chunkRefs(meta[0], null, () => undefined)).toThrow(/was not read; nothing written/);
    // The missing entries of a directory by id, in the order asked, with their locations.
    const byId = ro.childrenForRestoreByIds([rows[1], rows[0]], s1, { owners: false, fingerprints: false, locations: true });
    expect(byId.map((r) => [r.path, r.loc])).toEqual([
      ['/a/f2', rows[1].content ? (ro.blobLocation(rows[1].content[0]) ?? null) : null],
      ['/a/f1', { pack: hex('9'), offset: 512, length: 5 }],
    ]);
    ro.close();
    db.close();
  });

  it('names that are not ASCII come back as their exact bytes in a restore worker', () => {
    const { db, reader, writer, file } = openParts();
    const lineage = writer.lineageId('host', ['/']);
    const odd = 'caf\xe9'; // latin1 0xe9: not valid UTF-8 on its own
    const tree = new Map([
      ['/v', entry('/v', 'dir')],
      [`/v/${odd}`, entry(`/v/${odd}`, 'file', { fp: hex('2', 16) })],
      ['/v/plain', entry('/v/plain', 'file')],
    ]);
    writeSnapshot(writer, reader, lineage, SNAP_IDS[0], '2024-01-01T00:00:00Z', tree);
    db.flush();
    const ro = CatalogReader.openReadOnly(file);
    const snap = ro.snapshotById(SNAP_IDS[0])!;
    const rows = ro.childrenForRestore(ro.pathId('/v')!, '/v', snap, { owners: false, fingerprints: true });
    expect(rows.map((r) => r.path)).toEqual([`/v/${odd}`, '/v/plain']);
    expect(rows[0].fp).toBe(hex('2', 16));
    ro.close();
    db.close();
  });

  it('gives verify raw child rows: µs mtimes, exact byte names, targets and fingerprints only where needed', () => {
    const { db, reader, writer, file } = openParts();
    const lineage = writer.lineageId('host', ['/']);
    const odd = 'caf\xe9'; // latin1 0xe9: not valid UTF-8 on its own
    const tree = new Map([
      ['/v', entry('/v', 'dir')],
      ['/v/plain', entry('/v/plain', 'file', { fp: hex('1', 16), size: 3 })],
      [`/v/${odd}`, entry(`/v/${odd}`, 'file', { fp: hex('2', 16) })],
      ['/v/link', entry('/v/link', 'symlink', { target: '/v/plain' })],
      ['/v/hard', entry('/v/hard', 'hardlink', { target: '/v/plain', fp: hex('1', 16) })],
      ['/v/sub', entry('/v/sub', 'dir')],
      ['/v/sub/deep', entry('/v/sub/deep', 'file')],
    ]);
    writeSnapshot(writer, reader, lineage, SNAP_IDS[0], '2024-01-01T00:00:00Z', tree);
    db.flush();
    const ro = CatalogReader.openReadOnly(file);
    const snap = ro.snapshotById(SNAP_IDS[0])!;
    const pid = ro.pathId('/v')!;
    const byName = new Map(ro.childrenForVerify(pid, snap, { checksum: false }).map((r) => [r[1], r]));
    expect([...byName.keys()].sort()).toEqual(['caf\xe9', 'hard', 'link', 'plain', 'sub']);
    const plain = byName.get('plain')!;
    expect(plain[0]).toBe(ro.pathId('/v/plain'));
    expect(plain.slice(2, 8)).toEqual([ENTRY_TYPES.indexOf('file'), 0o644, 1000, 1000, 3, 1_700_000_000_123_456]);
    expect(plain[8]).toBeNull(); // no target for a file
    expect(plain[9]).toBeNull(); // no fingerprint without checksum
    expect(byName.get('link')![8]!.toString('latin1')).toBe('/v/plain');
    expect(byName.get('hard')![8]!.toString('latin1')).toBe('/v/plain');
    const withFp = new Map(ro.childrenForVerify(pid, snap, { checksum: true }).map((r) => [r[1], r]));
    expect(withFp.get('plain')![9]!.toString('hex')).toBe(hex('1', 16));
    expect(withFp.get(odd)![9]!.toString('hex')).toBe(hex('2', 16));
    expect([...ro.subtreePaths('/v', snap)]).toEqual([`/v/${odd}`, '/v/hard', '/v/link', '/v/plain', '/v/sub', '/v/sub/deep']);
    expect([...ro.subtreePaths('/v/sub', snap)]).toEqual(['/v/sub/deep']);
    ro.close();
    db.close();
  });

  it("reads every open directory row of a lineage in one query, as openDirState reads each (a snapshot's parent directories)", () => {
    const { ro, close } = written();
    const s3 = ro.listSnapshots()[2];
    const all = ro.openDirStates(s3.lineage, s3.seq + 1);
    expect([...all.keys()]).toEqual(['/a']); // /d was deleted in s3; /b and /c are no directories
    expect(all.get('/a')).toEqual(ro.openDirState('/a', s3.lineage, s3.seq + 1));
    expect(all.get('/a')).toMatchObject({ type: 'dir', tree: hex('b') });
    expect(ro.openDirState('/d', s3.lineage, s3.seq + 1)).toBeUndefined();
    expect(ro.openDirStates(s3.lineage + 1, s3.seq + 1).size).toBe(0); // another lineage has none
    close();
  });

  it('openReadOnly refuses a catalog file that does not exist (it never creates one)', () => {
    expect(() => CatalogReader.openReadOnly(tempCatalogFile())).toThrow();
  });
});
