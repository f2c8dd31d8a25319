import type { BlobId } from '../pack/blobid.js';
import type { Catalog, SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { display, dirname, join, normalizeAbs, type RawPath } from '../util/rawpath.js';
import { lookupEntry } from '../catalog/lookup.js';
import type { Repository } from '../repo/repository.js';
import type { Entry } from '../repo/tree.js';

/** Where one content blob of a file sits, and which byte range of the file it holds. */
interface Piece {
  id: BlobId;
  pack: string;
  /** The stored (possibly compressed) bytes in the pack. */
  offset: number;
  length: number;
  /** The plain bytes: offset of the blob's first byte inside the file, and its size. */
  start: number;
  size: number;
}

export class ContentUnavailableError extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'ContentUnavailableError';
  }
}

/**
 * Reads file content out of the repository one blob at a time: the catalog says where each
 * blob is, and the repository's blob loader (src/repo/blobloader.ts) fetches exactly that byte
 * range of its pack, decompresses and verifies it.
 * A small LRU cache (by bytes) serves the many small sequential reads a kernel issues
 * (FUSE reads 128 KiB at a time from blobs of 1-8 MiB) without refetching.
 */
export class FileContentReader {
  private readonly cache = new Map<BlobId, Buffer>();
  private cachedBytes = 0;
  private readonly inflight = new Map<BlobId, Promise<Buffer>>();

  constructor(
    readonly repo: Repository,
    readonly catalog: Catalog,
    /** Cache budget; 0 disables caching (one-pass streaming such as cat and dump). */
    readonly cacheBytes = 64 * 1024 * 1024,
  ) {}

  /**
   * The blobs of a file with their positions. A file cut by content (FastCDC, version-2
   * repositories) lists each blob's plain size (Entry.chunkSizes); otherwise it was cut into
   * fixed chunks of the repository's chunk_size (docs/FORMAT.md), so blob i holds bytes
   * [i*chunk, (i+1)*chunk). Stored lengths say nothing about either (blobs may be compressed
   * and sealed). Fails closed when the catalog lacks a blob or the blobs do not add up to the size.
   */
  layout(e: Pick<Entry, 'content' | 'size' | 'chunkSizes'>, label = 'file'): Piece[] {
    if (e.content === null) {
      if (e.size === 0) return [];
      throw new ContentUnavailableError(`${label}: the snapshot holds no content for it (it could not be read at snapshot time)`);
    }
    const sizes = e.chunkSizes ?? fixedSizes(e.content.length, e.size, this.repo.config.chunk_size, label);
    if (sizes.length !== e.content.length || sizes.reduce((a, b) => a + b, 0) !== e.size) {
      throw new ContentUnavailableError(
        `${label}: the snapshot lists ${e.content.length} blobs of ${sizes.length} sizes adding up to other than its ${e.size} bytes`,
      );
    }
    let start = 0;
    return e.content.map((id, i) => {
      const loc = this.catalog.blobLocation(id);
      if (!loc)
        throw new ContentUnavailableError(`${label}: blob ${id.slice(0, 12)} is not in any pack the catalog knows (run "snapfill check")`);
      const p = { id, pack: loc.pack, offset: loc.offset, length: loc.length, start, size: sizes[i] };
      start += sizes[i];
      return p;
    });
  }

  /** One whole blob, from the cache or the repository (concurrent requests share one fetch). */
  async blob(p: Piece): Promise<Buffer> {
    const hit = this.cache.get(p.id);
    if (hit) {
      this.cache.delete(p.id); // re-insert: Map order is the LRU order
      this.cache.set(p.id, hit);
      return hit;
    }
    let pending = this.inflight.get(p.id);
    if (!pending) {
      pending = this.repo
        .readBlob(p.pack, p.offset, p.length, p.id)
        .then((data) => {
          if (data.length !== p.size)
            throw new ContentUnavailableError(`blob ${p.id.slice(0, 12)} holds ${data.length} bytes where the file layout needs ${p.size}`);
          return data;
        })
        .finally(() => this.inflight.delete(p.id));
      this.inflight.set(p.id, pending);
      const data = await pending;
      this.remember(p.id, data);
      return data;
    }
    return pending;
  }

  private remember(id: BlobId, data: Buffer): void {
    if (this.cacheBytes <= 0 || data.length > this.cacheBytes || this.cache.has(id)) return;
    this.cache.set(id, data);
    this.cachedBytes += data.length;
    for (const [k, v] of this.cache) {
      if (this.cachedBytes <= this.cacheBytes) break;
      this.cache.delete(k);
      this.cachedBytes -= v.length;
    }
  }

  /** Copies up to `length` bytes at `position` of the file into `out`; returns the count (0 at EOF). */
  async readInto(pieces: Piece[], position: number, out: Buffer, length: number): Promise<number> {
    // Pieces are ascending and contiguous: binary-search the first one (a 500 MB dump has ~500).
    let lo = 0;
    let hi = pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (pieces[mid].start + pieces[mid].size <= position) lo = mid + 1;
      else hi = mid;
    }
    let done = 0;
    for (let i = lo; i < pieces.length && done < length; i++) {
      const p = pieces[i];
      const pos = position + done;
      if (pos >= p.start + p.size || pos < p.start) break;
      const data = await this.blob(p);
      const from = pos - p.start;
      const n = Math.min(p.size - from, length - done);
      data.copy(out, done, from, from + n);
      done += n;
    }
    return done;
  }

  /** Streams a whole file blob by blob: memory holds one blob at a time. */
  async *stream(e: Pick<Entry, 'content' | 'size' | 'chunkSizes'>, label?: string): AsyncIterable<Buffer> {
    for (const p of this.layout(e, label)) yield await this.blob(p);
  }
}

export type FilePieces = Piece[];

/** Plain sizes of fixed chunk_size chunks (the version-1 layout); fails closed when the count does not fit. */
function fixedSizes(count: number, size: number, chunk: number, label: string): number[] {
  // One blob is the whole file (a small file in any version; never cut, whatever chunk_size says).
  if (count === 1) return [size];
  const want = Math.ceil(size / chunk);
  if (count !== want) {
    throw new ContentUnavailableError(
      `${label}: the snapshot lists ${count} blobs for ${size} bytes; chunks of ${chunk} bytes need ${want}`,
    );
  }
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(Math.min(chunk, size - i * chunk));
  return out;
}

/**
 * The entry whose content `cat` shows for `path`: symlinks inside the snapshot are followed
 * (like cat(1) does), relative to their directory; a directory or special file is refused.
 */
export function lookupFileForRead(catalog: Catalog, snap: SnapshotRow, path: RawPath): VersionRow {
  let p = normalizeAbs(path);
  for (let hops = 0; hops < 40; hops++) {
    const v = lookupEntry(catalog, snap, p);
    if (!v) throw new ContentUnavailableError(`${display(p)} is not in snapshot ${snap.id.slice(0, 8)}`);
    if (v.type === 'file' || v.type === 'hardlink') return v;
    if (v.type === 'symlink' && v.target !== null) {
      p = normalizeAbs(v.target.startsWith('/') ? v.target : join(dirname(v.path), v.target));
      continue;
    }
    throw new ContentUnavailableError(`${display(p)} is a ${v.type === 'dir' ? 'directory' : v.type}, not a file`);
  }
  throw new ContentUnavailableError(`${display(path)}: too many levels of symbolic links`);
}

/** Writes a file's content to a stream, blob by blob, honouring backpressure. Returns the bytes written. */
export async function copyFileContent(reader: FileContentReader, v: VersionRow, out: NodeJS.WritableStream): Promise<number> {
  let n = 0;
  for await (const chunk of reader.stream(v, display(v.path))) {
    n += chunk.length;
    if (!out.write(chunk))
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          out.off('error', onError);
          resolve();
        };
        const onError = (e: Error) => {
          out.off('drain', onDrain);
          reject(e);
        };
        out.once('drain', onDrain);
        out.once('error', onError);
      });
  }
  return n;
}
