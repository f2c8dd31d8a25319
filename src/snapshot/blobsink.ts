import type { Repository } from '../repo/repository.js';
import type { Catalog } from '../catalog/catalog.js';
import type { PackWriter } from '../pack/packwriter.js';
import type { BlobId } from '../pack/blobid.js';
import type { BlobType } from '../pack/format.js';
import type { ReuseGuard } from './reuseguard.js';

/**
 * Deduplicates blobs against the catalog and the packs still being written, groups new ones
 * into packs, and uploads full packs in the background (bounded, so memory stays bounded).
 * A blob is registered in the catalog only after its pack and index are durable.
 */
export class BlobSink {
  private writers: Partial<Record<BlobType, PackWriter>> = {};
  private pending = new Set<BlobId>();
  private inFlight = new Set<Promise<void>>();
  private failure: Error | null = null;
  packsWritten = 0;
  bytesAdded = 0;
  blobsAdded = 0;

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
    private readonly opts: {
      packSize: number;
      maxInFlight?: number;
      onUpload?: (bytes: number) => Promise<void> | void;
      /** [prune, issue 15] Blobs whose only homes are packs marked as garbage count as absent. */
      guard?: ReuseGuard;
    },
  ) {}

  has(id: BlobId): boolean {
    return this.pending.has(id) || (this.catalog.hasBlob(id) && !this.opts.guard?.isDead(id));
  }

  /**
   * Adds a blob unless it is already stored; returns true when it was new. `checked`: the
   * caller has just seen has(id) false (each has() is one or two catalog queries per blob).
   */
  async add(type: BlobType, id: BlobId, data: Uint8Array, checked = false, sealed = false): Promise<boolean> {
    if (this.failure) throw this.failure;
    if (!checked && this.has(id)) return false;
    let w = this.writers[type];
    if (!w) {
      w = this.writers[type] = this.repo.newPackWriter(type);
      // A data pack gets one buffer of the pack size (no doublings). A tree pack grows as it
      // fills: most snapshots write few trees, and a recycled pack buffer (all its pages
      // touched) held for them was 17 MiB of the peak RSS (issue 17).
      if (type === 'data') w.reserve(this.opts.packSize);
    }
    // `sealed`: a reader thread sealed it with this repository's key (only ever when it has one).
    if (sealed) w.addSealed(id, data);
    else w.add(id, data);
    this.pending.add(id);
    this.blobsAdded++;
    this.bytesAdded += data.length;
    if (w.size >= this.opts.packSize) {
      delete this.writers[type];
      await this.upload(w);
    }
    return true;
  }

  private async upload(w: PackWriter): Promise<void> {
    while (this.inFlight.size >= (this.opts.maxInFlight ?? 2)) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const p = (async () => {
      if (this.opts.onUpload) await this.opts.onUpload(w.size);
      const idx = await this.repo.savePack(w);
      w.recycle(); // the pack is stored: its buffer serves the next pack
      this.catalog.addPackIndex(idx);
      for (const b of idx.blobs) {
        this.pending.delete(b.id);
        this.opts.guard?.stored(b.id);
      }
      this.packsWritten++;
    })().catch((e: Error) => {
      this.failure ??= e;
    });
    const tracked = p.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /** Writes out partial packs and waits until every pack and index is stored. */
  async finish(): Promise<void> {
    for (const t of ['data', 'tree'] as BlobType[]) {
      const w = this.writers[t];
      delete this.writers[t];
      if (w && w.count > 0) await this.upload(w);
    }
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
  }
}
