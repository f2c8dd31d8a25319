import type { BlobId } from '../pack/blobid.js';
import { openBlob } from '../pack/codec.js';

/**
 * The one blob loader: every reader of stored content (restore, cat, dump, mount, catalog
 * import, check) gets blobs through it. Given where blobs lie in one pack, it reads the pack in
 * a few ranges (neighbouring blobs coalesced), then decompresses and verifies each distinct
 * blob once (SHA-256 of the plain bytes must be its id). A blob that fails is reported, never
 * returned: no caller ever sees unverified bytes.
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

/** Reads `length` bytes at `offset` of one pack (may return fewer at the end of the pack). */
export type PackRangeReader<R> = (offset: number, length: number) => R;

/** Blobs closer than this are read in one range: one request instead of two costs more than the gap. */
export const COALESCE_GAP = 256 * 1024;

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

function decodeSpan(span: Span, data: Buffer, out: LoadedBlobs): void {
  for (const r of span.refs) {
    const at = r.offset - span.offset;
    if (at + r.length > data.length) {
      out.bad.set(r.id, 'lies beyond the end of its pack');
      continue;
    }
    const plain = openBlob(data.subarray(at, at + r.length), r.id);
    if (plain === null) out.bad.set(r.id, 'is corrupt');
    else out.plain.set(r.id, plain);
  }
}

/** Loads blobs of one pack through an async range reader (a store: local file or S3). */
export async function loadBlobsFromPack(read: PackRangeReader<Promise<Buffer>>, refs: BlobRef[], maxGap = COALESCE_GAP): Promise<LoadedBlobs> {
  const out: LoadedBlobs = { plain: new Map(), bad: new Map() };
  for (const span of spansOf(refs, maxGap)) decodeSpan(span, await read(span.offset, span.end - span.offset), out);
  return out;
}

/** The same, synchronously: worker threads reading the pack files of a local repository. */
export function loadBlobsFromPackSync(read: PackRangeReader<Buffer>, refs: BlobRef[], maxGap = COALESCE_GAP): LoadedBlobs {
  const out: LoadedBlobs = { plain: new Map(), bad: new Map() };
  for (const span of spansOf(refs, maxGap)) decodeSpan(span, read(span.offset, span.end - span.offset), out);
  return out;
}
