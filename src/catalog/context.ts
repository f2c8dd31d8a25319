import type { Repository } from '../repo/repository.js';
import type { Catalog } from './catalog.js';
import type { RepoLock } from '../repo/lock.js';

/**
 * What an operation (restore, check, forget, stats, mount) is handed: an open repository, its
 * catalog, and the locks that serialise writers. The library API's Session provides it; the
 * operations never see how it was opened or configured.
 */
export interface RepoContext {
  readonly repo: Repository;
  readonly catalog: Catalog;
  /**
   * Runs `fn` holding a repository lock: shared (false) for writers that add, 'maintenance' for
   * prune and forget (exclude each other, not snapshots), exclusive (true) for the rest.
   */
  withRepoLock<T>(operation: string, exclusive: boolean | 'maintenance', fn: () => Promise<T>): Promise<T>;
  /** [prune, issue 15] The lock `withRepoLock` holds right now (a snapshot's marker), if any. */
  readonly heldLock?: RepoLock | null;
  /** Serialises writers of this catalog on this machine. */
  lockCatalog(what: string): void;
  unlockCatalog(): void;
}
