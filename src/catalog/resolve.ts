import type { Catalog, SnapshotRow } from './catalog.js';

/** Resolves `latest`, a full id or a unique id prefix to a committed snapshot. */
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
