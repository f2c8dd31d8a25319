import type { Repository } from '../repo/repository.js';
import type { Catalog } from '../catalog/catalog.js';
import type { PackWriter } from '../pack/packwriter.js';
import type { BlobId } from '../pack/blobid.js';
import type { BlobType } from '../pack/format.js';
import { UnreadPacks } from '../catalog/unreadpacks.js';
import type { ReuseGuard } from './reuseguard.js';

/** The size at which a snapshot's tree pack is stored (see BlobSink.packSizeOf). */
const TREE_PACK_MAX = 4 << 20;

/** What a blob adds to a pack besides its bytes, at most (seal, tar header and padding of a new segment). */
const BLOB_SLACK = 2048;

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
      /** The tag of the snapshot's host: its tree pack indexes go below it (issue 15, Repository.savePack). */
      treeTag: string | null;
      /** [issue 15] The packs the sync left unread (shared with the guard); made here when not given. */
      unread?: UnreadPacks;
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
    if (type === 'data' && (await this.storedInUnreadPack(id))) return false;
    let w = this.writers[type];
    // A blob that would take the pack past its size starts the next pack: the buffer reserved
    // for the pack size is never outgrown (issue 17: a large chunk doubled it to 34 MiB, and
    // such buffers were then recycled, ~100 MiB of a 1M-file snapshot's peak RSS).
    const packSize = this.packSizeOf(type);
    if (w && w.count > 0 && w.size + data.length + BLOB_SLACK > packSize) {
      delete this.writers[type];
      await this.upload(w);
      w = this.writers[type]; // (the walk adds one blob at a time: none was opened meanwhile)
    }
    if (!w) {
      w = this.writers[type] = this.repo.newPackWriter(type);
      // One buffer of the pack size, no doublings. A tree pack fills slowly (a directory at a
      // time) and gets fresh pages, touched as it fills, rather than a recycled buffer.
      w.reserve(packSize, type === 'tree');
    }
    // `sealed`: a reader thread sealed it with this repository's key (only ever when it has one).
    if (sealed) w.addSealed(id, data);
    else w.add(id, data);
    this.pending.add(id);
    this.blobsAdded++;
    this.bytesAdded += data.length;
    if (w.size >= packSize) {
      delete this.writers[type];
      await this.upload(w);
    }
    return true;
  }

  /**
   * A tree pack fills slowly, a directory at a time, on fresh pages (see add), so the whole open
   * pack stays resident for most of the walk: capped at TREE_PACK_MAX (issue 17, peak RSS of a
   * 1M-file snapshot). Data packs fill fast and reuse one buffer: the repository's pack size.
   */
  private packSizeOf(type: BlobType): number {
    return type === 'tree' ? Math.min(this.opts.packSize, TREE_PACK_MAX) : this.opts.packSize;
  }

  /** [issue 15] The packs the sync left unread, read when a blob about to be stored may be there. */
  private get unread(): UnreadPacks {
    return (this.opts.unread ??= new UnreadPacks(this.repo, this.catalog));
  }

  /** [issue 15] Indexes of unread packs read on demand (by this snapshot: shared with its guard). */
  get unreadIndexesRead(): number {
    return this.opts.unread?.read ?? 0;
  }

  /**
   * [issue 15] Whether a blob about to be stored is in a pack the sync left unread after all:
   * the packs whose blob filter may hold it are read now (as the sync would have), and the
   * catalog is asked again.
   */
  private async storedInUnreadPack(id: BlobId): Promise<boolean> {
    return (await this.unread.readFor([id], () => this.has(id))) > 0 && this.has(id);
  }

  private async upload(w: PackWriter): Promise<void> {
    while (this.inFlight.size >= (this.opts.maxInFlight ?? 2)) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const p = (async () => {
      if (this.opts.onUpload) await this.opts.onUpload(w.size);
      const idx = await this.repo.savePack(w, this.opts.treeTag);
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
