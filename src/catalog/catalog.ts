import type { BlobId } from '../pack/blobid.js';
import type { Entry } from '../repo/tree.js';
import type { RawPath } from '../util/rawpath.js';
import { BlobIndex, type PackContents, type PackIndexInput, type UnreadPack } from './blobindex.js';
import { CatalogDb } from './db.js';
import { CatalogReader, type DirState, type RestoreChild } from './reader.js';
import type { BlobLocationRow, DirStatRow, SnapshotRow, VersionRow } from './rows.js';
import { CatalogWriter } from './writer.js';
import { RemoteSnapshots } from './remote.js';
import type { StoredSnapshot } from '../repo/repository.js';

export { lightFromVersion, type BlobLocationRow, type DirStatRow, type LightEntry, type SnapshotRow, type VersionRow } from './rows.js';
export type { DirState, RestoreChild } from './reader.js';

/**
 * The local SQLite catalog: an index of the repository, rebuildable from it. This class only
 * composes the parts, on one connection, for the operations that use them:
 *   db.ts + migrations.ts   the connection: open, pragmas, schema migrations, batched transactions
 *   blobindex.ts            packs and blob locations
 *   writer.ts               what a snapshot or an import writes
 *   reader.ts               every query over snapshots (also on a read-only connection of its own)
 * The schema and the validity intervals of shared rows are described in migrations.ts.
 */
export class Catalog {
  private readonly blobs: BlobIndex;
  private readonly reader: CatalogReader;
  private readonly writer: CatalogWriter;
  private readonly remote: RemoteSnapshots;

  private constructor(
    private readonly db: CatalogDb,
    readonly repoId: string,
  ) {
    this.blobs = new BlobIndex(db);
    this.reader = new CatalogReader(db, this.blobs);
    this.writer = new CatalogWriter(db, this.reader);
    this.remote = new RemoteSnapshots(db);
  }

  static open(file: string, repoId: string): Catalog {
    return new Catalog(CatalogDb.open(file, repoId), repoId);
  }

  /** The catalog file: worker threads open it read-only (CatalogReader.openReadOnly) after a flush(). */
  get file(): string {
    return this.db.file;
  }

  close(): void {
    this.db.close();
  }

  /** Commits the open write batch, so other connections (streams, workers) see it. */
  flush(): void {
    this.db.flush();
  }

  /** Runs `fn` atomically (flushing any open batch first). */
  atomic<T>(fn: () => T): T {
    return this.db.atomic(fn);
  }

  getMeta(key: string): string | undefined {
    return this.db.getMeta(key);
  }

  setMeta(key: string, value: string): void {
    this.db.setMeta(key, value);
  }

  sizeOnDisk(): number {
    return this.db.sizeOnDisk();
  }

  /** Drops every snapshot and entry (packs and blobs stay): the start of a rebuild. */
  clearSnapshots(): void {
    this.writer.clearSnapshots();
  }

  /** Empties the catalog but for its meta data: snapshots, entries, packs, blobs, tree digests. */
  clearAll(): void {
    this.db.atomic(() => {
      this.writer.clearSnapshots();
      this.blobs.clear();
      this.writer.clearTreeDigests();
      this.remote.clear();
    });
  }

  // ---- packs and blobs (blobindex.ts) ---------------------------------------------------

  hasBlob(id: BlobId): boolean {
    return this.blobs.hasBlob(id);
  }
  blobLocation(id: BlobId): BlobLocationRow | undefined {
    return this.blobs.blobLocation(id);
  }
  hasPack(packId: string): boolean {
    return this.blobs.hasPack(packId);
  }
  addPackIndex(idx: PackIndexInput): void {
    this.blobs.addPackIndex(idx);
  }
  packIds(): string[] {
    return this.blobs.packIds();
  }
  addUnreadPack(packId: string, filter: Buffer, key: string | null): void {
    this.blobs.addUnreadPack(packId, filter, key);
  }
  unreadPacks(): UnreadPack[] {
    return this.blobs.unreadPacks();
  }
  removeUnreadPack(packId: string): void {
    this.blobs.removeUnreadPack(packId);
  }
  removePack(packId: string): void {
    this.blobs.removePack(packId);
  }
  countBlobs(): number {
    return this.blobs.countBlobs();
  }
  packContents(packId: string): PackContents | undefined {
    return this.blobs.packContents(packId);
  }
  // [prune, issue 15] what a snapshot's garbage check asks (src/snapshot/reuseguard.ts).
  /** Every pack the catalog knows a copy of the blob in. */
  blobHomes(id: BlobId): string[] {
    return this.blobs.blobHomes(id);
  }
  /** Which of `ids` the lineage's current rows (its newest or pending snapshot, and a few more) reference. */
  lineageReferences(lineage: number, ids: Set<BlobId>): Set<BlobId> {
    return this.blobs.lineageReferences(lineage, ids);
  }

  // ---- writing (writer.ts) --------------------------------------------------------------

  lineageId(host: string, paths: RawPath[]): number {
    return this.writer.lineageId(host, paths);
  }
  beginSnapshot(lineage: number, time: string, host: string, paths: RawPath[], tags: string[]): number {
    return this.writer.beginSnapshot(lineage, time, host, paths, tags);
  }
  commitSnapshot(seq: number, id: string, tree: string, parent: string | null, record: object): void {
    this.writer.commitSnapshot(seq, id, tree, parent, record);
  }
  discardAbandoned(isAlive: (pid: number) => boolean): number {
    return this.writer.discardAbandoned(isAlive);
  }
  discardPending(seq: number): void {
    this.writer.discardPending(seq);
  }
  forgetSnapshot(id: string): void {
    this.writer.forgetSnapshot(id);
  }
  ensurePath(p: RawPath): number {
    return this.writer.ensurePath(p);
  }
  childPathId(parentId: number, parentPath: RawPath, name: RawPath): number {
    return this.writer.childPathId(parentId, parentPath, name);
  }
  insertVersion(pathId: number, lineage: number, seq: number, e: Entry): number {
    return this.writer.insertVersion(pathId, lineage, seq, e);
  }
  closeVersion(seq: number, versionId: number): void {
    this.writer.closeVersion(seq, versionId);
  }
  closeSubtree(seq: number, lineage: number, dir: RawPath): void {
    this.writer.closeSubtree(seq, lineage, dir);
  }
  setTreeDigest(treeId: string, digest: string): void {
    this.writer.setTreeDigest(treeId, digest);
  }
  clearTreeDigests(): void {
    this.writer.clearTreeDigests();
  }
  addDamage(seq: number, dir: RawPath, path: RawPath, message: string): void {
    this.writer.addDamage(seq, dir, path, message);
  }
  carryDamage(fromSeq: number, toSeq: number, root: RawPath): void {
    this.writer.carryDamage(fromSeq, toSeq, root);
  }

  // ---- other hosts' snapshots (remote.ts, issue 15) -------------------------------------

  /** The hosts whose trees this catalog imports: those it has lineages of. */
  followedHosts(): Set<string> {
    return this.reader.lineageHosts();
  }
  addRemoteSnapshot(s: StoredSnapshot): void {
    this.remote.add(s);
  }
  removeRemoteSnapshot(id: string): void {
    this.remote.remove(id);
  }
  remoteSnapshotIds(): Set<string> {
    return this.remote.ids();
  }
  remoteRecords(hosts?: Set<string>): StoredSnapshot[] {
    return this.remote.records(hosts);
  }
  /** Every snapshot the repository had at the last sync: imported ones and, as `remote` rows, the others; oldest first. */
  listAllSnapshots(): SnapshotRow[] {
    const all = [...this.reader.listSnapshots(), ...this.remote.rows()];
    return all.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.seq - b.seq || (a.id < b.id ? -1 : 1)));
  }
  /** Ids of every snapshot the catalog knows of, imported or not. */
  knownSnapshotIds(): Set<string> {
    const ids = this.remote.ids();
    for (const s of this.reader.listSnapshots()) ids.add(s.id);
    return ids;
  }

  // ---- reading (reader.ts) --------------------------------------------------------------

  listSnapshots(): SnapshotRow[] {
    return this.reader.listSnapshots();
  }
  snapshotById(id: string): SnapshotRow | undefined {
    return this.reader.snapshotById(id);
  }
  lineageHead(lineage: number): SnapshotRow | undefined {
    return this.reader.lineageHead(lineage);
  }
  pathId(p: RawPath): number | undefined {
    return this.reader.pathId(p);
  }
  openChildren(dirPathId: number, lineage: number, beforeSeq: number): Map<RawPath, VersionRow> {
    return this.reader.openChildren(dirPathId, lineage, beforeSeq);
  }
  openDirState(p: RawPath, lineage: number, beforeSeq: number): DirState | undefined {
    return this.reader.openDirState(p, lineage, beforeSeq);
  }
  openDirStates(lineage: number, beforeSeq: number): Map<RawPath, DirState> {
    return this.reader.openDirStates(lineage, beforeSeq);
  }
  openVersionByPath(p: RawPath, lineage: number, beforeSeq: number): VersionRow | undefined {
    return this.reader.openVersionByPath(p, lineage, beforeSeq);
  }
  entry(snap: SnapshotRow, p: RawPath): VersionRow | undefined {
    return this.reader.entry(snap, p);
  }
  listDir(snap: SnapshotRow, dir: RawPath): Iterable<VersionRow> {
    return this.reader.listDir(snap, dir);
  }
  listDirPage(snap: SnapshotRow, dir: RawPath, offset: number, limit: number): { total: number; rows: VersionRow[] } {
    return this.reader.listDirPage(snap, dir, offset, limit);
  }
  listDirStat(snap: SnapshotRow, dir: RawPath): DirStatRow[] {
    return this.reader.listDirStat(snap, dir);
  }
  walk(snap: SnapshotRow, root: RawPath = '/'): Iterable<VersionRow> {
    return this.reader.walk(snap, root);
  }
  entryForRestore(snap: SnapshotRow, p: RawPath): RestoreChild | undefined {
    return this.reader.entryForRestore(snap, p);
  }
  countEntries(snap: SnapshotRow): { entries: number; files: number; bytes: number } {
    return this.reader.countEntries(snap);
  }
  findVersions(
    match: (p: RawPath) => boolean,
    scope: { exact?: RawPath; under?: RawPath } = {},
  ): Iterable<{ path: RawPath; snapshots: SnapshotRow[]; version: VersionRow }> {
    return this.reader.findVersions(match, scope);
  }
  hasDamage(seq: number): boolean {
    return this.reader.hasDamage(seq);
  }
  damagedUnder(snap: SnapshotRow, root: RawPath): { path: RawPath; message: string }[] {
    return this.reader.damagedUnder(snap, root);
  }
  dirLost(snap: SnapshotRow, dir: RawPath): string | undefined {
    return this.reader.dirLost(snap, dir);
  }
  damagedInAll(root: RawPath): { snapshot: SnapshotRow; path: RawPath; message: string }[] {
    return this.reader.damagedInAll(root);
  }
}
