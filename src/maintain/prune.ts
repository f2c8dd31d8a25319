import pLimit from 'p-limit';
import type { Repository } from '../repo/repository.js';
import type { Catalog } from '../catalog/catalog.js';
import { decodeTree, type Entry } from '../repo/tree.js';
import * as os from 'node:os';
import {
  deleteMarkedPack,
  readPackInventory,
  refreshInventory,
  repackBlobs,
  type PackInventory,
  type ReclaimPlan,
} from '../repo/reclaim.js';
import { deleteGarbage, listGarbage, markedPacks, saveGarbage } from '../repo/garbage.js';
import { DELETION_RETENTION_MS, expireDeletionRecords, saveDeletionRecord } from '../repo/deletions.js';
import { isStale, listLocks, lockKind, LOCK_STALE_MS } from '../repo/lock.js';
import { STORE_TIME_SLACK_MS, storeTime } from '../repo/clock.js';
import { packKey } from '../pack/keys.js';
import { catalogIndexTags } from '../catalog/treeindexes.js';
import type { BlobLocation, PackIndex } from '../pack/format.js';
import type { BlobId } from '../pack/blobid.js';

export const DEFAULT_GRACE_MS = 24 * 3600_000;

export interface PruneOptions {
  /** Repack a pack when more than this share of its bytes is unused (0..1). Default 0.25. */
  repackThreshold?: number;
  /** Compute and report, change nothing. */
  dryRun?: boolean;
  /**
   * Time between marking a pack as garbage and deleting it, in the store's time (default 24 h).
   * Longer than any snapshot runs; 0 deletes in the same run what no running snapshot can need.
   */
  graceMs?: number;
  /** Only mark (phase 1); delete nothing, even what is due. For tests and staged runs. */
  markOnly?: boolean;
  /** Only delete what is due (phase 2); mark nothing new. */
  deleteOnly?: boolean;
  onProgress?: (msg: string) => void;
}

export interface PruneReport {
  dry_run: boolean;
  snapshots: number;
  trees_walked: number;
  blobs_used: number;
  packs_before: number;
  /** Indexed packs deleted by this run (marked by an earlier phase, due, still unreferenced). */
  packs_deleted: number;
  /** Packs whose live blobs this run copied into new packs (the old ones are marked, deleted later). */
  packs_repacked: number;
  packs_written: number;
  orphan_packs_deleted: number;
  /** Packs this run marked as garbage (deleted by a later run after the grace period). */
  packs_marked: number;
  /** Marked packs found referenced again at delete time (a snapshot reused them): unmarked, kept. */
  packs_unmarked: number;
  /** Marked packs left for a later run: grace not over, a running snapshot started before the mark, or retention. */
  packs_waiting: number;
  /** Objects that are still under S3 Object Lock retention and were left in place. */
  retained_skipped: string[];
  /** The same, with the date until which each is kept. */
  retained_kept: { pack: string; until: string }[];
  /** Packs live snapshots need whose Object Lock retention this run extended. */
  retention_extended: number;
  /** This host's clock minus the store's, as measured by this run (ms). */
  clock_skew_ms: number;
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

/** What the walk of the snapshots found (grown by the delete phase with snapshots added since). */
interface Usage {
  snapshotIds: Set<string>;
  trees: number;
  used: Set<BlobId>;
}

/**
 * Reclaims space in two phases, without a lock that stops snapshots (issue 15; the safety
 * argument is docs/FORMAT.md, "Garbage and the two-phase prune"):
 *
 * 1. MARK: find every blob reachable from the snapshots in the REPOSITORY (the catalog is not
 *    trusted for this); copy the live blobs of wasteful packs into new packs; write the packs
 *    nothing uses, the repacked ones and orphans into a garbage record (repo/garbage.ts).
 *    Packs written since the oldest running snapshot started are left alone: they may be its.
 * 2. DELETE: packs of garbage records whose grace has passed (store time) and that no running
 *    snapshot could have picked up (its marker is older than the mark) are deleted, unless the
 *    references, derived again from every snapshot record present NOW, need them: those are
 *    unmarked. Objects under Object Lock retention are kept and reported.
 *
 * The caller holds the maintenance lock (excludes other prunes, not snapshots). Crash order:
 * new packs are durable before they are recorded in the catalog and before anything is marked;
 * marking deletes nothing; the delete phase updates the catalog, then deletes each pack index
 * first, then rewrites the records. Any crash leaves a state the next run finishes.
 * If any snapshot's tree cannot be read, or references a blob that is in no pack, prune
 * stops before marking or deleting anything: it cannot know what that snapshot needs.
 */
export async function prune(repo: Repository, catalog: Catalog | null, opts: PruneOptions = {}): Promise<PruneReport> {
  const threshold = opts.repackThreshold ?? 0.25;
  if (!(threshold >= 0 && threshold <= 1)) throw new Error(`repack threshold must be between 0 and 1, got ${threshold}`);
  const graceMs = opts.graceMs ?? DEFAULT_GRACE_MS;
  if (!(Number.isFinite(graceMs) && graceMs >= 0)) throw new Error(`grace must be a duration of 0 or more, got ${graceMs}`);
  const log = opts.onProgress ?? (() => {});
  const clock = await storeTime(repo.store);
  if (Math.abs(clock.skewMs) > 60_000)
    log(`prune: warning: this host's clock is ${Math.round(clock.skewMs / 1000)} s off the store's; prune uses the store's time`);
  // Snapshots are listed before pack indexes: a writer stores packs, then indexes, then its
  // record, so every snapshot listed here has all its indexes in the inventory read next.
  const snapshotIds = await listSnapshotIds(repo);
  const inv = await readPackInventory(repo);
  log(`prune: ${inv.indexes.size} packs indexed, ${inv.homes.size} blobs`);
  const usage = await findUsedBlobs(repo, inv, log, snapshotIds);
  const { used } = usage;
  log(`prune: ${usage.snapshotIds.size} snapshots use ${used.size} blobs (${usage.trees} trees walked)`);
  const garbageBefore = await listGarbage(repo);
  const marked = markedPacks(garbageBefore);
  const markers = await snapshotMarkers(repo, clock.now.getTime());
  const plans = assignHomes(inv, used, marked);
  const young = youngPacks(inv, markers);
  const toMark = opts.deleteOnly ? { unused: [], repack: [], orphans: [] } : classifyPacks(inv, plans, threshold, marked, young);
  const retainedRepack = await skipRetainedRepacks(repo, toMark);
  // Temp objects of dead writers: referenced by nothing, invisible to list(). Removed first,
  // as on a full disk they may be what stops the repack below from writing.
  const temps = (await (opts.dryRun ? repo.store.listStaleTemps?.() : repo.store.removeStaleTemps?.())) ?? [];
  if (temps.length) log(`prune: ${opts.dryRun ? 'would remove' : 'removed'} ${temps.length} stale temporary objects`);
  const report = newReport(inv, usage, Boolean(opts.dryRun), temps, clock.skewMs);
  report.retained_skipped.push(...retainedRepack);
  if (opts.dryRun) return estimateFreed(report, inv, toMark);

  // Phase 1: mark.
  // New packs (pack, then index) are durable before the catalog knows them and before their
  // sources are marked: a crash leaves duplicates, which the next run resolves.
  const written = { written: await repackBlobs(repo, toMark.repack, log) };
  if (catalog && written.written.length) {
    // Only what the catalog's own sync lists (issue 15): a new tree pack below another host's
    // tag would look pruned to that sync (it does not list the tag) and cost it a re-check.
    const tags = await catalogIndexTags(repo, catalog);
    const mine = written.written.filter((i) => {
      const tag = repo.indexTagOf(i.pack);
      return !tag || tags.has(tag);
    });
    catalog.atomic(() => mine.forEach((i) => catalog.addPackIndex(i)));
  }
  const newlyMarked = [...toMark.unused, ...toMark.repack.map((p) => p.index.pack), ...toMark.orphans].filter(
    (id) => !written.written.some((w) => w.pack === id),
  );
  if (newlyMarked.length) {
    await saveGarbage(repo, { v: 1, packs: newlyMarked, grace_ms: graceMs, host: os.hostname() });
    log(`prune: marked ${newlyMarked.length} packs as garbage (deleted by a prune after ${formatMs(graceMs)})`);
  }
  report.packs_marked = newlyMarked.length;
  report.packs_repacked = toMark.repack.length;
  report.packs_written = written.written.length;
  const writtenBytes = written.written.reduce((n, i) => n + i.size, 0);

  // Retention of what live snapshots need (S3 Object Lock): extended before it runs out.
  report.retention_extended = await extendRetention(repo, plans, log);

  // Phase 2: delete what is due.
  let freed = 0;
  if (!opts.markOnly) {
    const done = await deleteDue(repo, catalog, inv, usage, graceMs, log);
    Object.assign(report, {
      packs_deleted: done.deleted.length,
      orphan_packs_deleted: done.orphans.length,
      packs_unmarked: done.unmarked.length,
      packs_waiting: done.waiting,
      snapshots: usage.snapshotIds.size,
      trees_walked: usage.trees,
      blobs_used: usage.used.size,
    });
    for (const r of done.retained) {
      report.retained_skipped.push(r.pack);
      report.retained_kept.push(r);
    }
    freed = [...done.deleted, ...done.orphans].reduce((n, id) => n + (inv.packSizes.get(id) ?? 0), 0);
  } else {
    report.packs_waiting = marked.size + newlyMarked.length;
  }
  Object.assign(report, { bytes_freed: freed - writtenBytes, bytes_after: report.bytes_before - (freed - writtenBytes) });
  log(`prune: freed ${report.bytes_freed} bytes`);
  return report;
}

function formatMs(ms: number): string {
  if (ms % 3600_000 === 0) return `${ms / 3600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

/** A running snapshot as prune sees it: the store time its marker was created (-Infinity: unknown). */
interface Marker {
  createdMs: number;
  what: string;
}

/**
 * The live markers of running snapshots (shared locks; older releases' snapshots too), judged
 * stale in the store's time. A marker without a creation store time counts as started at the
 * beginning of time: it protects every mark (safe; it only delays deletion while it lives).
 */
async function snapshotMarkers(repo: Repository, storeNowMs: number): Promise<Marker[]> {
  const out: Marker[] = [];
  for (const l of await listLocks(repo.store)) {
    if (lockKind(l) !== 'shared' || isStale(l, LOCK_STALE_MS, storeNowMs)) continue;
    const c = l.created_store ? Date.parse(l.created_store) : NaN;
    out.push({ createdMs: Number.isNaN(c) ? -Infinity : c, what: `${l.operation} on ${l.host} (pid ${l.pid})` });
  }
  return out;
}

/**
 * Packs written since the oldest running snapshot started: they may hold blobs of a snapshot
 * whose record is not written yet, so they are not marked now (the next prune looks again).
 */
function youngPacks(inv: PackInventory, markers: Marker[]): Set<string> {
  const young = new Set<string>();
  if (!markers.length) return young;
  const oldest = Math.min(...markers.map((m) => m.createdMs));
  for (const [id, t] of inv.packTimes) if (t === undefined || t >= oldest - STORE_TIME_SLACK_MS) young.add(id);
  return young;
}

async function listSnapshotIds(repo: Repository): Promise<string[]> {
  const ids: string[] = [];
  for await (const id of repo.listSnapshotIds()) ids.push(id);
  return ids;
}

/** The tree roots of the listed snapshots not walked yet; any snapshot that cannot be read stops prune. */
async function snapshotRoots(repo: Repository, listed: string[], seen: Set<string>): Promise<{ ids: string[]; roots: BlobId[] }> {
  const ids = listed.filter((id) => !seen.has(id));
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

/**
 * What is used: walks the trees of every snapshot not in `usage` yet, level by level, each
 * distinct tree once (Merkle sharing), adding to `usage`. Snapshots forgotten meanwhile stay
 * counted: a reference too many only keeps a pack longer.
 */
async function findUsedBlobs(
  repo: Repository,
  inv: PackInventory,
  log: (msg: string) => void,
  listed: string[],
  usage: Usage = { snapshotIds: new Set(), trees: 0, used: new Set() },
): Promise<Usage> {
  const { ids, roots } = await snapshotRoots(repo, listed, usage.snapshotIds);
  const used = usage.used;
  let queue: BlobId[] = [];
  for (const t of roots)
    if (!used.has(t)) {
      used.add(t);
      queue.push(t);
    }
  const limit = pLimit(16);
  while (queue.length) {
    const next: BlobId[] = [];
    const lists = await Promise.all(queue.map((id) => limit(() => readTreeAnywhere(repo, inv, id))));
    usage.trees += queue.length;
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
    if (usage.trees % 1000 < queue.length) log(`prune: ${usage.trees} trees walked, ${used.size} blobs in use`);
  }
  for (const id of ids) usage.snapshotIds.add(id);
  return usage;
}

/**
 * One home per used blob: a pack not marked as garbage when there is one, else the pack
 * holding the most used blobs (keeps whole packs whole).
 */
function assignHomes(inv: PackInventory, used: Set<BlobId>, marked: Map<string, number>): Map<string, PackPlan> {
  const usedCount = new Map<string, number>();
  for (const id of used) for (const h of inv.homes.get(id)!) usedCount.set(h.pack, (usedCount.get(h.pack) ?? 0) + 1);
  const plans = new Map<string, PackPlan>();
  for (const idx of inv.indexes.values()) if (inv.packSizes.has(idx.pack)) plans.set(idx.pack, { index: idx, used: [], usedBytes: 0 });
  for (const id of used) {
    const home = inv.homes.get(id)!.reduce((a, b) => {
      const ma = marked.has(a.pack);
      const mb = marked.has(b.pack);
      if (ma !== mb) return ma ? b : a;
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

/**
 * Packs to mark: nothing used (unused), unused share above the threshold (repack), no index
 * (orphans). Never one already marked, nor a young one (it may belong to a running snapshot).
 */
function classifyPacks(
  inv: PackInventory,
  plans: Map<string, PackPlan>,
  threshold: number,
  marked: Map<string, number>,
  young: Set<string>,
): PrunePlan {
  const unused: string[] = [];
  const repack: PackPlan[] = [];
  const skip = (id: string) => marked.has(id) || young.has(id);
  for (const plan of plans.values()) {
    if (skip(plan.index.pack)) continue;
    const total = plan.index.blobs.reduce((n, b) => n + b.length, 0);
    if (!plan.used.length) unused.push(plan.index.pack);
    else if (total > 0 && 1 - plan.usedBytes / total > threshold) repack.push(plan);
  }
  const orphans = [...inv.packSizes.keys()].filter((id) => !inv.indexes.has(id) && !skip(id));
  return { unused, repack, orphans };
}

/**
 * S3 Object Lock: a pack still under retention is not repacked (that would only add a copy;
 * it cannot be deleted yet). Unused ones are still marked (snapshots stop relying on them);
 * the delete phase keeps them until their retention ends.
 */
async function skipRetainedRepacks(repo: Repository, plan: PrunePlan): Promise<string[]> {
  if (!repo.store.retainedUntil) return [];
  const skipped: string[] = [];
  const keep: PackPlan[] = [];
  for (const p of plan.repack) {
    if (await repo.packRetainedUntil(p.index.pack)) skipped.push(p.index.pack);
    else keep.push(p);
  }
  plan.repack = keep;
  return skipped;
}

/**
 * Live packs (holding a blob some snapshot uses) whose Object Lock retention ends within half
 * the configured period get it extended to a full period from now, pack and index: a snapshot
 * that still needs them must stay as protected as a new one. Needs object lock days set.
 */
async function extendRetention(repo: Repository, plans: Map<string, PackPlan>, log: (msg: string) => void): Promise<number> {
  const days = repo.store.objectLockDays;
  if (!days || !repo.store.extendRetention || !repo.store.retainedUntil) return 0;
  const periodMs = days * 86_400_000;
  const until = new Date(Date.now() + periodMs);
  let n = 0;
  for (const plan of plans.values()) {
    if (!plan.used.length) continue;
    const id = plan.index.pack;
    const current = await repo.packRetainedUntil(id);
    if (current && current.getTime() - Date.now() > periodMs / 2) continue;
    await repo.store.extendRetention(packKey(id), until);
    await repo.store.extendRetention(await repo.indexKeyOf(id), until);
    n++;
  }
  if (n) log(`prune: extended object-lock retention of ${n} packs live snapshots use to ${until.toISOString()}`);
  return n;
}

interface DeleteResult {
  deleted: string[];
  orphans: string[];
  unmarked: string[];
  retained: { pack: string; until: string }[];
  /** Marked packs left for a later run. */
  waiting: number;
}

/**
 * Phase 2. Order: (1) the store's time, the garbage records, the live snapshot markers; (2)
 * the pack inventory and the references of every snapshot record present now (only those not
 * walked yet are read); (3) per due pack: unmark it when a used blob has no home outside marked
 * packs, keep it while retained, else delete it (catalog first, index before pack); (4) rewrite
 * the records (new record with what is left, then the old one deleted).
 */
async function deleteDue(
  repo: Repository,
  catalog: Catalog | null,
  inv: PackInventory,
  usage: Usage,
  graceMs: number,
  log: (msg: string) => void,
): Promise<DeleteResult> {
  const res: DeleteResult = { deleted: [], orphans: [], unmarked: [], retained: [], waiting: 0 };
  const now = (await storeTime(repo.store)).now.getTime();
  const expired = await expireDeletionRecords(repo, now);
  if (expired) log(`prune: removed ${expired} deletion records older than ${DELETION_RETENTION_MS / 86_400_000} days`);
  const records = await listGarbage(repo);
  if (!records.length) return res;
  const markers = await snapshotMarkers(repo, now);
  const marked = markedPacks(records);
  const due = new Set<string>();
  for (const r of records) {
    const wait = Math.max(graceMs, Number.isFinite(r.grace_ms) ? r.grace_ms : 0);
    if (r.markedMs + wait > now) continue;
    // A snapshot whose marker is older than the mark may have picked these packs up before the
    // mark was there to see: they wait until it is done (and its record is visible).
    if (markers.some((m) => m.createdMs <= r.markedMs + STORE_TIME_SLACK_MS)) continue;
    for (const p of r.packs) due.add(p);
  }
  if (due.size) {
    const listed = await listSnapshotIds(repo); // before the inventory, as in prune()
    await refreshInventory(repo, inv);
    await findUsedBlobs(repo, inv, log, listed, usage);
  }
  const unmark = new Set<string>();
  const doomed: string[] = [];
  for (const id of due) {
    if (!inv.packSizes.has(id) && !inv.indexes.has(id)) {
      doomed.push(id); // already gone (an earlier run died before rewriting the record)
      continue;
    }
    const idx = inv.indexes.get(id);
    const needed = idx?.blobs.some((b) => usage.used.has(b.id) && !(inv.homes.get(b.id) ?? []).some((h) => !marked.has(h.pack)));
    if (needed) unmark.add(id);
    else doomed.push(id);
  }
  const free: string[] = [];
  for (const id of doomed) {
    const until = await repo.packRetainedUntil(id).catch(() => null);
    if (until) res.retained.push({ pack: id, until: until.toISOString() });
    else free.push(id);
  }
  // Before anything goes: catalogs that sync from a cursor learn of the deletion only here.
  if (free.length) await saveDeletionRecord(repo, free);
  if (catalog && free.length) updateCatalog(catalog, free);
  const gone = new Set<string>();
  for (const id of free) {
    const out = await deleteMarkedPack(repo, id, inv.indexes.has(id));
    if (out.kept) {
      // Refused by the store (retention we did not see): kept, and said when it may go if the store tells.
      res.retained.push({ pack: id, until: out.until?.toISOString() ?? 'unknown' });
      continue;
    }
    gone.add(id);
    if (inv.indexes.has(id)) res.deleted.push(id);
    else if (inv.packSizes.has(id)) res.orphans.push(id);
  }
  res.unmarked = [...unmark];
  if (unmark.size) log(`prune: ${unmark.size} marked packs are referenced again (a snapshot reused them): unmarked`);
  for (const r of res.retained) log(`prune: pack ${r.pack.slice(0, 12)} is under object-lock retention until ${r.until}: kept`);
  // Records: what is neither gone nor unmarked stays marked, with its first mark time.
  for (const r of records) {
    const left = r.packs.filter((p) => !gone.has(p) && !unmark.has(p));
    if (left.length === r.packs.length) continue;
    if (left.length)
      await saveGarbage(repo, { v: 1, packs: left, grace_ms: r.grace_ms, host: r.host, marked: new Date(r.markedMs).toISOString() });
    await deleteGarbage(repo, r.id);
  }
  const stillMarked = new Set<string>();
  for (const r of records) for (const p of r.packs) if (!gone.has(p) && !unmark.has(p)) stillMarked.add(p);
  res.waiting = stillMarked.size;
  if (gone.size) log(`prune: deleted ${gone.size} packs marked as garbage`);
  return res;
}

/** The report before anything is changed: what was found, nothing freed yet. */
function newReport(inv: PackInventory, usage: Usage, dryRun: boolean, temps: { size: number }[], skewMs: number): PruneReport {
  const bytesBefore = [...inv.packSizes.values()].reduce((a, b) => a + b, 0);
  return {
    dry_run: dryRun,
    snapshots: usage.snapshotIds.size,
    trees_walked: usage.trees,
    blobs_used: usage.used.size,
    packs_before: inv.packSizes.size,
    packs_deleted: 0,
    packs_repacked: 0,
    packs_written: 0,
    orphan_packs_deleted: 0,
    packs_marked: 0,
    packs_unmarked: 0,
    packs_waiting: 0,
    retained_skipped: [],
    retained_kept: [],
    retention_extended: 0,
    clock_skew_ms: skewMs,
    bytes_before: bytesBefore,
    bytes_after: bytesBefore,
    bytes_freed: 0,
    stale_temps_removed: temps.length,
    stale_temp_bytes_removed: temps.reduce((n, t) => n + t.size, 0),
  };
}

/** A dry run's report: what the plan would mark (and, once the grace is over, free). */
function estimateFreed(report: PruneReport, inv: PackInventory, garbage: PrunePlan): PruneReport {
  const size = (id: string) => inv.packSizes.get(id) ?? 0;
  const freed =
    [...garbage.unused, ...garbage.orphans].reduce((n, id) => n + size(id), 0) +
    garbage.repack.reduce((n, p) => n + size(p.index.pack) - p.usedBytes, 0);
  return Object.assign(report, {
    packs_deleted: garbage.unused.length,
    packs_repacked: garbage.repack.length,
    orphan_packs_deleted: garbage.orphans.length,
    packs_marked: garbage.unused.length + garbage.repack.length + garbage.orphans.length,
    bytes_freed: freed,
    bytes_after: report.bytes_before - freed,
  });
}

/**
 * The catalog first, in one transaction, before any delete: drop the packs about to go; each
 * blob row moves to a surviving copy (blob_alt). So a kill during the deletes cannot leave the
 * catalog without a location for a blob that still exists.
 */
function updateCatalog(catalog: Catalog, doomed: string[]): void {
  catalog.atomic(() => {
    for (const id of doomed) catalog.removePack(id);
  });
}

/**
 * The grace period as given by a person: whole numbers with s, min, h, d (combined: "1d12h");
 * "0" or "0s" for none. Refuses anything else, and more than a year (a typo, not a policy).
 */
export function parseGrace(v: string): number {
  const src = v.trim();
  if (src === '0') return 0;
  const re = /(\d+)(min|s|h|d)/y;
  const unit: Record<string, number> = { s: 1000, min: 60_000, h: 3600_000, d: 86_400_000 };
  let ms = 0;
  let pos = 0;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    ms += Number(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  if (!src || pos !== src.length) throw new Error(`"${v}" is not a grace period (use e.g. 24h, 2d, 90min, 0s)`);
  if (ms > 365 * 86_400_000) throw new Error(`grace period "${v}" is longer than a year; give at most 365d`);
  return ms;
}
