import * as fs from 'node:fs';
import { packKey } from '../pack/format.js';
import { inflateKnown, unsealKnown } from '../pack/codec.js';
import { SEAL_OVERHEAD } from '../pack/crypto.js';
import { loadBlobsFromPackSync, type BlobKey } from '../repo/blobloader.js';
import type { ChunkRef } from './protocol.js';

/**
 * The direct strategy's content reads: a worker reads the pack files of a local repository
 * itself, through the one blob loader (decompress + verify). On top of it sits a per-id
 * "verified once" cache: shared content (the same WordPress core file in 500 accounts) is
 * hashed once per worker, later reads of it only inflate (measured: a large share of the
 * direct strategy's CPU on hosting trees).
 */
export class CorruptChunkError extends Error {}

const MAX_OPEN_PACKS = 64;
/** Bounded memory; a miss only costs a re-hash. */
const MAX_VERIFIED = 50000;
/**
 * Plain bytes of small verified blobs, kept per worker: on hosting trees the same few hundred
 * small files (a CMS's core) make up half of all files (measured at 200k files: 109k files share
 * 550 contents, 2.8 MB in all), and each read of them from the pack costs a read, an
 * authentication and an inflate. Bounded by bytes (measured: 16 MiB per worker cost 50 MiB of
 * peak RSS for 3% of the time); least recently used out first.
 */
const PLAIN_CACHE_BYTES = 4 << 20;
const PLAIN_CACHE_MAX_BLOB = 64 << 10;

export class LocalPacks {
  private readonly fds = new Map<string, number>();
  /** Verified blob ids: true when stored plain, false when stored compressed. */
  private readonly verified = new Map<string, boolean>();
  private buf = Buffer.allocUnsafe(1 << 20);
  private readonly plainCache = new Map<string, Buffer>();
  private plainCacheBytes = 0;

  constructor(
    private readonly repoDir: string,
    private readonly key: BlobKey,
  ) {}

  private packFd(pack: string): number {
    let fd = this.fds.get(pack);
    if (fd === undefined) {
      if (this.fds.size >= MAX_OPEN_PACKS) {
        const [k, v] = this.fds.entries().next().value as [string, number];
        this.fds.delete(k);
        fs.closeSync(v);
      }
      fd = fs.openSync(`${this.repoDir}/${packKey(pack)}`, 'r');
    } else this.fds.delete(pack); // re-inserted below: recently used packs stay at the end (LRU order)
    this.fds.set(pack, fd);
    return fd;
  }

  /** Reads a range into the reusable buffer: the view is valid until the next read. */
  private readRange(c: ChunkRef, offset: number, length: number): Buffer {
    if (this.buf.length < length) this.buf = Buffer.allocUnsafe(Math.max(length, this.buf.length * 2));
    const out = this.buf.subarray(0, length);
    const fd = this.packFd(c.pack);
    let got = 0;
    while (got < length) {
      const n = fs.readSync(fd, out, got, length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return out.subarray(0, got);
  }

  /** One chunk's plain bytes; the returned view is valid until the next call. */
  read(c: ChunkRef): Buffer {
    const cached = this.plainCache.get(c.id);
    if (cached) {
      // Re-inserted: recently used blobs stay at the end (LRU order).
      this.plainCache.delete(c.id);
      this.plainCache.set(c.id, cached);
      return cached;
    }
    // Kept from its second read on: most blobs are read once, and a copy of each would cost more than it saves.
    const again = this.verified.has(c.id);
    const plain = this.readUncached(c);
    if (again && plain.length <= PLAIN_CACHE_MAX_BLOB) this.remember(c.id, plain);
    return plain;
  }

  /** Keeps a copy (the plain bytes may be a view of the read buffer). */
  private remember(id: string, plain: Buffer): void {
    while (this.plainCache.size && this.plainCacheBytes + plain.length > PLAIN_CACHE_BYTES) {
      const [k, v] = this.plainCache.entries().next().value as [string, Buffer];
      this.plainCache.delete(k);
      this.plainCacheBytes -= v.length;
    }
    // Its own allocation: a copy from Node's shared pool would keep a whole pool slab alive.
    const copy = Buffer.allocUnsafeSlow(plain.length);
    plain.copy(copy);
    this.plainCache.set(id, copy);
    this.plainCacheBytes += plain.length;
  }

  private readUncached(c: ChunkRef): Buffer {
    const known = this.verified.get(c.id);
    if (known !== undefined) {
      const raw = this.readRange(c, c.offset, c.length);
      if (raw.length < c.length) throw new CorruptChunkError(`pack ${c.pack.slice(0, 12)} is truncated`);
      // Encrypted: every read is still authenticated (GCM, blob id as AAD); only the hash is skipped.
      const encoded = unsealKnown(raw, c.id, this.key);
      if (encoded === null)
        throw new CorruptChunkError(`content blob ${c.id.slice(0, 12)} in pack ${c.pack.slice(0, 12)} fails authentication`);
      return known ? encoded : inflateKnown(encoded);
    }
    const got = loadBlobsFromPackSync(
      (offset, length) => this.readRange(c, offset, length),
      [{ id: c.id, offset: c.offset, length: c.length }],
      this.key,
    );
    const plain = got.plain.get(c.id);
    if (!plain)
      throw new CorruptChunkError(`content blob ${c.id.slice(0, 12)} in pack ${c.pack.slice(0, 12)} ${got.bad.get(c.id) ?? 'is corrupt'}`);
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
    // Stored plain: the loader handed back a view of the read buffer itself; sealed, the plain
    // form is exactly the sealed bytes less nonce and tag (compression always saves >= 1/8).
    this.verified.set(c.id, this.key ? plain.length === c.length - SEAL_OVERHEAD : plain.buffer === this.buf.buffer);
    return plain;
  }
}
