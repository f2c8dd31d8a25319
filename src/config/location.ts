import * as os from 'node:os';
import * as path from 'node:path';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Where a repository is when none is named: a newcomer's first snapshot just works. */
export function defaultRepoLocation(): string {
  if (isRoot) return '/var/lib/snapfill/repo';
  return path.join(os.homedir(), '.local', 'share', 'snapfill', 'repo');
}

/** The local catalog cache directory (the catalog is rebuildable, so it is a cache). */
export function cacheDir(): string {
  if (process.env.SNAPFILL_CACHE) return process.env.SNAPFILL_CACHE;
  if (isRoot) return '/var/cache/snapfill';
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'snapfill');
}

export function catalogPathFor(repoId: string, flag?: string): string {
  // As for the repository: an explicit empty path is an error (SQLite would open a throw-away
  // temp database for ""), an empty SNAPFILL_CATALOG counts as unset.
  if (flag !== undefined && !flag.trim()) throw new Error('the catalog file given is empty: name a file, or give none for the default');
  return flag ?? (process.env.SNAPFILL_CATALOG || path.join(cacheDir(), repoId, 'catalog.db'));
}
