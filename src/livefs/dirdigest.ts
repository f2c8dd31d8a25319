import * as os from 'node:os';
import type { XXHash, XXHashAPI } from 'xxhash-wasm';
import { fpHex } from './fingerprint.js';

/** Tests compare the digest skip with the full compare on the same trees (test/untouched-dirs.test.ts). */
export const DIGEST_SKIP_OFF = process.env.SNAPFILL_TEST_NO_DIGEST_SKIP === '1';

/** The fields are little-endian u64: on such a host the scan's arrays hold those very bytes. */
const LITTLE_ENDIAN = os.endianness() === 'LE';
/** Stat fields per child in the digest input. */
const FIELDS = 10;
/** Digest input held before it is hashed: ~600 entries of 30-byte names. */
const DIGEST_BUFFER = 64 * 1024;

/** The bytes of a typed array. */
function bytesOf(a: BigUint64Array | BigInt64Array | Uint32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
/** A u32 field as a u64 LE (4 bytes, then 4 zero bytes). */
function copy4(to: Buffer, at: number, from: Uint8Array, off: number): void {
  to[at] = from[off];
  to[at + 1] = from[off + 1];
  to[at + 2] = from[off + 2];
  to[at + 3] = from[off + 3];
  to[at + 4] = to[at + 5] = to[at + 6] = to[at + 7] = 0;
}
function copy8(to: Buffer, at: number, from: Uint8Array, off: number): void {
  for (let k = 0; k < 8; k++) to[at + k] = from[off + k];
}

/**
 * The stat digest of a directory's children: xxh64 over, for each child in name order, its raw
 * name, a NUL and ten u64 LE fields (mode, uid, gid, size (files only, else 0), mtime ns,
 * ctime ns, ino, dev, nlink, rdev). The snapshot records it per tree (catalog `dirstate`) and
 * reuses a tree whose directory digests the same; a metadata repair skips a directory that
 * digests as the snapshot recorded it. ctime and inode are in it: a chmod, chown, write or swap
 * since changes it, and neither can be set back by a user.
 *
 * One buffer reused for every directory: `reset`, add the children, then `hex`. A directory
 * whose input outgrows the buffer is hashed as it goes (xxh64 streaming, the same digest):
 * a buffer grown to the widest directory stayed for the whole run, and so did the hasher's
 * wasm memory, grown to take it in one call (~27 MiB after a 100k-message mail folder, issue 17).
 */
export class DirDigest {
  private readonly buf = Buffer.allocUnsafe(DIGEST_BUFFER);
  private pos = 0;
  private hasher: XXHashAPI | null = null;
  /** The streaming hash of the bytes flushed out of `buf` (a directory wider than the buffer). */
  private stream: XXHash<bigint> | null = null;
  /** The arrays addScan last read, and their bytes (every entry of a listing reads the same ones). */
  private scanOf: [BigUint64Array, BigInt64Array, Uint32Array] | null = null;
  private scanBytes: { b64: Uint8Array; bi: Uint8Array; b32: Uint8Array } = {
    b64: new Uint8Array(0),
    bi: new Uint8Array(0),
    b32: new Uint8Array(0),
  };

  /** Starts a directory's digest, computed with `hasher`. */
  reset(hasher: XXHashAPI): void {
    this.pos = 0;
    this.hasher = hasher;
    this.stream = null;
  }

  /** The digest of what was added since `reset` (xxh64, 16 hex digits). */
  hex(): string {
    const rest = this.buf.subarray(0, this.pos);
    if (this.stream) return fpHex(this.stream.update(rest).digest());
    return fpHex(this.hasherOf().h64Raw(rest));
  }

  private hasherOf(): XXHashAPI {
    if (!this.hasher) throw new Error('DirDigest used before reset');
    return this.hasher;
  }

  /**
   * A child from the snapshot reader's listing: `stats` holds the ten fields per entry in the
   * digest's own order, so on a little-endian host they are copied as bytes (writing ten
   * BigInts per entry was ~4% of a no-change snapshot's main thread).
   */
  addFields(name: string, stats: BigUint64Array, i: number, isFile: boolean): void {
    const at = this.name(name);
    const b = this.buf;
    if (LITTLE_ENDIAN) b.set(new Uint8Array(stats.buffer, stats.byteOffset + i * FIELDS * 8, FIELDS * 8), at);
    else for (let k = 0; k < FIELDS; k++) b.writeBigUInt64LE(stats[i * FIELDS + k], at + k * 8);
    if (!isFile) b.fill(0, at + 3 * 8, at + 4 * 8);
    this.pos = at + FIELDS * 8;
  }

  /**
   * A child from a livefs DirScan's arrays (u64: ino dev size blocks -, i64: atime mtime ctime,
   * u32: mode uid gid nlink rdev; `i` its index): the same input as addFields for the same stat.
   * On a little-endian host the fields are copied as bytes: reading a BigInt per field allocated
   * one, and the garbage showed in a metadata pass's profile.
   */
  addScan(name: string, u64: BigUint64Array, i64: BigInt64Array, u32: Uint32Array, i: number, isFile: boolean): void {
    const at = this.name(name);
    const b = this.buf;
    const w = i * 5;
    const t = i * 3;
    if (!LITTLE_ENDIAN) {
      for (let k = 0; k < 3; k++) b.writeBigUInt64LE(BigInt(u32[w + k]), at + k * 8);
      b.writeBigUInt64LE(isFile ? u64[w + 2] : 0n, at + 24);
      b.writeBigInt64LE(i64[t + 1], at + 32);
      b.writeBigInt64LE(i64[t + 2], at + 40);
      b.writeBigUInt64LE(u64[w], at + 48);
      b.writeBigUInt64LE(u64[w + 1], at + 56);
      b.writeBigUInt64LE(BigInt(u32[w + 3]), at + 64);
      b.writeBigUInt64LE(BigInt(u32[w + 4]), at + 72);
    } else {
      const of = this.scanOf;
      if (of === null || of[0] !== u64 || of[1] !== i64 || of[2] !== u32) {
        this.scanOf = [u64, i64, u32];
        this.scanBytes = { b64: bytesOf(u64), bi: bytesOf(i64), b32: bytesOf(u32) };
      }
      const { b64, bi, b32 } = this.scanBytes;
      copy4(b, at, b32, w * 4);
      copy4(b, at + 8, b32, (w + 1) * 4);
      copy4(b, at + 16, b32, (w + 2) * 4);
      if (isFile) copy8(b, at + 24, b64, (w + 2) * 8);
      else b.fill(0, at + 24, at + 32);
      copy8(b, at + 32, bi, (t + 1) * 8);
      copy8(b, at + 40, bi, (t + 2) * 8);
      copy8(b, at + 48, b64, w * 8);
      copy8(b, at + 56, b64, (w + 1) * 8);
      copy4(b, at + 64, b32, (w + 3) * 4);
      copy4(b, at + 72, b32, (w + 4) * 4);
    }
    this.pos = at + FIELDS * 8;
  }

  /** Appends the name and its NUL (room made for the fields too); returns where the fields go. */
  private name(name: string): number {
    // An entry is at most 255 + 1 + 80 bytes: it always fits an emptied buffer.
    if (this.pos + name.length + 1 + FIELDS * 8 > this.buf.length) {
      this.stream ??= this.hasherOf().create64();
      this.stream.update(this.buf.subarray(0, this.pos));
      this.pos = 0;
    }
    let at = this.pos + this.buf.write(name, this.pos, 'latin1');
    this.buf[at++] = 0;
    return at;
  }
}

/** A live directory's entries as a livefs DirScan holds their stat fields (index i per entry). */
export interface ScannedStats {
  u64: BigUint64Array;
  i64: BigInt64Array;
  u32: Uint32Array;
  errs: Int32Array;
}

/** A directory listing the digest vouches for: its digest and its entries, in name order. */
export interface DigestedListing {
  digest: string;
  entries: { name: string; type: 'file' | 'dir' | 'symlink' }[];
}

const S_IFMT = 0o170000;
const KINDS: Record<number, 'file' | 'dir' | 'symlink'> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink' };

/**
 * The digest of a scanned live directory (`entries`: name and index into `st`, any order),
 * with its entries by type; null when it holds what a digest match must not vouch for: an
 * entry fstatat failed on (or that vanished), a file with several links (a hard-link group
 * spans directories), a FIFO, device or socket (rare; their checks stay with the full compare).
 */
export function digestListing(entries: [string, number][], st: ScannedStats, d: DirDigest, hasher: XXHashAPI): DigestedListing | null {
  entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: DigestedListing['entries'] = [];
  d.reset(hasher);
  for (const [name, i] of entries) {
    if (st.errs[i] !== 0) return null;
    const type = KINDS[st.u32[i * 5] & S_IFMT];
    if (type === undefined || (type === 'file' && st.u32[i * 5 + 3] > 1)) return null;
    d.addScan(name, st.u64, st.i64, st.u32, i, type === 'file');
    out.push({ name, type });
  }
  return { digest: d.hex(), entries: out };
}

/** Whether `listing` digests as `recorded` (undefined: none recorded for the directory). */
export function digestMatches(recorded: string | undefined, listing: DigestedListing | null): listing is DigestedListing {
  return listing !== null && listing.digest === recorded;
}
