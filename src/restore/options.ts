import type { SnapshotRow } from '../catalog/catalog.js';
import type { RestoreMode } from './protocol.js';
import type { RestoreProgress } from './tally.js';

export type { RestoreMode } from './protocol.js';

/**
 * How content gets from the repository to the files:
 * - 'direct': workers compare, read the pack files and write in one step (snapshots pack blobs
 *   in walk order, so walk order reads packs nearly in order); needs a local repository;
 * - 'planned': classify first into a plan sorted by pack, then fetch each pack once in large
 *   ranges (what a remote store needs).
 * Default: direct for a local repository, planned for a remote one.
 */
export type RestoreStrategy = 'direct' | 'planned';

export interface RestoreOptions {
  snapshot: SnapshotRow;
  /** Paths inside the snapshot to restore (default: the snapshot's source paths). */
  paths?: string[];
  /** Restore under this directory instead of in place. */
  target?: string;
  mode?: RestoreMode;
  include?: string[];
  exclude?: string[];
  account?: string;
  accountsRoot?: string;
  ownerByName?: boolean;
  delete?: boolean;
  dryRun?: boolean;
  overwriteNewer?: boolean;
  threads?: number;
  strategy?: RestoreStrategy;
  onProgress?: (p: RestoreProgress) => void;
  /** Timed milestones of the run, for diagnosing a slow restore. */
  onDebug?: (msg: string) => void;
  /**
   * Settles when the run may write (the key proven, the repository lock held): until then the
   * workers walk and compare, and their first write waits (livefs/writegate.ts). A rejection
   * stops the run with that error before anything is written. Default: may write at once.
   */
  writable?: Promise<void>;
  /**
   * The workers start walking only once `writable` settles (their threads load meanwhile): where
   * they fill every core, a walk beside the key's derivation only competed with it.
   */
  walkAfterWritable?: boolean;
}
