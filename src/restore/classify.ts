import { lightFromVersion, type BlobLocationRow, type LightEntry } from '../catalog/catalog.js';
import { runDirTasks } from '../livefs/dirtasks.js';
import { components, display, type RawPath } from '../util/rawpath.js';
import { chunkRefs, contentWasRead, relOf, wire, type RestoreRun } from './context.js';
import { countOutcome, emptyCounts } from './outcomes.js';
import type { ClassifyResult, RestoreDirTask, WireEntry, WorkerReply } from './protocol.js';
import { safeSnapshotPath } from './scope.js';

/**
 * Phase 1, classify: the workers walk the snapshot's directories below each root themselves
 * (worker-walk.ts, directories handed out by livefs/dirtasks.ts), compare the entries with the
 * live tree, and in the direct strategy also write them; this thread sends the ancestors and
 * each root entry itself, and turns what the workers send back into the plan (content to
 * write, links to make, directories whose metadata is set at the end) and the tally.
 */

interface Pending {
  v: LightEntry;
  w: WireEntry;
  loc?: BlobLocationRow | null;
}

/**
 * The ancestors of a root and the root itself: one batch to the first worker, answered before
 * the workers go below the root (what they create there must exist first).
 */
async function classifyPath(run: RestoreRun, items: Pending[]): Promise<void> {
  if (!items.length) return;
  run.tally.progress.entries += items.length;
  const msg = run.direct
    ? {
        op: 'restore' as const,
        items: items.map((x) => ({
          entry: x.w,
          // Metadata mode never writes content: no chunk locations to look up or send.
          chunks: run.mode === 'metadata' ? null : chunkRefs(x.v, x.loc, (id) => run.s.catalog.blobLocation(id)),
        })),
      }
    : { op: 'classify' as const, items: items.map((x) => x.w) };
  const reply = await run.pool.submit(msg, [], 0);
  reply.results.forEach((r, i) => onClassified(run, items[i].v, items[i].w, r as ClassifyResult));
  run.tally.noteDirs(reply);
}

export async function classifyAll(run: RestoreRun): Promise<void> {
  run.s.catalog.flush(); // workers read the catalog file through their own connections
  for (const root of run.scope.roots) {
    // Ancestors first: created when missing so the tree has the snapshot's owners and modes there too.
    const path: Pending[] = [];
    let anc = '';
    for (const c of components(root).slice(0, -1)) {
      anc += '/' + c;
      const v = run.s.catalog.entry(run.snap, anc);
      if (v && v.type === 'dir') path.push({ v: lightFromVersion(v, null), w: wire(run, lightFromVersion(v, null), true) });
    }
    const below = rootTask(run, root, path);
    await classifyPath(run, path);
    if (below) {
      await runDirTasks(
        run.pool,
        [below],
        (dirs) => ({ op: 'walk' as const, dirs }),
        (m, queue) => onWalked(run, m, queue),
        2,
      );
    }
  }
}

/**
 * Queues the root entry itself (when the scope covers it) and returns the directory task
 * below it, or null when nothing below it is restored (a file, or refused).
 */
function rootTask(run: RestoreRun, root: RawPath, path: Pending[]): RestoreDirTask | null {
  const { scope } = run;
  if (root === '/') {
    const id = run.s.catalog.pathId('/');
    return id === undefined ? null : { id, path: '/', fresh: false };
  }
  const v = run.s.catalog.entryForRestore(run.snap, root);
  if (!v) return null;
  if (!safeSnapshotPath(v.path) || (v.type === 'hardlink' && (v.target === null || !safeSnapshotPath(v.target)))) {
    run.tally.error(v.path, 'unsafe path in the snapshot (.., NUL, or an invalid name); refused');
    return null;
  }
  if (scope.excluded(v.path)) return null;
  // With --include only matching files are restored; directories are made on demand for them.
  if (!scope.included || (v.type !== 'dir' && scope.included(v.path))) path.push({ v, w: wire(run, v), loc: v.loc });
  return v.type === 'dir' ? { id: v.pathId, path: root, fresh: false } : null;
}

/** What a worker's walk of some directories found: its counts, the entries to plan, the directories it handed back. */
function onWalked(run: RestoreRun, m: WorkerReply, queue: RestoreDirTask[]): void {
  const walked = m.walk!;
  run.tally.merge(walked.counts);
  for (const e of walked.errors) run.tally.error(e.path, e.message);
  for (const it of walked.items) onClassified(run, it.v, it.w, it.r);
  run.tally.noteDirs(m);
  for (const t of walked.more) queue.push(t);
  run.tally.tick();
}

function onClassified(run: RestoreRun, v: LightEntry, w: WireEntry, r: ClassifyResult): void {
  const { tally } = run;
  const counted = emptyCounts();
  if (countOutcome(counted, v, r, !!run.o.dryRun)) {
    tally.merge({ ...counted, entries: 0 });
    return;
  }
  const bytes = v.type === 'file' || v.type === 'hardlink' ? v.size : 0;
  const action = (a: string, reason?: string) => tally.action(v.path, a, { bytes: a.startsWith('restore') ? bytes : 0, reason });
  switch (r.outcome) {
    case 'written':
      tally.note(r.why ? 'replace (extra hard links)' : 'restore', v.size);
      tally.restored(v.size);
      return;
    case 'content':
      planContent(run, v, w, r, action);
      return;
    case 'link':
      planLink(run, v, w, r);
      return;
    case 'created':
      tally.note(v.type === 'dir' ? 'mkdir' : `create ${v.type}`);
      action(v.type === 'dir' ? 'mkdir' : `restore (${v.type})`);
      if (v.type !== 'dir') tally.res.files_restored++;
      else {
        tally.res.dirs_created++;
        if (!run.o.dryRun) run.plan.addDir(w.rel, w);
      }
      return;
    case 'meta':
    case 'dirmeta':
      tally.note('metadata');
      action('metadata');
      tally.res.metadata_fixed++;
      if (r.outcome === 'dirmeta' && !run.o.dryRun) run.plan.addDir(w.rel, w);
      return;
    case 'error':
      tally.error(v.path, r.msg ?? 'failed');
      action('error', r.msg);
      return;
    default:
      onSkipped(run, v, w, r, action);
  }
}

function planContent(run: RestoreRun, v: LightEntry, w: WireEntry, r: ClassifyResult, action: (a: string, reason?: string) => void): void {
  contentWasRead(v);
  const blobs = v.content ?? [];
  const loc = blobs.length === 1 ? run.s.catalog.blobLocation(blobs[0]) : undefined;
  if (blobs.length === 1 && !loc) {
    run.tally.error(v.path, `content blob ${blobs[0].slice(0, 12)} is not in the repository index`);
    return;
  }
  run.plan.addContent(w.rel, w, blobs, loc, !!r.replace, !!r.fresh);
  // A name holding someone else's inode (extra hard links) gets a fresh copy; the plan says so.
  run.tally.note(r.why ? 'replace (extra hard links)' : r.replace ? 'replace' : 'restore', v.size);
  action(r.replace ? 'restore (replace)' : 'restore', r.why);
  if (run.o.dryRun) run.tally.res.files_restored++;
}

function onSkipped(run: RestoreRun, v: LightEntry, w: WireEntry, r: ClassifyResult, action: (a: string, reason?: string) => void): void {
  const { tally } = run;
  if (v.type !== 'dir') tally.res.files_skipped++;
  // A surviving name of a hard-link group: a missing first name can be linked back to it.
  if (v.type === 'hardlink' && v.target !== null && (r.outcome === 'skip-present' || r.outcome === 'skip-same') && !run.o.dryRun) {
    run.plan.addSurvivor(relOf(v.target), w.rel, w);
  }
  // Directories on lines of their own: the plan's skip lines then add up to files_skipped.
  tally.note(v.type === 'dir' ? `${r.outcome} (dirs)` : r.outcome);
  if (r.outcome === 'skip-newer') tally.skippedNewer(v.path);
  if (r.outcome === 'skip-nocontent') tally.error(v.path, r.msg ?? 'no content in the snapshot');
  if (r.outcome !== 'skip-present' && r.outcome !== 'skip-same') action(r.outcome, r.msg);
  else if (v.type !== 'dir') action(r.outcome);
}

/**
 * A missing hardlink name. Its target must be a file entry of this snapshot (a hostile
 * snapshot may name any path, /etc/shadow included): anything else is refused as unsafe.
 * A target inside the restored scope is linked once it is restored or verified; one outside
 * the scope is never touched, this name gets a copy of the content of its own.
 */
function planLink(run: RestoreRun, v: LightEntry, w: WireEntry, r: ClassifyResult): void {
  const target = v.target;
  const first = target !== null && target !== v.path ? run.s.catalog.entry(run.snap, target) : undefined;
  if (!first || first.type !== 'file') {
    run.tally.error(
      v.path,
      `unsafe hardlink in the snapshot: its target ${display(target ?? '(none)')} is not a file of this snapshot; refused`,
    );
    return;
  }
  if (!run.scope.covers(target!)) {
    onClassified(run, v, { ...w, type: 'file' }, { outcome: 'content', replace: r.replace });
    return;
  }
  contentWasRead(v);
  const src = wire(run, lightFromVersion(first, null));
  run.plan.addLink(w.rel, relOf(target!), w, v.content ?? [], !!r.replace, {
    size: src.size,
    mtimeNs: src.mtimeNs,
    uid: src.uid,
    gid: src.gid,
    nlink: src.nlink,
  });
  run.tally.note('hardlink');
  run.tally.action(v.path, 'restore (hardlink)');
  if (run.o.dryRun) run.tally.res.files_restored++;
}
