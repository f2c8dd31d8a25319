import type { Catalog, SnapshotRow } from '../catalog/catalog.js';
import { display } from '../util/rawpath.js';
import type { Session } from './session.js';

export interface SnapshotFilter {
  /** Only snapshots of this host. */
  host?: string;
  /** Only snapshots carrying this tag. */
  tag?: string;
  /** Only snapshots that include this source path (as shown: display form). */
  path?: string;
}

function matches(r: SnapshotRow, f: SnapshotFilter): boolean {
  return (!f.host || r.host === f.host) && (!f.tag || r.tags.includes(f.tag)) && (!f.path || r.paths.map(display).includes(f.path));
}

/** Committed snapshots, oldest first, narrowed by host, tag and source path. */
export function listSnapshots(s: Session, filter: SnapshotFilter = {}): SnapshotRow[] {
  return s.catalog.listSnapshots().filter((r) => matches(r, filter));
}

/**
 * Resolves `latest`, a full id or a unique id prefix to a committed snapshot (of one host,
 * when the filter names one: "latest" then means that host's newest).
 */
export function resolveSnapshot(catalog: Catalog, ref: string, filter: { host?: string } = {}): SnapshotRow {
  let snaps = catalog.listSnapshots();
  if (filter.host) snaps = snaps.filter((s) => s.host === filter.host);
  if (!snaps.length) throw new Error('the repository has no snapshots yet');
  if (ref === 'latest') return snaps[snaps.length - 1];
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new Error(`invalid snapshot reference "${ref}": use "latest", an id or an id prefix`);
  const hits = snaps.filter((s) => s.id.startsWith(ref));
  if (hits.length === 0) throw new Error(`no snapshot matches "${ref}"`);
  if (hits.length > 1) throw new Error(`"${ref}" matches ${hits.length} snapshots; give more characters of the id`);
  return hits[0];
}

/** A snapshot named by reference (resolved in the session's catalog) or already in hand. */
export type SnapshotRef = string | SnapshotRow;

export function selectSnapshot(s: Session, ref: SnapshotRef, filter: { host?: string } = {}): SnapshotRow {
  return typeof ref === 'string' ? resolveSnapshot(s.catalog, ref, filter) : ref;
}
