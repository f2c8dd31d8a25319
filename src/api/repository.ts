import { Repository } from '../repo/repository.js';
import { isStale, listLocks, removeStaleLocks, type LockInfo } from '../repo/lock.js';
import { rebuildCatalog, syncCatalog, type SyncReport } from '../catalog/sync.js';
import { openSettingsStore, type OpenOptions, type Session } from './session.js';

export { repoStats } from '../query/stats.js';

/**
 * Removes the locks of processes that died; live locks are returned, never removed. Works on
 * the store alone (no catalog), so a repository whose catalog is busy can still be unlocked.
 */
export async function unlockRepository(opts: OpenOptions = {}): Promise<{ removed: number; live: LockInfo[] }> {
  const { store } = await openSettingsStore(opts);
  try {
    await Repository.readConfig(store); // fail clearly when there is no repository here (no password needed)
    const removed = await removeStaleLocks(store);
    const live = (await listLocks(store)).filter((l) => !isStale(l));
    return { removed, live };
  } finally {
    await store.close?.();
  }
}

/** Rebuilds the session's catalog from the repository alone (open the session without sync). */
export async function catalogRebuild(
  s: Session,
  onProgress?: (msg: string) => void,
): Promise<SyncReport & { duration_s: number; catalog: string }> {
  s.lockCatalog('catalog rebuild');
  const started = Date.now();
  const rep = await rebuildCatalog(s.repo, s.catalog, onProgress);
  return { ...rep, duration_s: (Date.now() - started) / 1000, catalog: s.catalog.file };
}

/** Imports what the repository has and the catalog lacks (open the session without sync). */
/**
 * A routine sync, as a snapshot's: other hosts' small data packs are recorded by their blob
 * filters, not read (issue 15; SyncOptions.lazyData), unless `allPacks`.
 */
export async function catalogSync(
  s: Session,
  onProgress?: (msg: string) => void,
  opts: { allPacks?: boolean; full?: boolean } = {},
): Promise<SyncReport> {
  s.lockCatalog('catalog sync');
  return syncCatalog(s.repo, s.catalog, onProgress, { lazyData: !opts.allPacks, full: opts.full === true });
}
