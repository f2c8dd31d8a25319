import type { Repository } from '../repo/repository.js';
import type { Catalog } from '../catalog/catalog.js';
import type { BlobId } from '../pack/blobid.js';
import type { PackWriter } from '../pack/packwriter.js';
import type { BlobType } from '../pack/format.js';
import { listGarbage, markedPacks } from '../repo/garbage.js';
import { bufferReader, loadStoredBlobsSync } from '../repo/blobloader.js';
import { UnreadPacks } from '../catalog/unreadpacks.js';

/**
 * A snapshot's side of the lock-free prune (issue 15; the argument is docs/FORMAT.md,
 * "Garbage and the two-phase prune").
 *
 * - At the start (after the snapshot's marker is written, BEFORE the catalog sync lists the
 *   pack indexes) the garbage records are read: a blob whose only homes are marked packs is
 *   treated as absent, so dedup stores it again instead of referencing a pack about to go.
 *   New marks since this catalog's last snapshot also make unchanged files and directories
 *   prove their blobs (the catalog's verify_reuse mode), since they would reuse blob ids blindly.
 * - Right before the snapshot record is written, the records are read again: a pack marked
 *   since the start that holds a blob this snapshot references (and no unmarked pack holds)
 *   has that blob copied into a new pack of this snapshot. If such a pack is already gone (the
 *   snapshot outlived the grace period and its marker), the snapshot fails cleanly, before its
 *   record exists: a record never references a deleted pack.
 */
export class ReuseGuard {
  private marked = new Set<string>();
  /** Blobs whose every known home is a marked pack (until this snapshot stores them again). */
  private dead = new Set<BlobId>();

  /**
   * [issue 15] The packs the (lazy) sync left unread: a blob is taken as held by marked packs
   * only once the unread packs whose filter may hold it were read (else a host would copy
   * what another host's live pack holds). Shared with the snapshot's dedup (BlobSink).
   */
  readonly unread: UnreadPacks;

  private constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
  ) {
    this.unread = new UnreadPacks(repo, catalog);
  }

  /** Reads the garbage records. Call it after the snapshot's marker is written and before the catalog sync. */
  static async start(repo: Repository, catalog: Catalog): Promise<ReuseGuard> {
    const g = new ReuseGuard(repo, catalog);
    g.marked = new Set(markedPacks(await listGarbage(repo)).keys());
    return g;
  }

  /** After the catalog sync: finds the blobs that only marked packs hold, and arms verify_reuse for new marks. */
  async prepare(onLog?: (msg: string) => void): Promise<void> {
    this.dead = this.deadBlobs(this.marked);
    // Another copy may lie in a pack the sync left unread: read those first, then judge again.
    if (this.dead.size && (await this.unread.readFor(this.dead))) this.dead = this.deadBlobs(this.marked);
    const seen = new Set<string>(JSON.parse(this.catalog.getMeta('garbage_seen') ?? '[]') as string[]);
    const fresh = [...this.marked].filter((p) => !seen.has(p) && this.catalog.hasPack(p));
    if (fresh.length && this.dead.size) {
      // Unchanged files and directories reuse the parent's blob ids without asking the index:
      // for this run they must prove their blobs (the same mode as after packs vanished).
      this.catalog.clearTreeDigests();
      this.catalog.setMeta('verify_reuse', '1');
      onLog?.(`snapshot: ${fresh.length} packs were marked as garbage by prune since the last snapshot; reused data is checked`);
    }
    this.catalog.setMeta('garbage_seen', JSON.stringify([...this.marked].sort()));
  }

  /** Whether dedup must treat the blob as absent (its only homes are marked packs). */
  isDead(id: BlobId): boolean {
    return this.dead.has(id);
  }

  /** The blob now has a home this snapshot wrote. */
  stored(id: BlobId): void {
    this.dead.delete(id);
  }

  /** Blobs of the given packs that no pack outside `marked` holds (as the catalog knows them). */
  private deadBlobs(marked: Set<string>): Set<BlobId> {
    const out = new Set<BlobId>();
    for (const p of marked) {
      const c = this.catalog.packContents(p);
      if (!c) continue;
      for (const id of c.blobs.keys()) if (!out.has(id) && this.catalog.blobHomes(id).every((h) => marked.has(h))) out.add(id);
    }
    return out;
  }

  /**
   * Right before the record: packs marked since the start that hold blobs this snapshot
   * references get those blobs copied into new packs. Returns how many blobs were copied.
   * `markerHealthy` false (the marker could not be refreshed for long) also checks that every
   * pack still exists, since a prune may then have deleted packs this snapshot relies on.
   */
  async beforeRecord(
    lineage: number,
    rootTree: BlobId,
    markerHealthy: boolean,
    treeTag: string | null,
    onLog?: (msg: string) => void,
  ): Promise<number> {
    const now = new Set(markedPacks(await listGarbage(this.repo)).keys());
    const risky = new Set([...now].filter((p) => !this.marked.has(p)));
    const vanished = new Set<string>();
    if (!markerHealthy) {
      const listed = new Set<string>();
      for await (const id of this.repo.listPackIndexes()) listed.add(id);
      for (const p of this.catalog.packIds()) if (!listed.has(p)) vanished.add(p);
    }
    if (!risky.size && !vanished.size) return 0;
    const gone = new Set([...now, ...vanished]);
    const candidatesNow = () => {
      const out = new Set<BlobId>();
      for (const p of [...risky, ...vanished]) {
        const c = this.catalog.packContents(p);
        if (!c) continue;
        for (const id of c.blobs.keys()) if (this.catalog.blobHomes(id).every((h) => gone.has(h))) out.add(id);
      }
      return out;
    };
    let candidates = candidatesNow();
    // Another copy may lie in a pack the sync left unread (issue 15): read those, then judge again.
    if (candidates.size && (await this.unread.readFor(candidates))) candidates = candidatesNow();
    const needed = this.catalog.lineageReferences(lineage, candidates);
    if (candidates.has(rootTree)) needed.add(rootTree);
    if (!needed.size) return 0;
    // Group by source pack; a blob in a vanished pack cannot be copied: fail before the record.
    const bySource = new Map<string, BlobId[]>();
    for (const id of needed) {
      const homes = this.catalog.blobHomes(id).filter((h) => !vanished.has(h));
      if (!homes.length)
        throw new Error(
          `a prune deleted data this snapshot reuses while it ran (longer than the grace period, or its lock was not refreshed); ` +
            `nothing was recorded: run the snapshot again`,
        );
      bySource.set(homes[0], [...(bySource.get(homes[0]) ?? []), id]);
    }
    const writers: Partial<Record<BlobType, PackWriter>> = {};
    let copied = 0;
    for (const [pack, ids] of bySource) {
      const c = this.catalog.packContents(pack)!;
      const refs = ids.map((id) => ({ id, ...c.blobs.get(id)! }));
      let bytes: Buffer;
      try {
        bytes = await this.repo.readPack(pack);
      } catch (e) {
        throw new Error(
          `a prune deleted data this snapshot reuses while it ran; nothing was recorded: run the snapshot again (${(e as Error).message})`,
          {
            cause: e,
          },
        );
      }
      const loaded = loadStoredBlobsSync(bufferReader(bytes), refs, this.repo.blobKey(), Infinity);
      for (const r of refs) {
        const stored = loaded.plain.get(r.id);
        if (!stored)
          throw new Error(`blob ${r.id.slice(0, 12)} in pack ${pack.slice(0, 12)} cannot be read: ${loaded.bad.get(r.id) ?? 'not loaded'}`);
        const w = (writers[c.type as BlobType] ??= this.repo.newPackWriter(c.type as BlobType));
        w.addSealed(r.id, Buffer.from(stored));
        copied++;
      }
    }
    for (const w of Object.values(writers)) {
      if (!w?.count) continue;
      const idx = await this.repo.savePack(w, treeTag); // trees below the snapshot's host tag, like its other tree packs
      this.catalog.addPackIndex(idx);
      for (const b of idx.blobs) this.stored(b.id);
    }
    onLog?.(`snapshot: ${copied} reused blobs were in packs a prune marked meanwhile; copied them to new packs`);
    return copied;
  }
}
