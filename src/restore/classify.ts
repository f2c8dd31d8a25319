import { lightFromVersion, type BlobLocationRow, type LightEntry } from '../catalog/catalog.js';
import { components, display, isUnder, type RawPath } from '../util/rawpath.js';
import { BATCH, relOf, wire, type RestoreRun } from './context.js';
import type { ChunkRef, ClassifyResult, WireEntry } from './protocol.js';
import { safeSnapshotPath } from './scope.js';

/**
 * Phase 1, classify: walks the snapshot below each root, sends entries in batches to the
 * workers (which compare them with the live tree, and in the direct strategy also write them),
 * and turns their answers into the plan (content to write, links to make, directories whose
 * metadata is set at the end) and the tally.
 */

interface Pending {
  v: LightEntry;
  w: WireEntry;
  loc?: BlobLocationRow | null;
}

/** The first component below the restore root (depth `rootDepth`): the subtree an entry belongs to; null for the root itself. */
function subtreeOf(p: RawPath, rootDepth: number): string | null {
  let i = 0;
  // i ends on the slash before the first component below the root ('/' has depth 0).
  for (let d = 0; d < rootDepth; d++) {
    i = p.indexOf('/', i + 1);
    if (i < 0) return null;
  }
  const end = p.indexOf('/', i + 1);
  return end < 0 ? p.slice(i + 1) : p.slice(i + 1, end);
}

/** Batches per worker, a bounded number in flight. */
class Batcher {
  private readonly batches: Pending[][];
  private readonly inflight: Promise<void>[] = [];
  /** Entries sent to each worker and not yet answered. */
  private readonly outstanding: number[];
  /** The worker of each subtree: a subtree stays with one worker, so the worker that creates a directory also gets its contents. */
  private readonly subtrees = new Map<string, number>();

  constructor(private readonly run: RestoreRun) {
    this.batches = Array.from({ length: run.pool.size }, () => []);
    this.outstanding = this.batches.map(() => 0);
  }

  /**
   * The worker for an entry of subtree `key` (null: the root itself, worker 0). A subtree seen
   * first goes to the least loaded worker: subtrees come one after another in path order, so
   * this spreads them by size, where a hash of their names would pile big ones on one thread.
   */
  workerFor(key: string | null): number {
    if (key === null) return 0;
    let wi = this.subtrees.get(key);
    if (wi === undefined) {
      wi = 0;
      for (let k = 1; k < this.batches.length; k++) if (this.load(k) < this.load(wi)) wi = k;
      this.subtrees.set(key, wi);
    }
    return wi;
  }

  private load(wi: number): number {
    return this.outstanding[wi] + this.batches[wi].length;
  }

  /** Queues an entry; a promise only when a batch was sent and the caller must wait for room. */
  add(wi: number, item: Pending): Promise<void> | null {
    this.batches[wi].push(item);
    this.run.tally.progress.entries++;
    return this.batches[wi].length >= BATCH ? this.flush(wi) : null;
  }

  async flush(wi: number): Promise<void> {
    const items = this.batches[wi];
    if (!items.length) return;
    this.batches[wi] = [];
    this.outstanding[wi] += items.length;
    const { run } = this;
    const msg = run.direct
      ? // Metadata mode never writes content: no chunk locations to look up or send.
        {
          op: 'restore' as const,
          items: items.map((x) => ({ entry: x.w, chunks: run.mode === 'metadata' ? null : chunksOf(run, x.v, x.loc) })),
        }
      : { op: 'classify' as const, items: items.map((x) => x.w) };
    this.inflight.push(
      run.pool.submit(msg, [], wi).then((reply) => {
        this.outstanding[wi] -= items.length;
        reply.results.forEach((r, i) => onClassified(run, items[i].v, items[i].w, r as ClassifyResult));
        run.tally.noteDirs(reply);
      }),
    );
    const n = run.pool.size;
    if (this.inflight.length > n * 4) await Promise.all(this.inflight.splice(0, this.inflight.length - n * 2));
  }

  async flushAll(): Promise<void> {
    for (let wi = 0; wi < this.batches.length; wi++) await this.flush(wi);
  }

  async drain(): Promise<void> {
    await Promise.all(this.inflight);
  }
}

export async function classifyAll(run: RestoreRun): Promise<void> {
  const batcher = new Batcher(run);
  for (const root of run.scope.roots) {
    const rootDepth = root === '/' ? 0 : components(root).length;
    // Ancestors first: created when missing so the tree has the snapshot's owners and modes there too.
    let anc = '';
    for (const c of components(root).slice(0, -1)) {
      anc += '/' + c;
      const v = run.s.catalog.entry(run.snap, anc);
      if (v && v.type === 'dir') await batcher.add(0, { v: lightFromVersion(v, null), w: wire(run, lightFromVersion(v, null), true) });
    }
    for (const v of entriesBelow(run, root)) {
      const wait = batcher.add(batcher.workerFor(subtreeOf(v.path, rootDepth)), { v, w: wire(run, v), loc: v.loc });
      if (wait) await wait;
      run.tally.tick();
    }
    // Ancestors and a root's entries must be in place before the next root's.
    await batcher.flushAll();
  }
  await batcher.drain();
}

/** The snapshot's entries below `root` that this restore covers; unsafe paths are named and skipped. */
function* entriesBelow(run: RestoreRun, root: RawPath): Iterable<LightEntry> {
  const { scope } = run;
  let skipBelow: RawPath | null = null;
  for (const v of run.s.catalog.walkForRestore(run.snap, root)) {
    if (skipBelow !== null && isUnder(v.path, skipBelow)) continue;
    skipBelow = null;
    if (!safeSnapshotPath(v.path) || (v.type === 'hardlink' && (v.target === null || !safeSnapshotPath(v.target)))) {
      run.tally.error(v.path, 'unsafe path in the snapshot (.., NUL, or an invalid name); refused');
      if (v.type === 'dir') skipBelow = v.path;
      continue;
    }
    if (scope.excluded(v.path)) {
      if (v.type === 'dir') skipBelow = v.path;
      continue;
    }
    if (scope.included && v.type !== 'dir' && !scope.included(v.path)) continue;
    if (scope.included && v.type === 'dir') continue; // created on demand for included files
    yield v;
  }
}

/** Chunk locations for the direct strategy; null when a chunk is not in the index. */
function chunksOf(run: RestoreRun, v: LightEntry, first: BlobLocationRow | null | undefined): ChunkRef[] | null {
  if (!v.content || (v.type !== 'file' && v.type !== 'hardlink')) return null;
  const out: ChunkRef[] = [];
  for (let i = 0; i < v.content.length; i++) {
    const loc = i === 0 && first ? first : run.s.catalog.blobLocation(v.content[i]);
    if (!loc) return null;
    out.push({ pack: loc.pack, offset: loc.offset, length: loc.length, id: v.content[i] });
  }
  return out;
}

function onClassified(run: RestoreRun, v: LightEntry, w: WireEntry, r: ClassifyResult): void {
  const { tally } = run;
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
