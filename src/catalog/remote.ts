import type { StoredSnapshot } from '../repo/repository.js';
import type { RawPath } from '../util/rawpath.js';
import type { CatalogDb } from './db.js';
import type { SnapshotRow } from './rows.js';

/**
 * Snapshots of hosts this catalog does not follow (issue 15): their records only, no entry
 * rows. Listing, `forget` and snapshot selection see them; their trees are imported when a
 * command asks for that host (then the host is followed, see sync.ts). One small row per
 * snapshot, so a host's catalog grows with the fleet's snapshot count, not its data.
 */
export class RemoteSnapshots {
  constructor(private readonly db: CatalogDb) {}

  add(s: StoredSnapshot): void {
    this.db.st(`INSERT OR REPLACE INTO remote_snapshots VALUES(?,?,?,?)`).run(s.id, s.host, s.time, JSON.stringify(s));
  }

  remove(id: string): void {
    this.db.st(`DELETE FROM remote_snapshots WHERE id=?`).run(id);
  }

  ids(): Set<string> {
    return new Set((this.db.st(`SELECT id FROM remote_snapshots`).all() as { id: string }[]).map((r) => r.id));
  }

  /** The stored records, oldest first; of the given hosts only when `hosts` is given. */
  records(hosts?: Set<string>): StoredSnapshot[] {
    const rows = this.db.st(`SELECT host, record FROM remote_snapshots ORDER BY time, id`).all() as { host: string; record: string }[];
    return rows.filter((r) => !hosts || hosts.has(r.host)).map((r) => JSON.parse(r.record) as StoredSnapshot);
  }

  /**
   * The records as snapshot rows (`remote: true`, seq -1). Such a row has no entries: its
   * lineage is a negative number per host + source paths, so grouping (`latest`, forget's
   * policy) works on it, and no entry query can match it.
   */
  rows(): SnapshotRow[] {
    const lineages = new Map<string, number>();
    return this.records().map((s) => {
      const paths: RawPath[] = s.paths;
      const key = JSON.stringify([s.host, [...paths].sort()]);
      let lineage = lineages.get(key);
      if (lineage === undefined) lineages.set(key, (lineage = -1 - lineages.size));
      return {
        seq: -1,
        id: s.id,
        lineage,
        time: s.time,
        host: s.host,
        paths,
        tags: s.tags,
        tree: s.tree,
        parent: s.parent,
        record: s,
        remote: true,
      };
    });
  }

  clear(): void {
    this.db.exec(`DELETE FROM remote_snapshots`);
  }
}
