import { restore, type RestoreOptions, type RestoreResult } from '../restore/restorer.js';
import type { Session } from './session.js';
import { selectSnapshot, type SnapshotRef } from './snapshots.js';

export interface RestoreSnapshotOptions extends Omit<RestoreOptions, 'snapshot'> {
  /** `latest`, an id, an id prefix, or a snapshot row. */
  snapshot: SnapshotRef;
  /** With `latest`: the newest snapshot of this host. */
  host?: string;
}

/**
 * Restores from a snapshot under the shared repository lock (a prune must not delete packs
 * the restore is reading); a dry run only reads the catalog and the live tree, so it takes none.
 */
export async function restoreSnapshot(s: Session, o: RestoreSnapshotOptions): Promise<RestoreResult> {
  const { snapshot, host, ...opts } = o;
  const snap = selectSnapshot(s, snapshot, { host });
  const run = () => restore(s, { ...opts, snapshot: snap });
  return opts.dryRun ? run() : s.withRepoLock('restore', false, run);
}
