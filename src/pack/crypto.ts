import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

/**
 * Authenticated encryption of repository objects and blobs (format version 2): AES-256-GCM
 * from node:crypto (AES-NI), a fresh random 12-byte nonce per sealed item. A sealed item is
 *
 *   nonce (12 bytes) || ciphertext (same length as the plaintext) || GCM tag (16 bytes)
 *
 * so it is exactly SEAL_OVERHEAD bytes longer than its plaintext. A failed open (wrong key,
 * any changed byte, truncation) returns null: callers report it, they never see the bytes.
 */
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;
export const KEY_BYTES = 32;

/**
 * Nonces come from the CSPRNG in blocks: one randomBytes call per blob cost ~10 us of the
 * snapshot's main thread (200k blobs: 2 s, measured). Each 12-byte slice of a block is handed
 * out once and never again (the block is dropped once used up), so every nonce is still fresh
 * random bytes, as the format requires.
 */
const NONCE_BLOCK = NONCE_BYTES * 4096;
let nonces = Buffer.alloc(0);
let nonceAt = 0;

export function freshNonce(): Buffer {
  if (nonceAt + NONCE_BYTES > nonces.length) {
    nonces = randomBytes(NONCE_BLOCK);
    nonceAt = 0;
  }
  const n = nonces.subarray(nonceAt, nonceAt + NONCE_BYTES);
  nonceAt += NONCE_BYTES;
  return n;
}

/**
 * Seals `plain` with `key`; `aad` (authenticated, not stored) binds the item to its identity.
 * (Blobs are sealed by the native codec, nativecodec.ts sealBlobInto: the same layout.)
 */
export function seal(key: Buffer, plain: Uint8Array, aad?: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(plain.length + SEAL_OVERHEAD);
  const nonce = freshNonce();
  nonce.copy(out, 0);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) c.setAAD(aad);
  let pos = NONCE_BYTES;
  pos += c.update(plain).copy(out, pos);
  pos += c.final().copy(out, pos);
  c.getAuthTag().copy(out, pos);
  return out;
}

/** The plaintext of a sealed item, or null when it does not authenticate under `key` (and `aad`). */
export function unseal(key: Buffer, sealed: Uint8Array, aad?: Uint8Array): Buffer | null {
  if (sealed.length < SEAL_OVERHEAD) return null;
  const s = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  try {
    const d = createDecipheriv('aes-256-gcm', key, s.subarray(0, NONCE_BYTES));
    d.setAuthTag(s.subarray(s.length - TAG_BYTES));
    if (aad) d.setAAD(aad);
    const body = d.update(s.subarray(NONCE_BYTES, s.length - TAG_BYTES));
    return Buffer.concat([body, d.final()]);
  } catch {
    return null;
  }
}

/** HKDF-SHA256 (RFC 5869). */
export function hkdf(ikm: Uint8Array, salt: Uint8Array | string, info: string, length = KEY_BYTES): Buffer {
  return Buffer.from(
    hkdfSync('sha256', ikm, typeof salt === 'string' ? Buffer.from(salt, 'utf8') : salt, Buffer.from(info, 'utf8'), length),
  );
}

/** The HKDF `info` strings of the keys derived from a repository's master key (docs/FORMAT.md). */
export const INFO_DATA_KEY = 'snapfill data key';
export const INFO_CHUNKER_SEED = 'snapfill chunker seed';
export const INFO_HOST_TAG = 'snapfill host tag';
export const INFO_BLOB_FILTER = 'snapfill blob filter';

/** The keys a version-2 repository uses, derived from its master key and config id. */
export interface RepoSecrets {
  /** AES-256-GCM key of every sealed blob and object; null in an unencrypted repository. */
  dataKey: Buffer | null;
  /** 32 bytes for the content-defined chunker's gear table (secret only when encrypted). */
  chunkerSeed: Buffer;
  /** HMAC key of host tags (the `<tag>` of `snapshots/<tag>/<id>`; secret only when encrypted). */
  hostTagKey: Buffer;
  /** HMAC key of the blob filters in data pack index names (pack/blobfilter.ts; secret only when encrypted). */
  blobFilterKey: Buffer;
}

export function deriveSecrets(masterKey: Buffer | null, repoId: string): RepoSecrets {
  if (!masterKey) {
    const ikm = Buffer.from(repoId, 'utf8');
    return {
      dataKey: null,
      chunkerSeed: hkdf(ikm, '', INFO_CHUNKER_SEED),
      hostTagKey: hkdf(ikm, '', INFO_HOST_TAG),
      blobFilterKey: hkdf(ikm, '', INFO_BLOB_FILTER),
    };
  }
  return {
    dataKey: hkdf(masterKey, repoId, INFO_DATA_KEY),
    chunkerSeed: hkdf(masterKey, repoId, INFO_CHUNKER_SEED),
    hostTagKey: hkdf(masterKey, repoId, INFO_HOST_TAG),
    blobFilterKey: hkdf(masterKey, repoId, INFO_BLOB_FILTER),
  };
}
