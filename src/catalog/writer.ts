import { ENTRY_TYPES, type Entry } from '../repo/tree.js';
import { basename, dirname, subtreeRange, toBlob, type RawPath } from '../util/rawpath.js';
import type { CatalogDb } from './db.js';
import type { CatalogReader } from './reader.js';
import { contentToBlob, sizesToBlob } from './rows.js';

/**
 * What a snapshot (src/snapshot) and an import (sync.ts) write: lineages, pending snapshots and
 * their commit, paths, entry versions, superseded rows, tree digests and damage records; and
 * forgetting snapshots. Writes of a snapshot go in batched transactions (CatalogDb.wrote): a
 * pending snapshot is invisible to readers until commitSnapshot, whatever was flushed before.
 */
export class CatalogWriter {
  constructor(
    private readonly db: CatalogDb,
    private readonly reader: CatalogReader,
  ) {}

  /** The lineage of a host + source paths (the order of the paths does not matter), created on first use. */
  lineageId(host: string, paths: RawPath[]): number {
    const key = JSON.stringify([...paths].sort());
    const r = this.db.st(`SELECT id FROM lineages WHERE host=? AND paths=?`).get(host, key) as { id: number } | undefined;
    if (r) return r.id;
    return Number(this.db.st(`INSERT INTO lineages(host, paths) VALUES(?,?)`).run(host, key).lastInsertRowid);
  }

  // ---- the life of a snapshot -------------------------------------------------------------

  /** Starts a pending snapshot, owned by this process until it commits or is discarded. */
  beginSnapshot(lineage: number, time: string, host: string, paths: RawPath[], tags: string[]): number {
    this.db.flush();
    return Number(
      this.db
        .st(`INSERT INTO snapshots(lineage, state, pid, time, host, paths, tags) VALUES(?, 'pending', ?, ?, ?, ?, ?)`)
        .run(lineage, process.pid, time, host, JSON.stringify(paths), JSON.stringify(tags)).lastInsertRowid,
    );
  }

  /** Makes a pending snapshot visible: closes the rows it superseded, in one transaction. */
  commitSnapshot(seq: number, id: string, tree: string, parent: string | null, record: object): void {
    this.db.atomic(() => {
      this.db.st(`UPDATE versions SET to_seq=? WHERE id IN (SELECT version FROM pending_close WHERE seq=?)`).run(seq - 1, seq);
      this.db.st(`DELETE FROM pending_close WHERE seq=?`).run(seq);
      this.db
        .st(`UPDATE snapshots SET state='committed', id=?, tree=?, parent=?, record=?, pid=NULL WHERE seq=?`)
        .run(id, tree, parent, JSON.stringify(record), seq);
    });
  }

  /** Drops the traces of snapshots whose process died before committing. */
  discardAbandoned(isAlive: (pid: number) => boolean): number {
    const rows = this.db.st(`SELECT seq, pid FROM snapshots WHERE state='pending'`).all() as { seq: number; pid: number }[];
    let n = 0;
    for (const r of rows) {
      if (r.pid && r.pid !== process.pid && isAlive(r.pid)) continue;
      this.discardPending(r.seq);
      n++;
    }
    return n;
  }

  /** Drops a pending snapshot: its new rows, its supersede marks and its damage records. */
  discardPending(seq: number): void {
    this.db.atomic(() => {
      this.db.st(`DELETE FROM versions WHERE from_seq=?`).run(seq);
      this.db.st(`DELETE FROM pending_close WHERE seq=?`).run(seq);
      this.db.st(`DELETE FROM damaged WHERE seq=?`).run(seq);
      this.db.st(`DELETE FROM snapshots WHERE seq=? AND state='pending'`).run(seq);
    });
  }

  /** Removes a snapshot from the catalog, and the rows no other snapshot uses. */
  forgetSnapshot(id: string): void {
    // A snapshot of a host not followed is a record only (remote.ts).
    this.db.st(`DELETE FROM remote_snapshots WHERE id=?`).run(id);
    const s = this.reader.snapshotById(id);
    if (!s) return;
    this.db.atomic(() => {
      const prev = this.db
        .st(`SELECT max(seq) AS m FROM snapshots WHERE lineage=? AND seq<? AND state='committed'`)
        .get(s.lineage, s.seq) as { m: number | null };
      const next = this.db
        .st(`SELECT min(seq) AS m FROM snapshots WHERE lineage=? AND seq>? AND state='committed'`)
        .get(s.lineage, s.seq) as { m: number | null };
      const lo = prev.m ?? -1;
      const hi = next.m ?? Number.MAX_SAFE_INTEGER;
      // Rows valid only inside (prev, next) belonged to this snapshot alone.
      this.db
        .st(
          `DELETE FROM versions WHERE lineage=? AND from_seq>? AND from_seq<=? AND ((to_seq IS NULL AND ?=${Number.MAX_SAFE_INTEGER}) OR to_seq<?)`,
        )
        .run(s.lineage, lo, s.seq, hi, hi);
      this.db.st(`DELETE FROM damaged WHERE seq=?`).run(s.seq);
      this.db.st(`DELETE FROM snapshots WHERE seq=?`).run(s.seq);
    });
  }

  // ---- paths ----------------------------------------------------------------------------

  /** The id of a path, created with its missing ancestors. */
  ensurePath(p: RawPath): number {
    const have = this.reader.pathId(p);
    if (have !== undefined) return have;
    const parent = p === '/' ? null : this.ensurePath(dirname(p));
    this.db.wrote();
    return Number(
      this.db.st(`INSERT INTO paths(parent, name, path) VALUES(?,?,?)`).run(parent, toBlob(p === '/' ? '' : basename(p)), toBlob(p))
        .lastInsertRowid,
    );
  }

  /** The id of `name` in a directory whose id is known: the snapshot walk's per-entry lookup. */
  childPathId(parentId: number, parentPath: RawPath, name: RawPath): number {
    const p = toBlob(parentPath === '/' ? '/' + name : parentPath + '/' + name);
    // One statement for a new path (the common case of a first snapshot); the SELECT only when
    // the path exists already (path is UNIQUE, so the insert then does nothing).
    this.db.wrote();
    const ins = this.db
      .st(`INSERT INTO paths(parent, name, path) VALUES(?,?,?) ON CONFLICT(path) DO NOTHING RETURNING id`)
      .get(parentId, toBlob(name), p) as { id: number } | undefined;
    if (ins) return ins.id;
    return (this.db.st(`SELECT id FROM paths WHERE path=?`).get(p) as { id: number }).id;
  }

  // ---- versions -------------------------------------------------------------------------

  /** A new row for an entry that differs from the parent's: valid from `seq` on, open. */
  insertVersion(pathId: number, lineage: number, seq: number, e: Entry): number {
    this.db.wrote();
    return Number(
      this.db
        .st(
          `INSERT INTO versions(path, lineage, from_seq, to_seq, type, mode, uid, gid, uname, gname, size, mtime, ctime,
      ino, dev, nlink, rdev, target, fp, content, tree, flags, csizes) VALUES(?,?,?,NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
        )
        .run(
          pathId,
          lineage,
          seq,
          ENTRY_TYPES.indexOf(e.type),
          e.mode,
          e.uid,
          e.gid,
          e.user,
          e.group,
          e.size,
          e.mtime,
          e.ctime,
          BigInt.asIntN(64, e.ino),
          BigInt.asIntN(64, e.dev),
          e.nlink,
          e.rdev,
          e.target === null ? null : toBlob(e.target),
          e.fp === null ? null : Buffer.from(e.fp, 'hex'),
          contentToBlob(e.content),
          e.tree === null ? null : Buffer.from(e.tree, 'hex'),
          e.flags,
          sizesToBlob(e.chunkSizes),
        ).lastInsertRowid,
    );
  }

  /** Marks a parent row as superseded; it is closed when the pending snapshot commits. */
  closeVersion(seq: number, versionId: number): void {
    this.db.wrote();
    this.db.st(`INSERT OR IGNORE INTO pending_close VALUES(?,?)`).run(seq, versionId);
  }

  /** Supersedes every open row strictly below `dir` (the directory vanished or was excluded). */
  closeSubtree(seq: number, lineage: number, dir: RawPath): void {
    const [lo, hi] = subtreeRange(dir);
    this.db.wrote(10);
    this.db
      .st(
        `INSERT OR IGNORE INTO pending_close SELECT ?, v.id FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.path>=? AND p.path<? AND v.lineage=? AND v.to_seq IS NULL AND v.from_seq<?`,
      )
      .run(seq, toBlob(lo), toBlob(hi), lineage, seq);
  }

  // ---- tree digests ---------------------------------------------------------------------

  /**
   * Records the digest of the stat fields of a tree's entries, as the snapshot walk computes it
   * from lstat. Every field it covers is recorded in the tree, so it is a function of the tree id
   * and never goes stale; a snapshot that finds a directory with the same digest (and unchanged
   * subdirectories) reuses the parent's tree without reading catalog rows.
   */
  setTreeDigest(treeId: string, digest: string): void {
    this.db.wrote();
    this.db.st(`INSERT OR REPLACE INTO dirstate VALUES(?, ?)`).run(Buffer.from(treeId, 'hex'), Buffer.from(digest, 'hex'));
  }

  clearTreeDigests(): void {
    this.db.flush();
    this.db.exec('DELETE FROM dirstate');
  }

  // ---- damage ---------------------------------------------------------------------------

  /**
   * Records a problem met while importing snapshot `seq`: an entry refused (unsafe name) or a
   * directory whose tree blob cannot be read. `dir` is the directory whose listing held the
   * problem; `path` is what is reported: the directory itself when its listing is lost, else
   * the directory plus the quoted name. Rows belong to one snapshot, so forget/discard drop them.
   */
  addDamage(seq: number, dir: RawPath, path: RawPath, message: string): void {
    this.db.wrote();
    this.db.st(`INSERT OR REPLACE INTO damaged VALUES(?,?,?,?)`).run(seq, toBlob(path), toBlob(dir), message);
  }

  /**
   * An import skips a subtree identical to the parent snapshot's (its rows are shared); its
   * damage is shared too: copies the records of `fromSeq` at or below `root` to `toSeq`.
   */
  carryDamage(fromSeq: number, toSeq: number, root: RawPath): void {
    const [lo, hi] = subtreeRange(root);
    this.db.wrote();
    this.db
      .st(`INSERT OR IGNORE INTO damaged SELECT ?, path, dir, message FROM damaged WHERE seq=? AND (path=? OR (path>=? AND path<?))`)
      .run(toSeq, fromSeq, toBlob(root), toBlob(lo), toBlob(hi));
  }

  /** Drops every snapshot and entry (packs, blobs and tree digests stay): the start of a rebuild. */
  clearSnapshots(): void {
    this.db.atomic(() => {
      this.db.exec(
        `DELETE FROM pending_close; DELETE FROM versions; DELETE FROM snapshots; DELETE FROM paths; DELETE FROM lineages; DELETE FROM damaged;`,
      );
    });
  }
}
