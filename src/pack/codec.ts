import { inflateRawSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import type { BlobId } from './blobid.js';
import { freshNonce, SEAL_OVERHEAD, unseal } from './crypto.js';
import { deflateInto, NO_MEMORY, sealBlobInto } from './nativecodec.js';

/**
 * Stored blob encoding. A blob is stored either as its plain bytes or deflate-compressed
 * (raw deflate, RFC 1951). Its id is always the SHA-256 of the plain bytes, so the stored
 * form describes itself: bytes whose SHA-256 is the id are plain; otherwise they must inflate
 * to bytes whose SHA-256 is the id. Anything else is corruption. No index field is needed,
 * and packs written before compression existed stay readable.
 */

/** Inflated blobs are chunks of at most a few MiB: a larger output is a decompression bomb. */
const MAX_BLOB = 64 * 1024 * 1024;

export function openBlob(stored: Buffer, id: BlobId, key: Buffer | null = null): Buffer | null {
  if (key) {
    // Version 2, encrypted: the GCM tag authenticates the bytes AND the blob id (the AAD), so a
    // sealed blob moved to another id's place fails here too; then the id check below as ever.
    const encoded = unseal(key, stored, Buffer.from(id, 'hex'));
    if (encoded === null) return null;
    stored = encoded;
  }
  if (createHash('sha256').update(stored).digest('hex') === id) return stored;
  let plain: Buffer;
  try {
    plain = inflateRawSync(stored, { maxOutputLength: MAX_BLOB });
  } catch {
    return null;
  }
  return createHash('sha256').update(plain).digest('hex') === id ? plain : null;
}

/** A blob's stored form in an encrypted repository: its encoded bytes sealed, the blob id as AAD. */
export function sealBlob(key: Buffer, id: BlobId, encoded: Uint8Array): Buffer {
  // The native codec (no Cipher object per blob): the same bytes as crypto.ts seal with the id as AAD.
  const out = Buffer.allocUnsafeSlow(encoded.length + SEAL_OVERHEAD);
  sealBlobInto(key, freshNonce(), Buffer.from(id, 'hex'), encoded, out);
  return out;
}

/**
 * The encoded form (plain or deflated) of an authenticated blob: unsealed when `key` is set,
 * else the stored bytes themselves. For callers that verified the blob once and trust it since.
 */
export function unsealKnown(stored: Buffer, id: BlobId, key: Buffer | null): Buffer | null {
  return key ? unseal(key, stored, Buffer.from(id, 'hex')) : stored;
}

/** Inflates a blob already known to be compressed and valid (verified earlier). */
export function inflateKnown(stored: Buffer): Buffer {
  return inflateRawSync(stored, { maxOutputLength: MAX_BLOB });
}

/** Room for deflate's output kept between calls (per thread); a larger blob gets a buffer of its own. */
const SCRATCH_MAX = 4 << 20;
let scratch = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * The form to store: compressed when that saves at least 1/8, plain otherwise. Level 1 keeps
 * file content cheap; trees (small, very repetitive JSON) use a higher level (text such as PHP, HTML and mail shrinks 3-5x; media does not, and is kept plain).
 * The deflate is libdeflate's, through the native codec (issue 17: 2.4x faster than zlib's level
 * 1 on a hosting tree's small files, no stream object per blob); any raw inflate reads it.
 */
export function encodeForStore(plain: Buffer, level = 1): Buffer {
  if (plain.length < 256) return plain;
  // (issue 17) Media (jpg, png, archives) is a third of a hosting tree's bytes and mostly small
  // files: bytes that look uniformly random in a sample (order-0 entropy near 8 bits) cannot
  // shrink by 1/8 under deflate's Huffman coding unless long repeats exist, which such data
  // rarely has. A 1 KiB sample costs ~2 us; deflating an 8 KiB jpg ~100 us (measured).
  if (plain.length >= 8192 && looksRandom(plain)) return plain;
  // The largest deflated form worth keeping: deflate is given only that much room, and says when it does not fit.
  const room = plain.length - (plain.length >> 3);
  let out = scratch;
  if (out.length < room) {
    if (room > SCRATCH_MAX) out = Buffer.allocUnsafeSlow(room);
    else out = scratch = Buffer.allocUnsafeSlow(Math.max(room, scratch.length * 2));
  }
  // Probe a sample first: incompressible data (uploads, archives) is not worth a full pass.
  if (plain.length > 64 * 1024 && deflateOrPlain(plain.subarray(0, 16 * 1024), out.subarray(0, 15 * 1024), 1) < 0) return plain;
  // (Level 6 on small blobs was measured at 200k files: 1% smaller repository, 25% slower full snapshot.)
  const n = deflateOrPlain(plain, out.subarray(0, room), level);
  if (n < 0) return plain;
  // Its own allocation, exactly its size: it outlives the scratch (packs, transfers between threads).
  const owned = Buffer.allocUnsafeSlow(n);
  out.copy(owned, 0, 0, n);
  return owned;
}

/** deflateInto's length, or -1 when the deflated form does not fit (keep the plain bytes). */
function deflateOrPlain(plain: Uint8Array, out: Uint8Array, level: number): number {
  const n = deflateInto(plain, out, level);
  if (n === NO_MEMORY) throw new Error('out of memory while compressing a blob');
  return n < 0 ? -1 : n;
}

/** Sampled bytes per looksRandom() call: 4 slices spread over the blob. */
const SAMPLE_SLICE = 256;
const histogram = new Uint32Array(256);

/**
 * Whether a sample of `b` (1 KiB from four places) has an order-0 entropy above 7.2 bits per
 * byte. Text, code, mail and tree JSON stay far below (4-6 bits); compressed media and
 * ciphertext sit at 7.7-7.8 in a 1 KiB sample (its estimate of 8 bits is biased low).
 */
function looksRandom(b: Uint8Array): boolean {
  histogram.fill(0);
  const slice = Math.min(SAMPLE_SLICE, b.length >> 2);
  const step = Math.floor((b.length - slice) / 3);
  let n = 0;
  for (let k = 0; k < 4; k++) {
    const from = k * step;
    for (let i = from; i < from + slice; i++) histogram[b[i]]++;
    n += slice;
  }
  let h = 0;
  for (let i = 0; i < 256; i++) {
    const c = histogram[i];
    if (c) h -= c * Math.log2(c / n);
  }
  return h / n > 7.2;
}
