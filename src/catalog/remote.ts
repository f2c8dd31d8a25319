import { deflateRawSync, inflateRawSync } from 'node:zlib';
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
    // Compact (issue 15: one row per snapshot of the fleet): id, host and time are columns, the
    // rest is deflated JSON. Rows of earlier releases hold the whole record as JSON text.
    const { id, host, time, ...rest } = s;
    this.db
      .st(`INSERT OR REPLACE INTO remote_snapshots VALUES(?,?,?,?)`)
      .run(id, host, time, deflateRawSync(Buffer.from(JSON.stringify(rest)), { level: 9 }));
  }

  remove(id: string): void {
    this.db.st(`DELETE FROM remote_snapshots WHERE id=?`).run(id);
  }

  ids(): Set<string> {
    return new Set((this.db.st(`SELECT id FROM remote_snapshots`).all() as { id: string }[]).map((r) => r.id));
  }

  /** The stored records, oldest first; of the given hosts only when `hosts` is given. */
  records(hosts?: Set<string>): StoredSnapshot[] {
    // Filtered in SQL: a sync asks for the few followed hosts among the whole fleet's records.
    const rows = (
      hosts
        ? this.db
            .st(`SELECT id, host, time, record FROM remote_snapshots WHERE host IN (SELECT value FROM json_each(?)) ORDER BY time, id`)
            .all(JSON.stringify([...hosts]))
        : this.db.st(`SELECT id, host, time, record FROM remote_snapshots ORDER BY time, id`).all()
    ) as { id: string; host: string; time: string; record: string | Buffer }[];
    return rows.map((r) =>
      typeof r.record === 'string'
        ? (JSON.parse(r.record) as StoredSnapshot)
        : ({ ...JSON.parse(inflateRawSync(r.record).toString('utf8')), id: r.id, host: r.host, time: r.time } as StoredSnapshot),
    );
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
