import type { BlobId } from './blobid.js';

/** What a blob holds: file content or a directory listing (tree). They live in separate packs. */
export type BlobType = 'data' | 'tree';

/** Where one blob sits inside a pack file. */
export interface BlobLocation {
  id: BlobId;
  offset: number;
  length: number;
}

/** The per-pack index object stored at `index/<pack id>`. */
export interface PackIndex {
  v: 1;
  pack: string;
  type: BlobType;
  size: number;
  blobs: BlobLocation[];
}

export const TAR_BLOCK = 512;

/** Bytes a tar entry of `size` bytes takes: one header block plus data padded to a block. */
export function tarEntrySpan(size: number): number {
  return TAR_BLOCK + Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
}

/** Kept here too: callers (and tests) that know the format reach the keys through it. */
export { packKey, indexKey } from './keys.js';
