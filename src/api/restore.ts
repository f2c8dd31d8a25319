import * as os from 'node:os';
import { restore, restoreThreads, type RestoreOptions, type RestoreResult } from '../restore/restorer.js';
import { loadBlobCodec } from '../pack/nativecodec.js';
import { native } from '../livefs/native.js';
import { requestedRoots } from '../restore/scope.js';
import { nonRootRestoreNote } from '../restore/tally.js';
import type { SnapshotRow } from '../catalog/catalog.js';
import { display } from '../util/rawpath.js';
import type { Session } from './session.js';
import { pickSnapshot, type SnapshotRef } from './snapshots.js';

export interface RestoreSnapshotOptions extends Omit<RestoreOptions, 'snapshot'> {
  /** `latest`, an id, an id prefix, a query (reference, filters, onChosen), or a snapshot row. */
  snapshot: SnapshotRef;
  /** With `latest`: the newest snapshot of this host. */
  host?: string;
}

/** The snapshot a restore used, as its result names it. */
export interface RestoredSnapshot {
  id: string;
  time: string;
  host: string;
  paths: string[];
  tags: string[];
}

export type RestoreSnapshotResult = RestoreResult & { snapshot: RestoredSnapshot };

function described(r: SnapshotRow): RestoredSnapshot {
  return { id: r.id, time: r.time, host: r.host, paths: r.paths.map(display), tags: r.tags };
}

/**
 * Restores from a snapshot under the shared repository lock (a prune must not delete packs
 * the restore is reading); a dry run only reads the catalog and the live tree, so it takes none.
 * `latest` is the newest snapshot of a group holding the paths (or account) to restore.
 */
export async function restoreSnapshot(s: Session, o: RestoreSnapshotOptions): Promise<RestoreSnapshotResult> {
  // [issue 17, native-restore] No slow fallback: without the addon, one line and a non-zero exit before anything else.
  native();
  loadBlobCodec();
  const { snapshot, host, ...opts } = o;
  // The session may derive the key in the background (overlapping the catalog's open and sync).
  // A restore walks and compares meanwhile, and takes the lock and writes only once the key is
  // proven: a wrong password still writes nothing, no lock either. That overlap (scrypt: its lanes
  // side by side, ~0.1 s of each core here, 64 MiB each: pack/scrypt.ts) is only where a core is free for it: where the workers fill every
  // core it only competed with them (repairs of 200k files on 2 cores 3-14% slower, ~50 MiB
  // higher; BENCHMARKS.md), so there their walk waits for the key (their threads load and the
  // run is prepared meanwhile). A dry run (no write, no blob) proves the key first.
  if (opts.dryRun) {
    await s.repo.unlock();
    const snap = await pickSnapshot(s, snapshot, requestedRoots(opts), { host });
    return { ...(await restore(s, { ...opts, snapshot: snap })), snapshot: described(snap) };
  }
  // What the restore says before it acts (the snapshot chosen, a non-root's limits) is said
  // once the key is proven: a wrong password stays the one line said.
  const said: (() => void)[] = [];
  const ref = announcedLater(snapshot, said);
  const snap = await pickSnapshot(s, ref, requestedRoots(opts), { host });
  const limits = nonRootRestoreNote(process.getuid?.());
  const walkAfterWritable = os.availableParallelism() <= restoreThreads(opts.threads);
  if (limits) said.push(() => s.note(limits));
  return s.withRepoLockAfter(s.repo.unlock(), 'restore', false, async (writable) => {
    void writable.then(
      () => said.forEach((say) => say()),
      () => {},
    );
    return { ...(await restore(s, { ...opts, snapshot: snap, writable, walkAfterWritable })), snapshot: described(snap) };
  });
}

/** The query with its onChosen call put off into `said` (a snapshot in hand or a plain reference: as it is). */
function announcedLater(ref: SnapshotRef, said: (() => void)[]): SnapshotRef {
  if (typeof ref === 'string' || 'seq' in ref || !ref.onChosen) return ref;
  const onChosen = ref.onChosen;
  return { ...ref, onChosen: (c) => said.push(() => onChosen(c)) };
}
