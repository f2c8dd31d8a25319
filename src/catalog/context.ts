import type { Repository } from '../repo/repository.js';
import type { Catalog } from './catalog.js';

/**
 * What an operation (restore, check, forget, stats, mount) is handed: an open repository, its
 * catalog, and the locks that serialise writers. The library API's Session provides it; the
 * operations never see how it was opened or configured.
 */
export interface RepoContext {
  readonly repo: Repository;
  readonly catalog: Catalog;
  /** Runs `fn` holding a repository lock: shared for writers that add, exclusive for those that delete. */
  withRepoLock<T>(operation: string, exclusive: boolean, fn: () => Promise<T>): Promise<T>;
  /** Serialises writers of this catalog on this machine. */
  lockCatalog(what: string): void;
  unlockCatalog(): void;
}
