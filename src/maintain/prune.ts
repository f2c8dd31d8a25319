import pLimit from 'p-limit';
import type { Repository } from '../repo/repository.js';
import type { Catalog } from '../catalog/catalog.js';
import { decodeTree, type Entry } from '../repo/tree.js';
import { readPackInventory, reclaimPacks, type PackChange, type PackInventory, type ReclaimPlan } from '../repo/reclaim.js';
import type { BlobLocation, PackIndex } from '../pack/format.js';
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

/** The reclaim plan, with what prune knows about each pack to rewrite. */
type PrunePlan = Omit<ReclaimPlan, 'repack'> & { repack: PackPlan[] };

/**
 * Reclaims space: finds every blob reachable from the snapshots in the REPOSITORY (the
 * source of truth; the catalog is not trusted for this), deletes packs nothing uses, and
 * rewrites packs whose unused share exceeds the threshold.
 *
 * The caller must hold the exclusive repository lock (no snapshot can add references
 * meanwhile). Crash order (see reclaimPacks in src/repo/reclaim.ts): new packs are durable
 * before anything is deleted; the catalog is updated next, still before any delete; then each
 * old pack goes index first. Duplicates left by an interrupted repack (a blob in an old and a
 * new pack) are resolved on the next run by giving each blob one home pack.
 * If any snapshot's tree cannot be read, or references a blob that is in no pack, prune
 * stops before deleting anything: it cannot know what that snapshot needs.
 */
export async function prune(repo: Repository, catalog: Catalog | null, opts: PruneOptions = {}): Promise<PruneReport> {
  const threshold = opts.repackThreshold ?? 0.25;
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`repack threshold must be between 0 and 1, got ${threshold}`);
  const log = opts.onProgress ?? (() => {});
  const inv = await readPackInventory(repo);
  log(`prune: ${inv.indexes.size} packs indexed, ${inv.homes.size} blobs`);
  const { snapshots, trees, used } = await findUsedBlobs(repo, inv, log);
  log(`prune: ${snapshots} snapshots use ${used.size} blobs (${trees} trees walked)`);
  const plans = assignHomes(inv, used);
  const garbage = classifyPacks(inv, plans, threshold);
  const retainedSkipped = await skipRetained(repo, garbage);
  // Temp objects of dead writers: referenced by nothing, invisible to list(). Removed first,
  // as on a full disk they may be what stops the repack below from writing.
  const temps = (await (opts.dryRun ? repo.store.listStaleTemps?.() : repo.store.removeStaleTemps?.())) ?? [];
  if (temps.length) log(`prune: ${opts.dryRun ? 'would remove' : 'removed'} ${temps.length} stale temporary objects`);
  const report = newReport(inv, { snapshots, trees, blobsUsed: used.size, retainedSkipped }, Boolean(opts.dryRun), temps);
  if (opts.dryRun) return estimateFreed(report, inv, garbage);

  const done = await reclaimPacks(repo, garbage, {
    onProgress: log,
    beforeDelete: catalog ? (change) => updateCatalog(catalog, plans, change) : undefined,
  });
  const freed = [...done.unused, ...done.repacked, ...done.orphans].reduce((n, id) => n + (inv.packSizes.get(id) ?? 0), 0);
  const written = done.written.reduce((n, i) => n + i.size, 0);
  Object.assign(report, {
    packs_deleted: done.unused.length,
    packs_repacked: done.repacked.length,
    orphan_packs_deleted: done.orphans.length,
    packs_written: done.written.length,
    bytes_freed: freed - written,
    bytes_after: report.bytes_before - (freed - written),
  });
  log(`prune: freed ${report.bytes_freed} bytes`);
  return report;
}

/** Every snapshot's tree root; any snapshot that cannot be read stops prune. */
async function snapshotRoots(repo: Repository): Promise<{ ids: string[]; roots: BlobId[] }> {
  const ids: string[] = [];
  for await (const id of repo.listSnapshotIds()) ids.push(id);
  const roots: BlobId[] = [];
  for (const id of ids) {
    try {
      roots.push((await repo.loadSnapshot(id)).tree);
    } catch (e) {
      throw new PruneAbortedError(
        `snapshot ${id.slice(0, 8)} cannot be read (${(e as Error).message}); nothing was deleted. Run "snapfill check"`,
      );
    }
  }
  return { ids, roots };
}

/** A tree's entries from any pack that holds a good copy. */
async function readTreeAnywhere(repo: Repository, inv: PackInventory, id: BlobId): Promise<Entry[]> {
  const homes = inv.homes.get(id);
  if (!homes)
    throw new PruneAbortedError(`tree blob ${id.slice(0, 12)} is referenced but in no pack; nothing was deleted. Run "snapfill check"`);
  let lastErr: Error | null = null;
  for (const h of homes) {
    try {
      return decodeTree(await repo.readBlob(h.pack, h.loc.offset, h.loc.length, id));
    } catch (e) {
      lastErr = e as Error;
    }
  }
  throw new PruneAbortedError(
    `tree blob ${id.slice(0, 12)} cannot be read (${lastErr?.message}); nothing was deleted. Run "snapfill check"`,
  );
}

/** What is used: walks every snapshot's trees, level by level, each distinct tree once (Merkle sharing). */
async function findUsedBlobs(
  repo: Repository,
  inv: PackInventory,
  log: (msg: string) => void,
): Promise<{ snapshots: number; trees: number; used: Set<BlobId> }> {
  const { ids, roots } = await snapshotRoots(repo);
  const used = new Set<BlobId>();
  let queue: BlobId[] = [];
  for (const t of roots)
    if (!used.has(t)) {
      used.add(t);
      queue.push(t);
    }
  const limit = pLimit(16);
  let trees = 0;
  while (queue.length) {
    const next: BlobId[] = [];
    const lists = await Promise.all(queue.map((id) => limit(() => readTreeAnywhere(repo, inv, id))));
    trees += queue.length;
    for (const entries of lists) {
      for (const e of entries) {
        for (const c of e.content ?? []) {
          if (used.has(c)) continue;
          if (!inv.homes.has(c))
            throw new PruneAbortedError(
              `data blob ${c.slice(0, 12)} (in ${e.name}) is referenced but in no pack; nothing was deleted. Run "snapfill check"`,
            );
          used.add(c);
        }
        if (e.tree && !used.has(e.tree)) {
          used.add(e.tree);
          next.push(e.tree);
        }
      }
    }
    queue = next;
    if (trees % 1000 < queue.length) log(`prune: ${trees} trees walked, ${used.size} blobs in use`);
  }
  return { snapshots: ids.length, trees, used };
}

/** One home per used blob: the pack holding the most used blobs wins (keeps whole packs whole). */
function assignHomes(inv: PackInventory, used: Set<BlobId>): Map<string, PackPlan> {
  const usedCount = new Map<string, number>();
  for (const id of used) for (const h of inv.homes.get(id)!) usedCount.set(h.pack, (usedCount.get(h.pack) ?? 0) + 1);
  const plans = new Map<string, PackPlan>();
  for (const idx of inv.indexes.values()) if (inv.packSizes.has(idx.pack)) plans.set(idx.pack, { index: idx, used: [], usedBytes: 0 });
  for (const id of used) {
    const home = inv.homes.get(id)!.reduce((a, b) => {
      const ca = usedCount.get(a.pack)!;
      const cb = usedCount.get(b.pack)!;
      return cb > ca || (cb === ca && b.pack < a.pack) ? b : a;
    });
    const plan = plans.get(home.pack)!;
    plan.used.push(home.loc);
    plan.usedBytes += home.loc.length;
  }
  return plans;
}

/** Packs to delete (nothing used), to rewrite (unused share above the threshold), and orphans. */
function classifyPacks(inv: PackInventory, plans: Map<string, PackPlan>, threshold: number): PrunePlan {
  const unused: string[] = [];
  const repack: PackPlan[] = [];
  for (const plan of plans.values()) {
    const total = plan.index.blobs.reduce((n, b) => n + b.length, 0);
    if (!plan.used.length) unused.push(plan.index.pack);
    else if (total > 0 && 1 - plan.usedBytes / total > threshold) repack.push(plan);
  }
  const orphans = [...inv.packSizes.keys()].filter((id) => !inv.indexes.has(id));
  return { unused, repack, orphans };
}

/**
 * S3 Object Lock: a pack still under retention cannot be deleted, so it is neither deleted
 * nor repacked (repacking it would only add a copy). Asked once per candidate, up front;
 * the retained ones are taken out of `garbage` and returned.
 */
async function skipRetained(repo: Repository, garbage: PrunePlan): Promise<string[]> {
  if (!repo.store.retainedUntil) return [];
  const skipped: string[] = [];
  const free = async (id: string) => {
    if (!(await repo.packRetainedUntil(id))) return true;
    skipped.push(id);
    return false;
  };
  const filter = async <T>(list: T[], id: (x: T) => string) => {
    const keep: T[] = [];
    for (const x of list) if (await free(id(x))) keep.push(x);
    list.splice(0, list.length, ...keep);
  };
  await filter(garbage.unused, (x) => x);
  await filter(garbage.orphans, (x) => x);
  await filter(garbage.repack, (p) => p.index.pack);
  return skipped;
}

/** The report before anything is changed: what was found, nothing freed yet. */
function newReport(
  inv: PackInventory,
  found: { snapshots: number; trees: number; blobsUsed: number; retainedSkipped: string[] },
  dryRun: boolean,
  temps: { size: number }[],
): PruneReport {
  const bytesBefore = [...inv.packSizes.values()].reduce((a, b) => a + b, 0);
  return {
    dry_run: dryRun,
    snapshots: found.snapshots,
    trees_walked: found.trees,
    blobs_used: found.blobsUsed,
    packs_before: inv.packSizes.size,
    packs_deleted: 0,
    packs_repacked: 0,
    packs_written: 0,
    orphan_packs_deleted: 0,
    retained_skipped: found.retainedSkipped,
    bytes_before: bytesBefore,
    bytes_after: bytesBefore,
    bytes_freed: 0,
    stale_temps_removed: temps.length,
    stale_temp_bytes_removed: temps.reduce((n, t) => n + t.size, 0),
  };
}

/** A dry run's report: what the plan would delete and free. */
function estimateFreed(report: PruneReport, inv: PackInventory, garbage: PrunePlan): PruneReport {
  const size = (id: string) => inv.packSizes.get(id) ?? 0;
  const freed =
    [...garbage.unused, ...garbage.orphans].reduce((n, id) => n + size(id), 0) +
    garbage.repack.reduce((n, p) => n + size(p.index.pack) - p.usedBytes, 0);
  return Object.assign(report, {
    packs_deleted: garbage.unused.length,
    packs_repacked: garbage.repack.length,
    orphan_packs_deleted: garbage.orphans.length,
    bytes_freed: freed,
    bytes_after: report.bytes_before - freed,
  });
}

/**
 * The catalog first, in one transaction, before any delete: drop the packs about to go and
 * point every blob at its surviving copy. So a kill during the deletes cannot leave the
 * catalog without a location for a blob that still exists (a later sync only adds packs it
 * lacks; it would not repair such a row).
 */
function updateCatalog(catalog: Catalog, plans: Map<string, PackPlan>, change: PackChange): void {
  const justWritten = new Set(change.written.map((i) => i.pack));
  const doomed = new Set(change.doomed);
  const kept = [...plans.values()].map((p) => p.index).filter((i) => !doomed.has(i.pack) && !justWritten.has(i.pack));
  const live: PackIndex[] = [...change.written, ...kept];
  const liveBlobs = new Set<BlobId>();
  for (const idx of live) for (const b of idx.blobs) liveBlobs.add(b.id);
  catalog.atomic(() => {
    for (const id of change.doomed) catalog.removePack(id);
    for (const idx of change.written) catalog.addPackIndex(idx);
    // Only if rows are missing (the removed packs held the row of a blob that lives on in
    // an already-known pack, or an earlier crash lost one) re-add every live index.
    if (catalog.countBlobs() < liveBlobs.size) for (const idx of live) catalog.addPackIndex(idx);
  });
}
