// Compact rows for packs a sync imports (issue 15, catalog migration 4): a far data pack
// answers every question a near one does (exact ids and locations); a far tree pack holds
// hints only, which never count as the blob being there.
import { describe, expect, it } from 'vitest';
import { BlobIndex, type PackIndexInput } from '../../src/catalog/blobindex.js';
import { RemoteSnapshots } from '../../src/catalog/remote.js';
import type { StoredSnapshot } from '../../src/repo/repository.js';
import { hex, openParts } from './catalog-fixture.js';

const pack = (id: string, type: 'data' | 'tree', blobs: [string, number, number][], form?: 'near' | 'far'): PackIndexInput => ({
  v: 1,
  pack: id,
  type,
  size: 8192,
  blobs: blobs.map(([b, offset, length]) => ({ id: b, offset, length })),
  form,
});

describe('catalog: compact rows of far packs', () => {
  it('a far data pack locates its blobs exactly, keeps every copy, and goes as one range', () => {
    const { db } = openParts();
    const ix = new BlobIndex(db);
    ix.addPackIndex(pack(hex('1'), 'data', [[hex('a'), 512, 10]])); // near (written here)
    ix.addPackIndex(
      pack(
        hex('2'),
        'data',
        [
          [hex('a'), 100, 10],
          [hex('b'), 200, 20],
        ],
        'far',
      ),
    );
    ix.addPackIndex(pack(hex('3'), 'data', [[hex('b'), 300, 20]], 'far'));
    // Same first 8 bytes as b, different id: never taken for b.
    const lookalike = hex('b', 16) + hex('c', 48);
    expect(ix.hasBlob(lookalike)).toBe(false);
    expect(ix.blobLocation(lookalike)).toBeUndefined();
    expect(ix.hasBlob(hex('b'))).toBe(true);
    expect(ix.blobLocation(hex('a'))).toEqual({ pack: hex('1'), offset: 512, length: 10 }); // near first
    expect(ix.blobHomes(hex('a')).sort()).toEqual([hex('1'), hex('2')]);
    expect(ix.blobHomes(hex('b')).sort()).toEqual([hex('2'), hex('3')]);
    expect(ix.countBlobs()).toBe(2);
    expect(ix.packContents(hex('2'))).toEqual({
      type: 'data',
      size: 8192,
      blobs: new Map([
        [hex('a'), { offset: 100, length: 10 }],
        [hex('b'), { offset: 200, length: 20 }],
      ]),
    });
    // Re-adding a known far pack without a form (a refill) changes nothing.
    ix.addPackIndex(pack(hex('2'), 'data', [[hex('a'), 100, 10]]));
    expect(ix.packContents(hex('2'))!.blobs.size).toBe(2);
    // The near pack goes: a's far copy takes over. Then pack 2 goes: b stays in 3, a is gone.
    ix.removePack(hex('1'));
    expect(ix.blobLocation(hex('a'))).toEqual({ pack: hex('2'), offset: 100, length: 10 });
    ix.removePack(hex('2'));
    expect(ix.hasBlob(hex('a'))).toBe(false);
    expect(ix.blobLocation(hex('b'))).toEqual({ pack: hex('3'), offset: 300, length: 20 });
    // A new far pack after a removal gets fresh rows (ranges never overlap rows of another pack).
    ix.addPackIndex(pack(hex('4'), 'data', [[hex('d'), 1, 2]], 'far'));
    expect(ix.packContents(hex('3'))!.blobs).toEqual(new Map([[hex('b'), { offset: 300, length: 20 }]]));
    expect(ix.packContents(hex('4'))!.blobs).toEqual(new Map([[hex('d'), { offset: 1, length: 2 }]]));
    ix.clear();
    expect(ix.packIds()).toEqual([]);
    expect(ix.hasBlob(hex('b'))).toBe(false);
  });

  it('a far tree pack has hints only: its trees count as absent until it is loaded as near', () => {
    const { db } = openParts();
    const ix = new BlobIndex(db);
    ix.addPackIndex(
      pack(
        hex('5'),
        'tree',
        [
          [hex('e'), 0, 10],
          [hex('f'), 10, 10],
        ],
        'far',
      ),
    );
    expect(ix.hasPack(hex('5'))).toBe(true);
    expect(ix.packIds()).toEqual([hex('5')]);
    expect(ix.hasBlob(hex('e'))).toBe(false);
    expect(ix.blobLocation(hex('e'))).toBeUndefined();
    expect(ix.blobHomes(hex('e'))).toEqual([]);
    expect(ix.packContents(hex('5'))).toBeUndefined();
    expect(ix.treePackHints(hex('f'))).toEqual([hex('5')]);
    expect(ix.treePackHints(hex('f', 16) + hex('0', 48))).toEqual([hex('5')]); // a hint, not proof
    expect(ix.treePackHints(hex('9'))).toEqual([]);
    // A hint must match at an 8-byte boundary: the tail of e's prefix and the head of f's are no match.
    expect(ix.treePackHints(hex('e', 8) + hex('f', 56))).toEqual([]);
    // A refill (no form) leaves it as it is; an import loads it as near.
    ix.addPackIndex(pack(hex('5'), 'tree', [[hex('e'), 0, 10]]));
    expect(ix.hasBlob(hex('e'))).toBe(false);
    ix.addPackIndex(
      pack(
        hex('5'),
        'tree',
        [
          [hex('e'), 0, 10],
          [hex('f'), 10, 10],
        ],
        'near',
      ),
    );
    expect(ix.blobLocation(hex('f'))).toEqual({ pack: hex('5'), offset: 10, length: 10 });
    expect(ix.treePackHints(hex('f'))).toEqual([]);
    ix.removePack(hex('5'));
    expect(ix.hasBlob(hex('e'))).toBe(false);
  });

  it('remote snapshot records are stored deflated and read back whole; rows of earlier releases still read', () => {
    const { db } = openParts();
    const remote = new RemoteSnapshots(db);
    const rec: StoredSnapshot = {
      v: 1,
      id: hex('7'),
      time: '2026-12-01T00:00:00.000Z',
      host: 'web2',
      username: 'root',
      paths: ['/srv'],
      tags: ['nightly'],
      excludes: [],
      tree: hex('8'),
      parent: null,
      summary: { files_total: 3 },
      program: 'snapfill test',
    };
    remote.add(rec);
    const old = { ...rec, id: hex('6'), host: 'web3', time: '2026-11-30T00:00:00.000Z' };
    db.st(`INSERT INTO remote_snapshots VALUES(?,?,?,?)`).run(old.id, old.host, old.time, JSON.stringify(old));
    expect(remote.records()).toEqual([old, rec]);
    expect(remote.records(new Set(['web2']))).toEqual([rec]);
    expect(remote.rows().map((r) => r.id)).toEqual([old.id, rec.id]);
  });
});
