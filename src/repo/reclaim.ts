import type { Repository } from './repository.js';
import { bufferReader, badBlobError, loadStoredBlobsSync } from './blobloader.js';
import type { BlobId } from '../pack/blobid.js';
import type { BlobLocation, PackIndex } from '../pack/format.js';
import type { PackWriter } from '../pack/packwriter.js';
import { ObjectRetainedError } from '../store/store.js';

/**
 * Reclaiming space at the repository level: what packs exist, rewriting the still-used blobs
 * of wasteful packs, and deleting a pack prune marked (issue 15: marking and the decision when
 * a pack may go are src/maintain/prune.ts and src/repo/garbage.ts). Which blobs are used, and
 * keeping any cache (the catalog) in step, is the caller's business.
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
  /** When the store wrote each pack object (store time, ms; undefined when the store gives none). */
  packTimes: Map<string, number | undefined>;
  /** Where each blob is, over indexed packs that exist (an index of a lost pack holds nothing). */
  homes: Map<BlobId, BlobHome[]>;
}

/** Reads every pack index and lists every pack object. An unreadable index fails the whole call. */
export async function readPackInventory(repo: Repository): Promise<PackInventory> {
  const inv: PackInventory = { indexes: new Map(), packSizes: new Map(), packTimes: new Map(), homes: new Map() };
  await refreshInventory(repo, inv);
  return inv;
}

/**
 * Brings an inventory up to date: indexes it lacks are read (only those), packs listed again.
 * Packs and indexes that vanished are dropped, with their blobs' homes.
 */
export async function refreshInventory(repo: Repository, inv: PackInventory): Promise<void> {
  const listed = new Set<string>();
  for await (const id of repo.listPackIndexes()) {
    listed.add(id);
    if (!inv.indexes.has(id)) inv.indexes.set(id, await repo.loadPackIndex(id));
  }
  for (const id of [...inv.indexes.keys()]) if (!listed.has(id)) inv.indexes.delete(id);
  inv.packSizes.clear();
  inv.packTimes.clear();
  for await (const p of repo.listPacks()) {
    inv.packSizes.set(p.id, p.size);
    inv.packTimes.set(p.id, p.mtime?.getTime());
  }
  inv.homes.clear();
  for (const idx of inv.indexes.values()) {
    if (!inv.packSizes.has(idx.pack)) continue; // index of a lost pack: its blobs are not really there
    for (const b of idx.blobs) {
      const list = inv.homes.get(b.id);
      if (list) list.push({ pack: idx.pack, loc: b });
      else inv.homes.set(b.id, [{ pack: idx.pack, loc: b }]);
    }
  }
}

/**
 * Deletes one pack prune marked as garbage (its index first, see Repository.deletePack).
 * A delete the store refuses for Object Lock retention is an answer, not a failure: the pack
 * is kept (`kept`), and `until` says until when if the store tells.
 */
export async function deleteMarkedPack(repo: Repository, id: string, hasIndex: boolean): Promise<{ kept: boolean; until: Date | null }> {
  try {
    await repo.deletePack(id, hasIndex);
    return { kept: false, until: null };
  } catch (e) {
    if (e instanceof ObjectRetainedError) return { kept: true, until: e.until };
    throw e;
  }
}

/** What prune marks: packs nothing uses, packs to rewrite, orphans. */
export interface ReclaimPlan {
  /** Indexed packs nothing uses: index and pack are deleted. */
  unused: string[];
  /** Indexed packs to rewrite: `used` is copied into new packs, then index and pack are deleted. */
  repack: { index: PackIndex; used: BlobLocation[] }[];
  /** Pack objects without an index: the pack is deleted. */
  orphans: string[];
}

/**
 * Writes the used blobs of the packs to rewrite into new packs, grouped by blob type and, for
 * tree packs, by the host tag their index lies below (issue 15: a host's trees stay where only
 * the commands reading that host's trees look); returns their indexes.
 */
export async function repackBlobs(repo: Repository, repack: ReclaimPlan['repack'], log: (msg: string) => void): Promise<PackIndex[]> {
  const written: PackIndex[] = [];
  const writers = new Map<string, { w: PackWriter; tag: string | null }>();
  const flush = async (group: string) => {
    const g = writers.get(group);
    writers.delete(group);
    if (g?.w.count) written.push(await repo.savePack(g.w, g.tag));
  };
  for (const { index, used } of repack) {
    const pack = await repo.readPack(index.pack);
    const loaded = loadStoredBlobsSync(bufferReader(pack), used, repo.blobKey(), Infinity);
    // A data pack's index is flat whatever its source; a tree pack keeps its source's tag (an
    // index not seen in a listing, or flat: flat, where every sync finds it).
    const tag = index.type === 'tree' ? (repo.indexTagOf(index.pack) ?? null) : null;
    const group = `${index.type}:${tag ?? ''}`;
    for (const loc of used) {
      const stored = loaded.plain.get(loc.id);
      // Never copy a corrupt blob into a fresh pack under its id: stop instead (check will name it).
      if (!stored) throw badBlobError(loc.id, index.pack, loaded.bad.get(loc.id) ?? 'was not loaded');
      let g = writers.get(group);
      if (!g) writers.set(group, (g = { w: repo.newPackWriter(index.type), tag }));
      g.w.addSealed(loc.id, Buffer.from(stored)); // already sealed (encrypted repositories); a copy: a view would keep the whole old pack alive
      if (g.w.size >= repo.config.pack_size) await flush(group);
    }
    log(`prune: repacked ${index.pack.slice(0, 12)} (${used.length}/${index.blobs.length} blobs kept)`);
  }
  // Data packs first (as before): trees are never stored before the data they name.
  const groups = [...writers.keys()].sort((a, b) => (a.startsWith('data:') ? 0 : 1) - (b.startsWith('data:') ? 0 : 1));
  for (const group of groups) await flush(group);
  return written;
}
