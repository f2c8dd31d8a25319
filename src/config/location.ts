import * as os from 'node:os';
import * as path from 'node:path';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Where a repository is when none is named: a newcomer's first snapshot just works. */
export function defaultRepoLocation(): string {
  if (isRoot) return '/var/lib/snapfill/repo';
  return path.join(os.homedir(), '.local', 'share', 'snapfill', 'repo');
}

export function resolveRepoLocation(flag?: string): { location: string; isDefault: boolean } {
  if (flag) return { location: flag, isDefault: false };
  const env = process.env.SNAPFILL_REPO;
  if (env) return { location: env, isDefault: false };
  return { location: defaultRepoLocation(), isDefault: true };
}

/** The local catalog cache directory (the catalog is rebuildable, so it is a cache). */
export function cacheDir(): string {
  if (process.env.SNAPFILL_CACHE) return process.env.SNAPFILL_CACHE;
  if (isRoot) return '/var/cache/snapfill';
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'snapfill');
}

export function catalogPathFor(repoId: string, flag?: string): string {
  return flag ?? process.env.SNAPFILL_CATALOG ?? path.join(cacheDir(), repoId, 'catalog.db');
}
