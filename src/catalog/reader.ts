import type { BlobId } from '../pack/blobid.js';
import { ENTRY_TYPES, type EntryType } from '../repo/tree.js';
import { dirname, fromBlob, subtreeRange, toBlob, type RawPath } from '../util/rawpath.js';
import { BlobIndex } from './blobindex.js';
import { CatalogDb } from './db.js';
import {
  contentFromBlob,
  IN_SNAP,
  lightFromVersion,
  rowToSnapshot,
  rowToVersion,
  VCOLS,
  type BlobLocationRow,
  type DirStatRow,
  type LightEntry,
  type SnapshotKey,
  type SnapshotRow,
  type SnapshotSqlRow,
  type VersionRow,
  type VersionSqlRow,
} from './rows.js';

/** A directory's open row as the snapshot walk needs it (openDirState). */
export interface DirState {
  versionId: number;
  pathId: number;
  type: EntryType;
  tree: string | null;
  /** The stat digest recorded for `tree`; null when none is. */
  digest: string | null;
}

// Joins are written as CROSS JOIN: SQLite then keeps paths as the outer loop (by parent or path
// range) and probes versions by path, instead of scanning every open row of a lineage (there
// are no statistics to tell it better).

/** listDirStat's raw row: name, version id, type, mode, uid, gid, size, mtime ms, ctime ms, nlink, rdev, target. */
type DirStatSqlRow = [Buffer, number, number, number, number, number, number, number, number, number, number, Buffer | null];

/**
 * childrenForRestore's raw row: path id, name (TEXT), type, mode, uid, gid, uname, gname, size, mtime (ns,
 * text), target, fp, content, rdev, nlink, then the first blob's pack, offset and length (null when not
 * asked for, or when the blob has no full row: far rows are found by BlobIndex.blobLocation).
 */
type RestoreSqlRow = [
  number,
  string,
  number,
  number,
  number,
  number,
  string,
  string,
  number,
  string,
  Buffer | null,
  Buffer | null,
  Buffer | number | null,
  number,
  number,
  string | null,
  number | null,
  number | null,
];

// A restore runs this once per directory for every entry it covers, so, as for verify: rows as
// arrays, the name as TEXT (non-ASCII names fetched again as bytes) joined to the parent's path
// in JavaScript, and the columns a mode does not use left out (owner names: only to map owners
// by name; the fingerprint: only with checksum). Blob locations are looked up per file written.
const restoreSql = (
  owners: boolean,
  fp: boolean,
  loc: boolean,
  where: string,
  from = 'paths p',
  content = true,
) => `SELECT p.id, CAST(p.name AS TEXT), v.type, v.mode, v.uid, v.gid,
  ${owners ? 'v.uname, v.gname' : "'', ''"}, v.size, CAST(v.mtime AS TEXT), v.target, ${fp ? 'v.fp' : 'NULL'},
  ${content ? 'v.content' : '(v.content IS NOT NULL)'}, v.rdev, v.nlink,
  ${loc ? 'k.hash, b.offset, b.length' : 'NULL, NULL, NULL'}
  FROM ${from} CROSS JOIN versions v ON v.path=p.id
  ${loc ? 'LEFT JOIN blobs b ON b.hash = substr(v.content, 1, 32) LEFT JOIN packs k ON k.id = b.pack' : ''}
  WHERE ${where} AND ${IN_SNAP}`;
const RESTORE_CHILDREN = [0, 1, 2, 3, 4, 5, 6, 7].map(
  (i) => restoreSql(!!(i & 4), !!(i & 2), !!(i & 1), 'p.parent = @pid') + ' ORDER BY p.name',
);
/** The same without the blob ids (metadata mode writes no content: only whether a file has any). */
const RESTORE_CHILDREN_META = [0, 4].map(
  (i) => restoreSql(!!(i & 4), false, false, 'p.parent = @pid', 'paths p', false) + ' ORDER BY p.name',
);

/**
 * The content of an entry read without its blob ids (a metadata-mode row): the file has content,
 * its ids were not read. Anything that would write content refuses it (restore/context.ts).
 */
export const CONTENT_NOT_READ: readonly string[] = Object.freeze([]);
/**
 * Entries by path id (a JSON array), in the same form: a missing-mode pass reads only what is
 * missing. One statement for a directory's list: a statement per id cost ~2.5x as much per row.
 */
const RESTORE_BY_IDS = [0, 1, 2, 3, 4, 5, 6, 7].map((i) =>
  restoreSql(!!(i & 4), !!(i & 2), !!(i & 1), '1', 'json_each(@ids) j CROSS JOIN paths p ON p.id = j.value'),
);
/** A directory's children by name and type only, and whether one is a hard link with a target. */
const RESTORE_NAMES = `SELECT p.id, CAST(p.name AS TEXT), v.type, v.target IS NOT NULL FROM paths p CROSS JOIN versions v ON v.path=p.id
  WHERE p.parent = @pid AND ${IN_SNAP} ORDER BY p.name`;

/** What a missing-mode pass first reads of a child: enough to see whether its name is there, and to walk on. */
export interface RestoreName {
  pathId: number;
  path: RawPath;
  type: EntryType;
  /** A hard link with a target: the orchestrator sees it even when present (it may be linked back to). */
  linked: boolean;
}

/** A restore's entry with its path id (a directory's id is how its children are asked for). */
export type RestoreChild = LightEntry & { pathId: number };

function restoreChild(r: RestoreSqlRow, path: RawPath): RestoreChild {
  return {
    path,
    type: ENTRY_TYPES[r[2]],
    mode: r[3],
    uid: r[4],
    gid: r[5],
    user: r[6],
    group: r[7],
    size: r[8],
    mtimeNs: r[9],
    target: r[10] ? fromBlob(r[10]) : null,
    fp: r[11] ? r[11].toString('hex') : null,
    content: typeof r[12] === 'number' ? (r[12] ? (CONTENT_NOT_READ as BlobId[]) : null) : contentFromBlob(r[12]),
    rdev: r[13],
    nlink: r[14],
    loc: r[15] ? { pack: r[15], offset: r[16]!, length: r[17]! } : null,
    pathId: r[0],
  };
}

/** The open rows of a lineage below `beforeSeq`: the parent snapshot's state during a snapshot. */
const OPEN_ROW = `v.lineage=? AND v.to_seq IS NULL AND v.from_seq<?`;

/**
 * A child row as childrenForVerify returns it, an array in this order:
 * [pathId, name, type (ENTRY_TYPES index), mode, uid, gid, size, mtime in µs,
 *  target (Buffer, symlinks and hardlinks only) | null, fp (Buffer, with checksum only) | null, rdev,
 *  the mtime's nanoseconds below the µs (0..999: mtime ns = µs * 1000 + this, exact without a BigInt column)]
 */
export type VerifyChildRow = [
  number,
  RawPath,
  number,
  number,
  number,
  number,
  number,
  number,
  Buffer | null,
  Buffer | null,
  number,
  number,
];

// verify runs childrenForVerify once per directory, and its per-row cost is most of verify's own
// CPU time, so: rows as arrays; mtime in whole microseconds (< 2^53, no BigInt per row); and no
// BLOB column unless needed (each becomes a Buffer, ~2x the cost of the row): the name as TEXT
// (exact for ASCII; other names are fetched as bytes on their own), the symlink target only
// for symlinks and hardlinks, the fingerprint only with checksum.
const SYMLINK = ENTRY_TYPES.indexOf('symlink');
const HARDLINK = ENTRY_TYPES.indexOf('hardlink');
const verifyChildrenSql = (withFp: boolean) => `SELECT p.id, CAST(p.name AS TEXT), v.type, v.mode, v.uid, v.gid, v.size, v.mtime / 1000,
  CASE WHEN v.type IN (${SYMLINK}, ${HARDLINK}) THEN v.target END, ${withFp ? 'v.fp' : 'NULL'}, v.rdev, v.mtime % 1000
  FROM paths p CROSS JOIN versions v ON v.path = p.id WHERE p.parent = @pid AND ${IN_SNAP}`;
const VERIFY_CHILDREN_FP = verifyChildrenSql(true);
const VERIFY_CHILDREN = verifyChildrenSql(false);
const NON_ASCII = /[\u0080-\uffff]/;

/** A directory's open row as the snapshot walk uses it (openDirState, openDirStates). */
function dirStateOf(versionId: number, pathId: number, type: number, tree: Buffer | null, digest: Buffer | null): DirState {
  return {
    versionId,
    pathId,
    type: ENTRY_TYPES[type],
    tree: tree ? tree.toString('hex') : null,
    digest: digest ? digest.toString('hex') : null,
  };
}

/**
 * Every query over snapshots, paths, versions and damage records. It runs on the catalog's own
 * connection (through the Catalog facade) or, opened with openReadOnly, on a read-only
 * connection of its own: worker threads read the catalog file that way.
 */
export class CatalogReader {
  constructor(
    private readonly db: CatalogDb,
    private readonly blobs = new BlobIndex(db),
  ) {}

  /** A reader on its own read-only connection to an existing catalog file; close() it when done. */
  static openReadOnly(file: string): CatalogReader {
    return new CatalogReader(CatalogDb.openReadOnly(file));
  }

  /** `fn`'s queries in one read transaction (CatalogDb.reading): a worker's batch of directories. */
  reading<T>(fn: () => T): T {
    return this.db.reading(fn);
  }

  /** Closes the connection: only for a reader from openReadOnly (the facade closes its own). */
  close(): void {
    this.db.close();
  }

  // ---- snapshots --------------------------------------------------------------------------

  listSnapshots(): SnapshotRow[] {
    return (this.db.st(`SELECT * FROM snapshots WHERE state='committed' ORDER BY time, seq`).all() as SnapshotSqlRow[]).map(rowToSnapshot);
  }

  /** Hosts of the catalog's lineages (the hosts whose trees it imports, issue 15). */
  lineageHosts(): Set<string> {
    return new Set((this.db.st(`SELECT DISTINCT host FROM lineages`).all() as { host: string }[]).map((r) => r.host));
  }

  snapshotById(id: string): SnapshotRow | undefined {
    const r = this.db.st(`SELECT * FROM snapshots WHERE id=? AND state='committed'`).get(id) as SnapshotSqlRow | undefined;
    return r ? rowToSnapshot(r) : undefined;
  }

  /** The newest committed snapshot of a lineage: its open rows are the change-detection parent. */
  lineageHead(lineage: number): SnapshotRow | undefined {
    const r = this.db.st(`SELECT * FROM snapshots WHERE lineage=? AND state='committed' ORDER BY seq DESC LIMIT 1`).get(lineage) as
      SnapshotSqlRow | undefined;
    return r ? rowToSnapshot(r) : undefined;
  }

  pathId(p: RawPath): number | undefined {
    const r = this.db.st(`SELECT id FROM paths WHERE path=?`).get(toBlob(p)) as { id: number } | undefined;
    return r?.id;
  }

  // ---- the parent's open rows, as a snapshot or an import compares against them -----------

  /** The parent snapshot's children of a directory: the lineage's open rows. */
  openChildren(dirPathId: number, lineage: number, beforeSeq: number): Map<RawPath, VersionRow> {
    const rows = this.db
      .st(
        `SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.parent=? AND ${OPEN_ROW}`,
      )
      .all(dirPathId, lineage, beforeSeq) as VersionSqlRow[];
    const m = new Map<RawPath, VersionRow>();
    for (const r of rows) {
      const v = rowToVersion(r);
      m.set(v.name, v);
    }
    return m;
  }

  /**
   * Just what the snapshot walk needs of a directory's open row, with its tree's stat digest
   * (null: none recorded): one query where there were two per directory (issue 17).
   */
  openDirState(p: RawPath, lineage: number, beforeSeq: number): DirState | undefined {
    const r = this.db
      .st(
        `SELECT v.id AS vid, v.path AS pid, v.type, v.tree, d.digest FROM paths p CROSS JOIN versions v ON v.path=p.id
      LEFT JOIN dirstate d ON d.tree=v.tree
      WHERE p.path=? AND ${OPEN_ROW}`,
      )
      .get(toBlob(p), lineage, beforeSeq) as
      { vid: number; pid: number; type: number; tree: Buffer | null; digest: Buffer | null } | undefined;
    return r ? dirStateOf(r.vid, r.pid, r.type, r.tree, r.digest) : undefined;
  }

  /**
   * openDirState of every directory of the parent snapshot, by path, in one query over the
   * open directory rows (migration 7's index): for a snapshot's walk, which asks for nearly all
   * of them. A path that is not a directory there (or not there) is not in the map.
   */
  openDirStates(lineage: number, beforeSeq: number): Map<RawPath, DirState> {
    const out = new Map<RawPath, DirState>();
    const rows = this.db
      .st(
        `SELECT p.path, v.id, v.path, v.tree, d.digest FROM versions v CROSS JOIN paths p ON p.id=v.path
      LEFT JOIN dirstate d ON d.tree=v.tree
      WHERE v.lineage=? AND v.to_seq IS NULL AND v.from_seq<? AND v.type=${ENTRY_TYPES.indexOf('dir')}`,
      )
      .raw(true)
      .iterate(lineage, beforeSeq) as Iterable<[Buffer, number, number, Buffer | null, Buffer | null]>;
    const dir = ENTRY_TYPES.indexOf('dir');
    for (const [path, vid, pid, tree, digest] of rows) out.set(fromBlob(path), dirStateOf(vid, pid, dir, tree, digest));
    return out;
  }

  /** The open row of a path in a lineage (the parent snapshot's state of it). */
  openVersionByPath(p: RawPath, lineage: number, beforeSeq: number): VersionRow | undefined {
    const r = this.db
      .st(
        `SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.path=? AND ${OPEN_ROW}`,
      )
      .get(toBlob(p), lineage, beforeSeq) as VersionSqlRow | undefined;
    return r ? rowToVersion(r) : undefined;
  }

  /** The stat digest recorded for a tree (see CatalogWriter.setTreeDigest). */
  treeDigest(treeId: string): string | undefined {
    const r = this.db.st(`SELECT digest FROM dirstate WHERE tree=?`).get(Buffer.from(treeId, 'hex')) as { digest: Buffer } | undefined;
    return r?.digest.toString('hex');
  }

  // ---- a committed snapshot ---------------------------------------------------------------

  entry(snap: SnapshotKey, p: RawPath): VersionRow | undefined {
    const r = this.db
      .st(`SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id WHERE p.path=@path AND ${IN_SNAP}`)
      .get({ path: toBlob(p), lineage: snap.lineage, seq: snap.seq }) as VersionSqlRow | undefined;
    return r ? rowToVersion(r) : undefined;
  }

  /** The entries of one directory, by name; uses the parent index, never scans the snapshot. */
  *listDir(snap: SnapshotKey, dir: RawPath): Iterable<VersionRow> {
    const pid = this.pathId(dir);
    if (pid === undefined) return;
    for (const r of this.db.stream(
      `SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.parent=@pid AND ${IN_SNAP} ORDER BY p.name`,
      { pid, lineage: snap.lineage, seq: snap.seq },
    ) as Iterable<VersionSqlRow>)
      yield rowToVersion(r);
  }

  /**
   * One page of a directory by name, and how many entries it has (the web console's paged
   * listing): only the page's rows are read in full, never all 100k of a big directory.
   */
  listDirPage(snap: SnapshotKey, dir: RawPath, offset: number, limit: number): { total: number; rows: VersionRow[] } {
    const pid = this.pathId(dir);
    if (pid === undefined) return { total: 0, rows: [] };
    const args = { pid, lineage: snap.lineage, seq: snap.seq };
    const from = `FROM paths p CROSS JOIN versions v ON v.path=p.id WHERE p.parent=@pid AND ${IN_SNAP}`;
    const total = (this.db.st(`SELECT count(*) AS n ${from}`).get(args) as { n: number }).n;
    const rows = this.db
      .st(`SELECT ${VCOLS} ${from} ORDER BY p.name LIMIT @limit OFFSET @offset`)
      .all({ ...args, limit, offset }) as VersionSqlRow[];
    return { total, rows: rows.map(rowToVersion) };
  }

  /**
   * A lean listing for stat-like consumers (the FUSE mount): only what stat(2) shows, times in
   * whole milliseconds computed by SQLite, rows as arrays, no BigInt. Several times cheaper
   * per entry than listDir; a 100k-entry directory is one indexed range read.
   */
  listDirStat(snap: SnapshotKey, dir: RawPath): DirStatRow[] {
    const pid = this.pathId(dir);
    if (pid === undefined) return [];
    const rows = this.db
      .st(
        `SELECT p.name, v.id, v.type, v.mode, v.uid, v.gid, v.size, v.mtime / 1000000, v.ctime / 1000000,
      v.nlink, v.rdev, v.target FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.parent=@pid AND ${IN_SNAP} ORDER BY p.name`,
      )
      .raw(true)
      .all({ pid, lineage: snap.lineage, seq: snap.seq }) as DirStatSqlRow[];
    return rows.map((r) => ({
      name: fromBlob(r[0]),
      versionId: r[1],
      type: ENTRY_TYPES[r[2]],
      mode: r[3],
      uid: r[4],
      gid: r[5],
      size: r[6],
      mtimeMs: r[7],
      ctimeMs: r[8],
      nlink: r[9],
      rdev: r[10],
      target: r[11] ? fromBlob(r[11]) : null,
    }));
  }

  /** Streams `root` and everything below it in path order (a directory before its contents). */
  *walk(snap: SnapshotKey, root: RawPath = '/'): Iterable<VersionRow> {
    if (root !== '/') {
      const top = this.entry(snap, root);
      if (top) yield top;
    }
    const [lo, hi] = subtreeRange(root);
    for (const r of this.db.stream(
      `SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.path>=@lo AND p.path<@hi AND ${IN_SNAP} ORDER BY p.path`,
      { lo: toBlob(lo), hi: toBlob(hi), lineage: snap.lineage, seq: snap.seq },
    ) as Iterable<VersionSqlRow>)
      yield rowToVersion(r);
  }

  /**
   * The children of directory `pid` (path `dir`) in a snapshot as a restore needs them (restore
   * worker threads run it once per directory, on their own read-only connection): raw rows,
   * no BigInt conversions (the mtime stays a decimal string); owner names only with `owners`,
   * fingerprints only with `fingerprints`, the first blob's location joined in with `locations`
   * (a directory whose files will all be written: cheaper than a lookup per file); `content`
   * false leaves the blob ids unread (CONTENT_NOT_READ: metadata mode). In name order.
   */
  childrenForRestore(
    pid: number,
    dir: RawPath,
    snap: SnapshotKey,
    opts: { owners: boolean; fingerprints: boolean; locations?: boolean; content?: boolean },
  ): RestoreChild[] {
    const rows = this.db
      .st(
        opts.content === false && !opts.fingerprints && !opts.locations
          ? RESTORE_CHILDREN_META[opts.owners ? 1 : 0]
          : RESTORE_CHILDREN[(opts.owners ? 4 : 0) + (opts.fingerprints ? 2 : 0) + (opts.locations ? 1 : 0)],
      )
      .raw(true)
      .all({ pid, lineage: snap.lineage, seq: snap.seq }) as RestoreSqlRow[];
    const prefix = dir === '/' ? '/' : dir + '/';
    return rows.map((r) => restoreChild(r, prefix + (NON_ASCII.test(r[1]) ? this.rawName(r[0]) : r[1])));
  }

  /**
   * The children of directory `pid` by name only (a restore in missing mode reads every column
   * only of the entries whose names are not there): in name order.
   */
  childNamesForRestore(pid: number, dir: RawPath, snap: SnapshotKey): RestoreName[] {
    const rows = this.db.st(RESTORE_NAMES).raw(true).all({ pid, lineage: snap.lineage, seq: snap.seq }) as [
      number,
      string,
      number,
      number,
    ][];
    const prefix = dir === '/' ? '/' : dir + '/';
    return rows.map((r) => ({
      pathId: r[0],
      path: prefix + (NON_ASCII.test(r[1]) ? this.rawName(r[0]) : r[1]),
      type: ENTRY_TYPES[r[2]],
      linked: r[3] === 1,
    }));
  }

  /**
   * Children as childrenForRestore returns them, by path id and path (from childNamesForRestore),
   * in the order given; one that is no longer in the snapshot is left out.
   */
  childrenForRestoreByIds(
    children: readonly { pathId: number; path: RawPath }[],
    snap: SnapshotKey,
    opts: { owners: boolean; fingerprints: boolean; locations?: boolean },
  ): RestoreChild[] {
    if (!children.length) return [];
    const rows = this.db
      .st(RESTORE_BY_IDS[(opts.owners ? 4 : 0) + (opts.fingerprints ? 2 : 0) + (opts.locations ? 1 : 0)])
      .raw(true)
      .all({ ids: JSON.stringify(children.map((c) => c.pathId)), lineage: snap.lineage, seq: snap.seq }) as RestoreSqlRow[];
    const byId = new Map<number, RestoreSqlRow>();
    for (const r of rows) byId.set(r[0], r);
    const out: RestoreChild[] = [];
    for (const c of children) {
      const r = byId.get(c.pathId);
      if (r) out.push(restoreChild(r, c.path));
    }
    return out;
  }

  /**
   * The stat digest recorded for the tree a directory has in a snapshot (livefs/dirdigest.ts),
   * by the directory's path id; undefined when none was recorded.
   */
  dirDigest(pathId: number, snap: SnapshotKey): string | undefined {
    // The path's newest version from the snapshot's seq down, then whether it still lived at
    // it: one row read, where IN_SNAP reads every older version of the path too (~2x here).
    const d = this.db
      .st(
        `SELECT d.digest FROM (SELECT tree, to_seq FROM versions WHERE path = @pid AND lineage = @lineage AND from_seq <= @seq
          ORDER BY from_seq DESC LIMIT 1) v CROSS JOIN dirstate d ON d.tree = v.tree WHERE v.to_seq IS NULL OR v.to_seq >= @seq`,
      )
      .pluck()
      .get({ pid: pathId, lineage: snap.lineage, seq: snap.seq }) as Buffer | undefined;
    return d?.toString('hex');
  }

  /** The path ids of a directory's children by name (undefined: no such path stored). */
  childPathIds(parentId: number, names: readonly RawPath[]): (number | undefined)[] {
    const st = this.db.st(`SELECT id FROM paths WHERE parent = ? AND name = ?`).pluck();
    return names.map((n) => st.get(parentId, toBlob(n)) as number | undefined);
  }

  /** A stored name as bytes (names that are not ASCII come back through this). */
  private rawName(id: number): RawPath {
    return fromBlob(this.db.st('SELECT name FROM paths WHERE id = ?').pluck().get(id) as Buffer);
  }

  /** The restore's form of one entry (the root of a restore), with its path id. */
  entryForRestore(snap: SnapshotKey, p: RawPath): RestoreChild | undefined {
    const top = this.entry(snap, p);
    if (!top) return undefined;
    const loc = top.content?.length ? (this.blobs.blobLocation(top.content[0]) ?? null) : null;
    return { ...lightFromVersion(top, loc), pathId: top.pathId };
  }

  /** Where a blob lies (pack, offset, length), for a restore worker's multi-chunk files. */
  blobLocation(id: string): BlobLocationRow | undefined {
    return this.blobs.blobLocation(id);
  }

  countEntries(snap: SnapshotKey): { entries: number; files: number; bytes: number } {
    const r = this.db
      .st(
        `SELECT count(*) AS n, sum(type IN (0,3)) AS f, sum(CASE WHEN type IN (0,3) THEN size ELSE 0 END) AS b
      FROM versions v WHERE ${IN_SNAP}`,
      )
      .get({ lineage: snap.lineage, seq: snap.seq }) as { n: number; f: number | null; b: number | null };
    return { entries: r.n, files: r.f ?? 0, bytes: r.b ?? 0 };
  }

  // ---- across snapshots -----------------------------------------------------------------

  /**
   * Every stored path matching `match`, with each version across committed snapshots.
   * `scope` narrows the candidate paths through the paths.path unique index: `exact` looks up
   * one path, `under` scans only that subtree's key range; without it every path is tested.
   */
  *findVersions(
    match: (p: RawPath) => boolean,
    scope: { exact?: RawPath; under?: RawPath } = {},
  ): Iterable<{ path: RawPath; snapshots: SnapshotRow[]; version: VersionRow }> {
    const byLineage = new Map<number, SnapshotRow[]>();
    for (const s of this.listSnapshots()) byLineage.set(s.lineage, [...(byLineage.get(s.lineage) ?? []), s]);
    const vers = this.db.st(
      `SELECT ${VCOLS}, v.lineage AS lin, v.from_seq AS fs, v.to_seq AS ts FROM versions v CROSS JOIN paths p ON p.id=v.path WHERE v.path=?`,
    );
    for (const h of this.matchingPaths(match, scope)) {
      for (const r of vers.all(h.id) as (VersionSqlRow & { lin: number; fs: number; ts: number | null })[]) {
        const in_ = (byLineage.get(Number(r.lin)) ?? []).filter((s) => s.seq >= Number(r.fs) && (r.ts === null || s.seq <= Number(r.ts)));
        if (in_.length) yield { path: h.path, snapshots: in_, version: rowToVersion(r) };
      }
    }
  }

  /** The stored paths findVersions considers, collected before any version is read. */
  private matchingPaths(match: (p: RawPath) => boolean, scope: { exact?: RawPath; under?: RawPath }): { id: number; path: RawPath }[] {
    const hits: { id: number; path: RawPath }[] = [];
    if (scope.exact !== undefined) {
      const id = this.pathId(scope.exact);
      if (id !== undefined && match(scope.exact)) hits.push({ id, path: scope.exact });
      return hits;
    }
    const [lo, hi] = scope.under !== undefined ? subtreeRange(scope.under) : ['', '\xff'];
    if (scope.under !== undefined && scope.under !== '/') {
      const top = this.pathId(scope.under);
      if (top !== undefined && match(scope.under)) hits.push({ id: top, path: scope.under });
    }
    for (const r of this.db.stream(`SELECT id, path FROM paths WHERE path>=@lo AND path<@hi ORDER BY path`, {
      lo: toBlob(lo),
      hi: toBlob(hi),
    }) as Iterable<{ id: number; path: Buffer }>) {
      const p = fromBlob(r.path);
      if (match(p)) hits.push({ id: r.id, path: p });
    }
    return hits;
  }

  // ---- damage: what an import could not take (CatalogWriter.addDamage) ---------------------

  hasDamage(seq: number): boolean {
    return this.db.st(`SELECT 1 FROM damaged WHERE seq=? LIMIT 1`).get(seq) !== undefined;
  }

  /**
   * What a snapshot lacks at or below `root`: refused entries and lost directory listings there,
   * plus a lost listing of an ancestor of `root` (which hides `root` itself). Ordered by path.
   */
  damagedUnder(snap: SnapshotRow, root: RawPath): { path: RawPath; message: string }[] {
    const [lo, hi] = subtreeRange(root);
    const out: { path: RawPath; message: string }[] = [];
    for (let a = root; a !== '/';) {
      a = dirname(a);
      const lost = this.dirLost(snap, a);
      if (lost !== undefined) out.push({ path: a, message: lost });
    }
    const rows = this.db
      .st(`SELECT path, message FROM damaged WHERE seq=? AND (path=? OR (path>=? AND path<?)) ORDER BY path`)
      .all(snap.seq, toBlob(root), toBlob(lo), toBlob(hi)) as { path: Buffer; message: string }[];
    for (const r of rows) out.push({ path: fromBlob(r.path), message: r.message });
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Why the listing of directory `dir` is lost in this snapshot, or undefined when it is whole. */
  dirLost(snap: SnapshotRow, dir: RawPath): string | undefined {
    return (
      this.db.st(`SELECT message FROM damaged WHERE seq=? AND path=? AND dir=path`).get(snap.seq, toBlob(dir)) as
        { message: string } | undefined
    )?.message;
  }

  /** damagedUnder for every committed snapshot that has damage (for queries across snapshots, e.g. find). */
  damagedInAll(root: RawPath): { snapshot: SnapshotRow; path: RawPath; message: string }[] {
    const seqs = new Set((this.db.st(`SELECT DISTINCT seq FROM damaged`).all() as { seq: number }[]).map((r) => r.seq));
    const out: { snapshot: SnapshotRow; path: RawPath; message: string }[] = [];
    for (const s of this.listSnapshots()) if (seqs.has(s.seq)) for (const d of this.damagedUnder(s, root)) out.push({ snapshot: s, ...d });
    return out;
  }

  // ---- for verify's worker threads ----------------------------------------------------------

  /**
   * The children of directory `pid` in a snapshot, as raw rows (see VerifyChildRow), in no
   * particular order; the fingerprint column is filled only with `checksum`. Names come back
   * exact: a name that is not ASCII (read as TEXT above) is fetched again as bytes.
   */
  childrenForVerify(pid: number, snap: SnapshotKey, opts: { checksum: boolean }): VerifyChildRow[] {
    const rows = this.db
      .st(opts.checksum ? VERIFY_CHILDREN_FP : VERIFY_CHILDREN)
      .raw(true)
      .all({ lineage: snap.lineage, seq: snap.seq, pid }) as VerifyChildRow[];
    for (const r of rows) {
      if (NON_ASCII.test(r[1])) r[1] = this.rawName(r[0]);
    }
    return rows;
  }

  /**
   * The paths strictly below `dir` in a snapshot, in path order (verify counts them missing
   * when `dir` is gone). Iterates on this reader's connection: consume it before the next query.
   */
  *subtreePaths(dir: RawPath, snap: SnapshotKey): Iterable<RawPath> {
    const [lo, hi] = subtreeRange(dir);
    const rows = this.db
      .st(
        `SELECT p.path FROM paths p CROSS JOIN versions v ON v.path = p.id
      WHERE p.path >= @lo AND p.path < @hi AND ${IN_SNAP} ORDER BY p.path`,
      )
      .pluck()
      .iterate({ lineage: snap.lineage, seq: snap.seq, lo: toBlob(lo), hi: toBlob(hi) }) as Iterable<Buffer>;
    for (const p of rows) yield fromBlob(p);
  }
}
