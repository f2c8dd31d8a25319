import { createHmac } from 'node:crypto';
import type { BlobId } from './blobid.js';

/**
 * A keyed Bloom filter of a data pack's blob ids, carried in the name of the pack's index
 * (`index/<pack id>.<filter>`, docs/FORMAT.md; issue 15). A host learns from the listing alone
 * whether another host's new pack may hold a blob it is about to store, and reads that pack's
 * index only then: a routine sync reads none of them.
 *
 * Keyed: a bit's position comes from HMAC-SHA-256(filter key, blob id), the key derived from
 * the master key (pack/crypto.ts), so a listing of the bucket cannot be tested for a known
 * file's content. Only small packs get one: the whole name must fit one path component (255
 * bytes, also with the test S3 server's 22-byte suffixes), so a filter has at most MAX_BYTES;
 * a pack of more than MAX_BLOBS blobs (8 bits a blob at least, ~2% false hits) has none, and
 * its index is read by every sync as before. A false hit costs one read; a miss is impossible.
 *
 * Encoding: base64url of [k, bit bytes...]: k = bits set per blob (1..8), m = 8 x bit bytes.
 */
export const MAX_BYTES = 120;
/** Bit bytes (after the k byte) at most. */
const MAX_BITS_BYTES = MAX_BYTES - 1;
/** At least 8 bits (a byte) a blob: ~2% false hits at the most. */
export const MAX_BLOBS = MAX_BITS_BYTES;
/** Bits a blob a filter gets when it has room (k = 8: ~0.06% false hits). */
const BITS_PER_BLOB = 16;
const K_MAX = 8;

/** The positions a blob sets and tests: 32 bits of the HMAC each (k <= 8 uses at most all 32 bytes). */
export type BlobProbe = Uint32Array;

export function blobProbe(filterKey: Buffer, id: BlobId): BlobProbe {
  const mac = createHmac('sha256', filterKey).update(Buffer.from(id, 'hex')).digest();
  return new Uint32Array(mac.buffer, mac.byteOffset, 8).slice();
}

/** The filter of `ids`, base64url; null when there are too many for a name (see MAX_BLOBS). */
export function buildBlobFilter(filterKey: Buffer, ids: readonly BlobId[]): string | null {
  const n = ids.length;
  if (n === 0 || n > MAX_BLOBS) return null;
  const bytes = Math.min(MAX_BITS_BYTES, Math.max(8, Math.ceil((n * BITS_PER_BLOB) / 8)));
  const m = bytes * 8;
  const k = Math.max(1, Math.min(K_MAX, Math.round((m / n) * Math.LN2)));
  const out = Buffer.alloc(1 + bytes);
  out[0] = k;
  for (const id of ids) {
    const p = blobProbe(filterKey, id);
    for (let i = 0; i < k; i++) {
      const bit = p[i] % m;
      out[1 + (bit >>> 3)] |= 1 << (bit & 7);
    }
  }
  return out.toString('base64url');
}

/** A filter as read from a name: undefined when it is not one this build can read (then it says "maybe"). */
export function parseBlobFilter(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  const b = Buffer.from(text, 'base64url');
  if (b.length < 2 || b.length > MAX_BYTES || b[0] < 1 || b[0] > K_MAX) return undefined;
  return b;
}

/** Whether a pack with this filter may hold the probed blob (false: it certainly does not). */
export function filterMayHold(filter: Buffer, probe: BlobProbe): boolean {
  const k = filter[0];
  const m = (filter.length - 1) * 8;
  for (let i = 0; i < k; i++) {
    const bit = probe[i] % m;
    if ((filter[1 + (bit >>> 3)] & (1 << (bit & 7))) === 0) return false;
  }
  return true;
}
