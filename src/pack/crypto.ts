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

/** Seals `plain` with `key`; `aad` (authenticated, not stored) binds the item to its identity. */
export function seal(key: Buffer, plain: Uint8Array, aad?: Uint8Array): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  if (aad) c.setAAD(aad);
  const body = c.update(plain);
  const last = c.final();
  return Buffer.concat([nonce, body, last, c.getAuthTag()]);
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

/** The keys a version-2 repository uses, derived from its master key and config id. */
export interface RepoSecrets {
  /** AES-256-GCM key of every sealed blob and object; null in an unencrypted repository. */
  dataKey: Buffer | null;
  /** 32 bytes for the content-defined chunker's gear table (secret only when encrypted). */
  chunkerSeed: Buffer;
}

export function deriveSecrets(masterKey: Buffer | null, repoId: string): RepoSecrets {
  if (!masterKey) return { dataKey: null, chunkerSeed: hkdf(Buffer.from(repoId, 'utf8'), '', INFO_CHUNKER_SEED) };
  return { dataKey: hkdf(masterKey, repoId, INFO_DATA_KEY), chunkerSeed: hkdf(masterKey, repoId, INFO_CHUNKER_SEED) };
}
