import type { BlobLocationRow } from '../catalog/catalog.js';
import { CatalogReader, type RestoreChild, type RestoreName } from '../catalog/reader.js';
import { makeMatcher } from '../util/globs.js';
import { IdNames } from '../util/ids.js';
import type { RawPath } from '../util/rawpath.js';
import { chunkRefs, relOf, wireEntry } from './context.js';
import { countOutcome, countSkipped, emptyCounts } from './outcomes.js';
import type { ClassifyResult, RestoreDirTask, WalkReply, WireEntry } from './protocol.js';
import { safeSnapshotPath } from './scope.js';
import type { EntryType } from '../repo/tree.js';
import { classifyBatch, liveNames, liveStats } from './worker-classify.js';
import { DIGEST_SKIP_OFF, DirDigest, digestListing, digestMatches } from '../livefs/dirdigest.js';
import { ShortcutProbe } from '../util/shortcutprobe.js';
import { restoreEntries } from './worker-content.js';
import { worker } from './worker-state.js';

/**
 * The walk in a worker (issue 17): the thread reads the snapshot's directories from the
 * catalog itself (its own read-only connection: one indexed query per directory), applies the
 * restore's scope, compares and restores the entries, and sends back only what the
 * orchestrator must see. The orchestrator's thread then walks nothing and clones no entry: a
 * pass with nothing to do costs each thread a query and a scan per directory.
 */

interface Walk {
  catalog: CatalogReader;
  snap: { lineage: number; seq: number };
  excluded: (p: RawPath) => boolean;
  included: ((p: RawPath) => boolean) | null;
  byName: IdNames | null;
  fingerprints: boolean;
  /** Blob locations looked up (bounded): the files that share content (a CMS core) share lookups too. */
  located: Map<string, BlobLocationRow | undefined>;
}

const MAX_LOCATED = 8192;

function locate(w: Walk, id: string): BlobLocationRow | undefined {
  if (w.located.has(id)) return w.located.get(id);
  if (w.located.size >= MAX_LOCATED) w.located.clear();
  const loc = w.catalog.blobLocation(id);
  w.located.set(id, loc);
  return loc;
}

let walk: Walk | null = null;

/** Entries the thread handles before it hands the rest of its directories back (balancing). */
const BUDGET_ENTRIES = 4000;
/** A directory's entries are compared and written this many at a time (bounded memory for huge directories). */
const CHUNK = 2048;

function opened(): Walk {
  if (walk) return walk;
  const w = worker.init.walk;
  walk = {
    catalog: CatalogReader.openReadOnly(w.catalogFile),
    snap: { lineage: w.lineage, seq: w.seq },
    excluded: makeMatcher(w.exclude),
    included: w.include ? makeMatcher(w.include) : null,
    byName: w.ownerByName ? new IdNames() : null,
    fingerprints: worker.init.mode === 'checksum',
    located: new Map(),
  };
  return walk;
}

/** Works directories depth first until the budget is spent; the rest go back in `more`. */
export function walkDirs(tasks: RestoreDirTask[]): WalkReply {
  const out: WalkReply = { counts: emptyCounts(), items: [], errors: [], more: [] };
  const local = [...tasks];
  const w = opened();
  // One read transaction for the batch's queries, not one per statement (CatalogDb.reading).
  w.catalog.reading(() => {
    while (local.length) {
      walkDir(w, local.pop()!, out, local);
      if (out.counts.entries >= BUDGET_ENTRIES) break;
    }
  });
  out.more = local;
  return out;
}

const UNSAFE = 'unsafe path in the snapshot (.., NUL, or an invalid name); refused';

function walkDir(w: Walk, task: RestoreDirTask, out: WalkReply, local: RestoreDirTask[]): void {
  if (task.fresh && !worker.init.dryRun) worker.freshDirs.add(relOf(task.path));
  if (untouchedSinceSnapshot(w, task, out, local)) return;
  const todo: RestoreChild[] = [];
  const below: { pathId: number; path: RawPath }[] = [];
  const missingMode = !task.fresh && worker.init.mode === 'missing' && !worker.init.dryRun;
  // Missing mode: the names first, unless the last directories were mostly missing (then one
  // read of every row is cheaper), looking again every 16th directory.
  const present = missingMode && namesFirst.worth() ? presentNames(w, task) : null;
  const opts = {
    owners: w.byName !== null,
    fingerprints: w.fingerprints,
    // Metadata mode writes no content: whether a file has any is all it reads of it.
    content: worker.init.mode !== 'metadata',
    // Every file (a directory this run created) or most files (missing mode, where the last
    // directories were mostly missing) will be written: their locations come with the rows.
    locations:
      (task.fresh || (missingMode && !present && !namesFirst.likely)) && worker.init.repoDir !== null && worker.init.mode !== 'metadata',
  };
  // An unsafe name is refused, an excluded one skipped, a directory walked; with --include only
  // matching files are restored (directories are made on demand for them).
  const wanted = (n: { pathId: number; path: RawPath; type: EntryType }): boolean => {
    if (!safeSnapshotPath(n.path)) {
      out.errors.push({ path: n.path, message: UNSAFE });
      return false; // a directory: nothing below it either
    }
    if (w.excluded(n.path)) return false;
    if (n.type === 'dir') below.push(n);
    return !(w.included && (n.type === 'dir' || !w.included(n.path)));
  };
  const accept = (v: RestoreChild) => {
    if (v.type === 'hardlink' && (v.target === null || !safeSnapshotPath(v.target))) out.errors.push({ path: v.path, message: UNSAFE });
    else todo.push(v);
  };
  if (present) {
    const fetch: RestoreName[] = [];
    // Missing mode in a directory that is there: most names usually are too. Those are counted
    // from their names alone; every column is read only for the entries to create.
    let presentFiles = 0;
    let presentDirs = 0;
    for (const n of present.names) {
      if (!wanted(n)) continue;
      if (present.live.has(n.path.slice(present.skip)) && !n.linked) {
        if (n.type === 'dir') presentDirs++;
        else presentFiles++;
        continue;
      }
      fetch.push(n);
    }
    countSkipped(out.counts, 'skip-present', presentFiles, presentDirs);
    // Every one fetched is missing, so written: the locations come with the rows.
    const written = { ...opts, locations: worker.init.repoDir !== null };
    for (const v of w.catalog.childrenForRestoreByIds(fetch, w.snap, written)) accept(v);
  } else {
    for (const v of w.catalog.childrenForRestore(task.id, task.path, w.snap, opts)) if (wanted(v)) accept(v);
  }
  const created = new Set<number>();
  for (let i = 0; i < todo.length; i += CHUNK) classifyChunk(w, todo.slice(i, i + CHUNK), out, created);
  // Pushed in reverse: popped in name order.
  for (let i = below.length - 1; i >= 0; i--) local.push({ id: below[i].pathId, path: below[i].path, fresh: created.has(below[i].pathId) });
}

const digest = new DirDigest();
/** Metadata mode: whether directories lately were untouched (a damaged tree stops paying for the digest). */
const digestFirst = new ShortcutProbe(1 / 3);

/**
 * A metadata repair over a directory nobody touched since the snapshot (issue 17): when the live
 * directory's stat digest (livefs/dirdigest.ts) equals the one the snapshot recorded for the
 * directory's tree, every entry is there with the very stat fields the snapshot recorded, ctime
 * and inode included, so nothing in it differs: its entries are counted as the compare would
 * count them ('skip-same') without reading their rows, and its subdirectories are walked as
 * usual. The snapshot trusts the same digest to reuse a tree unread. Anything the proof does
 * not cover takes the compare: owners mapped by name, --include/--exclude, a dry run (it lists
 * every entry), and what digestListing refuses. Returns whether it handled the directory.
 */
function untouchedSinceSnapshot(w: Walk, task: RestoreDirTask, out: WalkReply, local: RestoreDirTask[]): boolean {
  const init = worker.init;
  if (init.mode !== 'metadata' || task.fresh || init.dryRun || w.byName !== null || w.included || init.walk.exclude.length) return false;
  if (DIGEST_SKIP_OFF || !digestFirst.worth()) return false;
  const recorded = w.catalog.dirDigest(task.id, w.snap);
  const live = recorded === undefined ? null : liveStats(relOf(task.path));
  const listing = live === null ? null : digestListing([...live.index], live, digest, worker.hasher);
  const untouched = digestMatches(recorded, listing);
  digestFirst.saw(untouched);
  if (!untouched) return false;
  const subdirs = listing.entries.filter((e) => e.type === 'dir').map((e) => e.name);
  const ids = w.catalog.childPathIds(task.id, subdirs);
  if (ids.some((id) => id === undefined)) return false;
  countSkipped(out.counts, 'skip-same', listing.entries.length - subdirs.length, subdirs.length);
  const prefix = task.path === '/' ? '/' : task.path + '/';
  // Pushed in reverse: popped in name order.
  for (let k = subdirs.length - 1; k >= 0; k--) local.push({ id: ids[k]!, path: prefix + subdirs[k], fresh: false });
  return true;
}

/** Missing mode: the share of names present in the directories looked at lately; at least half: names first. */
const namesFirst = new ShortcutProbe(0.5);

/**
 * For a missing-mode pass: the directory's snapshot names and the live names, when the live
 * directory is there and at most half its names are missing (else reading every row at once
 * is cheaper than one lookup per missing name). `skip` cuts a path to its last component.
 */
function presentNames(w: Walk, task: RestoreDirTask): { names: RestoreName[]; live: ReadonlyMap<string, number>; skip: number } | null {
  const live = liveNames(relOf(task.path));
  if (!live) return null;
  const names = w.catalog.childNamesForRestore(task.id, task.path, w.snap);
  const skip = task.path === '/' ? 1 : task.path.length + 1;
  let missing = 0;
  for (const n of names) if (!live.has(n.path.slice(skip))) missing++;
  if (names.length) namesFirst.saw(1 - missing / names.length);
  return missing * 2 > names.length ? null : { names, live, skip };
}

function classifyChunk(w: Walk, entries: RestoreChild[], out: WalkReply, created: Set<number>): void {
  const wires: WireEntry[] = entries.map((v) => wireEntry(v, w.byName));
  const direct = worker.init.repoDir !== null;
  const res: ClassifyResult[] = direct
    ? restoreEntries(wires, (k) => chunkRefs(entries[k], entries[k].loc, (id) => locate(w, id)))
    : classifyBatch(wires);
  const dryRun = worker.init.dryRun;
  out.counts.entries += entries.length;
  for (let k = 0; k < entries.length; k++) {
    const v = entries[k];
    const r = res[k];
    if (v.type === 'dir' && r.outcome === 'created') created.add(v.pathId);
    if (countOutcome(out.counts, v, r, dryRun)) continue;
    out.items.push({ v, w: wires[k], r });
  }
}
