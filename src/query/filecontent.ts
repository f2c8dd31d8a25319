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
 * (FUSE reads 128 KiB at a time from 8 MiB blobs) without refetching.
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
   * The blobs of a file with their positions. Content is cut into fixed-size chunks of the
   * repository's chunk_size (docs/FORMAT.md), so blob i holds bytes [i*chunk, (i+1)*chunk);
   * stored lengths say nothing about that (blobs may be compressed). Fails closed when the
   * catalog lacks a blob or the blob count does not fit the size.
   */
  layout(e: Pick<Entry, 'content' | 'size'>, label = 'file'): Piece[] {
    if (e.content === null) {
      if (e.size === 0) return [];
      throw new ContentUnavailableError(`${label}: the snapshot holds no content for it (it could not be read at snapshot time)`);
    }
    const chunk = this.repo.config.chunk_size;
    const want = Math.ceil(e.size / chunk);
    if (e.content.length !== want) {
      throw new ContentUnavailableError(
        `${label}: the snapshot lists ${e.content.length} blobs for ${e.size} bytes; chunks of ${chunk} bytes need ${want}`,
      );
    }
    return e.content.map((id, i) => {
      const loc = this.catalog.blobLocation(id);
      if (!loc)
        throw new ContentUnavailableError(`${label}: blob ${id.slice(0, 12)} is not in any pack the catalog knows (run "snapfill check")`);
      const start = i * chunk;
      return { id, pack: loc.pack, offset: loc.offset, length: loc.length, start, size: Math.min(chunk, e.size - start) };
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
    let done = 0;
    for (const p of pieces) {
      if (done >= length) break;
      const end = p.start + p.size;
      const pos = position + done;
      if (pos >= end || pos < p.start) continue;
      const data = await this.blob(p);
      const from = pos - p.start;
      const n = Math.min(p.size - from, length - done);
      data.copy(out, done, from, from + n);
      done += n;
    }
    return done;
  }

  /** Streams a whole file blob by blob: memory holds one blob at a time. */
  async *stream(e: Pick<Entry, 'content' | 'size'>, label?: string): AsyncIterable<Buffer> {
    for (const p of this.layout(e, label)) yield await this.blob(p);
  }
}

export type FilePieces = Piece[];

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
