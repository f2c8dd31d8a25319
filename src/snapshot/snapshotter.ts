import { thisHost } from '../util/host.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Repository, SnapshotRecord } from '../repo/repository.js';
import type { Catalog, DirState, SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { encodeTree, TreeEncoder, entryTypeOf, sameEntry, FLAG_CHANGED_DURING_READ, type Entry } from '../repo/tree.js';
import { blobIdOf, type BlobId } from '../pack/blobid.js';
import { BlobSink } from './blobsink.js';
import type { ReuseGuard } from './reuseguard.js'; // [prune, issue 15]
import { HashPool, type SpawnedReaders } from './hashpool.js';
import { native, readlinkAt } from '../livefs/native.js';
import { procPath } from '../livefs/safepath.js';
import { raiseNofile } from '../livefs/nativeread.js';
import { ScanStat, scanWords, type HashResult, type ScanResult, type StatLike } from './hashprotocol.js';
import { encodeForStore } from '../pack/codec.js';
import { Chunker, gearTable, type ChunkerConfig } from '../pack/chunker.js';
import { xxh, fpHex } from '../livefs/fingerprint.js';
import { DirDigest } from '../livefs/dirdigest.js';
import { makeMatcher } from '../util/globs.js';
import { IdNames } from '../util/ids.js';
import { display, fromFs, fromUser, isUnder, join, normalizeAbs, toFs, type RawPath } from '../util/rawpath.js';
import type { XXHashAPI } from 'xxhash-wasm';

export interface SnapshotOptions {
  paths: string[];
  excludes?: string[];
  tags?: string[];
  time?: Date;
  host?: string;
  oneFileSystem?: boolean;
  /** Called with each read's size before it is consumed; a throttle can delay here. */
  onRead?: (bytes: number) => Promise<void> | void;
  onUpload?: (bytes: number) => Promise<void> | void;
  onProgress?: (p: SnapshotProgress) => void;
  // [prune, issue 15] lock-free prune: marked packs count as absent; re-checked before the record.
  guard?: ReuseGuard;
  /** [prune, issue 15] Whether the snapshot's marker (shared lock) has been kept fresh. */
  markerHealthy?: () => boolean;
  onLog?: (msg: string) => void;
  /** Reader threads started ahead (HashPool.spawn), e.g. while the key is derived; the snapshot closes them. */
  readers?: SpawnedReaders;
}

export interface SnapshotProgress {
  files: number;
  dirs: number;
  bytesRead: number;
  bytesAdded: number;
  current: RawPath;
  /** The previous snapshot of the same sources (host + paths), if any: an estimate of the totals. */
  expected: { files: number; bytes: number } | null;
}

export interface PathError {
  path: string;
  message: string;
}

export interface SnapshotResult {
  snapshot_id: string;
  parent: string | null;
  time: string;
  files_total: number;
  files_new: number;
  files_changed: number;
  files_unchanged: number;
  dirs: number;
  other_entries: number;
  bytes_total: number;
  bytes_read: number;
  bytes_added: number;
  blobs_added: number;
  packs_written: number;
  /** [issue 15] Other hosts' pack indexes the sync left unread that this snapshot read: a new blob's filter hit. */
  indexes_read_on_demand: number;
  duration_s: number;
  errors: PathError[];
}

/** An entry of a directory being walked. */
class Child {
  constructor(
    readonly dir: RawPath,
    readonly name: RawPath,
    readonly st: StatLike,
    readonly isSource: boolean,
    readonly childFully: boolean,
  ) {}

  /** The full path, made when asked: a directory's children are held until it is recorded (100k in a mail folder, issue 17). */
  get p(): RawPath {
    return join(this.dir, this.name);
  }
}

interface DirResult {
  tree: BlobId;
  /** Same tree as in the parent snapshot. */
  same: boolean;
  digest: string | null;
  crossing?: boolean;
}

const O_NOATIME = (fs.constants as Record<string, number>).O_NOATIME ?? 0;
const READ_RETRIES = 3;

/** Whether a file's stat proves it unchanged since the parent snapshot, so it need not be opened. */
function statUnchanged(prev: VersionRow, e: Entry): boolean {
  return (
    (prev.type === 'file' || prev.type === 'hardlink') &&
    prev.content !== null &&
    prev.size === e.size &&
    prev.mtime === e.mtime &&
    prev.ctime === e.ctime &&
    prev.ino === e.ino &&
    prev.mode === e.mode &&
    (prev.flags & FLAG_CHANGED_DURING_READ) === 0
  );
}

/** The totals of the parent snapshot: its record's summary, else counted in the catalog. */
function expectedTotals(catalog: Catalog, parent: SnapshotRow): { files: number; bytes: number } {
  const s = parent.record?.summary as { files_total?: number; bytes_total?: number } | undefined;
  if (typeof s?.files_total === 'number' && typeof s.bytes_total === 'number') return { files: s.files_total, bytes: s.bytes_total };
  const c = catalog.countEntries(parent);
  return { files: c.files, bytes: c.bytes };
}

function sameStat(a: StatLike, b: StatLike): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

/**
 * Walks the sources, reads only new or changed files, stores their content and the
 * directory trees, and commits the snapshot record last.
 */
export class Snapshotter {
  private readonly ids = new IdNames();
  private readonly errors: PathError[] = [];
  private readonly hardlinks = new Map<string, { path: RawPath; fp: string | null; content: BlobId[] | null; chunkSizes?: number[] }>();
  private readonly stats = { files: 0, new: 0, changed: 0, unchanged: 0, dirs: 0, other: 0, bytesTotal: 0, bytesRead: 0 };
  private sink!: BlobSink;
  /** Set after packs disappeared from the repository: reused content must be proven present. */
  private verifyReuse = false;
  private pool!: HashPool;
  private hash!: XXHashAPI;
  private seq = 0;
  private lineage = 0;
  private sources = new Set<RawPath>();
  private excluded: (p: RawPath) => boolean = () => false;
  private hasExcludes = false;
  private lastProgress = 0;
  private expected: SnapshotProgress['expected'] = null;
  /** The main thread's read buffer for big files, allocated at the first one (16 MiB with CDC). */
  private chunkBuf: Buffer | null = null;
  private readonly chunkBufSize: number;
  /** Content-defined chunking (version-2 repositories), or null: fixed chunk_size chunks. */
  private readonly cdc: { gear: Uint32Array; cfg: ChunkerConfig; cutter: Chunker } | null;
  /** Files of at most this many bytes are stored as one blob (read by the reader threads). */
  private readonly wholeFileMax: number;
  private readonly digest = new DirDigest();
  /** The parent snapshot's directories (openDirStates), read in one query before the walk. */
  private parentDirs = new Map<RawPath, DirState>();

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
    private readonly opts: SnapshotOptions,
  ) {
    const cfg = repo.config.version >= 2 ? repo.config.chunker : undefined;
    if (cfg) {
      const gear = gearTable(repo.chunkerSeed());
      this.cdc = { gear, cfg, cutter: new Chunker(gear, cfg) };
      this.wholeFileMax = cfg.threshold;
      // One unfinished chunk (< max) plus one read of max bytes.
      this.chunkBufSize = 2 * cfg.max;
    } else {
      // Version 1 (no chunker in its config): fixed chunks, which its older readers expect.
      this.cdc = null;
      this.wholeFileMax = repo.config.chunk_size;
      this.chunkBufSize = repo.config.chunk_size;
    }
  }

  async run(): Promise<SnapshotResult> {
    const started = Date.now();
    if (!this.opts.paths.length) throw new Error('no source paths given: name at least one directory to snapshot');
    // One fd per directory on the way down plus the read-ahead: deep trees need more than 1024.
    // This also loads the addon here, so a missing build is one line before any work.
    raiseNofile();
    native();
    this.hash = await xxh();
    this.excluded = makeMatcher(this.opts.excludes ?? []);
    this.hasExcludes = (this.opts.excludes ?? []).length > 0;
    const sources = this.resolveSources(this.opts.paths);
    this.sources = new Set(sources);
    const host = this.opts.host ?? thisHost(); // SNAPFILL_HOST, else the machine's name
    const time = (this.opts.time ?? new Date()).toISOString();
    this.verifyReuse = this.catalog.getMeta('verify_reuse') === '1';
    this.lineage = this.catalog.lineageId(host, sources);
    const parent = this.catalog.lineageHead(this.lineage);
    if (parent && this.opts.onProgress) this.expected = expectedTotals(this.catalog, parent);
    this.seq = this.catalog.beginSnapshot(this.lineage, time, host, sources, this.opts.tags ?? []);
    if (parent) this.parentDirs = this.catalog.openDirStates(this.lineage, this.seq);
    this.sink = new BlobSink(this.repo, this.catalog, {
      packSize: this.repo.config.pack_size,
      maxInFlight: this.repo.store.putsInFlight,
      onUpload: this.opts.onUpload,
      guard: this.opts.guard, // [prune, issue 15]
      unread: this.opts.guard?.unread, // [issue 15] one reader of unread packs for dedup and the guard
      treeTag: await this.repo.hostTag(host),
    });
    this.pool = await (this.opts.readers ?? HashPool.spawn()).start(this.wholeFileMax, this.repo.blobKey());
    try {
      this.catalog.ensurePath('/');
      const { tree } = await this.walkDir('/', false, null, undefined, -1);
      this.parentDirs.clear(); // directories gone since the parent (never walked)
      await this.sink.finish();
      this.catalog.flush();
      const result: Omit<SnapshotResult, 'snapshot_id' | 'duration_s'> = {
        parent: parent?.id ?? null,
        time,
        files_total: this.stats.files,
        files_new: this.stats.new,
        files_changed: this.stats.changed,
        files_unchanged: this.stats.unchanged,
        dirs: this.stats.dirs,
        other_entries: this.stats.other,
        bytes_total: this.stats.bytesTotal,
        bytes_read: this.stats.bytesRead,
        bytes_added: this.sink.bytesAdded,
        blobs_added: this.sink.blobsAdded,
        packs_written: this.sink.packsWritten,
        indexes_read_on_demand: this.sink.unreadIndexesRead,
        errors: this.errors,
      };
      const rec: SnapshotRecord = {
        v: 1,
        time,
        host,
        username: os.userInfo().username,
        paths: sources,
        tags: this.opts.tags ?? [],
        excludes: this.opts.excludes ?? [],
        tree,
        parent: parent?.id ?? null,
        summary: {
          files_total: result.files_total,
          files_new: result.files_new,
          files_changed: result.files_changed,
          files_unchanged: result.files_unchanged,
          dirs: result.dirs,
          bytes_total: result.bytes_total,
          bytes_added: result.bytes_added,
          errors: this.errors.length,
        },
        program: 'snapfill 0.1.0',
      };
      // [prune, issue 15] Packs a prune marked while this ran: copy what this snapshot uses from them.
      await this.opts.guard?.beforeRecord(
        this.lineage,
        tree,
        this.opts.markerHealthy?.() ?? true,
        await this.repo.hostTag(host),
        this.opts.onLog,
      );
      // Packs and indexes are durable; only now does the snapshot record make the snapshot visible.
      const id = await this.repo.saveSnapshot(rec);
      this.catalog.commitSnapshot(this.seq, id, tree, rec.parent, rec);
      if (this.verifyReuse) this.catalog.setMeta('verify_reuse', '0');
      return { snapshot_id: id, ...result, duration_s: (Date.now() - started) / 1000 };
    } catch (e) {
      this.catalog.flush();
      this.catalog.discardPending(this.seq);
      throw e;
    } finally {
      // Listings read ahead but never walked (an error stopped the walk) still hold their fds.
      // Reads started early for them are waited for first: the fd must not be closed under a read.
      for (const [, l] of this.listings) void l.then(closeOpened).catch(() => {});
      this.listings.clear();
      await this.pool.close();
    }
  }

  private resolveSources(paths: string[]): RawPath[] {
    const out: RawPath[] = [];
    for (const p0 of paths) {
      const abs = normalizeAbs(fromUser(p0.startsWith('/') ? p0 : `${process.cwd()}/${p0}`));
      const st = fs.lstatSync(toFs(abs), { throwIfNoEntry: false });
      if (!st) throw new Error(`source path does not exist: ${display(abs)}`);
      out.push(abs);
      // A source that is a symlink is recorded as the link, and its target is snapshotted too:
      // backing up "/home -> /data/home" must not silently store only a link.
      if (st.isSymbolicLink()) {
        try {
          const real = fromFs(fs.realpathSync(toFs(abs), { encoding: 'buffer' }));
          if (fs.statSync(toFs(real)).isDirectory() || fs.statSync(toFs(real)).isFile()) out.push(real);
        } catch (e) {
          this.errors.push({ path: display(abs), message: `source symlink cannot be resolved: ${(e as Error).message}` });
        }
      }
    }
    // Drop sources nested inside other sources; they are covered already.
    const sorted = [...new Set(out)].sort();
    return sorted.filter((p) => !sorted.some((q) => q !== p && isUnder(p, q)));
  }

  /** True when `p` is needed only as an ancestor of a source. */
  private leadsToSource(p: RawPath): boolean {
    for (const s of this.sources) if (isUnder(s, p)) return true;
    return false;
  }

  private error(p: RawPath, e: unknown): void {
    const err = e as NodeJS.ErrnoException;
    this.errors.push({ path: display(p), message: err.code ? `${err.code}: ${err.syscall ?? 'error'}` : String(err.message ?? e) });
  }

  private progress(current: RawPath): void {
    if (!this.opts.onProgress) return;
    const now = Date.now();
    if (now - this.lastProgress < 200) return;
    this.lastProgress = now;
    this.opts.onProgress({
      files: this.stats.files,
      dirs: this.stats.dirs,
      bytesRead: this.stats.bytesRead,
      bytesAdded: this.sink.bytesAdded,
      current,
      expected: this.expected,
    });
  }

  private entryFromStat(name: RawPath, st: StatLike): Entry {
    const uid = Number(st.uid);
    const gid = Number(st.gid);
    const type = entryTypeOf(st);
    return {
      name,
      type,
      mode: Number(st.mode) & 0o7777,
      uid,
      gid,
      user: this.ids.user(uid),
      group: this.ids.group(gid),
      size: type === 'file' ? Number(st.size) : 0,
      mtime: st.mtimeNs,
      ctime: st.ctimeNs,
      ino: st.ino,
      dev: st.dev,
      nlink: Number(st.nlink),
      rdev: type === 'chardev' || type === 'blockdev' ? Number(st.rdev) : 0,
      target: null,
      fp: null,
      content: null,
      tree: null,
      flags: 0,
    };
  }

  /**
   * Snapshots one directory's selected children and returns its tree id. `prev` is this
   * directory's row in the parent snapshot (undefined: none; null: not looked up yet).
   *
   * Fast path: the children's stat fields are digested; when the digest equals the one recorded
   * for the parent snapshot's tree and every subdirectory came back unchanged, that tree is
   * reused whole, without reading catalog rows or building a tree. Subdirectories are walked
   * before the files of a directory, in name order, in both paths (this fixes which name of a
   * hardlinked inode is "first").
   */
  private async walkDir(
    dir: RawPath,
    fully: boolean,
    fsDev: bigint | null,
    prev: DirState | null | undefined,
    parentFd: number,
  ): Promise<DirResult> {
    // (issue 6, deep trees) The recursion below has no await before descending, so a
    // 2,000-level tree nested 2,000 frames and overflowed the stack. Yielding to the event
    // loop every 256 levels unwinds the synchronous stack; other directories pay nothing.
    if (dir.length >= 512 && depthOf(dir) % 256 === 0) await new Promise((r) => setImmediate(r));
    if (prev === null) prev = dir === '/' ? undefined : this.parentDirState(dir);
    // (issue 17) The directory is opened relative to its parent's fd, never through a symlink,
    // and stays open while its subtree is walked: its subdirectories are opened and its files
    // read relative to it. It is closed only once no read of it is in flight.
    const opened = await this.listDir(dir, parentFd);
    const listing = opened.listing;
    const fd = 'fd' in listing ? listing.fd : -1;
    const reads = opened.inFlight;
    // (issue 17) A directory the parent snapshot did not have: neither do its subdirectories, so
    // they need no catalog lookup, and their reads start as soon as their listings arrive.
    const isNew = prev === undefined && dir !== '/';
    try {
      const { children, digest } = opened.sel ?? this.selectChildren(dir, fully, listing);
      // Start listing the subdirectories now: worker threads lstat them while this thread recurses.
      const listNew = (c: Child) => isNew && !this.crosses(c, fsDev);
      const subdirs = children.filter((c) => c.st.isDirectory());
      this.prefetch(fd, subdirs, listNew);

      // A directory the parent snapshot did not have: every file in it is new, so its reads can
      // start now and run in the reader threads while this thread walks the subdirectories.
      const earlyReads = prev === undefined ? (opened.early ?? this.startEarlyReads(children, fd, reads)) : null;
      const { dirResults, allSame } = await this.walkSubdirs(subdirs, fsDev, fd, isNew, listNew);
      if (prev && prev.type === 'dir' && prev.tree && digest !== null && allSame && prev.digest === digest) {
        this.countUnchanged(children);
        this.progress(dir);
        return { tree: prev.tree, same: true, digest };
      }
      return await this.buildTree(dir, prev, children, dirResults, earlyReads, digest, fd, reads);
    } finally {
      if (fd >= 0) {
        await reads.drained();
        fs.closeSync(fd);
      }
    }
  }

  /**
   * The parent snapshot's row of `dir`: from the map read at the start (taken out once used, so
   * it shrinks as the walk goes), else looked up (a new directory, or a path that was no directory).
   */
  private parentDirState(dir: RawPath): DirState | undefined {
    const known = this.parentDirs.get(dir);
    if (known === undefined) return this.catalog.openDirState(dir, this.lineage, this.seq);
    this.parentDirs.delete(dir);
    return known;
  }

  /**
   * The children of `dir` this snapshot records (every one below a source, only the way to a
   * source above it), and the digest of their stat fields (null when something is unreadable).
   */
  private selectChildren(dir: RawPath, fully: boolean, listing: ScanResult): { children: Child[]; digest: string | null } {
    let unreadable = false;
    if ('error' in listing) {
      this.errors.push({ path: display(dir), message: listing.error });
      unreadable = true;
    }
    const names = 'names' in listing ? listing.names : [];
    const children: Child[] = [];
    this.digest.reset(this.hash);
    let errAt = 0;
    const stats = 'stats' in listing ? listing.stats : new BigUint64Array(0);
    const words = scanWords(stats);
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      const status = (listing as { status: Uint8Array }).status[i];
      // Below a source no other source lies (nested sources are dropped), so there the full
      // path is made only to match excludes: one string and a set lookup less per entry.
      let isSource = false;
      let wanted = true;
      if (!fully) {
        const p = join(dir, name);
        isSource = this.sources.has(p);
        wanted = (isSource || this.leadsToSource(p)) && !(isSource && this.excluded(p));
      } else if (this.hasExcludes) wanted = !this.excluded(join(dir, name));
      if (status === 2) {
        const msg = (listing as { errors: string[] }).errors[errAt++];
        if (wanted) {
          this.errors.push({ path: display(join(dir, name)), message: msg });
          unreadable = true;
        }
        continue;
      }
      if (!wanted) continue;
      if (status === 1) {
        this.errors.push({ path: display(join(dir, name)), message: 'vanished during the walk' });
        continue;
      }
      const st = new ScanStat(stats, i, words);
      if (!fully && !isSource && !st.isDirectory()) continue; // an ancestor path that is not a directory
      children.push(new Child(dir, name, st, isSource, fully || isSource));
      this.digest.addFields(name, stats, i, st.isFile());
    }
    return { children, digest: unreadable ? null : this.digest.hex() };
  }

  /** Subdirectories first, in name order (this fixes which name of a hardlinked inode is "first"). */
  private async walkSubdirs(
    subdirs: Child[],
    fsDev: bigint | null,
    dirFd: number,
    parentNew: boolean,
    isNew: (c: Child) => boolean,
  ): Promise<{ dirResults: Map<RawPath, DirResult>; allSame: boolean }> {
    const dirResults = new Map<RawPath, DirResult>();
    let allSame = true;
    // Below a new directory every subdirectory is new (undefined); else looked up (null).
    const prev = parentNew ? undefined : null;
    for (let j = 0; j < subdirs.length; j++) {
      const c = subdirs[j];
      if (j > 0) this.prefetch(dirFd, subdirs, isNew, j); // the look-ahead moves with the walk
      this.stats.dirs++;
      let r: DirResult;
      if (!c.childFully) r = await this.walkDir(c.p, false, null, prev, dirFd);
      else if (this.crosses(c, fsDev)) {
        this.dropListing(c.p);
        r = { tree: await this.emptyTree(), same: false, digest: null, crossing: true };
      } else r = await this.walkDir(c.p, true, c.isSource ? c.st.dev : fsDev, prev, dirFd);
      dirResults.set(c.name, r);
      if (!r.same) allSame = false;
    }
    return { dirResults, allSame };
  }

  /** The counters of a directory reused whole from the parent snapshot. */
  private countUnchanged(children: Child[]): void {
    for (const c of children) {
      if (c.st.isFile()) {
        this.stats.files++;
        this.stats.unchanged++;
        this.stats.bytesTotal += Number(c.st.size);
        if (c.st.nlink > 1n) this.noteHardlinkUnchanged(c.p, c.st);
      } else if (!c.st.isDirectory()) this.stats.other++;
    }
  }

  /** Records a changed (or new) directory: one catalog row per changed entry, a new tree blob. */
  private async buildTree(
    dir: RawPath,
    prev: DirState | undefined,
    children: Child[],
    dirResults: Map<RawPath, DirResult>,
    earlyReads: DirReads | null,
    digest: string | null,
    dirFd: number,
    inFlight: ReadsInFlight,
  ): Promise<DirResult> {
    const dirPathId = prev?.pathId ?? this.catalog.ensurePath(dir);
    const prevChildren = this.catalog.openChildren(dirPathId, this.lineage, this.seq);
    const tree = new TreeEncoder();
    let digestable = digest !== null;
    // Files after subdirectories (see walkDir), each group in name order; the tree is sorted at the end.
    const ordered = [...children.filter((c) => c.st.isDirectory()), ...children.filter((c) => !c.st.isDirectory())];
    const reads = earlyReads ?? this.startReads(ordered, prevChildren, dirFd, inFlight);
    try {
      for (const c of ordered) {
        const prevRow = prevChildren.get(c.name);
        prevChildren.delete(c.name);
        const e = await this.entryOf(c, dirResults, prevRow, reads, dirFd);
        if (e === null || (e.content === null && e.type === 'file') || e.flags & FLAG_CHANGED_DURING_READ) digestable = false; // retry such files next time
        if (e === null) continue;
        this.recordVersion(c, e, prevRow, dirPathId, dir);
        tree.add(e);
        this.progress(c.p);
      }
    } finally {
      reads.release();
    }
    // Entries of the parent snapshot that are gone now.
    for (const [name, gone] of prevChildren) {
      this.catalog.closeVersion(this.seq, gone.versionId);
      if (gone.type === 'dir') this.catalog.closeSubtree(this.seq, this.lineage, join(dir, name));
    }
    const bytes = tree.finish();
    const id = blobIdOf(bytes);
    if (!this.sink.has(id)) await this.sink.add('tree', id, encodeForStore(bytes, 6), true);
    if (digestable && digest !== null) this.catalog.setTreeDigest(id, digest);
    return { tree: id, same: prev !== undefined && prev.tree === id, digest };
  }

  /** The entry of one child (its content read or reused); null when it could not be recorded. */
  private async entryOf(
    c: Child,
    dirResults: Map<RawPath, DirResult>,
    prevRow: VersionRow | undefined,
    reads: DirReads,
    dirFd: number,
  ): Promise<Entry | null> {
    const e = this.entryFromStat(c.name, c.st);
    if (e.type === 'dir') {
      const sub = dirResults.get(c.name)!;
      e.tree = sub.tree;
      if (sub.crossing) this.catalog.closeSubtree(this.seq, this.lineage, c.p);
    } else if (e.type === 'file') {
      this.stats.files++;
      this.stats.bytesTotal += e.size;
      await this.recordFile(c.p, e, c.st, prevRow, reads.get(c.name), dirFd);
    } else if (e.type === 'symlink') {
      this.stats.other++;
      try {
        // Relative to the directory's fd, as every read of the live tree (a parent swapped for a
        // symlink since the listing must not lend the snapshot another link's target).
        e.target = readlinkAt(dirFd, c.name);
      } catch (err) {
        this.error(c.p, err);
        return null;
      }
    } else {
      this.stats.other++;
    }
    return e;
  }

  /** A catalog row for an entry that differs from its parent snapshot's row (none when equal). */
  private recordVersion(c: Child, e: Entry, prevRow: VersionRow | undefined, dirPathId: number, dir: RawPath): void {
    if (prevRow && sameEntry(prevRow, e)) return;
    const pathId = prevRow?.pathId ?? this.catalog.childPathId(dirPathId, dir, c.name);
    if (prevRow) {
      this.catalog.closeVersion(this.seq, prevRow.versionId);
      if (prevRow.type === 'dir' && e.type !== 'dir') this.catalog.closeSubtree(this.seq, this.lineage, c.p);
    }
    this.catalog.insertVersion(pathId, this.lineage, this.seq, e);
  }

  private readonly listings = new Map<RawPath, Promise<Opened>>();
  private readonly readBudget = new ReadBudget(READ_BUDGET);
  /** Directories listed ahead whose first reads started before the walk reached them. */
  private earlyDirs = 0;

  /** Whether the walk stops at subdirectory `c` (--one-file-system, another device). */
  private crosses(c: Child, fsDev: bigint | null): boolean {
    return c.childFully && !!this.opts.oneFileSystem && fsDev !== null && c.st.dev !== fsDev;
  }

  /** A directory's listing with lstat fields and its open fd, from a reader thread (prefetched when possible). */
  private async listDir(dir: RawPath, parentFd: number): Promise<Opened> {
    const p = this.listings.get(dir);
    if (p) {
      this.listings.delete(dir);
      const o = await p;
      if (o.counted) this.earlyDirs--;
      return o;
    }
    return { listing: await this.pool.scan(parentFd, baseName(dir), dir), inFlight: new ReadsInFlight() };
  }

  /**
   * Lists SIBLINGS_AHEAD of `subdirs` (a directory's subdirectories, in the walk's order) from
   * the `from`th on, ahead of the walk. Those `isNew` says the parent snapshot lacks (see
   * below): as soon as the listing arrives their children are selected and their reads start (a
   * window, see DirReads): the reader threads work while this thread is still recording earlier
   * directories, instead of waiting for each new directory's first reads.
   */
  private prefetch(parentFd: number, subdirs: Child[], isNew: (c: Child) => boolean, from = 0): void {
    // Bounded look-ahead: enough to keep the threads busy, not a copy of the whole tree (each
    // listing read ahead holds its directory's fd until it is walked).
    if (parentFd < 0) return;
    const dirs: Child[] = [];
    for (let i = from; i < Math.min(subdirs.length, from + SIBLINGS_AHEAD); i++) {
      if (this.listings.size + dirs.length >= LISTINGS_AHEAD) break;
      if (!this.listings.has(subdirs[i].p)) dirs.push(subdirs[i]);
    }
    if (!dirs.length) return;
    const scans = this.pool.scanMany(
      parentFd,
      dirs.map((c) => c.name),
    );
    dirs.forEach((c, k) => {
      const fresh = isNew(c);
      this.listings.set(
        c.p,
        scans[k].then((listing): Opened => {
          const opened: Opened = { listing, inFlight: new ReadsInFlight() };
          if (fresh && 'fd' in listing) {
            opened.sel = this.selectChildren(c.p, c.childFully, listing);
            // Bounded: results wait in memory until the walk records them.
            if (this.earlyDirs < EARLY_DIRS) {
              this.earlyDirs++;
              opened.counted = true;
              opened.early = this.startEarlyReads(opened.sel.children, listing.fd, opened.inFlight, EARLY_WINDOW);
            }
          } else if ('fd' in listing && !this.opts.oneFileSystem) {
            // (issue 17) A directory the parent snapshot has: its subdirectories are listed now
            // too, not when the walk gets here. A walk that waited for each first subdirectory's
            // listing spent half a no-change snapshot idle, a reader round trip per level. (Not
            // below new directories, whose early reads keep the readers busy and hold memory;
            // not with --one-file-system, where a subdirectory's device decides: the walk's.)
            opened.sel = this.selectChildren(c.p, c.childFully, listing);
            this.prefetch(
              listing.fd,
              opened.sel.children.filter((s) => s.st.isDirectory()),
              () => false,
            );
          }
          return opened;
        }),
      );
    });
  }

  /** The reads of a new directory's files, started now (see walkDir). */
  private startEarlyReads(children: Child[], fd: number, inFlight: ReadsInFlight, window = READ_WINDOW): DirReads {
    return this.startReads(
      children.filter((c) => !c.st.isDirectory()),
      new Map(),
      fd,
      inFlight,
    ).startEarly(window);
  }

  /** A listing read ahead that will not be walked (another file system): its fd is closed. */
  private dropListing(dir: RawPath): void {
    const p = this.listings.get(dir);
    if (!p) return;
    this.listings.delete(dir);
    void p.then(closeOpened).catch(() => {});
  }

  /** A hardlinked file in a directory reused whole: its inode is still "seen" for later names. */
  private noteHardlinkUnchanged(p: RawPath, st: StatLike): void {
    const key = `${st.dev}:${st.ino}`;
    if (this.hardlinks.has(key)) return;
    const row = this.catalog.openVersionByPath(p, this.lineage, this.seq);
    if (row && row.type === 'file') this.hardlinks.set(key, { path: p, fp: row.fp, content: row.content, chunkSizes: row.chunkSizes });
    else if (row && row.type === 'hardlink' && row.target)
      this.hardlinks.set(key, { path: row.target, fp: row.fp, content: row.content, chunkSizes: row.chunkSizes });
  }

  private async emptyTree(): Promise<BlobId> {
    const bytes = encodeTree([]);
    const id = blobIdOf(bytes);
    await this.sink.add('tree', id, bytes);
    return id;
  }

  /**
   * The reads this directory needs (new or changed files of at most one chunk), handed to the
   * reader threads a bounded window ahead of this thread's recording (see DirReads).
   */
  private startReads(children: Child[], prevChildren: Map<RawPath, VersionRow>, dirFd: number, inFlight: ReadsInFlight): DirReads {
    const toRead: Child[] = [];
    const inodes = new Set<string>();
    for (const c of children) {
      if (!c.st.isFile() || !c.childFully) continue;
      if (c.st.nlink > 1n) {
        const key = `${c.st.dev}:${c.st.ino}`;
        if (this.hardlinks.has(key) || inodes.has(key)) continue; // a later name: no read
        inodes.add(key);
      }
      const prev = prevChildren.get(c.name);
      if (
        prev &&
        statUnchanged(prev, this.entryFromStat(c.name, c.st)) &&
        (!this.verifyReuse || prev.content!.every((id) => this.sink.has(id)))
      )
        continue;
      if (c.st.size > BigInt(this.wholeFileMax) || this.opts.onRead) continue; // big or throttled: this thread reads it
      toRead.push(c);
    }
    return new DirReads(this.pool, dirFd < 0 ? [] : toRead, inFlight, this.readBudget, dirFd);
  }

  /** Stores the blob of a read result that is not otherwise used. */
  private async keepStored(r: HashResult): Promise<void> {
    if (r.code === 'ok' && r.id && r.stored) await this.storeRead(r.id, r.stored, r.sealed);
  }

  /** Stores a blob a reader thread encoded (and sealed, when `sealed`: never in an unencrypted repository). */
  private async storeRead(id: BlobId, stored: Uint8Array, sealed: boolean): Promise<void> {
    if (sealed && !this.repo.blobKey()) throw new Error('internal: a sealed blob for an unencrypted repository');
    await this.sink.add('data', id, Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength), false, sealed);
  }

  /** Applies a reader thread's result to the entry; false when this thread must read the file itself. */
  private async applyRead(p: RawPath, e: Entry, r: HashResult): Promise<boolean> {
    if (r.code === 'big') return false;
    if (r.code === 'error') {
      this.errors.push({ path: display(p), message: r.msg });
      e.content = null;
      e.fp = null;
      return true;
    }
    const st = r.st;
    Object.assign(e, {
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      user: this.ids.user(st.uid),
      group: this.ids.group(st.gid),
      size: r.read,
      mtime: BigInt(st.mtime),
      ctime: BigInt(st.ctime),
      ino: BigInt(st.ino),
      dev: BigInt(st.dev),
      nlink: st.nlink,
    });
    e.fp = r.fp;
    e.content = r.id ? [r.id] : [];
    if (r.id && r.stored) await this.storeRead(r.id, r.stored, r.sealed);
    this.stats.bytesRead += r.read;
    if (r.torn) {
      e.flags |= FLAG_CHANGED_DURING_READ;
      this.errors.push({
        path: display(p),
        message: `changed while being read (${READ_RETRIES} attempts); stored content may be inconsistent`,
      });
    }
    return true;
  }

  private async recordFile(
    p: RawPath,
    e: Entry,
    st: StatLike,
    prev: VersionRow | undefined,
    read: Promise<HashResult> | undefined,
    dirFd: number,
  ): Promise<void> {
    if (e.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.hardlinks.get(key);
      if (first) {
        e.type = 'hardlink';
        e.target = first.path;
        e.fp = first.fp;
        e.content = first.content;
        setChunkSizes(e, first.chunkSizes);
        this.stats.unchanged++;
        // A read started early for this name (its first name turned up in a subdirectory
        // meanwhile) may carry the only copy of a blob the reader thread will not send again.
        if (read) await this.keepStored(await read);
        return;
      }
    }
    if (prev && statUnchanged(prev, e) && (!this.verifyReuse || prev.content!.every((id) => this.sink.has(id)))) {
      e.fp = prev.fp;
      e.content = prev.content;
      setChunkSizes(e, prev.chunkSizes);
      this.stats.unchanged++;
      if (read) await this.keepStored(await read);
    } else {
      if (!read || !(await this.applyRead(p, e, await read))) await this.readFile(p, e, st, dirFd);
      if (prev) this.stats.changed++;
      else this.stats.new++;
    }
    if (e.nlink > 1) this.hardlinks.set(`${st.dev}:${st.ino}`, { path: p, fp: e.fp, content: e.content, chunkSizes: e.chunkSizes });
  }

  /**
   * Reads a file once: fingerprints it, cuts it into chunks, stores new chunks. Detects change
   * during the read. Opened relative to its directory's fd (a listing with children always has
   * one, see ScanResult), never by path: a customer who swaps a parent directory for a symlink after the listing must not get
   * a file from elsewhere (/etc/shadow under the name of their own big file) into their snapshot.
   */
  private async readFile(p: RawPath, e: Entry, st0: StatLike, dirFd: number): Promise<void> {
    let st = st0;
    const at = procPath(dirFd, e.name);
    for (let attempt = 1; ; attempt++) {
      let fd: number;
      try {
        fd = fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | O_NOATIME);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EPERM' && O_NOATIME) {
          try {
            fd = fs.openSync(at, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
          } catch (err2) {
            this.fail(p, e, err2);
            return;
          }
        } else {
          this.fail(p, e, err);
          return;
        }
      }
      try {
        const before = fs.fstatSync(fd, { bigint: true });
        if (before.ino !== st.ino || !before.isFile()) {
          // Replaced between lstat and open: describe what we are actually reading.
          st = before;
          Object.assign(e, { ...this.entryFromStat(e.name, before), name: e.name });
        }
        const xh = this.hash.create64();
        const content: BlobId[] = [];
        // Content-defined chunks carry their sizes (reads by offset need them); fixed ones do not.
        const sizes: number[] | undefined = this.cdc ? [] : undefined;
        const total = await this.readChunks(fd, Number(before.size), xh, content, sizes);
        this.stats.bytesRead += total;
        const after = fs.fstatSync(fd, { bigint: true });
        if (sameStat(st, after) && total === Number(after.size)) {
          e.fp = fpHex(xh.digest());
          e.content = content;
          setChunkSizes(e, sizes);
          e.size = total;
          return;
        }
        if (attempt >= READ_RETRIES) {
          Object.assign(e, { ...this.entryFromStat(e.name, after), name: e.name });
          e.fp = fpHex(xh.digest());
          e.content = content;
          setChunkSizes(e, sizes);
          e.size = total;
          e.flags |= FLAG_CHANGED_DURING_READ;
          this.errors.push({
            path: display(p),
            message: `changed while being read (${READ_RETRIES} attempts); stored content may be inconsistent`,
          });
          return;
        }
        st = after;
        Object.assign(e, { ...this.entryFromStat(e.name, after), name: e.name });
      } catch (err) {
        this.fail(p, e, err);
        return;
      } finally {
        fs.closeSync(fd);
      }
    }
  }

  /**
   * Reads a file to its end, cutting it into chunks and storing the new ones: content-defined
   * chunks (version 2) for a file above the threshold, else fixed chunks (chunk_size; in a
   * version-2 repository `max`, so a small file read here is one blob, as a reader thread
   * stores it). Returns the bytes read; `content` and `sizes` get the chunks in order.
   */
  private async readChunks(
    fd: number,
    sizeAtOpen: number,
    xh: ReturnType<XXHashAPI['create64']>,
    content: BlobId[],
    sizes: number[] | undefined,
  ): Promise<number> {
    const buf = (this.chunkBuf ??= Buffer.allocUnsafe(this.chunkBufSize));
    const cutter = this.cdc && sizeAtOpen > this.cdc.cfg.threshold ? this.cdc.cutter : null;
    const store = async (chunk: Buffer) => {
      const id = blobIdOf(chunk);
      content.push(id);
      sizes?.push(chunk.length);
      if (!this.sink.has(id)) await this.sink.add('data', id, encodeForStore(Buffer.from(chunk)), true);
    };
    let total = 0;
    if (!cutter) {
      const fixed = this.cdc ? buf.subarray(0, this.cdc.cfg.max) : buf;
      for (;;) {
        const n = readFull(fd, fixed);
        if (n === 0) break;
        if (this.opts.onRead) await this.opts.onRead(n);
        const chunk = fixed.subarray(0, n);
        xh.update(chunk);
        await store(chunk);
        total += n;
        if (n < fixed.length) break;
      }
      return total;
    }
    // buf[0, have) holds the chunk in progress (shorter than max: the chunker cuts at max);
    // each read appends up to max bytes after it, and what follows the last cut moves to the front.
    const readLen = this.cdc!.cfg.max;
    let have = 0;
    cutter.finish(); // a previous file's read may have failed half-way
    try {
      for (;;) {
        const fresh = buf.subarray(have, have + readLen);
        const n = readFull(fd, fresh);
        if (n === 0) break;
        if (this.opts.onRead) await this.opts.onRead(n);
        const got = fresh.subarray(0, n);
        xh.update(got);
        total += n;
        let from = 0;
        for (const cut of cutter.push(got)) {
          await store(buf.subarray(from, have + cut));
          from = have + cut;
        }
        buf.copyWithin(0, from, have + n);
        have = have + n - from;
        if (n < readLen) break;
      }
      if (have > 0) await store(buf.subarray(0, have));
    } finally {
      cutter.finish();
    }
    return total;
  }

  private fail(p: RawPath, e: Entry, err: unknown): void {
    // Recorded without content: a restore recreates nothing it cannot vouch for.
    this.error(p, err);
    e.content = null;
    setChunkSizes(e, undefined);
    e.fp = null;
  }
}

/** Bytes of file content read ahead of the recording, per directory being recorded. */
const READ_WINDOW = 8 << 20;
/** Files per message to a reader thread. */
const READ_BATCH = 64;
/**
 * Directories listed ahead of the walk (each holds its fd and listing until walked). 64 and 256
 * were as fast for a no-change snapshot, 2048 ~10% slower (issue 17, alternated runs).
 */
const LISTINGS_AHEAD = 256;
/**
 * Subdirectories of one directory listed ahead of the walk, from the one it enters next: the
 * look-ahead follows the walk's order. Without it the first wide directory (250 accounts under
 * /home) took the whole LISTINGS_AHEAD, and below it nearly every directory was listed only when
 * the walk reached it, a reader round trip each (issue 17: no-change snapshot 0.89x; 1 to 16
 * tried, 4 to 6 best).
 */
const SIBLINGS_AHEAD = 4;
/** Directories listed ahead of the walk with reads started, and their first window (bytes). */
const EARLY_DIRS = 64;
const EARLY_WINDOW = 1 << 20;

/**
 * File bytes read ahead of the recording across all directories (issue 17, peak RSS): each
 * directory's window alone left ~170 MiB of results waiting in a 1M-file snapshot (a new
 * directory's window stays open while its subdirectories are walked, plus the directories
 * listed ahead). Results are compressed, so this bounds them from above.
 */
const READ_BUDGET = 32 << 20;

/** The shared count of bytes started and not yet taken by the walk (see DirReads). */
class ReadBudget {
  used = 0;
  constructor(readonly limit: number) {}
}

/**
 * The reads of one directory's files, in the order the walk records them, started a window
 * ahead of the recording (READ_WINDOW bytes, at least one batch): the reader threads stay busy
 * while the results waiting to be recorded (compressed file contents) stay bounded, even for a
 * directory of a million files. Every started read is also counted in `inFlight`, so the
 * directory's fd is closed only after they are all done.
 */
class DirReads {
  private started = 0;
  /** Items whose result the walk has taken (or given up): their bytes are back in the budget. */
  private taken: Uint8Array;
  /** The reads started and not yet taken: get() hands each out once and forgets it (see get). */
  private readonly promises: (Promise<HashResult> | undefined)[] = [];
  private readonly index = new Map<RawPath, number>();
  /** prefix[k]: bytes of items[0..k). */
  private readonly prefix: number[] = [0];

  constructor(
    private readonly pool: HashPool,
    /** The files to read, in the order the walk records them (their read requests are made per batch, see fill). */
    private readonly files: Child[],
    private readonly inFlight: ReadsInFlight,
    private readonly budget: ReadBudget,
    private readonly dirFd = -1,
  ) {
    this.taken = new Uint8Array(files.length);
    files.forEach((c, k) => {
      this.index.set(c.name, k);
      this.prefix.push(this.prefix[k] + Number(c.st.size));
    });
  }

  /** Starts the first window now (reads of a new directory run while its subdirectories are walked). */
  startEarly(window = READ_WINDOW): this {
    this.fill(0, window);
    return this;
  }

  /**
   * The read of `name` (started now if it was not yet, with the window after it); undefined: no
   * read. Handed out once: the directory then holds no reference to the result, whose blob the
   * walk stores and drops (a directory of 20k files held every file's encoded bytes until it was
   * recorded: +100 MiB peak RSS for 90 MB of files in one directory; a maildir is such a one).
   */
  get(name: RawPath): Promise<HashResult> | undefined {
    const k = this.index.get(name);
    if (k === undefined) return undefined;
    this.fill(k);
    this.give(k);
    const read = this.promises[k];
    this.promises[k] = undefined;
    return read;
  }

  /** Returns the budget of every read started and not taken (the directory is recorded, or dropped). */
  release(): void {
    for (let k = 0; k < this.started; k++) this.give(k);
  }

  private give(k: number): void {
    if (this.taken[k]) return;
    this.taken[k] = 1;
    this.budget.used -= this.prefix[k + 1] - this.prefix[k];
  }

  private fill(k: number, window = READ_WINDOW): void {
    const n = this.files.length;
    // Reads the walk needs now always start; reads ahead only within the window and the budget.
    while (
      this.started < n &&
      (this.started <= k || (this.prefix[this.started] - this.prefix[k] < window && this.budget.used < this.budget.limit))
    ) {
      const part = this.files.slice(this.started, this.started + READ_BATCH);
      this.budget.used += this.prefix[this.started + part.length] - this.prefix[this.started];
      for (const r of this.pool.hashDir(this.dirFd, part)) {
        this.promises.push(r);
        this.inFlight.add(r);
      }
      this.started += part.length;
    }
  }
}

/**
 * The reads started on one directory's fd that have not settled yet: the fd is closed only once
 * there are none. A count, not a list: a list held a promise per file of the directory until it
 * was recorded (100k in a large mail folder, issue 17).
 */
class ReadsInFlight {
  private count = 0;
  private waiters: (() => void)[] = [];

  /** Counts `read` until it settles (either way: a failed read is the walk's to report, see DirReads.get). */
  add(read: Promise<unknown>): void {
    this.count++;
    const done = (): void => {
      if (--this.count === 0) for (const wake of this.waiters.splice(0)) wake();
    };
    read.then(done, done);
  }

  /** Settles once every read added so far has settled. */
  drained(): Promise<void> {
    return this.count === 0 ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve));
  }
}

/**
 * A directory listed ahead of the walk: its listing (with the open fd), and for a new directory
 * its selected children and their reads, already started.
 */
interface Opened {
  listing: ScanResult;
  sel?: { children: Child[]; digest: string | null };
  early?: DirReads;
  /** Counted in Snapshotter.earlyDirs until the walk takes it. */
  counted?: boolean;
  /** The reads started on the directory's fd: all settle before the fd is closed. */
  inFlight: ReadsInFlight;
}

/** Closes a listing's fd that will not be walked, once the reads started on it are done. */
async function closeOpened(o: Opened): Promise<void> {
  o.early?.release();
  if (!('fd' in o.listing)) return;
  await o.inFlight.drained();
  fs.closeSync(o.listing.fd);
}

/** The last component of an absolute raw path ('/' for the root). */
function baseName(p: RawPath): string {
  return p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1);
}

/** Sets or clears an entry's chunk sizes (present only for content-defined chunks). */
function setChunkSizes(e: Entry, sizes: number[] | undefined): void {
  if (sizes) e.chunkSizes = sizes;
  else delete e.chunkSizes;
}

/** Number of components of an absolute raw path. */
function depthOf(p: RawPath): number {
  let n = 0;
  for (let i = 0; i < p.length; i++) if (p.charCodeAt(i) === 0x2f) n++;
  return n;
}

function readFull(fd: number, buf: Buffer): number {
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, null);
    if (n === 0) break;
    got += n;
  }
  return got;
}
