import type { BlobId } from '../pack/blobid.js';
import { openBlob } from '../pack/codec.js';

/**
 * The one blob loader: every reader of stored content (restore, cat, dump, mount, catalog
 * import, check, prune) gets blobs through it. Given where blobs lie in one pack, it reads the
 * pack in a few ranges (neighbouring blobs coalesced), then decompresses and verifies each
 * distinct blob once (SHA-256 of the plain bytes must be its id). A blob that fails is
 * reported, never returned: no caller ever sees unverified bytes.
 */
export interface BlobRef {
  id: BlobId;
  offset: number;
  length: number;
}

export interface LoadedBlobs {
  /** Verified plain bytes by blob id. */
  plain: Map<BlobId, Buffer>;
  /** Blobs whose stored bytes are corrupt (or lie beyond the pack's end), with the reason. */
  bad: Map<BlobId, string>;
}

/**
 * The data key of an encrypted (version 2) repository, or null when blobs are stored unsealed
 * (version 1, or version 2 with --insecure-no-encryption). A required argument of every load, so
 * no reader can forget it: `repo.blobKey()`, or `WorkerInit.blobKey` in a worker thread.
 */
export type BlobKey = Buffer | null;

/** Reads `length` bytes at `offset` of one pack (may return fewer at the end of the pack). */
export type PackRangeReader<R> = (offset: number, length: number) => R;

/** Blobs closer than this are read in one range: one request instead of two costs more than the gap. */
export const COALESCE_GAP = 256 * 1024;

/** The reasons in `LoadedBlobs.bad`. */
export const BLOB_CORRUPT = 'is corrupt';
export const BLOB_BEYOND_END = 'lies beyond the end of its pack';

interface Span {
  offset: number;
  end: number;
  refs: BlobRef[];
}

/** Distinct blobs in offset order, grouped into ranges that cover them. */
export function spansOf(refs: BlobRef[], maxGap = COALESCE_GAP): Span[] {
  const seen = new Set<BlobId>();
  const sorted = refs.filter((r) => (seen.has(r.id) ? false : (seen.add(r.id), true))).sort((a, b) => a.offset - b.offset);
  const spans: Span[] = [];
  for (const r of sorted) {
    const last = spans[spans.length - 1];
    if (last && r.offset - last.end <= maxGap) {
      last.end = Math.max(last.end, r.offset + r.length);
      last.refs.push(r);
    } else spans.push({ offset: r.offset, end: r.offset + r.length, refs: [r] });
  }
  return spans;
}

/**
 * Verifies the blobs of one span read as `data`. `keep` says what goes into `out.plain`:
 * the plain bytes (readers), or the stored bytes as they are in the pack (repack copies them
 * unchanged, so a re-run writes byte-identical packs).
 */
function decodeSpan(span: Span, data: Buffer, out: LoadedBlobs, keep: 'plain' | 'stored', key: BlobKey): void {
  for (const r of span.refs) {
    const at = r.offset - span.offset;
    if (at + r.length > data.length) {
      out.bad.set(r.id, BLOB_BEYOND_END);
      continue;
    }
    const stored = data.subarray(at, at + r.length);
    const plain = openBlob(stored, r.id, key);
    if (plain === null) out.bad.set(r.id, BLOB_CORRUPT);
    else out.plain.set(r.id, keep === 'plain' ? plain : stored);
  }
}

/** Loads blobs of one pack through an async range reader (a store: local file or S3). */
export async function loadBlobsFromPack(
  read: PackRangeReader<Promise<Buffer>>,
  refs: BlobRef[],
  key: BlobKey,
  maxGap = COALESCE_GAP,
): Promise<LoadedBlobs> {
  const out: LoadedBlobs = { plain: new Map(), bad: new Map() };
  for (const span of spansOf(refs, maxGap)) decodeSpan(span, await read(span.offset, span.end - span.offset), out, 'plain', key);
  return out;
}

/** The same, synchronously: worker threads reading the pack files of a local repository. */
export function loadBlobsFromPackSync(read: PackRangeReader<Buffer>, refs: BlobRef[], key: BlobKey, maxGap = COALESCE_GAP): LoadedBlobs {
  const out: LoadedBlobs = { plain: new Map(), bad: new Map() };
  for (const span of spansOf(refs, maxGap)) decodeSpan(span, read(span.offset, span.end - span.offset), out, 'plain', key);
  return out;
}

/**
 * Verified blobs in their STORED form (`plain` then holds the bytes as they lie in the pack,
 * possibly compressed): what a repack copies into a new pack. Views into what `read` returned.
 */
export function loadStoredBlobsSync(read: PackRangeReader<Buffer>, refs: BlobRef[], key: BlobKey, maxGap = COALESCE_GAP): LoadedBlobs {
  const out: LoadedBlobs = { plain: new Map(), bad: new Map() };
  for (const span of spansOf(refs, maxGap)) decodeSpan(span, read(span.offset, span.end - span.offset), out, 'stored', key);
  return out;
}

/** A range reader over a pack already in memory (a cached or wholly read pack). */
export function bufferReader(pack: Buffer): PackRangeReader<Buffer> {
  return (offset, length) => pack.subarray(offset, offset + length);
}

export class BlobCorruptError extends Error {
  constructor(
    readonly blobId: string,
    readonly packId: string,
  ) {
    super(`blob ${blobId.slice(0, 12)} in pack ${packId.slice(0, 12)} is corrupt (authentication or content hash mismatch)`);
    this.name = 'BlobCorruptError';
  }
}

/** The error for a blob `LoadedBlobs.bad` lists, for callers that want one blob or an exception. */
export function badBlobError(id: BlobId, packId: string, reason: string): Error {
  if (reason === BLOB_CORRUPT) return new BlobCorruptError(id, packId);
  return new Error(
    `blob ${id.slice(0, 12)} ${reason === BLOB_BEYOND_END ? 'lies beyond the end of pack' : reason + ' in pack'} ${packId.slice(0, 12)}`,
  );
}

/** One blob's verified plain bytes out of a load, or the error saying why there are none. */
export function takeBlob(loaded: LoadedBlobs, id: BlobId, packId: string): Buffer {
  const plain = loaded.plain.get(id);
  if (plain) return plain;
  throw badBlobError(id, packId, loaded.bad.get(id) ?? 'was not loaded');
}
