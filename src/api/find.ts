import picomatch from 'picomatch';
import type { SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { pathHistories } from '../query/versions.js';
import { display, fromUser, isUnder, normalizeAbs, type RawPath } from '../util/rawpath.js';
import { OptionError } from '../util/errors.js';
import type { Session } from './session.js';

/** "10k", "5M", "1.5G", "300" (bytes; k/M/G/T are powers of 1024). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`"${s}" is not a size (examples: 500, 10k, 5M, 1.5G)`);
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** pow);
}

/** An ISO date/time, or an age before now: "30m", "12h", "7d", "2w". Returns nanoseconds since the epoch. */
export function parseTime(s: string, now = Date.now()): bigint {
  const rel = /^(\d+)\s*([smhdw])$/.exec(s.trim());
  let ms: number;
  if (rel) ms = now - Number(rel[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[rel[2] as 's'];
  else {
    ms = new Date(s).getTime();
    if (Number.isNaN(ms)) throw new Error(`"${s}" is not a time (examples: 2026-11-17, 2026-11-17T09:00:00Z, 7d, 12h)`);
  }
  return BigInt(Math.round(ms)) * 1_000_000n;
}

export interface FindOptions {
  /** An absolute path, or a glob; a glob without "/" matches file names. */
  pattern: string;
  /** Only under the account's home (<accountsRoot>/<account>). */
  account?: string;
  accountsRoot?: string;
  /** Sizes in bytes, or as "10k", "5M". */
  minSize?: number | string;
  maxSize?: number | string;
  /** Modified after / before: a Date, or an ISO time or an age ("7d", "12h"). */
  newer?: Date | string;
  older?: Date | string;
  /** file (hardlinks count as file), dir or symlink; f, d, l for short. */
  type?: string;
}

/** A checked find: built before the repository is opened, so bad input fails first. */
export interface FindQuery {
  match: (p: RawPath) => boolean;
  scope: { exact?: RawPath; under?: RawPath };
  wanted: (v: VersionRow) => boolean;
}

const TYPES: Record<string, string[]> = {
  file: ['file', 'hardlink'],
  f: ['file', 'hardlink'],
  dir: ['dir'],
  d: ['dir'],
  symlink: ['symlink'],
  l: ['symlink'],
};

/** The literal directory before the first glob character: the subtree a glob can match in. */
function literalPrefix(glob: RawPath): RawPath {
  const i = glob.search(/[*?[\]{}]/);
  const head = i < 0 ? glob : glob.slice(0, i);
  const dir = head.slice(0, head.lastIndexOf('/'));
  return dir === '' ? '/' : normalizeAbs(dir);
}

/** The pattern as a path matcher, and the part of the catalog it can match in (so the search stays narrow). */
function patternMatcher(pattern: string): Pick<FindQuery, 'match' | 'scope'> {
  const raw = fromUser(pattern);
  const hasGlob = /[*?[\]{}]/.test(pattern);
  if (!raw.includes('/')) {
    const m = hasGlob ? picomatch(raw, { dot: true }) : (n: string) => n === raw;
    return { match: (p) => m(p.slice(p.lastIndexOf('/') + 1)), scope: {} };
  }
  if (!hasGlob) {
    const exact = normalizeAbs(raw.startsWith('/') ? raw : '/' + raw);
    return { match: (p) => p === exact, scope: { exact } };
  }
  const abs = raw.startsWith('/') ? raw : '/' + raw;
  const m = picomatch(abs, { dot: true });
  return { match: (p) => m(p), scope: { under: literalPrefix(abs) } };
}

function versionFilter(o: FindOptions): (v: VersionRow) => boolean {
  const size = (x: number | string | undefined) => (x === undefined ? null : typeof x === 'number' ? x : parseSize(x));
  const time = (x: Date | string | undefined) =>
    x === undefined ? null : typeof x === 'string' ? parseTime(x) : BigInt(x.getTime()) * 1_000_000n;
  const minSize = size(o.minSize);
  const maxSize = size(o.maxSize);
  const newer = time(o.newer);
  const older = time(o.older);
  const type = o.type;
  if (type !== undefined && !TYPES[type]) throw new OptionError((n) => `${n('type')}: "${type}" is not one of file, dir, symlink`);
  return (v) =>
    (minSize === null || v.size >= minSize) &&
    (maxSize === null || v.size <= maxSize) &&
    (newer === null || v.mtime > newer) &&
    (older === null || v.mtime < older) &&
    (type === undefined || TYPES[type].includes(v.type));
}

export function prepareFind(o: FindOptions): FindQuery {
  let { match, scope } = patternMatcher(o.pattern);
  if (o.account !== undefined) {
    if (!/^[A-Za-z0-9._-]+$/.test(o.account)) throw new Error(`invalid account name "${o.account}"`);
    const home = normalizeAbs(fromUser(`${o.accountsRoot ?? '/home'}/${o.account}`));
    const inner = match;
    match = (p) => isUnder(p, home) && inner(p);
    if (scope.exact === undefined && (scope.under === undefined || isUnder(home, scope.under))) scope = { under: home };
  }
  return { match, scope, wanted: versionFilter(o) };
}

/** Damage where the pattern could match (refused names, lost listings): it hides versions. */
export interface FindDamage {
  path: string;
  message: string;
  snapshots: string[];
}

export interface FoundVersion {
  version: VersionRow;
  snapshots: SnapshotRow[];
  /** What differs from the path's previous version (empty: only the ctime moved). */
  changes: string[];
  /** The path's oldest version: nothing to compare it with. */
  first: boolean;
}

export interface FoundPath {
  path: RawPath;
  /** All versions of the path, also those the filters hid. */
  versionCount: number;
  /** The versions that pass the filters, oldest first. */
  versions: FoundVersion[];
}

export interface FindResult {
  damage: FindDamage[];
  /** Read lazily from the catalog: iterate while the session is open. */
  paths: Iterable<FoundPath>;
}

/** Every distinct version of matching paths across all snapshots, and the damage that could hide some. */
export function find(s: Session, q: FindQuery | FindOptions): FindResult {
  const query = 'pattern' in q ? prepareFind(q) : q;
  return { damage: damageInScope(s, query), paths: foundPaths(s, query) };
}

function damageInScope(s: Session, q: FindQuery): FindDamage[] {
  // Named once per path and message, with every snapshot it affects.
  const byKey = new Map<string, FindDamage>();
  for (const d of s.catalog.damagedInAll(q.scope.exact ?? q.scope.under ?? '/')) {
    const key = d.path + '\0' + d.message;
    const e = byKey.get(key) ?? { path: display(d.path), message: d.message, snapshots: [] };
    e.snapshots.push(d.snapshot.id);
    byKey.set(key, e);
  }
  return [...byKey.values()];
}

function* foundPaths(s: Session, q: FindQuery): Iterable<FoundPath> {
  for (const h of pathHistories(s.catalog.findVersions(q.match, q.scope))) {
    const first = h.versions[0]?.version;
    const versions = h.versions.filter((x) => q.wanted(x.version)).map((x) => ({ ...x, first: x.version === first }));
    if (versions.length) yield { path: h.path, versionCount: h.versions.length, versions };
  }
}
