import type { Repository } from './repository.js';
import { bufferReader, badBlobError, loadStoredBlobsSync } from './blobloader.js';
import type { BlobId } from '../pack/blobid.js';
import type { BlobLocation, BlobType, PackIndex } from '../pack/format.js';
import type { PackWriter } from '../pack/packwriter.js';

/**
 * Reclaiming space at the repository level: what packs exist, and the destructive step of
 * prune (rewrite the still-used blobs of wasteful packs, then delete packs). Which blobs are
 * used, and keeping any cache (the catalog) in step, is the caller's business
 * (src/maintain/prune.ts); the `beforeDelete` hook is where it does the latter.
 */

/** A blob's copy in one pack. */
export interface BlobHome {
  pack: string;
  loc: BlobLocation;
}

export interface PackInventory {
  /** Every pack index object, by pack id. */
  indexes: Map<string, PackIndex>;
  /** Every pack object and its size (a pack without an index is an orphan). */
  packSizes: Map<string, number>;
  /** Where each blob is, over indexed packs that exist (an index of a lost pack holds nothing). */
  homes: Map<BlobId, BlobHome[]>;
}

/** Reads every pack index and lists every pack object. An unreadable index fails the whole call. */
export async function readPackInventory(repo: Repository): Promise<PackInventory> {
  const indexes = new Map<string, PackIndex>();
  for await (const id of repo.listPackIndexes()) indexes.set(id, await repo.loadPackIndex(id));
  const packSizes = new Map<string, number>();
  for await (const p of repo.listPacks()) packSizes.set(p.id, p.size);
  const homes = new Map<BlobId, BlobHome[]>();
  for (const idx of indexes.values()) {
    if (!packSizes.has(idx.pack)) continue; // index of a lost pack: its blobs are not really there
    for (const b of idx.blobs) {
      const list = homes.get(b.id);
      if (list) list.push({ pack: idx.pack, loc: b });
      else homes.set(b.id, [{ pack: idx.pack, loc: b }]);
    }
  }
  return { indexes, packSizes, homes };
}

/** What to remove. Every id in it must be free to delete (e.g. not under S3 Object Lock retention). */
export interface ReclaimPlan {
  /** Indexed packs nothing uses: index and pack are deleted. */
  unused: string[];
  /** Indexed packs to rewrite: `used` is copied into new packs, then index and pack are deleted. */
  repack: { index: PackIndex; used: BlobLocation[] }[];
  /** Pack objects without an index: the pack is deleted. */
  orphans: string[];
}

/** What is about to change, handed to `beforeDelete` once the new packs are durable. */
export interface PackChange {
  /** Indexes of the packs this run wrote. */
  written: PackIndex[];
  /** Packs about to be deleted. */
  doomed: string[];
}

export interface ReclaimOptions {
  /** Runs after the new packs are written and before anything is deleted. */
  beforeDelete?: (change: PackChange) => void | Promise<void>;
  onProgress?: (msg: string) => void;
}

export interface ReclaimResult {
  written: PackIndex[];
  /** Packs actually deleted, per list of the plan. */
  unused: string[];
  repacked: string[];
  orphans: string[];
}

/**
 * Carries out a plan. Crash order, so that a crash at any point never leaves a snapshot
 * referencing a deleted blob, and a re-run finishes the job:
 *  1. new packs (pack, then index) are written before anything is deleted;
 *  2. `beforeDelete` runs (the catalog drops the doomed packs while they still exist);
 *  3. for each old pack the INDEX is deleted first, then the pack (see Repository.deletePack);
 *  4. a pack this run writes is never deleted by it, even when an earlier interrupted run
 *     left a pack with the same id (same blobs, same bytes) marked as garbage.
 */
export async function reclaimPacks(repo: Repository, plan: ReclaimPlan, opts: ReclaimOptions = {}): Promise<ReclaimResult> {
  const written = await repackBlobs(repo, plan.repack, opts.onProgress ?? (() => {}));
  // A pack id is the hash of its bytes: a repack after an interrupted run can write exactly
  // the pack that run left behind as an orphan or duplicate.
  const justWritten = new Set(written.map((i) => i.pack));
  const keep = (id: string) => !justWritten.has(id);
  const unused = plan.unused.filter(keep);
  const repacked = plan.repack.map((p) => p.index.pack).filter(keep);
  const orphans = plan.orphans.filter(keep);
  await opts.beforeDelete?.({ written, doomed: [...unused, ...repacked, ...orphans] });
  for (const id of unused) await repo.deletePack(id, true);
  for (const id of repacked) await repo.deletePack(id, true);
  for (const id of orphans) await repo.deletePack(id, false);
  return { written, unused, repacked, orphans };
}

/** Writes the used blobs of the packs to rewrite into new packs, grouped by blob type; returns their indexes. */
async function repackBlobs(repo: Repository, repack: ReclaimPlan['repack'], log: (msg: string) => void): Promise<PackIndex[]> {
  const written: PackIndex[] = [];
  const writers: Partial<Record<BlobType, PackWriter>> = {};
  const flush = async (type: BlobType) => {
    const w = writers[type];
    delete writers[type];
    if (w?.count) written.push(await repo.savePack(w));
  };
  for (const { index, used } of repack) {
    const pack = await repo.readPack(index.pack);
    const loaded = loadStoredBlobsSync(bufferReader(pack), used, Infinity);
    for (const loc of used) {
      const stored = loaded.plain.get(loc.id);
      // Never copy a corrupt blob into a fresh pack under its id: stop instead (check will name it).
      if (!stored) throw badBlobError(loc.id, index.pack, loaded.bad.get(loc.id) ?? 'was not loaded');
      const w = (writers[index.type] ??= repo.newPackWriter(index.type));
      w.add(loc.id, Buffer.from(stored)); // a copy: a view would keep the whole old pack alive
      if (w.size >= repo.config.pack_size) await flush(index.type);
    }
    log(`prune: repacked ${index.pack.slice(0, 12)} (${used.length}/${index.blobs.length} blobs kept)`);
  }
  await flush('data');
  await flush('tree');
  return written;
}
