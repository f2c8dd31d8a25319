import type { SnapshotRow, VersionRow } from '../catalog/catalog.js';
import type { RawPath } from '../util/rawpath.js';

/** One path's distinct versions, oldest first, each with the snapshots that hold it and what changed since the previous one. */
export interface PathHistory {
  path: RawPath;
  versions: { version: VersionRow; snapshots: SnapshotRow[]; changes: string[] }[];
}

const octal = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');

/**
 * What differs between two versions of one path, in the words a tech uses: content, size,
 * mtime, mode, owner, type, link target. An empty list means only the ctime/inode moved
 * (for example a file restored or copied back with the same content and metadata).
 */
export function versionChanges(prev: VersionRow, cur: VersionRow): string[] {
  const out: string[] = [];
  if (prev.type !== cur.type) out.push(`type ${prev.type} -> ${cur.type}`);
  if (prev.fp !== cur.fp && (prev.fp !== null || cur.fp !== null)) out.push('content');
  if (prev.size !== cur.size) out.push(`size ${prev.size} -> ${cur.size}`);
  if (prev.mtime !== cur.mtime) out.push('mtime');
  if ((prev.mode & 0o7777) !== (cur.mode & 0o7777)) out.push(`mode ${octal(prev.mode)} -> ${octal(cur.mode)}`);
  if (prev.uid !== cur.uid || prev.gid !== cur.gid) out.push(`owner ${prev.uid}:${prev.gid} -> ${cur.uid}:${cur.gid}`);
  if (prev.target !== cur.target && (cur.type === 'symlink' || prev.type === 'symlink')) out.push('link target');
  if (prev.nlink !== cur.nlink) out.push(`links ${prev.nlink} -> ${cur.nlink}`);
  return out;
}

/**
 * Groups findVersions() hits (consecutive per path) into histories, sorted by the time of
 * each version's first snapshot, with the changes from one version to the next.
 */
export function* pathHistories(hits: Iterable<{ path: RawPath; snapshots: SnapshotRow[]; version: VersionRow }>): Iterable<PathHistory> {
  let cur: PathHistory | null = null;
  const finish = (h: PathHistory): PathHistory => {
    h.versions.sort((a, b) =>
      a.snapshots[0].time < b.snapshots[0].time
        ? -1
        : a.snapshots[0].time > b.snapshots[0].time
          ? 1
          : a.snapshots[0].seq - b.snapshots[0].seq,
    );
    for (let i = 1; i < h.versions.length; i++) h.versions[i].changes = versionChanges(h.versions[i - 1].version, h.versions[i].version);
    return h;
  };
  for (const hit of hits) {
    if (cur && cur.path !== hit.path) {
      yield finish(cur);
      cur = null;
    }
    cur ??= { path: hit.path, versions: [] };
    cur.versions.push({ version: hit.version, snapshots: hit.snapshots, changes: [] });
  }
  if (cur) yield finish(cur);
}
