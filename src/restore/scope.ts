import type { Catalog, SnapshotRow } from '../catalog/catalog.js';
import { makeMatcher } from '../util/globs.js';
import { omittedBySnapshot, recordedExcludes } from '../util/snapshotrules.js';
import { display, fromUser, isUnder, normalizeAbs, type RawPath } from '../util/rawpath.js';
import type { RestoreOptions } from './options.js';
import { OptionError } from '../util/errors.js';

/** A NUL byte, `//`, `/./`, `/../`, or a trailing `/`, `/.`, `/..`. */
const UNSAFE_PATH = /\0|\/\/|\/\.\.?(\/|$)|\/$/;

/** Rejects names a damaged or hostile repository could use to escape the target. */
export function safeSnapshotPath(p: RawPath): boolean {
  // Absolute, no NUL, no empty, "." or ".." component, no trailing slash (one scan, no splitting).
  return p.length > 1 && p.charCodeAt(0) === 47 && !UNSAFE_PATH.test(p);
}

/** What a restore covers: the snapshot paths it restores (validated), and the include/exclude patterns. */
export class Scope {
  readonly excluded: (p: RawPath) => boolean;
  readonly included: ((p: RawPath) => boolean) | null;
  readonly roots: RawPath[];
  /** Live paths the snapshot's own rules never looked at (its excludes, outside its sources): --delete keeps them. */
  readonly omittedBySnapshot: (p: RawPath) => boolean;

  constructor(catalog: Catalog, snap: SnapshotRow, o: RestoreOptions) {
    this.excluded = makeMatcher(o.exclude ?? []);
    this.omittedBySnapshot = omittedBySnapshot(snap.paths, recordedExcludes(snap.record));
    this.included = o.include?.length ? makeMatcher(o.include) : null;
    this.roots = validRoots(catalog, snap, o, !!this.included);
  }

  /** A path restored by this run (a hardlink's first name is linked only when it is). */
  covers(p: RawPath): boolean {
    return this.roots.some((root) => isUnder(p, root)) && !this.excluded(p) && (!this.included || this.included(p));
  }
}

/** The snapshot paths a restore names (paths and account), before validation: what `latest` must hold. */
export function requestedRoots(o: Pick<RestoreOptions, 'paths' | 'account' | 'accountsRoot'>): RawPath[] {
  const roots: RawPath[] = [];
  for (const p of o.paths ?? []) {
    if (!p) throw new Error('empty path argument');
    roots.push(normalizeAbs(fromUser(p.startsWith('/') ? p : '/' + p)));
  }
  if (o.account !== undefined) {
    if (!/^[A-Za-z0-9._-]+$/.test(o.account) || o.account === '.' || o.account === '..') {
      throw new Error(`invalid account name "${o.account}"`);
    }
    roots.push(normalizeAbs(fromUser(`${o.accountsRoot ?? '/home'}/${o.account}`)));
  }
  return roots;
}

/** The snapshot paths to restore, validated, nested ones dropped. */
function validRoots(catalog: Catalog, snap: SnapshotRow, o: RestoreOptions, hasIncludes: boolean): RawPath[] {
  let roots = requestedRoots(o);
  const scoped = roots.length > 0 || hasIncludes;
  if (o.delete) {
    if (!scoped)
      throw new OptionError(
        (n) =>
          `${n('delete')} needs a scope: name paths, ${n('include')} patterns or ${n('account')} (refusing to delete across the whole snapshot)`,
      );
    if (roots.includes('/')) throw new OptionError((n) => `${n('delete')} refuses the root directory "/" as a scope`);
  }
  if (!roots.length) roots = [...snap.paths];
  for (const r of roots) {
    if (r !== '/' && !catalog.entry(snap, r)) {
      throw new OptionError(
        (n) =>
          `${display(r)} is not in snapshot ${snap.id.slice(0, 8)}${o.account ? ` (check ${n('account')} / ${n('accountsRoot')})` : ''}`,
      );
    }
  }
  roots.sort();
  return roots.filter((r) => !roots.some((q) => q !== r && isUnder(r, q)));
}
