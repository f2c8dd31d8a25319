import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { BlobId } from '../pack/blobid.js';
import type { PackIndex } from '../pack/format.js';
import { ENTRY_TYPES, type Entry, type EntryType } from '../repo/tree.js';
import { basename, dirname, fromBlob, subtreeRange, toBlob, type RawPath } from '../util/rawpath.js';

/**
 * The local SQLite catalog: an index of the repository, rebuildable from it.
 *
 * Entry versions are stored once and shared by every snapshot they appear in: a row is valid
 * for snapshots of its lineage (host + source paths) with from_seq <= seq <= to_seq, and
 * to_seq is NULL while the row is still in the lineage's newest snapshot. A snapshot of an
 * unchanged tree therefore writes no rows at all.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packs(
  id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, type TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs(
  hash BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_pack ON blobs(pack);
CREATE TABLE IF NOT EXISTS blob_alt(
  hash BLOB NOT NULL, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, PRIMARY KEY(hash, pack)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_alt_pack ON blob_alt(pack);
CREATE TABLE IF NOT EXISTS lineages(id INTEGER PRIMARY KEY, host TEXT NOT NULL, paths TEXT NOT NULL, UNIQUE(host, paths));
CREATE TABLE IF NOT EXISTS snapshots(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, lineage INTEGER NOT NULL, state TEXT NOT NULL,
  pid INTEGER, time TEXT NOT NULL, host TEXT NOT NULL, paths TEXT NOT NULL, tags TEXT NOT NULL,
  tree TEXT, parent TEXT, record TEXT);
CREATE TABLE IF NOT EXISTS paths(
  id INTEGER PRIMARY KEY, parent INTEGER, name BLOB NOT NULL, path BLOB NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS paths_parent ON paths(parent, name);
CREATE TABLE IF NOT EXISTS versions(
  id INTEGER PRIMARY KEY, path INTEGER NOT NULL, lineage INTEGER NOT NULL,
  from_seq INTEGER NOT NULL, to_seq INTEGER,
  type INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
  uname TEXT NOT NULL, gname TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
  ino INTEGER NOT NULL, dev INTEGER NOT NULL, nlink INTEGER NOT NULL, rdev INTEGER NOT NULL,
  target BLOB, fp BLOB, content BLOB, tree BLOB, flags INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS versions_path ON versions(path, lineage, from_seq);
DROP INDEX IF EXISTS versions_open;
CREATE INDEX IF NOT EXISTS versions_from ON versions(lineage, from_seq);
CREATE TABLE IF NOT EXISTS dirstate(tree BLOB PRIMARY KEY, digest BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_close(seq INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY(seq, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS damaged(
  seq INTEGER NOT NULL, path BLOB NOT NULL, dir BLOB NOT NULL, message TEXT NOT NULL, PRIMARY KEY(seq, path)) WITHOUT ROWID;
`;
const SCHEMA_VERSION = '1';

export interface SnapshotRow {
  seq: number;
  id: string;
  lineage: number;
  time: string;
  host: string;
  paths: RawPath[];
  tags: string[];
  tree: string;
  parent: string | null;
  record: Record<string, any>;
}

export interface VersionRow extends Entry {
  versionId: number;
  pathId: number;
  path: RawPath;
}

/** One directory entry as listDirStat returns it. */
export interface DirStatRow {
  name: RawPath;
  versionId: number;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  nlink: number;
  rdev: number;
  target: RawPath | null;
}

/** An entry as a restore needs it: no BigInts, the first blob's location joined in. */
export interface LightEntry {
  path: RawPath;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  size: number;
  mtimeNs: string;
  target: RawPath | null;
  fp: string | null;
  content: BlobId[] | null;
  rdev: number;
  /** Link count recorded at snapshot time: a live file with more links is not the snapshot's file. */
  nlink: number;
  loc: BlobLocationRow | null;
}

export function lightFromVersion(v: VersionRow, loc: BlobLocationRow | null): LightEntry {
  return {
    path: v.path, type: v.type, mode: v.mode, uid: v.uid, gid: v.gid, user: v.user, group: v.group, size: v.size,
    mtimeNs: v.mtime.toString(), target: v.target, fp: v.fp, content: v.content, rdev: v.rdev, nlink: v.nlink, loc,
  };
}

export interface BlobLocationRow {
  pack: string;
  offset: number;
  length: number;
}

// Nanosecond times (and some inode numbers) exceed 2^53: they are read as text and parsed to
// BigInt, which is far cheaper than safeIntegers() turning every integer column into a BigInt.
const VCOLS = `v.id AS vid, v.path AS pid, p.path AS ppath, v.type, v.mode, v.uid, v.gid, v.uname, v.gname, v.size,
  CAST(v.mtime AS TEXT) AS mtime, CAST(v.ctime AS TEXT) AS ctime, CAST(v.ino AS TEXT) AS ino, CAST(v.dev AS TEXT) AS dev, v.nlink, v.rdev, v.target, v.fp, v.content, v.tree, v.flags`;
const IN_SNAP = `v.lineage = @lineage AND v.from_seq <= @seq AND (v.to_seq IS NULL OR v.to_seq >= @seq)`;

function contentToBlob(c: BlobId[] | null): Buffer | null {
  if (!c) return null;
  return Buffer.from(c.join(''), 'hex');
}

function contentFromBlob(b: Buffer | null): BlobId[] | null {
  if (!b) return null;
  const hex = b.toString('hex');
  const out: BlobId[] = [];
  for (let i = 0; i < hex.length; i += 64) out.push(hex.slice(i, i + 64));
  return out;
}

function rowToVersion(r: any): VersionRow {
  const p = fromBlob(r.ppath);
  return {
    versionId: Number(r.vid), pathId: Number(r.pid), path: p, name: basename(p),
    type: ENTRY_TYPES[Number(r.type)] as EntryType, mode: Number(r.mode), uid: Number(r.uid), gid: Number(r.gid),
    user: r.uname, group: r.gname, size: Number(r.size), mtime: BigInt(r.mtime), ctime: BigInt(r.ctime),
    ino: BigInt.asUintN(64, BigInt(r.ino)), dev: BigInt.asUintN(64, BigInt(r.dev)), nlink: Number(r.nlink), rdev: Number(r.rdev),
    target: r.target ? fromBlob(r.target) : null, fp: r.fp ? (r.fp as Buffer).toString('hex') : null,
    content: contentFromBlob(r.content), tree: r.tree ? (r.tree as Buffer).toString('hex') : null, flags: Number(r.flags),
  };
}

function rowToSnapshot(r: any): SnapshotRow {
  return {
    seq: Number(r.seq), id: r.id, lineage: Number(r.lineage), time: r.time, host: r.host,
    paths: JSON.parse(r.paths), tags: JSON.parse(r.tags), tree: r.tree, parent: r.parent,
    record: r.record ? JSON.parse(r.record) : {},
  };
}

export class Catalog {
  readonly db: Database.Database;
  private readonly stmts = new Map<string, Database.Statement>();
  private txOpen = false;
  private txWrites = 0;

  // Joins are written as CROSS JOIN: SQLite then keeps paths as the outer loop (by parent or path
  // range) and probes versions by path, instead of scanning every open row of a lineage.
  private constructor(readonly file: string, readonly repoId: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('cache_size = -32768'); // 32 MiB: indexes stay hot, peak RSS stays bounded
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(SCHEMA);
    const have = this.db.prepare(`SELECT value FROM meta WHERE key='repo_id'`).get() as { value: string } | undefined;
    if (have && have.value !== repoId) {
      this.db.close();
      throw new Error(`catalog ${file} belongs to repository ${have.value}, not ${repoId}; pass another --catalog or delete it`);
    }
    this.db.prepare(`INSERT OR REPLACE INTO meta VALUES('repo_id', ?), ('schema', ?)`).run(repoId, SCHEMA_VERSION);
  }

  static open(file: string, repoId: string): Catalog {
    return new Catalog(file, repoId);
  }

  close(): void {
    this.flush();
    try { this.db.pragma('wal_checkpoint(TRUNCATE)'); } catch { /* busy: fine */ }
    this.db.close();
  }

  private st(sql: string): Database.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * Streams a query on its own read-only connection: better-sqlite3 forbids other statements
   * on a connection while it iterates, and streams must not block writes or each other.
   */
  private *stream(sql: string, params: unknown): Iterable<any> {
    this.flush();
    const conn = new Database(this.file, { readonly: true });
    try {
      conn.pragma('busy_timeout = 10000');
      const stmt = conn.prepare(sql);
      yield* (params === undefined ? stmt.iterate() : stmt.iterate(params as any)) as Iterable<any>;
    } finally {
      conn.close();
    }
  }

  // ---- batched write transactions -------------------------------------------------------

  /** Counts a write; commits every few thousand so a crash loses at most the last batch. */
  private wrote(n = 1): void {
    if (!this.txOpen) {
      this.db.exec('BEGIN');
      this.txOpen = true;
    }
    this.txWrites += n;
    if (this.txWrites >= 20000) this.flush();
  }

  flush(): void {
    if (this.txOpen) {
      this.db.exec('COMMIT');
      this.txOpen = false;
      this.txWrites = 0;
    }
  }

  /** Runs `fn` atomically (flushing any open batch first). */
  atomic<T>(fn: () => T): T {
    this.flush();
    return this.db.transaction(fn)();
  }

  getMeta(key: string): string | undefined {
    return (this.st(`SELECT value FROM meta WHERE key=?`).get(key) as { value: string } | undefined)?.value;
  }

  setMeta(key: string, value: string): void {
    this.st(`INSERT OR REPLACE INTO meta VALUES(?, ?)`).run(key, value);
  }

  // ---- packs and blobs ------------------------------------------------------------------

  hasBlob(id: BlobId): boolean {
    return this.st(`SELECT 1 FROM blobs WHERE hash=?`).get(Buffer.from(id, 'hex')) !== undefined;
  }

  blobLocation(id: BlobId): BlobLocationRow | undefined {
    const r = this.st(`SELECT p.hash AS pack, b.offset, b.length FROM blobs b JOIN packs p ON p.id=b.pack WHERE b.hash=?`)
      .get(Buffer.from(id, 'hex')) as BlobLocationRow | undefined;
    return r;
  }

  hasPack(packId: string): boolean {
    return this.st(`SELECT 1 FROM packs WHERE hash=?`).get(packId) !== undefined;
  }

  addPackIndex(idx: PackIndex): void {
    this.atomic(() => {
      const r = this.st(`INSERT OR IGNORE INTO packs(hash, type, size) VALUES(?,?,?)`).run(idx.pack, idx.type, idx.size);
      const packRow = r.changes
        ? Number(r.lastInsertRowid)
        : (this.st(`SELECT id FROM packs WHERE hash=?`).get(idx.pack) as { id: number }).id;
      const ins = this.st(`INSERT OR IGNORE INTO blobs VALUES(?,?,?,?)`);
      const alt = this.st(`INSERT OR IGNORE INTO blob_alt VALUES(?,?,?,?)`);
      for (const b of idx.blobs) {
        const h = Buffer.from(b.id, 'hex');
        // A blob already known in another pack (a repack by prune, or two hosts storing the
        // same content) keeps this copy as an alternative, used when that other pack goes away.
        if (ins.run(h, packRow, b.offset, b.length).changes === 0) alt.run(h, packRow, b.offset, b.length);
      }
    });
  }

  packIds(): string[] {
    return (this.st(`SELECT hash FROM packs`).all() as { hash: string }[]).map((r) => r.hash);
  }

  removePack(packId: string): void {
    this.atomic(() => {
      const r = this.st(`SELECT id FROM packs WHERE hash=?`).get(packId) as { id: number } | undefined;
      if (!r) return;
      // Blobs of this pack that have a copy elsewhere move to it; the others are gone.
      this.st(`INSERT OR REPLACE INTO blobs SELECT a.hash, a.pack, a.offset, a.length FROM blob_alt a
        WHERE a.hash IN (SELECT hash FROM blobs WHERE pack=?) AND a.pack<>?
        AND a.pack = (SELECT min(a2.pack) FROM blob_alt a2 WHERE a2.hash=a.hash AND a2.pack<>?)`).run(r.id, r.id, r.id);
      this.st(`DELETE FROM blobs WHERE pack=?`).run(r.id);
      this.st(`DELETE FROM blob_alt WHERE pack=? OR hash IN (SELECT hash FROM blobs WHERE blobs.pack=blob_alt.pack)`).run(r.id);
      this.st(`DELETE FROM packs WHERE id=?`).run(r.id);
    });
  }

  countBlobs(): number {
    return (this.st(`SELECT count(*) AS n FROM blobs`).get() as { n: number }).n;
  }

  // ---- snapshots ------------------------------------------------------------------------

  lineageId(host: string, paths: RawPath[]): number {
    const key = JSON.stringify([...paths].sort());
    const r = this.st(`SELECT id FROM lineages WHERE host=? AND paths=?`).get(host, key) as { id: number } | undefined;
    if (r) return r.id;
    return Number(this.st(`INSERT INTO lineages(host, paths) VALUES(?,?)`).run(host, key).lastInsertRowid);
  }

  /** Seq of the newest committed snapshot of a lineage: its open rows are the change-detection parent. */
  lineageHead(lineage: number): SnapshotRow | undefined {
    const r = this.st(`SELECT * FROM snapshots WHERE lineage=? AND state='committed' ORDER BY seq DESC LIMIT 1`).get(lineage);
    return r ? rowToSnapshot(r) : undefined;
  }

  beginSnapshot(lineage: number, time: string, host: string, paths: RawPath[], tags: string[]): number {
    this.flush();
    return Number(this.st(`INSERT INTO snapshots(lineage, state, pid, time, host, paths, tags) VALUES(?, 'pending', ?, ?, ?, ?, ?)`)
      .run(lineage, process.pid, time, host, JSON.stringify(paths), JSON.stringify(tags)).lastInsertRowid);
  }

  /** Makes a pending snapshot visible: closes the rows it superseded, in one transaction. */
  commitSnapshot(seq: number, id: string, tree: string, parent: string | null, record: object): void {
    this.atomic(() => {
      this.st(`UPDATE versions SET to_seq=? WHERE id IN (SELECT version FROM pending_close WHERE seq=?)`).run(seq - 1, seq);
      this.st(`DELETE FROM pending_close WHERE seq=?`).run(seq);
      this.st(`UPDATE snapshots SET state='committed', id=?, tree=?, parent=?, record=?, pid=NULL WHERE seq=?`)
        .run(id, tree, parent, JSON.stringify(record), seq);
    });
  }

  /** Drops the traces of snapshots whose process died before committing. */
  discardAbandoned(isAlive: (pid: number) => boolean): number {
    const rows = this.st(`SELECT seq, pid FROM snapshots WHERE state='pending'`).all() as { seq: number; pid: number }[];
    let n = 0;
    for (const r of rows) {
      if (r.pid && r.pid !== process.pid && isAlive(r.pid)) continue;
      this.discardPending(r.seq);
      n++;
    }
    return n;
  }

  discardPending(seq: number): void {
    this.atomic(() => {
      this.st(`DELETE FROM versions WHERE from_seq=?`).run(seq);
      this.st(`DELETE FROM pending_close WHERE seq=?`).run(seq);
      this.st(`DELETE FROM damaged WHERE seq=?`).run(seq);
      this.st(`DELETE FROM snapshots WHERE seq=? AND state='pending'`).run(seq);
    });
  }

  listSnapshots(): SnapshotRow[] {
    return (this.st(`SELECT * FROM snapshots WHERE state='committed' ORDER BY time, seq`).all()).map(rowToSnapshot);
  }

  snapshotById(id: string): SnapshotRow | undefined {
    const r = this.st(`SELECT * FROM snapshots WHERE id=? AND state='committed'`).get(id);
    return r ? rowToSnapshot(r) : undefined;
  }

  /** Removes a snapshot from the catalog, and the rows no other snapshot uses. */
  forgetSnapshot(id: string): void {
    const s = this.snapshotById(id);
    if (!s) return;
    this.atomic(() => {
      const prev = this.st(`SELECT max(seq) AS m FROM snapshots WHERE lineage=? AND seq<? AND state='committed'`).get(s.lineage, s.seq) as { m: number | null };
      const next = this.st(`SELECT min(seq) AS m FROM snapshots WHERE lineage=? AND seq>? AND state='committed'`).get(s.lineage, s.seq) as { m: number | null };
      const lo = prev.m ?? -1;
      const hi = next.m ?? Number.MAX_SAFE_INTEGER;
      // Rows valid only inside (prev, next) belonged to this snapshot alone.
      this.st(`DELETE FROM versions WHERE lineage=? AND from_seq>? AND from_seq<=? AND ((to_seq IS NULL AND ?=${Number.MAX_SAFE_INTEGER}) OR to_seq<?)`)
        .run(s.lineage, lo, s.seq, hi, hi);
      this.st(`DELETE FROM damaged WHERE seq=?`).run(s.seq);
      this.st(`DELETE FROM snapshots WHERE seq=?`).run(s.seq);
    });
  }

  // ---- paths ----------------------------------------------------------------------------

  pathId(p: RawPath): number | undefined {
    const r = this.st(`SELECT id FROM paths WHERE path=?`).get(toBlob(p)) as { id: number } | undefined;
    return r?.id;
  }

  ensurePath(p: RawPath): number {
    const have = this.pathId(p);
    if (have !== undefined) return have;
    const parent = p === '/' ? null : this.ensurePath(dirname(p));
    this.wrote();
    return Number(this.st(`INSERT INTO paths(parent, name, path) VALUES(?,?,?)`)
      .run(parent, toBlob(p === '/' ? '' : basename(p)), toBlob(p)).lastInsertRowid);
  }

  childPathId(parentId: number, parentPath: RawPath, name: RawPath): number {
    const p = parentPath === '/' ? '/' + name : parentPath + '/' + name;
    const r = this.st(`SELECT id FROM paths WHERE path=?`).get(toBlob(p)) as { id: number } | undefined;
    if (r) return r.id;
    this.wrote();
    return Number(this.st(`INSERT INTO paths(parent, name, path) VALUES(?,?,?)`).run(parentId, toBlob(name), toBlob(p)).lastInsertRowid);
  }

  // ---- versions: writing ------------------------------------------------------------------

  /** The parent snapshot's children of a directory: the lineage's open rows. */
  openChildren(dirPathId: number, lineage: number, beforeSeq: number): Map<RawPath, VersionRow> {
    const rows = this.st(`SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.parent=? AND v.lineage=? AND v.to_seq IS NULL AND v.from_seq<?`).all(dirPathId, lineage, beforeSeq);
    const m = new Map<RawPath, VersionRow>();
    for (const r of rows) {
      const v = rowToVersion(r);
      m.set(v.name, v);
    }
    return m;
  }

  insertVersion(pathId: number, lineage: number, seq: number, e: Entry): number {
    this.wrote();
    return Number(this.st(`INSERT INTO versions(path, lineage, from_seq, to_seq, type, mode, uid, gid, uname, gname, size, mtime, ctime,
      ino, dev, nlink, rdev, target, fp, content, tree, flags) VALUES(?,?,?,NULL,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`).run(
      pathId, lineage, seq, ENTRY_TYPES.indexOf(e.type), e.mode, e.uid, e.gid, e.user, e.group, e.size, e.mtime, e.ctime,
      BigInt.asIntN(64, e.ino), BigInt.asIntN(64, e.dev), e.nlink, e.rdev, e.target === null ? null : toBlob(e.target),
      e.fp === null ? null : Buffer.from(e.fp, 'hex'), contentToBlob(e.content), e.tree === null ? null : Buffer.from(e.tree, 'hex'), e.flags).lastInsertRowid);
  }

  /**
   * The digest of the stat fields of a tree's entries, as the snapshot walk computes it from
   * lstat. Every field it covers is recorded in the tree, so it is a function of the tree id and
   * never goes stale; a snapshot that finds a directory with the same digest (and unchanged
   * subdirectories) reuses the parent's tree without reading catalog rows.
   */
  treeDigest(treeId: string): string | undefined {
    const r = this.st(`SELECT digest FROM dirstate WHERE tree=?`).get(Buffer.from(treeId, 'hex')) as { digest: Buffer } | undefined;
    return r?.digest.toString('hex');
  }

  clearTreeDigests(): void {
    this.flush();
    this.db.exec('DELETE FROM dirstate');
  }

  setTreeDigest(treeId: string, digest: string): void {
    this.wrote();
    this.st(`INSERT OR REPLACE INTO dirstate VALUES(?, ?)`).run(Buffer.from(treeId, 'hex'), Buffer.from(digest, 'hex'));
  }

  /** Just what the snapshot walk needs of a directory's open row: cheaper than a full row. */
  openDirState(p: RawPath, lineage: number, beforeSeq: number): { versionId: number; pathId: number; type: EntryType; tree: string | null } | undefined {
    const r = this.st(`SELECT v.id AS vid, v.path AS pid, v.type, v.tree FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.path=? AND v.lineage=? AND v.to_seq IS NULL AND v.from_seq<?`).get(toBlob(p), lineage, beforeSeq) as any;
    return r ? { versionId: r.vid, pathId: r.pid, type: ENTRY_TYPES[r.type], tree: r.tree ? (r.tree as Buffer).toString('hex') : null } : undefined;
  }

  /** The open row of a path in a lineage (the parent snapshot's state of it). */
  openVersionByPath(p: RawPath, lineage: number, beforeSeq: number): VersionRow | undefined {
    const r = this.st(`SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.path=? AND v.lineage=? AND v.to_seq IS NULL AND v.from_seq<?`).get(toBlob(p), lineage, beforeSeq);
    return r ? rowToVersion(r) : undefined;
  }

  /** Marks a parent row as superseded; it is closed when the pending snapshot commits. */
  closeVersion(seq: number, versionId: number): void {
    this.wrote();
    this.st(`INSERT OR IGNORE INTO pending_close VALUES(?,?)`).run(seq, versionId);
  }

  /** Supersedes every open row strictly below `dir` (the directory vanished or was excluded). */
  closeSubtree(seq: number, lineage: number, dir: RawPath): void {
    const [lo, hi] = subtreeRange(dir);
    this.wrote(10);
    this.st(`INSERT OR IGNORE INTO pending_close SELECT ?, v.id FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.path>=? AND p.path<? AND v.lineage=? AND v.to_seq IS NULL AND v.from_seq<?`)
      .run(seq, toBlob(lo), toBlob(hi), lineage, seq);
  }

  // ---- versions: reading a committed snapshot -------------------------------------------

  entry(snap: SnapshotRow, p: RawPath): VersionRow | undefined {
    const r = this.st(`SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id WHERE p.path=@path AND ${IN_SNAP}`)
      .get({ path: toBlob(p), lineage: snap.lineage, seq: snap.seq });
    return r ? rowToVersion(r) : undefined;
  }

  /** The entries of one directory, by name; uses the parent index, never scans the snapshot. */
  *listDir(snap: SnapshotRow, dir: RawPath): Iterable<VersionRow> {
    const pid = this.pathId(dir);
    if (pid === undefined) return;
    for (const r of this.stream(`SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.parent=@pid AND ${IN_SNAP} ORDER BY p.name`, { pid, lineage: snap.lineage, seq: snap.seq })) yield rowToVersion(r);
  }

  /**
   * A lean listing for stat-like consumers (the FUSE mount): only what stat(2) shows, times in
   * whole milliseconds computed by SQLite, rows as arrays, no BigInt. Several times cheaper
   * per entry than listDir; a 100k-entry directory is one indexed range read.
   */
  listDirStat(snap: SnapshotRow, dir: RawPath): DirStatRow[] {
    const pid = this.pathId(dir);
    if (pid === undefined) return [];
    const rows = this.st(`SELECT p.name, v.id, v.type, v.mode, v.uid, v.gid, v.size, v.mtime / 1000000, v.ctime / 1000000,
      v.nlink, v.rdev, v.target FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.parent=@pid AND ${IN_SNAP} ORDER BY p.name`).raw(true).all({ pid, lineage: snap.lineage, seq: snap.seq }) as any[][];
    return rows.map((r) => ({
      name: fromBlob(r[0]), versionId: r[1], type: ENTRY_TYPES[r[2]] as EntryType, mode: r[3], uid: r[4], gid: r[5], size: r[6],
      mtimeMs: r[7], ctimeMs: r[8], nlink: r[9], rdev: r[10], target: r[11] ? fromBlob(r[11]) : null,
    }));
  }

  /** Streams `root` and everything below it in path order (a directory before its contents). */
  *walk(snap: SnapshotRow, root: RawPath = '/'): Iterable<VersionRow> {
    if (root !== '/') {
      const top = this.entry(snap, root);
      if (top) yield top;
    }
    const [lo, hi] = subtreeRange(root);
    for (const r of this.stream(`SELECT ${VCOLS} FROM paths p CROSS JOIN versions v ON v.path=p.id
      WHERE p.path>=@lo AND p.path<@hi AND ${IN_SNAP} ORDER BY p.path`, { lo: toBlob(lo), hi: toBlob(hi), lineage: snap.lineage, seq: snap.seq })) yield rowToVersion(r);
  }

  /**
   * The restore walk: like walk(), with the first content blob's pack location joined in, in
   * raw row mode and without BigInt conversions (the mtime stays a decimal string), since a restore touches every row once.
   */
  *walkForRestore(snap: SnapshotRow, root: RawPath = '/'): Iterable<LightEntry> {
    if (root !== '/') {
      const top = this.entry(snap, root);
      if (top) yield lightFromVersion(top, top.content?.length ? this.blobLocation(top.content[0]) ?? null : null);
    }
    const [lo, hi] = subtreeRange(root);
    this.flush();
    const conn = new Database(this.file, { readonly: true });
    try {
      const stmt = conn.prepare(`SELECT p.path, v.type, v.mode, v.uid, v.gid, v.uname, v.gname, v.size, CAST(v.mtime AS TEXT),
        v.target, v.fp, v.content, v.rdev, k.hash, b.offset, b.length, v.nlink
        FROM paths p CROSS JOIN versions v ON v.path=p.id
        LEFT JOIN blobs b ON b.hash = substr(v.content, 1, 32) LEFT JOIN packs k ON k.id = b.pack
        WHERE p.path>=@lo AND p.path<@hi AND ${IN_SNAP} ORDER BY p.path`).raw(true);
      for (const r of stmt.iterate({ lo: toBlob(lo), hi: toBlob(hi), lineage: snap.lineage, seq: snap.seq }) as Iterable<any[]>) {
        yield {
          path: fromBlob(r[0]), type: ENTRY_TYPES[r[1]], mode: r[2], uid: r[3], gid: r[4], user: r[5], group: r[6], size: r[7],
          mtimeNs: r[8], target: r[9] ? fromBlob(r[9]) : null, fp: r[10] ? (r[10] as Buffer).toString('hex') : null,
          content: contentFromBlob(r[11]), rdev: r[12], nlink: r[16], loc: r[13] ? { pack: r[13], offset: r[14], length: r[15] } : null,
        };
      }
    } finally {
      conn.close();
    }
  }

  countEntries(snap: SnapshotRow): { entries: number; files: number; bytes: number } {
    const r = this.st(`SELECT count(*) AS n, sum(type IN (0,3)) AS f, sum(CASE WHEN type IN (0,3) THEN size ELSE 0 END) AS b
      FROM versions v WHERE ${IN_SNAP}`).get({ lineage: snap.lineage, seq: snap.seq }) as { n: number; f: number | null; b: number | null };
    return { entries: r.n, files: r.f ?? 0, bytes: r.b ?? 0 };
  }

  /**
   * Every stored path matching `match`, with each version across committed snapshots.
   * `scope` narrows the candidate paths through the paths.path unique index: `exact` looks up
   * one path, `under` scans only that subtree's key range; without it every path is tested.
   */
  *findVersions(match: (p: RawPath) => boolean, scope: { exact?: RawPath; under?: RawPath } = {}):
    Iterable<{ path: RawPath; snapshots: SnapshotRow[]; version: VersionRow }> {
    const snaps = this.listSnapshots();
    const byLineage = new Map<number, SnapshotRow[]>();
    for (const s of snaps) byLineage.set(s.lineage, [...(byLineage.get(s.lineage) ?? []), s]);
    const vers = this.st(`SELECT ${VCOLS}, v.lineage AS lin, v.from_seq AS fs, v.to_seq AS ts FROM versions v CROSS JOIN paths p ON p.id=v.path WHERE v.path=?`);
    const hits: { id: number; path: RawPath }[] = [];
    if (scope.exact !== undefined) {
      const id = this.pathId(scope.exact);
      if (id !== undefined && match(scope.exact)) hits.push({ id, path: scope.exact });
    } else {
      const [lo, hi] = scope.under !== undefined ? subtreeRange(scope.under) : ['', '\xff'];
      if (scope.under !== undefined && scope.under !== '/') {
        const top = this.pathId(scope.under);
        if (top !== undefined && match(scope.under)) hits.push({ id: top, path: scope.under });
      }
      for (const r of this.stream(`SELECT id, path FROM paths WHERE path>=@lo AND path<@hi ORDER BY path`,
        { lo: toBlob(lo), hi: toBlob(hi) }) as Iterable<{ id: number; path: Buffer }>) {
        const p = fromBlob(r.path);
        if (match(p)) hits.push({ id: r.id, path: p });
      }
    }
    for (const h of hits) {
      for (const r of vers.all(h.id) as any[]) {
        const in_ = (byLineage.get(Number(r.lin)) ?? []).filter((s) => s.seq >= Number(r.fs) && (r.ts === null || s.seq <= Number(r.ts)));
        if (in_.length) yield { path: h.path, snapshots: in_, version: rowToVersion(r) };
      }
    }
  }

  // ---- damage: what an import could not take -----------------------------------------------

  /**
   * Records a problem met while importing snapshot `seq`: an entry refused (unsafe name) or a
   * directory whose tree blob cannot be read. `dir` is the directory whose listing held the
   * problem; `path` is what is reported: the directory itself when its listing is lost, else
   * the directory plus the quoted name. Rows belong to one snapshot, so forget/discard drop them.
   */
  addDamage(seq: number, dir: RawPath, path: RawPath, message: string): void {
    this.wrote();
    this.st(`INSERT OR REPLACE INTO damaged VALUES(?,?,?,?)`).run(seq, toBlob(path), toBlob(dir), message);
  }

  hasDamage(seq: number): boolean {
    return this.st(`SELECT 1 FROM damaged WHERE seq=? LIMIT 1`).get(seq) !== undefined;
  }

  /**
   * An import skips a subtree identical to the parent snapshot's (its rows are shared); its
   * damage is shared too: copies the records of `fromSeq` at or below `root` to `toSeq`.
   */
  carryDamage(fromSeq: number, toSeq: number, root: RawPath): void {
    const [lo, hi] = subtreeRange(root);
    this.wrote();
    this.st(`INSERT OR IGNORE INTO damaged SELECT ?, path, dir, message FROM damaged WHERE seq=? AND (path=? OR (path>=? AND path<?))`)
      .run(toSeq, fromSeq, toBlob(root), toBlob(lo), toBlob(hi));
  }

  /**
   * What a snapshot lacks at or below `root`: refused entries and lost directory listings there,
   * plus a lost listing of an ancestor of `root` (which hides `root` itself). Ordered by path.
   */
  damagedUnder(snap: SnapshotRow, root: RawPath): { path: RawPath; message: string }[] {
    const [lo, hi] = subtreeRange(root);
    const out: { path: RawPath; message: string }[] = [];
    const lost = this.st(`SELECT message FROM damaged WHERE seq=? AND path=? AND dir=path`);
    for (let a = root; a !== '/';) {
      a = dirname(a);
      const r = lost.get(snap.seq, toBlob(a)) as { message: string } | undefined;
      if (r) out.push({ path: a, message: r.message });
    }
    const rows = this.st(`SELECT path, message FROM damaged WHERE seq=? AND (path=? OR (path>=? AND path<?)) ORDER BY path`)
      .all(snap.seq, toBlob(root), toBlob(lo), toBlob(hi)) as { path: Buffer; message: string }[];
    for (const r of rows) out.push({ path: fromBlob(r.path), message: r.message });
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Why the listing of directory `dir` is lost in this snapshot, or undefined when it is whole. */
  dirLost(snap: SnapshotRow, dir: RawPath): string | undefined {
    return (this.st(`SELECT message FROM damaged WHERE seq=? AND path=? AND dir=path`).get(snap.seq, toBlob(dir)) as { message: string } | undefined)?.message;
  }

  /** damagedUnder for every committed snapshot that has damage (for queries across snapshots, e.g. find). */
  damagedInAll(root: RawPath): { snapshot: SnapshotRow; path: RawPath; message: string }[] {
    const seqs = new Set((this.st(`SELECT DISTINCT seq FROM damaged`).all() as { seq: number }[]).map((r) => r.seq));
    const out: { snapshot: SnapshotRow; path: RawPath; message: string }[] = [];
    for (const s of this.listSnapshots()) if (seqs.has(s.seq)) for (const d of this.damagedUnder(s, root)) out.push({ snapshot: s, ...d });
    return out;
  }

  /**
   * What the catalog holds for one pack (from its imported index), blobs by id; undefined when
   * the pack is unknown. `check` compares it with the index object in the repository.
   */
  packContents(packId: string): { type: string; size: number; blobs: Map<BlobId, { offset: number; length: number }> } | undefined {
    const p = this.st(`SELECT id, type, size FROM packs WHERE hash=?`).get(packId) as { id: number; type: string; size: number } | undefined;
    if (!p) return undefined;
    const blobs = new Map<BlobId, { offset: number; length: number }>();
    // A blob stored in several packs has one row in blobs and the others in blob_alt.
    for (const sql of [`SELECT hash, offset, length FROM blobs WHERE pack=?`, `SELECT hash, offset, length FROM blob_alt WHERE pack=?`]) {
      for (const r of this.st(sql).all(p.id) as { hash: Buffer; offset: number; length: number }[]) {
        blobs.set(r.hash.toString('hex'), { offset: r.offset, length: r.length });
      }
    }
    return { type: p.type, size: p.size, blobs };
  }

  /** Drops every snapshot and entry (packs and blobs stay): the start of a rebuild. */
  clearSnapshots(): void {
    this.atomic(() => {
      this.db.exec(`DELETE FROM pending_close; DELETE FROM versions; DELETE FROM snapshots; DELETE FROM paths; DELETE FROM lineages; DELETE FROM damaged;`);
    });
  }

  clearAll(): void {
    this.atomic(() => {
      this.db.exec(`DELETE FROM pending_close; DELETE FROM versions; DELETE FROM snapshots; DELETE FROM paths; DELETE FROM lineages; DELETE FROM blobs; DELETE FROM blob_alt; DELETE FROM packs; DELETE FROM dirstate; DELETE FROM damaged;`);
    });
  }

  sizeOnDisk(): number {
    this.flush();
    try { this.db.pragma('wal_checkpoint(TRUNCATE)'); } catch { /* ignore */ }
    let n = 0;
    for (const f of [this.file, this.file + '-wal']) {
      try { n += fs.statSync(f).size; } catch { /* absent */ }
    }
    return n;
  }
}
