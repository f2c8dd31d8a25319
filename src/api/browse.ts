import type { SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { diffSnapshots, type DiffResult } from '../query/diff.js';
import { copyFileContent, FileContentReader, lookupFileForRead } from '../query/filecontent.js';
import { dumpTar, type DumpResult } from '../dump/tar.js';
import { display, fromUser, normalizeAbs, type RawPath } from '../util/rawpath.js';
import type { Session } from './session.js';
import { pickSnapshot, selectSnapshot, type SnapshotRef } from './snapshots.js';

/** A path as a user types it: absolute or not, in Unicode, made a raw absolute snapshot path. */
function snapshotPath(p: string): RawPath {
  return normalizeAbs(fromUser(p.startsWith('/') ? p : '/' + p));
}

/**
 * The snapshot `ref` names for reading path `p`, its trees imported first when it is another
 * host's that this catalog does not follow (issue 15). Synchronous readers (listEntries, diff)
 * take the row this returns.
 */
export function pickForPath(s: Session, ref: SnapshotRef, p = '/'): Promise<SnapshotRow> {
  return pickSnapshot(s, ref, p === '' ? [] : [snapshotPath(p)]);
}

export interface Listing {
  snapshot: SnapshotRow;
  path: RawPath;
  /** Read lazily from the catalog: iterate while the session is open. */
  entries: Iterable<VersionRow>;
  /** Entries the snapshot lost or refused at or below the path (damaged listings, unsafe names). */
  damage: { path: string; message: string }[];
}

/** One directory of a snapshot (or everything below it), served from the catalog. */
export function listEntries(s: Session, ref: SnapshotRef, p: string, opts: { recursive?: boolean } = {}): Listing {
  const path = normalizeAbs(fromUser(p));
  const snap = selectSnapshot(s, ref, [path]);
  const top = path === '/' ? undefined : s.catalog.entry(snap, path);
  const damage = s.catalog.damagedUnder(snap, path);
  if (path !== '/' && !top) {
    const why = damage.length ? ` (${display(damage[0].path)}: ${damage[0].message})` : '';
    throw new Error(`${display(path)} is not in snapshot ${snap.id.slice(0, 8)}${why}`);
  }
  const entries = opts.recursive ? s.catalog.walk(snap, path) : top && top.type !== 'dir' ? [top] : s.catalog.listDir(snap, path);
  return { snapshot: snap, path, entries, damage: damage.map((d) => ({ path: display(d.path), message: d.message })) };
}

/** Writes one file's content to `out` (symlinks inside the snapshot are followed). Returns the bytes written. */
export async function catFile(s: Session, ref: SnapshotRef, file: string, out: NodeJS.WritableStream): Promise<number> {
  const asked = snapshotPath(file);
  const snap = await pickSnapshot(s, ref, [asked]);
  const v = lookupFileForRead(s.catalog, snap, asked);
  // One pass: no blob cache, memory holds one blob at a time.
  return copyFileContent(new FileContentReader(s.repo, s.catalog, 0), v, out);
}

/** Streams a snapshot subtree to `out` as a tar archive. */
export async function dumpSubtree(s: Session, ref: SnapshotRef, p: string, out: NodeJS.WritableStream): Promise<DumpResult> {
  const asked = snapshotPath(p);
  const snap = await pickSnapshot(s, ref, [asked]);
  return dumpTar(s.repo, s.catalog, snap, asked, out);
}

export interface SnapshotDiff {
  a: SnapshotRow;
  b: SnapshotRow;
  result: DiffResult;
}

/** Compares two snapshots; with `onEach` the paths are handed over one by one instead of collected. */
export function diff(
  s: Session,
  a: SnapshotRef,
  b: SnapshotRef,
  onEach?: (kind: keyof DiffResult['counts'], path: string) => void,
): SnapshotDiff {
  const sa = selectSnapshot(s, a);
  const sb = selectSnapshot(s, b);
  return { a: sa, b: sb, result: diffSnapshots(s.catalog, sa, sb, onEach) };
}
