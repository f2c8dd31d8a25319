import { restore, type RestoreOptions, type RestoreResult } from '../restore/restorer.js';
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
  // The key first (the session may derive it in the background, overlapping the catalog's open
  // and sync): a wrong password is the one line said, and nothing is written, no lock either.
  await s.repo.unlock();
  const snap = await pickSnapshot(s, snapshot, requestedRoots(opts), { host });
  const run = async () => ({ ...(await restore(s, { ...opts, snapshot: snap })), snapshot: described(snap) });
  const limits = opts.dryRun ? null : nonRootRestoreNote(process.getuid?.());
  if (limits) s.note(limits);
  return opts.dryRun ? run() : s.withRepoLock('restore', false, run);
}
