import { describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { tmpDir, TEST_INIT } from '../helpers.js';
import { LocalStore } from '../../src/store/local.js';
import { Repository, BlobCorruptError } from '../../src/repo/repository.js';
import { PackCache } from '../../src/repo/packcache.js';
import {
  BLOB_BEYOND_END,
  BLOB_CORRUPT,
  COALESCE_GAP,
  bufferReader,
  loadBlobsFromPack,
  loadBlobsFromPackSync,
  loadStoredBlobsSync,
  type BlobRef,
} from '../../src/repo/blobloader.js';
import { blobIdOf } from '../../src/pack/blobid.js';
import { encodeForStore } from '../../src/pack/codec.js';
import { SEAL_OVERHEAD } from '../../src/pack/crypto.js';
import type { PackIndex } from '../../src/pack/format.js';

/**
 * The one blob loader on a real local repository: packs written by Repository/PackWriter,
 * read back through the store (async) and by pread on the pack file (sync, as worker threads do).
 */
interface Written {
  repo: Repository;
  index: PackIndex;
  plain: Map<string, Buffer>;
  ref: (id: string) => BlobRef;
  file: string;
}

/** One data pack holding the given plain blobs, each stored as encodeForStore chooses. */
async function writePack(blobs: Buffer[]): Promise<Written> {
  const repo = await Repository.init(new LocalStore(path.join(tmpDir('snapfill-blobloader-'), 'repo')), TEST_INIT);
  const w = repo.newPackWriter('data');
  const plain = new Map<string, Buffer>();
  for (const b of blobs) {
    const id = blobIdOf(b);
    plain.set(id, b);
    w.add(id, encodeForStore(b));
  }
  const index = await repo.savePack(w);
  const ref = (id: string) => {
    const b = index.blobs.find((x) => x.id === id)!;
    return { id, offset: b.offset, length: b.length };
  };
  return { repo, index, plain, ref, file: repo.localPackPath(index.pack)! };
}

/** pread on the pack file, returning fewer bytes at its end (as the restore worker reads). */
function preadReader(file: string): { read: (offset: number, length: number) => Buffer; close: () => void } {
  const fd = fs.openSync(file, 'r');
  return {
    read: (offset, length) => {
      const buf = Buffer.alloc(length);
      const n = fs.readSync(fd, buf, 0, length, offset);
      return buf.subarray(0, n);
    },
    close: () => fs.closeSync(fd),
  };
}

function flipByte(file: string, at: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0x40;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
}

const text = (n: number, seed: string) => Buffer.from(`${seed}: the same line again and again\n`.repeat(n));

describe('blob loader', () => {
  it('reads neighbouring blobs in one range and verifies plain and compressed blobs', async () => {
    const blobs = [randomBytes(3000), text(400, 'a'), randomBytes(5000), text(300, 'b')];
    const p = await writePack(blobs);
    const ids = [...p.plain.keys()];
    // The text blobs really are stored compressed, the random ones plain (each sealed: + nonce and tag).
    expect(p.ref(ids[1]).length).toBeLessThan(blobs[1].length);
    expect(p.ref(ids[0]).length).toBe(blobs[0].length + SEAL_OVERHEAD);

    const calls: [number, number][] = [];
    const read = p.repo.packRangeReader(p.index.pack);
    const counting = (offset: number, length: number) => {
      calls.push([offset, length]);
      return read(offset, length);
    };
    // Every blob, one of them asked for twice: one read covering all, each blob once.
    const loaded = await loadBlobsFromPack(counting, [...ids.map(p.ref), p.ref(ids[2])], p.repo.blobKey());
    expect(calls).toHaveLength(1);
    expect(loaded.bad.size).toBe(0);
    expect(loaded.plain.size).toBe(4);
    for (const [id, bytes] of p.plain) expect(loaded.plain.get(id)!.equals(bytes)).toBe(true);

    // Without coalescing, one read per blob.
    calls.length = 0;
    const apart = await loadBlobsFromPack(counting, ids.map(p.ref), p.repo.blobKey(), -1);
    expect(calls).toHaveLength(4);
    expect(apart.plain.size).toBe(4);
  });

  it('reads blobs farther apart than the coalescing gap in separate ranges', async () => {
    const far = randomBytes(COALESCE_GAP + 64 * 1024);
    const p = await writePack([text(50, 'first'), far, text(60, 'last')]);
    const [first, , last] = [...p.plain.keys()];
    const calls: number[] = [];
    const read = p.repo.packRangeReader(p.index.pack);
    const loaded = await loadBlobsFromPack(
      (o, l) => {
        calls.push(l);
        return read(o, l);
      },
      [p.ref(last), p.ref(first)],
      p.repo.blobKey(),
    );
    expect(calls).toHaveLength(2);
    expect(calls.every((l) => l < 4096)).toBe(true); // the big blob between them was not read
    expect(loaded.plain.get(first)!.equals(p.plain.get(first)!)).toBe(true);
    expect(loaded.plain.get(last)!.equals(p.plain.get(last)!)).toBe(true);
  });

  it('a flipped byte makes that blob bad, never returned; its neighbours still load', async () => {
    const blobs = [randomBytes(2000), text(500, 'zipped'), randomBytes(2000)];
    const p = await writePack(blobs);
    const [a, z, c] = [...p.plain.keys()];
    flipByte(p.file, p.ref(a).offset + 10);
    // Inside a deflate stream a flip may not change the output: damage several bytes.
    for (let k = 1; k <= 6; k++) flipByte(p.file, p.ref(z).offset + Math.floor((p.ref(z).length * k) / 7));
    const loaded = await loadBlobsFromPack(p.repo.packRangeReader(p.index.pack), [a, z, c].map(p.ref), p.repo.blobKey());
    expect(loaded.bad.get(a)).toBe(BLOB_CORRUPT);
    expect(loaded.bad.get(z)).toBe(BLOB_CORRUPT);
    expect([...loaded.plain.keys()]).toEqual([c]);
    // The one-blob readers built on it throw instead.
    await expect(p.repo.readBlob(p.index.pack, p.ref(a).offset, p.ref(a).length, a)).rejects.toBeInstanceOf(BlobCorruptError);
    await expect(new PackCache(p.repo).readBlob(p.index.pack, p.ref(z).offset, p.ref(z).length, z)).rejects.toThrow(/is corrupt/);
    expect((await p.repo.readBlob(p.index.pack, p.ref(c).offset, p.ref(c).length, c)).equals(blobs[2])).toBe(true);
  });

  it('a blob beyond the end of its pack is bad', async () => {
    const p = await writePack([randomBytes(4000), text(100, 'tail')]);
    const [a, t] = [...p.plain.keys()];
    const size = fs.statSync(p.file).size;
    const past: BlobRef = { id: t, offset: size - 100, length: 4000 };
    const r = preadReader(p.file);
    try {
      const loaded = loadBlobsFromPackSync(r.read, [p.ref(a), past], p.repo.blobKey());
      expect(loaded.bad.get(t)).toBe(BLOB_BEYOND_END);
      expect(loaded.plain.get(a)!.equals(p.plain.get(a)!)).toBe(true);
    } finally {
      r.close();
    }
    // A whole cached pack behaves the same: the loader, not the reader, decides.
    fs.truncateSync(p.file, p.ref(t).offset + 5);
    const cache = new PackCache(p.repo);
    await expect(cache.readBlob(p.index.pack, p.ref(t).offset, p.ref(t).length, t)).rejects.toThrow(/lies beyond the end of pack/);
  });

  it('the sync variant reads local pack files with the same result', async () => {
    const p = await writePack([text(200, 'one'), randomBytes(7000), text(900, 'three')]);
    const refs = [...p.plain.keys()].map(p.ref);
    const r = preadReader(p.file);
    const calls: number[] = [];
    try {
      const loaded = loadBlobsFromPackSync(
        (o, l) => {
          calls.push(l);
          return r.read(o, l);
        },
        refs,
        p.repo.blobKey(),
      );
      expect(calls).toHaveLength(1);
      expect(loaded.bad.size).toBe(0);
      for (const [id, bytes] of p.plain) expect(loaded.plain.get(id)!.equals(bytes)).toBe(true);
    } finally {
      r.close();
    }
    // The stored form (what a repack copies) is verified too, and is exactly the pack's bytes.
    const pack = await p.repo.readPack(p.index.pack);
    const stored = loadStoredBlobsSync(bufferReader(pack), refs, p.repo.blobKey(), Infinity);
    for (const ref of refs) expect(stored.plain.get(ref.id)!.equals(pack.subarray(ref.offset, ref.offset + ref.length))).toBe(true);
  });
});
