import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { NATIVE_MISSING } from '../util/errors.js';
import { KEY_BYTES } from './crypto.js';

/**
 * The native fast path of codec.ts openBlob (native/blobcodec.c, issue 17): a stored blob to
 * its plain bytes in one call, into a buffer the caller owns, with the cipher, digest and
 * inflate states kept per thread. Same rules as openBlob: authenticated under the key with the
 * blob id as AAD, then plain bytes whose SHA-256 is the id, or raw deflate inflating to them.
 */

const ABI = 3;

interface CodecAddon {
  abi: number;
  open(key: Buffer, stored: Buffer, id: Buffer, out: Buffer, known: number, result: Int32Array): number;
  deflate(plain: Uint8Array, out: Uint8Array, level: number): number;
  sha256(data: Uint8Array, out: Buffer): number;
  seal(key: Buffer, nonce: Uint8Array, id: Buffer, encoded: Uint8Array, out: Buffer): number;
  romix(lane: Buffer, r: number, N: number): Promise<Buffer>;
}

let addon: CodecAddon | null = null;

function codec(): CodecAddon {
  if (addon) return addon;
  const dir = process.env.SNAPFILL_TEST_NATIVE_DIR; // tests only: see livefs/native.ts addonPath
  const file = dir ? `${dir}/blobcodec.node` : fileURLToPath(new URL('../../build/Release/blobcodec.node', import.meta.url));
  let a: CodecAddon;
  try {
    a = createRequire(import.meta.url)(file) as CodecAddon;
  } catch {
    throw new Error(NATIVE_MISSING);
  }
  if (a.abi !== ABI) throw new Error(`${NATIVE_MISSING}: the built addon is stale`);
  addon = a;
  return addon;
}

/** What a caller knows of a blob it verified before (its hash is then skipped; GCM still authenticates). */
export const Known = { Unknown: 0, Plain: 1, Deflated: 2 } as const;
export type Known = (typeof Known)[keyof typeof Known];

/** Why a blob could not be opened (a negative result of openBlobInto). */
export const NOT_AUTHENTIC = -1;
export const CORRUPT = -2;
/** `out` is too short for the plain bytes: grow it and call again. */
export const TOO_SMALL = -3;
export const NO_MEMORY = -4;

const NO_KEY = Buffer.alloc(0);

/**
 * Opens `stored` (blob `id`, 32 raw bytes) into `out`: the plain length, or a negative code
 * above. `result[1]` is 1 when the blob was stored deflated. `key`: the data key, or null for
 * a repository stored unsealed.
 */
export function openBlobInto(key: Buffer | null, stored: Buffer, id: Buffer, out: Buffer, known: Known, result: Int32Array): number {
  if (key && key.length !== KEY_BYTES) throw new RangeError('openBlobInto: key must be 32 bytes');
  return codec().open(key ?? NO_KEY, stored, id, out, known, result);
}

/**
 * Raw deflate of `plain` into `out` at `level` (1-12, libdeflate's): the length written, or
 * TOO_SMALL when the deflated form does not fit in `out` (so a caller that passes only as much
 * room as a form worth keeping learns at once that plain is better), or NO_MEMORY.
 */
export function deflateInto(plain: Uint8Array, out: Uint8Array, level: number): number {
  return codec().deflate(plain, out, level);
}

const idBytes = Buffer.alloc(32);

/**
 * blobIdOf's result (the SHA-256 of `data`, hex) in one call, without a Hash object per blob:
 * for the snapshot's readers, which identify every file they read.
 */
export function blobIdNative(data: Uint8Array): string {
  if (codec().sha256(data, idBytes) !== 0) throw new Error('out of memory while hashing a blob');
  return idBytes.toString('hex');
}

/**
 * Seals `encoded` into `out` (exactly its length + SEAL_OVERHEAD) in crypto.ts seal's layout, with
 * the blob id as AAD: the nonce is the caller's, fresh from crypto.ts freshNonce.
 */
export function sealBlobInto(key: Buffer, nonce: Uint8Array, id: Buffer, encoded: Uint8Array, out: Buffer): void {
  if (codec().seal(key, nonce, id, encoded, out) !== 0) throw new Error('could not seal a blob (out of memory)');
}

/**
 * One lane of scrypt (scryptROMix of RFC 7914, native/romix.c) on libuv's thread pool: the lane
 * (128 * r bytes) after ROMix, in a new Buffer. For pack/scrypt.ts, which runs the lanes in parallel.
 */
export function romixLane(lane: Buffer, r: number, N: number): Promise<Buffer> {
  return codec().romix(lane, r, N);
}

/** Loads the addon now (a worker's start-up): a missing build is one clear error before any work. */
export function loadBlobCodec(): void {
  codec();
}
