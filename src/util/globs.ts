import picomatch from 'picomatch';
import type { RawPath } from './rawpath.js';
import { basename, fromUser } from './rawpath.js';

/**
 * Exclude globs. A pattern with a slash matches the absolute path (`/home/* /cache`, `** /node_modules`);
 * a pattern without one matches the entry's name anywhere (`*.tmp`), as in tar and restic.
 */
export function makeMatcher(patterns: string[]): (p: RawPath) => boolean {
  if (patterns.length === 0) return () => false;
  const byPath: ((s: string) => boolean)[] = [];
  const byName: ((s: string) => boolean)[] = [];
  for (const pat of patterns) {
    if (!pat) throw new Error('empty glob pattern');
    const raw = fromUser(pat);
    const m = picomatch(raw, { dot: true });
    if (raw.includes('/')) {
      byPath.push(m);
      // A pattern naming a directory also matches what lies below it.
      if (!raw.endsWith('/**')) byPath.push(picomatch(raw.replace(/\/$/, '') + '/**', { dot: true }));
    } else byName.push(m);
  }
  return (p: RawPath) => {
    for (const m of byPath) if (m(p)) return true;
    if (byName.length) {
      const name = basename(p);
      for (const m of byName) if (m(name)) return true;
    }
    return false;
  };
}
