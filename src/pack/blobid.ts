import { createHash } from 'node:crypto';

/**
 * Blob identity is SHA-256 of the blob's plaintext: collision-resistant, so content shared
 * across accounts cannot be spoofed by a tenant crafting a collision (a 64-bit xxhash could be).
 */
export type BlobId = string; // 64 lowercase hex chars

export function blobIdOf(data: Uint8Array): BlobId {
  return createHash('sha256').update(data).digest('hex');
}

export function isBlobId(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}
