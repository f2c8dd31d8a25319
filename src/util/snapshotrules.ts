import { makeMatcher } from './globs.js';
import { isUnder, type RawPath } from './rawpath.js';

/**
 * The exclude globs a snapshot record carries. Records written before the field existed (or
 * without a usable list) mean "no excludes"; entries that are not non-empty strings are
 * dropped rather than fail a restore over a damaged record.
 */
export function recordedExcludes(record: { excludes?: unknown } | null | undefined): string[] {
  const ex = record?.excludes;
  return Array.isArray(ex) ? ex.filter((x): x is string => typeof x === 'string' && x.length > 0) : [];
}

/**
 * Whether a snapshot, by its own rules, never looked at a live path: a path outside its source
 * paths (other than the directories leading to them), or one its exclude globs matched. Such a
 * path is absent from the snapshot by design, not because it was added later, so `restore
 * --delete` must not remove it and `verify` must not call it extra.
 *
 * The globs are applied exactly as the snapshotter applies them (src/snapshot/snapshotter.ts):
 * with the same matcher, to the raw absolute path as the snapshot recorded it (never a
 * `--target` prefixed one), at or below a source path only.
 */
export function omittedBySnapshot(sources: RawPath[], excludes: string[]): (p: RawPath) => boolean {
  const excluded = makeMatcher(excludes);
  return (p) => {
    if (sources.some((src) => isUnder(p, src))) return excluded(p);
    // Above the sources the snapshot recorded only the way down to them.
    return !sources.some((src) => isUnder(src, p));
  };
}
