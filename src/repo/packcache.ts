import type { Repository } from './repository.js';
import { loadBlobsFromPack, takeBlob, type PackRangeReader } from './blobloader.js';
import type { BlobId } from '../pack/blobid.js';

/**
 * Reads blobs by fetching whole packs and keeping the most recent ones in memory.
 *
 * For walks that touch many small blobs of the same packs (the catalog import reads one tree
 * blob per directory, and tree blobs are packed together), this turns one request per blob
 * into one request per pack: on S3 that is the difference between 20,000 ranged GETs and a
 * handful of whole-pack GETs for a fresh-machine catalog rebuild. Packs larger than
 * `maxPackBytes` are read blob by blob (ranged) instead. Memory is bounded by `maxBytes`.
 * Either way blobs go through the blob loader: the cache only changes where ranges come from.
 */
export class PackCache {
  private readonly packs = new Map<string, Promise<Buffer>>(); // insertion order = LRU order
  private readonly sizes = new Map<string, number>();
  private bytes = 0;

  constructor(
    private readonly repo: Repository,
    private readonly opts: { maxBytes?: number; maxPackBytes?: number } = {},
  ) {}

  async readBlob(packId: string, offset: number, length: number, id: BlobId, packSize?: number): Promise<Buffer> {
    const maxPack = this.opts.maxPackBytes ?? 64 * 1024 * 1024;
    if (packSize !== undefined && packSize > maxPack) {
      return this.repo.readBlob(packId, offset, length, id);
    }
    await this.repo.unlock(); // a session deriving its key in the background: wait for it
    const loaded = await loadBlobsFromPack(this.cachedReader(packId), [{ id, offset, length }], this.repo.blobKey());
    return takeBlob(loaded, id, packId);
  }

  /**
   * Ranges of a pack served from its cached copy (fetched whole on first use). Each range is a
   * copy: a view would keep the whole pack alive after the cache evicts it.
   */
  private cachedReader(packId: string): PackRangeReader<Promise<Buffer>> {
    return async (offset, length) => {
      const pack = await this.pack(packId);
      return Buffer.from(pack.subarray(offset, offset + length));
    };
  }

  private pack(packId: string): Promise<Buffer> {
    const hit = this.packs.get(packId);
    if (hit) {
      this.packs.delete(packId);
      this.packs.set(packId, hit);
      return hit;
    }
    const p = this.repo.readPack(packId);
    this.packs.set(packId, p);
    p.then(
      (b) => {
        if (this.packs.get(packId) !== p) return;
        this.sizes.set(packId, b.length);
        this.bytes += b.length;
        this.evict(packId);
      },
      () => {
        this.packs.delete(packId);
      },
    );
    return p;
  }

  private evict(keep: string): void {
    const max = this.opts.maxBytes ?? 128 * 1024 * 1024;
    for (const id of this.packs.keys()) {
      if (this.bytes <= max) break;
      if (id === keep || !this.sizes.has(id)) continue;
      this.bytes -= this.sizes.get(id)!;
      this.sizes.delete(id);
      this.packs.delete(id);
    }
  }
}
