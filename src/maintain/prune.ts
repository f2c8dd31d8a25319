import pLimit from 'p-limit';
import type { Repository } from '../repo/repository.js';
import { verifyBlob } from '../repo/repository.js';
import type { Catalog } from '../catalog/catalog.js';
import { decodeTree } from '../repo/tree.js';
import { indexKey, packKey, type BlobLocation, type BlobType, type PackIndex } from '../pack/format.js';
import type { PackWriter } from '../pack/packwriter.js';
import type { BlobId } from '../pack/blobid.js';

export interface PruneOptions {
  /** Repack a pack when more than this share of its bytes is unused (0..1). Default 0.25. */
  repackThreshold?: number;
  /** Compute and report, change nothing. */
  dryRun?: boolean;
  onProgress?: (msg: string) => void;
}

export interface PruneReport {
  dry_run: boolean;
  snapshots: number;
  trees_walked: number;
  blobs_used: number;
  packs_before: number;
  packs_deleted: number;
  packs_repacked: number;
  packs_written: number;
  orphan_packs_deleted: number;
  /** Objects that are still under S3 Object Lock retention and were left in place. */
  retained_skipped: string[];
  bytes_before: number;
  bytes_after: number;
  bytes_freed: number;
  /** Temp objects of interrupted writes (killed processes) removed (with --dry-run: found). */
  stale_temps_removed: number;
  stale_temp_bytes_removed: number;
}

/** An optional store capability (S3 Object Lock): when an object may be deleted again. */
interface RetentionAwareStore {
  retainedUntil(key: string): Promise<Date | null>;
}

export class PruneAbortedError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'PruneAbortedError';
  }
}

interface PackPlan {
  index: PackIndex;
  used: BlobLocation[];
  usedBytes: number;
}

/**
 * Reclaims space: finds every blob reachable from the snapshots in the REPOSITORY (the
 * source of truth; the catalog is not trusted for this), deletes packs nothing uses, and
 * rewrites packs whose unused share exceeds the threshold.
 *
 * The caller must hold the exclusive repository lock (no snapshot can add references
 * meanwhile). Crash order, so that a crash at any point never leaves a snapshot referencing
 * a deleted blob, and a re-run finishes the job:
 *  1. new packs (pack, then index) are written before anything is deleted;
 *  2. for each old pack the INDEX is deleted first, then the pack: a pack without an index
 *     is unreferenced garbage that the next prune removes (orphan), while an index without
 *     its pack would make a snapshot skip storing a blob it thinks exists;
 *  3. duplicates left by an interrupted repack (a blob in an old and a new pack) are
 *     resolved on the next run by giving each blob one home pack;
 *  4. a pack this run writes is never deleted by it, even when an earlier interrupted run
 *     left a pack with the same id (same blobs, same bytes) marked as garbage.
 * If any snapshot's tree cannot be read, or references a blob that is in no pack, prune
 * stops before deleting anything: it cannot know what that snapshot needs.
 */
export async function prune(repo: Repository, catalog: Catalog | null, opts: PruneOptions = {}): Promise<PruneReport> {
  const threshold = opts.repackThreshold ?? 0.25;
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`repack threshold must be between 0 and 1, got ${threshold}`);
  const log = opts.onProgress ?? (() => {});

  // 1. What exists: every pack index, and every pack object (a pack without index is an orphan).
  const indexes = new Map<string, PackIndex>();
  for await (const id of repo.listPackIndexes()) indexes.set(id, await repo.loadPackIndex(id));
  const packObjects = new Map<string, number>();
  for await (const p of repo.listPacks()) packObjects.set(p.id, p.size);
  const where = new Map<BlobId, { pack: string; loc: BlobLocation }[]>();
  for (const idx of indexes.values()) {
    if (!packObjects.has(idx.pack)) continue; // index of a lost pack: its blobs are not really there
    for (const b of idx.blobs) {
      const list = where.get(b.id);
      if (list) list.push({ pack: idx.pack, loc: b });
      else where.set(b.id, [{ pack: idx.pack, loc: b }]);
    }
  }
  log(`prune: ${indexes.size} packs indexed, ${where.size} blobs`);

  // 2. What is used: walk every snapshot's trees (each distinct tree once: Merkle sharing).
  const used = new Set<BlobId>();
  const snapshotIds: string[] = [];
  for await (const id of repo.listSnapshotIds()) snapshotIds.push(id);
  let queue: BlobId[] = [];
  for (const id of snapshotIds) {
    let rec;
    try {
      rec = await repo.loadSnapshot(id);
    } catch (e) {
      throw new PruneAbortedError(`snapshot ${id.slice(0, 8)} cannot be read (${(e as Error).message}); nothing was deleted. Run "snapfill check"`);
    }
    if (!used.has(rec.tree)) { used.add(rec.tree); queue.push(rec.tree); }
  }
  const limit = pLimit(16);
  let trees = 0;
  const readTree = async (id: BlobId) => {
    const homes = where.get(id);
    if (!homes) throw new PruneAbortedError(`tree blob ${id.slice(0, 12)} is referenced but in no pack; nothing was deleted. Run "snapfill check"`);
    let lastErr: Error | null = null;
    for (const h of homes) {
      try {
        return decodeTree(await repo.readBlob(h.pack, h.loc.offset, h.loc.length, id));
      } catch (e) { lastErr = e as Error; }
    }
    throw new PruneAbortedError(`tree blob ${id.slice(0, 12)} cannot be read (${lastErr?.message}); nothing was deleted. Run "snapfill check"`);
  };
  while (queue.length) {
    const next: BlobId[] = [];
    const lists = await Promise.all(queue.map((id) => limit(() => readTree(id))));
    trees += queue.length;
    for (const entries of lists) {
      for (const e of entries) {
        for (const c of e.content ?? []) {
          if (used.has(c)) continue;
          if (!where.has(c)) throw new PruneAbortedError(`data blob ${c.slice(0, 12)} (in ${e.name}) is referenced but in no pack; nothing was deleted. Run "snapfill check"`);
          used.add(c);
        }
        if (e.tree && !used.has(e.tree)) { used.add(e.tree); next.push(e.tree); }
      }
    }
    queue = next;
    if (trees % 1000 < queue.length) log(`prune: ${trees} trees walked, ${used.size} blobs in use`);
  }
  log(`prune: ${snapshotIds.length} snapshots use ${used.size} blobs (${trees} trees walked)`);

  // 3. One home per used blob: the pack holding the most used blobs wins (keeps whole packs whole).
  const usedCount = new Map<string, number>();
  for (const id of used) for (const h of where.get(id)!) usedCount.set(h.pack, (usedCount.get(h.pack) ?? 0) + 1);
  const plans = new Map<string, PackPlan>();
  for (const idx of indexes.values()) if (packObjects.has(idx.pack)) plans.set(idx.pack, { index: idx, used: [], usedBytes: 0 });
  for (const id of used) {
    const homes = where.get(id)!;
    const home = homes.reduce((a, b) => {
      const ca = usedCount.get(a.pack)!; const cb = usedCount.get(b.pack)!;
      return cb > ca || (cb === ca && b.pack < a.pack) ? b : a;
    });
    const plan = plans.get(home.pack)!;
    plan.used.push(home.loc);
    plan.usedBytes += home.loc.length;
  }

  // 4. Classify.
  const toDelete: string[] = [];
  const toRepack: PackPlan[] = [];
  for (const plan of plans.values()) {
    const total = plan.index.blobs.reduce((n, b) => n + b.length, 0);
    if (!plan.used.length) toDelete.push(plan.index.pack);
    else if (total > 0 && 1 - plan.usedBytes / total > threshold) toRepack.push(plan);
  }
  const orphans = [...packObjects.keys()].filter((id) => !indexes.has(id));
  // S3 Object Lock: a pack still under retention cannot be deleted, so it is neither deleted
  // nor repacked (repacking it would only add a copy). Asked once per candidate, up front.
  const retention = typeof (repo.store as unknown as Partial<RetentionAwareStore>).retainedUntil === 'function'
    ? (repo.store as unknown as RetentionAwareStore) : null;
  const retainedSkipped: string[] = [];
  if (retention) {
    const retained = async (id: string) => {
      const until = await retention.retainedUntil(packKey(id));
      if (until && until.getTime() > Date.now()) { retainedSkipped.push(id); return true; }
      return false;
    };
    for (const list of [toDelete, orphans]) {
      const keep: string[] = [];
      for (const id of list) if (!(await retained(id))) keep.push(id);
      list.splice(0, list.length, ...keep);
    }
    const keepRepack: PackPlan[] = [];
    for (const p of toRepack) if (!(await retained(p.index.pack))) keepRepack.push(p);
    toRepack.splice(0, toRepack.length, ...keepRepack);
  }
  // Temp objects of dead writers: referenced by nothing, invisible to list(). Removed first,
  // as on a full disk they may be what stops the repack below from writing.
  const temps = (await (opts.dryRun ? repo.store.listStaleTemps?.() : repo.store.removeStaleTemps?.())) ?? [];
  if (temps.length) log(`prune: ${opts.dryRun ? 'would remove' : 'removed'} ${temps.length} stale temporary objects`);
  const bytesBefore = [...packObjects.values()].reduce((a, b) => a + b, 0);
  const report: PruneReport = {
    dry_run: Boolean(opts.dryRun), snapshots: snapshotIds.length, trees_walked: trees, blobs_used: used.size,
    packs_before: packObjects.size, packs_deleted: 0, packs_repacked: 0, packs_written: 0, orphan_packs_deleted: 0,
    retained_skipped: retainedSkipped, bytes_before: bytesBefore, bytes_after: bytesBefore, bytes_freed: 0,
    stale_temps_removed: temps.length, stale_temp_bytes_removed: temps.reduce((n, t) => n + t.size, 0),
  };
  if (opts.dryRun) {
    const freed = [...toDelete, ...orphans].reduce((n, id) => n + (packObjects.get(id) ?? 0), 0) +
      toRepack.reduce((n, p) => n + (packObjects.get(p.index.pack) ?? 0) - p.usedBytes, 0);
    Object.assign(report, { packs_deleted: toDelete.length, packs_repacked: toRepack.length, orphan_packs_deleted: orphans.length, bytes_freed: freed, bytes_after: bytesBefore - freed });
    return report;
  }

  // 5. Repack: write the still-used blobs into new packs; all durable before any delete.
  const newIndexes: PackIndex[] = [];
  const writers: Partial<Record<BlobType, PackWriter>> = {};
  const flush = async (type: BlobType) => {
    const w = writers[type];
    delete writers[type];
    if (!w || !w.count) return;
    const idx = await repo.savePack(w);
    newIndexes.push(idx);
    report.packs_written++;
  };
  for (const plan of toRepack) {
    const bytes = await repo.readPack(plan.index.pack);
    for (const loc of plan.used) {
      const data = bytes.subarray(loc.offset, loc.offset + loc.length);
      // Never copy a corrupt blob into a fresh pack under its id: stop instead (check will name it).
      verifyBlob(data, loc.id, plan.index.pack);
      const w = (writers[plan.index.type] ??= repo.newPackWriter(plan.index.type));
      w.add(loc.id, Buffer.from(data));
      if (w.size >= repo.config.pack_size) await flush(plan.index.type);
    }
    log(`prune: repacked ${plan.index.pack.slice(0, 12)} (${plan.used.length}/${plan.index.blobs.length} blobs kept)`);
  }
  await flush('data');
  await flush('tree');

  // 6. The catalog first, in one transaction: drop the packs about to go and point every
  //    blob at its surviving copy. Done before any delete, so a kill during the deletes
  //    cannot leave the catalog without a location for a blob that still exists (a later
  //    sync only adds packs it lacks; it would not repair such a row).
  //    A pack id is the hash of its bytes, so a repack after an interrupted run can write
  //    exactly the pack that run left behind as an orphan or duplicate: never delete an id
  //    this run has just written.
  const justWritten = new Set(newIndexes.map((i) => i.pack));
  const doomed = [...toDelete, ...toRepack.map((p) => p.index.pack), ...orphans].filter((id) => !justWritten.has(id));
  if (catalog) {
    const doomedSet = new Set(doomed);
    const live: PackIndex[] = [...newIndexes, ...[...plans.values()].map((p) => p.index).filter((i) => !doomedSet.has(i.pack) && !justWritten.has(i.pack))];
    const liveBlobs = new Set<BlobId>();
    for (const idx of live) for (const b of idx.blobs) liveBlobs.add(b.id);
    catalog.atomic(() => {
      for (const id of doomed) catalog.removePack(id);
      for (const idx of newIndexes) catalog.addPackIndex(idx);
      // Only if rows are missing (the removed packs held the row of a blob that lives on in
      // an already-known pack, or an earlier crash lost one) re-add every live index.
      if (catalog.countBlobs() < liveBlobs.size) for (const idx of live) catalog.addPackIndex(idx);
    });
  }

  // 7. Delete: index first, then pack (packs under retention were taken out above).
  let freed = 0;
  const deletePack = async (id: string, hasIndex: boolean): Promise<boolean> => {
    if (justWritten.has(id)) return false;
    if (hasIndex) await repo.store.delete(indexKey(id));
    await repo.store.delete(packKey(id));
    freed += packObjects.get(id) ?? 0;
    return true;
  };
  for (const id of toDelete) if (await deletePack(id, true)) report.packs_deleted++;
  for (const p of toRepack) if (await deletePack(p.index.pack, true)) report.packs_repacked++;
  for (const id of orphans) if (await deletePack(id, false)) report.orphan_packs_deleted++;
  const written = newIndexes.reduce((n, i) => n + i.size, 0);
  report.bytes_freed = freed - written;
  report.bytes_after = bytesBefore - report.bytes_freed;
  log(`prune: freed ${report.bytes_freed} bytes`);
  return report;
}
