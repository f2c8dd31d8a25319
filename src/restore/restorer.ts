import * as fs from 'node:fs';
import { loadBlobCodec } from '../pack/nativecodec.js';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RepoContext } from '../catalog/context.js';
import { native } from '../livefs/native.js';
import { WorkerPool, type SpawnedPool } from '../livefs/pool.js';
import { WriteGate } from '../livefs/writegate.js';
import { SafeRoot } from '../livefs/safepath.js';
import { IdNames } from '../util/ids.js';
import { display, fromUser, normalizeAbs, toFs, type RawPath } from '../util/rawpath.js';
import { workerUrl } from '../util/workerurl.js';
import { classifyAll } from './classify.js';
import { writeContent } from './content.js';
import { relOf, type RestoreRun } from './context.js';
import { setDirMetadata } from './dirmeta.js';
import { deleteExtras } from './extras.js';
import { RestoreJournal, sweepTemps } from './journal.js';
import { relinkGroupFirsts, writeLinks } from './links.js';
import type { RestoreOptions } from './options.js';
import { RestorePlan } from './plan.js';
import type { RestoreMode, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import { Scope } from './scope.js';
import { Tally, type RestoreResult } from './tally.js';
import { OptionError } from '../util/errors.js';

export type { RestoreMode, RestoreOptions, RestoreStrategy } from './options.js';
export type { RestoreAction, RestoreProgress, RestoreResult } from './tally.js';

const MODES: RestoreMode[] = ['missing', 'changed', 'checksum', 'metadata', 'all'];

/**
 * Puts back what is missing or differs, from a snapshot, in parallel (docs/OPERATIONS.md).
 * Phases: classify (classify.ts), hard-link group firsts and content (links.ts, content.ts),
 * other hard links, --delete (extras.ts), directory metadata (dirmeta.ts); counted in tally.ts.
 */
export async function restore(s: RepoContext, o: RestoreOptions): Promise<RestoreResult> {
  // No slow fallback: without the addons the restore stops here, in one line naming the build step.
  native();
  loadBlobCodec();
  const mode = o.mode ?? 'missing';
  if (!MODES.includes(mode))
    throw new OptionError((n) => `unknown ${n('mode')} "${mode}": use missing, changed, checksum, metadata or all`);
  const local = typeof s.repo.store.localPath === 'function';
  if (o.strategy === 'direct' && !local) throw new Error('the direct restore strategy needs a local repository');
  const snap = o.snapshot;
  const scope = new Scope(s.catalog, snap, o);
  const targetRoot = o.target ? normalizeAbs(fromUser(path.resolve(o.target))) : '/';
  const tally = new Tally(snap.id, mode, targetRoot, !!o.dryRun, o.onProgress);
  reportDamage(s, o, scope, tally);
  const writable = o.writable ?? Promise.resolve();
  // The threads load their modules now (~0.15 s), while the key is derived and the run prepared;
  // they start walking at `init` below.
  const spawned = WorkerPool.spawn<WorkerRequest, WorkerReply>(workerUrl(import.meta.url, 'worker.js'), restoreThreads(o.threads), {
    depth: 4,
    label: 'restore worker',
  });
  try {
    await walkRestore(s, o, { mode, local, scope, targetRoot, tally, writable }, spawned);
  } finally {
    await spawned.close(); // the threads of a run that never started them (else already closed)
  }
  return tally.finish();
}

/** What `restore` settled before its threads start. */
interface Prepared {
  mode: RestoreMode;
  local: boolean;
  scope: Scope;
  targetRoot: RawPath;
  tally: Tally;
  writable: Promise<void>;
}

/** The run itself, its threads already loading (started at `init`, closed at the end). */
async function walkRestore(
  s: RepoContext,
  o: RestoreOptions,
  { mode, local, scope, targetRoot, tally, writable }: Prepared,
  spawned: SpawnedPool<WorkerRequest, WorkerReply>,
): Promise<void> {
  const snap = o.snapshot;
  // The workers open the target when they start: one that does not exist yet is made first, so
  // only then does the walk wait for the key (a restore into place, the repairs, never does).
  if (o.target && !o.dryRun && !fs.existsSync(toFs(targetRoot))) {
    await writable;
    fs.mkdirSync(toFs(targetRoot), { recursive: true, mode: 0o700 });
  }
  // A dry run into a target that does not exist yet: every entry is missing; plan against an empty scratch root.
  const workerRoot =
    o.target && o.dryRun && !fs.existsSync(toFs(targetRoot)) ? fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-dry-')) : targetRoot;
  const cacheDir = path.dirname(s.catalog.file);
  const journal = new RestoreJournal(cacheDir, targetRoot);
  const interrupted = !o.dryRun && journal.hadInterruptedRun();
  // Directories an interrupted run created still carry their temporary 0700 state: finish them.
  if (interrupted) for (const rel of journal.leftovers()) tally.createdDirs.add(rel);
  // umask 0 for the duration: files are created with their snapshot mode directly (one chmod less per file).
  const oldUmask = o.dryRun ? null : process.umask(0);
  const plan = new RestorePlan(path.join(cacheDir, `restore-plan-${process.pid}.db`));
  let pool: WorkerPool<WorkerRequest, WorkerReply> | null = null;
  const direct = local && o.strategy !== 'planned';
  const gate = new WriteGate();
  // Opened once the run may write: the journal's directory first (workers journal into it). A
  // dry run's workers have no gate (they never write).
  const opened = writable.then(() => {
    if (o.dryRun) return;
    journal.open();
    gate.open(direct ? s.repo.blobKey() : null);
  });
  opened.catch(() => {}); // awaited by runPhases; a rejection is not "unhandled" meanwhile
  try {
    const chown = process.getuid?.() === 0;
    const init: WorkerInit = {
      root: workerRoot,
      mode,
      dryRun: !!o.dryRun,
      overwriteNewer: !!o.overwriteNewer,
      snapshotTimeNs: snapshotTimeNs(snap.time).toString(),
      chown,
      umask: oldUmask === null ? process.umask() : 0,
      journalDir: o.dryRun ? null : journal.dir,
      repoDir: direct ? s.repo.store.localPath!('') : null,
      gate: o.dryRun ? null : gate.shared,
      walk: {
        catalogFile: s.catalog.file,
        lineage: snap.lineage,
        seq: snap.seq,
        exclude: o.exclude ?? [],
        include: o.include?.length ? o.include : null,
        ownerByName: !!o.ownerByName,
      },
    };
    // Where the workers fill every core, their walk waits for the key (see api/restore.ts).
    if (o.walkAfterWritable) await writable;
    pool = await spawned.init(init);
    const run: RestoreRun = {
      s,
      o,
      snap,
      mode,
      targetRoot,
      scope,
      tally,
      plan,
      pool,
      journal: o.dryRun ? null : journal,
      direct,
      snapshotTimeNs: snapshotTimeNs(snap.time),
      policy: { chown, umask: init.umask },
      ids: new IdNames(),
    };
    await runPhases(run, interrupted, opened);
  } finally {
    if (oldUmask !== null) process.umask(oldUmask);
    await pool?.close();
    plan.close();
    if (workerRoot !== targetRoot) fs.rmSync(workerRoot, { recursive: true, force: true });
  }
}

/** How many worker threads a restore runs: `threads`, else 2-4 by the machine's cores. */
export function restoreThreads(threads?: number): number {
  return Math.max(1, threads ?? Math.min(4, Math.max(2, os.availableParallelism())));
}

/**
 * (issue 11) Entries the catalog import refused (unsafe names) or lost (unreadable tree blob):
 * everything else is restored, these are named and the restore exits 3. --delete would take a
 * lost listing for an empty directory and delete the live contents: refused outright.
 */
function reportDamage(s: RepoContext, o: RestoreOptions, scope: Scope, tally: Tally): void {
  for (const r of scope.roots) {
    for (const d of s.catalog.damagedUnder(o.snapshot, r)) {
      if (o.delete && s.catalog.dirLost(o.snapshot, d.path) !== undefined) {
        throw new OptionError(
          (n) =>
            `${n('delete')} refused: the snapshot lost the listing of ${display(d.path)} (${d.message}); restore without ${n('delete')}, or that path from another snapshot`,
        );
      }
      tally.error(d.path, d.message);
    }
  }
}

function snapshotTimeNs(time: string): bigint {
  return BigInt(Date.parse(time)) * 1000000n;
}

/**
 * The phases in order. `opened` settles when the run may write: the walk (classifyAll) goes on
 * meanwhile, its workers' writes waiting at the gate; if it rejects (a wrong password), the run
 * stops with that error at once, workers still waiting, nothing written.
 */
async function runPhases(run: RestoreRun, interrupted: boolean, opened: Promise<void>): Promise<void> {
  const t0 = Date.now();
  const debug = (m: string) => run.o.onDebug?.(`[restore ${((Date.now() - t0) / 1000).toFixed(2)}s] ${m}`);
  debug('workers started');
  const refused = opened.then(() => new Promise<never>(() => {}));
  await Promise.race([classifyAll(run), refused]);
  debug('classified');
  await opened;
  debug('may write');
  const c = run.plan.counts();
  run.tally.progress.plannedFiles = c.content + c.links;
  run.tally.progress.plannedBytes = c.bytes;
  if (run.o.dryRun) {
    if (run.o.delete) deleteExtras(run);
    return;
  }
  await relinkGroupFirsts(run);
  await writeContent(run);
  debug('content written');
  await writeLinks(run);
  debug('links written');
  if (run.o.delete) deleteExtras(run);
  if (interrupted) sweepInterrupted(run.targetRoot, run.scope.roots);
  await setDirMetadata(run);
  run.journal!.finish();
  debug('dir metadata set');
}

/** Temp entries a killed run left below the roots. */
function sweepInterrupted(targetRoot: RawPath, roots: RawPath[]): void {
  const sweep = new SafeRoot(targetRoot);
  try {
    for (const r of roots) sweepTemps(sweep, relOf(r));
  } finally {
    sweep.close();
  }
}
