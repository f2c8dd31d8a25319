import { hkdf } from './crypto.js';

/**
 * Content-defined chunking (FastCDC: Xia et al., USENIX ATC 2016) for files above the
 * repository's chunking threshold. A cut is placed where a gear rolling hash of the last 32
 * bytes matches a mask, so an insertion near the start of a file (a row added to a database
 * dump) moves the cut points near it only: later chunks keep their bytes, hence their ids,
 * and deduplicate against the previous snapshot.
 *
 * The gear hash: h = (h << 1) + G[byte], 32-bit. Bit k of h depends on the last k+1 bytes, so
 * the masks take the high bits (a full 32-byte window). Normalized chunking: between `min`
 * and `avg` bytes the mask has 2 more bits than log2(avg) (a cut is 4x less likely), after
 * `avg` 2 fewer (4x more likely), which keeps chunk sizes close to `avg`; `max` forces a cut.
 * Hashing starts 32 bytes before `min` (no cut can fall earlier), so a cut depends only on the
 * 32 bytes before it and the distance to the previous cut; the bytes in between are skipped.
 *
 * G, 256 32-bit words, comes from a per-repository secret seed (HKDF-SHA256, docs/FORMAT.md):
 * with a public table, the cut points of a stored file would fingerprint its content (the
 * sizes of the chunks of a known file are visible to whoever sees pack sizes).
 */

export interface ChunkerParams {
  /** No chunk is shorter, except the last of a file. */
  min: number;
  /** Target mean size; a power of two. */
  avg: number;
  /** No chunk is longer. */
  max: number;
}

/** The repository config's record of the chunker a version-2 repository cuts files with. */
export interface ChunkerConfig extends ChunkerParams {
  type: 'fastcdc';
  /** Files of at most this many bytes are stored as one blob each (never cut). */
  threshold: number;
}

/**
 * The defaults, measured on the dump bench (BENCHMARKS.md, "Dedup of shifting data", 500 MB x
 * 21 days): an edited row costs one chunk, and mysqldump re-cuts its ~1 MB INSERT statements
 * after a deleted row, so every statement boundary after it changes and dirties one chunk.
 * Repository after 21 dumps, against fixed 8 MiB chunks: 512 KiB mean chunks 0.36x, 256 KiB
 * 0.22x (the target is <= 0.3x; 1 MiB ones only matched restic in the quick run).
 * Per-chunk costs stay small: a 500 MB file is ~1700 chunks, ~72 bytes each in its tree entry
 * and one row each in the catalog and the pack index.
 */
export const DEFAULT_CHUNKER: ChunkerConfig = {
  type: 'fastcdc',
  min: 128 * 1024,
  avg: 256 * 1024,
  max: 8 * 1024 * 1024,
  threshold: 1024 * 1024,
};

/** The HKDF `info` of the gear table (docs/FORMAT.md). */
export const GEAR_INFO = 'snapfill fastcdc gear';

/** Bytes of history the gear hash sees (its width in bits). */
const WINDOW = 32;

/** The 256-entry gear table for a seed: HKDF-SHA256(seed, salt "", info GEAR_INFO), 1024 bytes, little-endian words. */
export function gearTable(seed: Uint8Array): Uint32Array {
  if (seed.length < 16) throw new Error('chunker seed must be at least 16 bytes');
  const raw = hkdf(seed, '', GEAR_INFO, 1024);
  const g = new Uint32Array(256);
  for (let i = 0; i < 256; i++) g[i] = raw.readUInt32LE(i * 4);
  return g;
}

/** Checks parameters the way a repository config is checked: one clear message. */
export function validateChunker(c: Partial<ChunkerConfig>): ChunkerConfig {
  const { type, min, avg, max, threshold } = c;
  const int = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
  if (type !== 'fastcdc') throw new Error(`unknown chunker type ${JSON.stringify(type)}`);
  if (!int(min) || !int(avg) || !int(max) || !int(threshold))
    throw new Error('chunker min, avg, max and threshold must be positive integers');
  if ((avg! & (avg! - 1)) !== 0 || avg! < 256 || avg! > 2 ** 28)
    throw new Error('chunker avg must be a power of two between 256 B and 256 MiB');
  if (!(WINDOW <= min! && min! <= avg! && avg! <= max!)) throw new Error('chunker sizes must satisfy 32 <= min <= avg <= max');
  if (max! > 64 * 1024 * 1024) throw new Error('chunker max must be at most 64 MiB');
  // Files up to the threshold are read whole into memory by the snapshot's reader threads.
  if (threshold! > 64 * 1024 * 1024) throw new Error('chunker threshold must be at most 64 MiB');
  return { type: 'fastcdc', min: min!, avg: avg!, max: max!, threshold: threshold! };
}

/** A mask of the `bits` high bits of a 32-bit word. */
function highMask(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff | 0 : (0xffffffff << (32 - bits)) | 0;
}

/**
 * The streaming chunker: push() the bytes of a file in any pieces, get back where chunks end;
 * state carries across pushes, so the cut points do not depend on how the file was read.
 * No allocation per byte or per push (the returned array is reused: copy what you keep).
 */
export class Chunker {
  private readonly maskS: number;
  private readonly maskL: number;
  private readonly min: number;
  private readonly avg: number;
  private readonly max: number;
  /** Bytes of the current (unfinished) chunk seen so far. */
  private len = 0;
  private h = 0;
  private readonly cuts: number[] = [];

  constructor(
    private readonly gear: Uint32Array,
    p: ChunkerParams,
  ) {
    this.min = p.min;
    this.avg = p.avg;
    this.max = p.max;
    const bits = Math.round(Math.log2(p.avg));
    this.maskS = highMask(bits + 2);
    this.maskL = highMask(bits - 2);
  }

  /** Bytes of the chunk in progress (not yet cut). */
  get pending(): number {
    return this.len;
  }

  /**
   * Scans `data` as the next bytes of the stream. Returns the offsets inside `data` just past
   * each chunk that ends in it, ascending (valid until the next call).
   */
  push(data: Uint8Array): readonly number[] {
    const cuts = this.cuts;
    cuts.length = 0;
    const n = data.length;
    let pos = 0;
    while (pos < n) {
      const end = this.scan(data, pos, n);
      if (end < 0) break;
      cuts.push(end);
      pos = end;
    }
    return cuts;
  }

  /** Ends the stream: true when bytes remain that form the last chunk. Resets for the next file. */
  finish(): boolean {
    const had = this.len > 0;
    this.len = 0;
    this.h = 0;
    return had;
  }

  /**
   * Continues the current chunk over data[from, to): the offset just past its end when it
   * ends there (state reset for the next chunk), or -1 with the state carried over.
   */
  private scan(data: Uint8Array, from: number, to: number): number {
    const G = this.gear;
    const len0 = this.len;
    const avail = to - from;
    // Stream positions (relative to the chunk start) where each phase ends.
    const warm = this.min - WINDOW; // hashing starts here
    let i = len0;
    const stop = Math.min(len0 + avail, this.max);
    const base = from - len0; // data index = base + chunk position
    let h = this.h;
    if (i < warm) {
      if (stop <= warm) {
        this.len = stop;
        return stop === this.max ? this.cut(base + stop) : -1;
      }
      i = warm;
      h = 0;
    }
    // Warm-up: no cut before min.
    const e0 = Math.min(stop, this.min);
    for (; i < e0; i++) h = ((h << 1) + G[data[base + i]]) | 0;
    // Before avg: the stricter mask.
    const ms = this.maskS;
    const e1 = Math.min(stop, this.avg);
    for (; i < e1; i++) {
      h = ((h << 1) + G[data[base + i]]) | 0;
      if ((h & ms) === 0) return this.cut(base + i + 1);
    }
    // After avg: the looser mask.
    const ml = this.maskL;
    for (; i < stop; i++) {
      h = ((h << 1) + G[data[base + i]]) | 0;
      if ((h & ml) === 0) return this.cut(base + i + 1);
    }
    if (stop === this.max) return this.cut(base + stop);
    this.len = stop;
    this.h = h;
    return -1;
  }

  private cut(at: number): number {
    this.len = 0;
    this.h = 0;
    return at;
  }
}

/** Cut offsets (chunk ends) of one whole buffer, the last chunk's end included: for tests and tools. */
export function chunkBuffer(gear: Uint32Array, p: ChunkerParams, data: Uint8Array): number[] {
  const c = new Chunker(gear, p);
  const out = [...c.push(data)];
  if (c.finish()) out.push(data.length);
  return out;
}
