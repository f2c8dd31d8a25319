import * as fs from 'node:fs';
import { packKey } from '../pack/format.js';
import { Known, loadBlobCodec, NO_MEMORY, NOT_AUTHENTIC, openBlobInto, TOO_SMALL } from '../pack/nativecodec.js';
import type { BlobKey } from '../repo/blobloader.js';
import type { ChunkRef } from './protocol.js';

/**
 * The direct strategy's content reads: a worker reads the pack files of a local repository
 * itself, each blob opened by the native codec (pack/nativecodec.ts: authenticate, inflate, verify; the
 * same rules as the blob loader codec.ts openBlob, in one call). On top of it sits a per-id
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
/** Read-ahead through a pack while reads are sequential: from 64 KiB, doubling, up to 512 KiB. */
const READ_AHEAD_MIN = 64 << 10;
const READ_AHEAD_MAX = 512 << 10;
/** A read this close after the last one still counts as sequential (tar headers sit between segments). */
const SEQUENTIAL_GAP = 4096;
const PLAIN_CACHE_MAX_BLOB = 64 << 10;
/** A blob inflating to more than this is a decompression bomb (as codec.ts openBlob's limit). */
const MAX_BLOB = 64 << 20;

export class LocalPacks {
  private readonly fds = new Map<string, number>();
  /** Verified blob ids: true when stored plain, false when stored compressed. */
  private readonly verified = new Map<string, boolean>();
  private buf = Buffer.allocUnsafe(1 << 20);
  /** What `buf` holds: bytes [winStart, winStart + winLen) of pack winPack (see readRange). */
  private winPack = '';
  private winStart = 0;
  private winLen = 0;
  /** Where the last read ended, and the read-ahead it earned. */
  private lastEnd = -1;
  private ahead = 0;
  private readonly plainCache = new Map<string, Buffer>();
  private plainCacheBytes = 0;
  /** The last blob's plain bytes (read() hands out a view of it, valid until the next call). */
  private plain = Buffer.allocUnsafeSlow(1 << 20);
  private readonly idBuf = Buffer.alloc(32);
  private readonly result = new Int32Array(2);

  constructor(
    private readonly repoDir: string,
    private readonly key: BlobKey,
  ) {
    loadBlobCodec(); // a missing build fails the worker's start, not its first file
  }

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

  /**
   * Reads a range into the reusable buffer: the view is valid until the next read. Reads that
   * follow each other through a pack (a directory's files were stored together) read ahead,
   * so the next blobs come from the buffer without a syscall (issue 17: one pread per blob was
   * 2.1 s of each worker's 16 s in a 200k-file full restore). The window grows while reads stay
   * sequential and is dropped at the first jump: a scattered read costs what it did.
   */
  private readRange(c: ChunkRef, offset: number, length: number): Buffer {
    const at = offset - this.winStart;
    const hit = c.pack === this.winPack && at >= 0 && at + length <= this.winLen;
    const sequential = c.pack === this.winPack && offset >= this.lastEnd && offset - this.lastEnd <= SEQUENTIAL_GAP;
    this.lastEnd = offset + length;
    if (hit) return this.buf.subarray(at, at + length);
    this.ahead = sequential ? Math.min(READ_AHEAD_MAX, Math.max(READ_AHEAD_MIN, this.ahead * 2)) : 0;
    const want = length + this.ahead;
    if (this.buf.length < want) this.buf = Buffer.allocUnsafe(Math.max(want, this.buf.length * 2));
    const fd = this.packFd(c.pack);
    let got = 0;
    while (got < want) {
      const n = fs.readSync(fd, this.buf, got, want - got, offset + got);
      if (n === 0) break; // the end of the pack: read-ahead stops there; a short blob is the caller's error
      got += n;
    }
    this.winPack = c.pack;
    this.winStart = offset;
    this.winLen = got;
    return this.buf.subarray(0, Math.min(got, length));
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

  /**
   * One chunk's plain bytes written straight into `dest` (at most `dest.length`), without a copy
   * through the codec's own buffer: their length, or -1 when they would not fit (then read() them).
   */
  readInto(c: ChunkRef, dest: Buffer): number {
    const cached = this.plainCache.get(c.id);
    if (cached) {
      if (cached.length > dest.length) return -1;
      this.plainCache.delete(c.id);
      this.plainCache.set(c.id, cached);
      return cached.copy(dest, 0);
    }
    const again = this.verified.has(c.id);
    const n = this.open(c, dest);
    if (n === TOO_SMALL) return -1;
    if (again && n <= PLAIN_CACHE_MAX_BLOB) this.remember(c.id, dest.subarray(0, n));
    return n;
  }

  /**
   * One blob opened by the native codec into `plain` (grown as needed up to MAX_BLOB): one call,
   * no Decipher, Hash or Zlib object and no intermediate Buffer per blob (issue 17).
   */
  private readUncached(c: ChunkRef): Buffer {
    let n = this.open(c, this.plain);
    while (n === TOO_SMALL && this.plain.length < MAX_BLOB) {
      this.plain = Buffer.allocUnsafeSlow(Math.min(MAX_BLOB, this.plain.length * 4));
      n = this.open(c, this.plain);
    }
    if (n === TOO_SMALL) throw new CorruptChunkError(`content blob ${c.id.slice(0, 12)} in pack ${c.pack.slice(0, 12)} is corrupt`);
    return this.plain.subarray(0, n);
  }

  /**
   * Opens one blob into `out`: its plain length, or TOO_SMALL when it does not fit; any other
   * failure throws. A blob verified before is only authenticated (encrypted) and inflated, its
   * hash skipped.
   */
  private open(c: ChunkRef, out: Buffer): number {
    const known = this.verified.get(c.id);
    const raw = this.readRange(c, c.offset, c.length);
    if (raw.length < c.length) throw new CorruptChunkError(`pack ${c.pack.slice(0, 12)} is truncated`);
    this.idBuf.write(c.id, 'hex');
    const mode = known === undefined ? Known.Unknown : known ? Known.Plain : Known.Deflated;
    const n = openBlobInto(this.key, raw, this.idBuf, out, mode, this.result);
    if (n === TOO_SMALL) return n;
    if (n < 0) {
      const why = n === NOT_AUTHENTIC ? 'fails authentication' : n === NO_MEMORY ? 'could not be opened (out of memory)' : 'is corrupt';
      throw new CorruptChunkError(`content blob ${c.id.slice(0, 12)} in pack ${c.pack.slice(0, 12)} ${why}`);
    }
    if (known === undefined) {
      if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
      this.verified.set(c.id, this.result[1] === 0);
    }
    return n;
  }
}
