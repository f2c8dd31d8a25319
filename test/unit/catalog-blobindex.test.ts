import { describe, expect, it } from 'vitest';
import { BlobIndex } from '../../src/catalog/blobindex.js';
import type { PackIndex } from '../../src/pack/format.js';
import { hex, openParts } from './catalog-fixture.js';

const pack = (id: string, blobs: [string, number, number][]): PackIndex => ({
  v: 1,
  pack: id,
  type: 'data',
  size: 8192,
  blobs: blobs.map(([b, offset, length]) => ({ id: b, offset, length })),
});

describe('catalog blob index', () => {
  it('locates blobs; a copy in a second pack takes over when the first pack goes', () => {
    const { db } = openParts();
    const ix = new BlobIndex(db);
    ix.addPackIndex(
      pack(hex('1'), [
        [hex('a'), 512, 10],
        [hex('b'), 1024, 20],
      ]),
    );
    ix.addPackIndex(
      pack(hex('2'), [
        [hex('b'), 512, 20],
        [hex('c'), 1536, 30],
      ]),
    );
    ix.addPackIndex(
      pack(hex('2'), [
        [hex('b'), 512, 20],
        [hex('c'), 1536, 30],
      ]),
    ); // twice: no change
    expect(ix.packIds().sort()).toEqual([hex('1'), hex('2')]);
    expect(ix.countBlobs()).toBe(3);
    expect(ix.hasBlob(hex('a'))).toBe(true);
    expect(ix.hasPack(hex('3'))).toBe(false);
    expect(ix.blobLocation(hex('b'))).toEqual({ pack: hex('1'), offset: 1024, length: 20 });
    // packContents lists every blob the pack holds, also those whose first copy is elsewhere.
    expect([...ix.packContents(hex('2'))!.blobs.keys()].sort()).toEqual([hex('b'), hex('c')]);
    expect(ix.packContents(hex('3'))).toBeUndefined();
    ix.removePack(hex('1'));
    expect(ix.hasBlob(hex('a'))).toBe(false);
    expect(ix.blobLocation(hex('b'))).toEqual({ pack: hex('2'), offset: 512, length: 20 });
    expect(ix.countBlobs()).toBe(2);
    ix.removePack(hex('1')); // unknown by now: nothing happens
    ix.clear();
    expect(ix.packIds()).toEqual([]);
    expect(ix.countBlobs()).toBe(0);
    db.close();
  });
});
