import type { Catalog, DirStatRow, SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { lookupEntry } from '../catalog/lookup.js';
import { display, fromUser, join, normalizeAbs, type RawPath } from '../util/rawpath.js';

/**
 * The browsable view of a repository that `snapfill mount` serves, independent of FUSE:
 *
 *   /snapshots/<time>_<shortid>/<original absolute paths>
 *   /latest/...                   the newest snapshot (a directory: see resolve())
 *   /accounts/<name>/<time>/...   one account's home (<accounts root>/<name>) in each snapshot
 *
 * Every answer comes from the SQLite catalog with indexed queries (one directory or one path
 * at a time), so browsing never loads a whole snapshot. View paths are Unicode strings (what
 * the kernel hands FUSE); snapshot paths are raw byte strings.
 */

export const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const TYPE_BITS: Record<string, number> = {
  file: S_IFREG,
  hardlink: S_IFREG,
  dir: S_IFDIR,
  symlink: S_IFLNK,
  fifo: 0o010000,
  chardev: 0o020000,
  blockdev: 0o060000,
  socket: 0o140000,
};

/** What stat(2) shows for a node. Times are milliseconds (the precision fuse-native carries). */
export interface NodeAttr {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  blocks: number;
  ino: number;
  nlink: number;
  rdev: number;
  mtime: number;
  atime: number;
  ctime: number;
}

/** The fields stat needs, shared by full catalog rows and lean listing rows. */
type StatFields = Pick<
  DirStatRow,
  'versionId' | 'type' | 'mode' | 'uid' | 'gid' | 'size' | 'mtimeMs' | 'ctimeMs' | 'nlink' | 'rdev' | 'target'
>;

/**
 * Attributes packed as fuse-native's 18 uint32 stat layout: mode, uid, gid, size (lo, hi), dev,
 * nlink, ino, rdev, blksize, blocks (lo, hi), atime, mtime, ctime (ms, lo and hi each).
 * A 100k-entry listing is one 7 MB typed array instead of 100k objects for the GC.
 */
export const STAT_INTS = 18;
const TWO32 = 4294967296;

export function packAttr(a: NodeAttr, out: Uint32Array, at: number): void {
  const dbl = (i: number, n: number) => {
    const lo = n % TWO32;
    out[at + i] = lo;
    out[at + i + 1] = (n - lo) / TWO32;
  };
  out[at] = a.mode;
  out[at + 1] = a.uid;
  out[at + 2] = a.gid;
  dbl(3, a.size);
  out[at + 5] = 0;
  out[at + 6] = a.nlink;
  out[at + 7] = a.ino;
  out[at + 8] = a.rdev;
  out[at + 9] = 4096;
  dbl(10, a.blocks);
  dbl(12, Math.max(0, a.atime));
  dbl(14, Math.max(0, a.mtime));
  dbl(16, Math.max(0, a.ctime));
}

/** A directory listing: names in order, and their packed attributes. */
export interface Listing {
  names: string[];
  stats: Uint32Array;
  index: Map<string, number> | null;
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x00-\x7f]*$/;

export type ViewNode =
  { kind: 'dir'; attr: NodeAttr } | { kind: 'entry'; attr: NodeAttr; snap: SnapshotRow; path: RawPath; version: VersionRow | null };

export class ViewError extends Error {
  constructor(
    readonly code: 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EINVAL',
    message: string,
  ) {
    super(message);
  }
}

/** Inode numbers for synthetic nodes count down from the top of the 32-bit range fuse-native carries. */
const VIRTUAL_INO_TOP = 0xffffffff;

/** Compact, sortable, shell- and rsync-safe time label: 2026-11-21T150812Z. */
export function timeLabel(iso: string): string {
  return iso.slice(0, 19).replace(/:/g, '') + 'Z';
}

export function snapshotLabel(s: SnapshotRow): string {
  return `${timeLabel(s.time)}_${s.id.slice(0, 8)}`;
}

interface SnapCache {
  at: number;
  list: SnapshotRow[];
  byLabel: Map<string, SnapshotRow>;
}

export interface SnapshotTreeOptions {
  /** Where account homes live in the snapshots (default /home). */
  accountsRoot?: string;
  /** Bound on the entries of cached directory listings (read back by stat). */
  listingCacheEntries?: number;
  /** How long the snapshot list is trusted before re-reading the catalog (new snapshots appear). */
  snapshotListTtlMs?: number;
}

export class SnapshotTree {
  readonly accountsRoot: RawPath;
  private snaps: SnapCache | null = null;
  private readonly virtualIno = new Map<string, number>();
  /** Recent directory listings by view path, oldest first; `listed` counts their entries. */
  private readonly listings = new Map<string, Listing>();
  private listed = 0;
  private readonly listedMax: number;
  private readonly ttl: number;
  private readonly accountsBySnap = new Map<string, Set<string>>();
  private readonly accountCache = new Map<string, { snaps: SnapCache; map: Map<string, SnapshotRow> }>();
  private readonly mountedAt = Date.now();

  constructor(
    readonly catalog: Catalog,
    opts: SnapshotTreeOptions = {},
  ) {
    this.accountsRoot = normalizeAbs(fromUser(opts.accountsRoot ?? '/home'));
    this.listedMax = opts.listingCacheEntries ?? 300_000;
    this.ttl = opts.snapshotListTtlMs ?? 2000;
  }

  // ---- snapshots -------------------------------------------------------------------------

  snapshots(): SnapCache {
    if (this.snaps && Date.now() - this.snaps.at < this.ttl) return this.snaps;
    const list = this.catalog.listSnapshots();
    const byLabel = new Map(list.map((s) => [snapshotLabel(s), s]));
    this.snaps = { at: Date.now(), list, byLabel };
    return this.snaps;
  }

  /** The snapshots that hold an account's home, labelled by time (plus the id where times collide). */
  accountSnapshots(name: string): Map<string, SnapshotRow> {
    // Every path under /accounts/<name>/ resolves through here: keep the answer as long as the snapshot list.
    const snaps = this.snapshots();
    const hit = this.accountCache.get(name);
    if (hit && hit.snaps === snaps) return hit.map;
    const map = this.computeAccountSnapshots(name);
    if (this.accountCache.size > 10_000) this.accountCache.clear();
    this.accountCache.set(name, { snaps, map });
    return map;
  }

  private computeAccountSnapshots(name: string): Map<string, SnapshotRow> {
    const home = join(this.accountsRoot, fromUser(name));
    const hits = this.snapshots().list.filter((s) => this.accountsOf(s).has(name) && this.catalog.entry(s, home)?.type === 'dir');
    const count = new Map<string, number>();
    for (const s of hits) count.set(timeLabel(s.time), (count.get(timeLabel(s.time)) ?? 0) + 1);
    return new Map(hits.map((s) => [count.get(timeLabel(s.time))! > 1 ? snapshotLabel(s) : timeLabel(s.time), s]));
  }

  /** Account names (directories directly under the accounts root) in one snapshot; cached, snapshots are immutable. */
  private accountsOf(s: SnapshotRow): Set<string> {
    let set = this.accountsBySnap.get(s.id);
    if (!set) {
      set = new Set();
      for (const v of this.catalog.listDir(s, this.accountsRoot)) if (v.type === 'dir') set.add(display(v.name));
      this.accountsBySnap.set(s.id, set);
    }
    return set;
  }

  accounts(): string[] {
    const names = new Set<string>();
    for (const s of this.snapshots().list) for (const n of this.accountsOf(s)) names.add(n);
    return [...names].sort();
  }

  // ---- resolving view paths --------------------------------------------------------------

  /** Maps a view path to a node, or throws ViewError('ENOENT'). */
  resolve(viewPath: string): ViewNode {
    const parts = viewPath.split('/').filter((x) => x !== '');
    if (parts.length === 0) return this.virtualDir('/');
    const [top, a, b, ...rest] = parts;
    if (top === 'latest') {
      // A directory, not a symlink to snapshots/<newest>: the kernel does not cache FUSE
      // symlinks, so every path through a symlink would cost a readlink round trip.
      const list = this.snapshots().list;
      if (!list.length) throw new ViewError('ENOENT', 'no snapshots');
      return this.entryNode(list[list.length - 1], '/', parts.slice(1));
    }
    if (top === 'snapshots') {
      if (a === undefined) return this.virtualDir('/snapshots');
      const snap = this.snapshots().byLabel.get(a);
      if (!snap) throw new ViewError('ENOENT', `no snapshot ${a}`);
      return this.entryNode(snap, '/', parts.slice(2));
    }
    if (top === 'accounts') {
      if (a === undefined) return this.virtualDir('/accounts');
      const bySnap = this.accountSnapshots(a);
      if (!bySnap.size) throw new ViewError('ENOENT', `no account ${a}`);
      if (b === undefined) return this.virtualDir('/accounts/' + a);
      const snap = bySnap.get(b);
      if (!snap) throw new ViewError('ENOENT', `account ${a} has no snapshot ${b}`);
      return this.entryNode(snap, join(this.accountsRoot, fromUser(a)), rest);
    }
    throw new ViewError('ENOENT', `no ${viewPath}`);
  }

  /** A path inside one snapshot: `prefix` (raw) plus `parts`, Unicode components from the kernel. */
  private entryNode(snap: SnapshotRow, prefix: RawPath, parts: string[]): ViewNode {
    const raw = parts.reduce((dir, part) => join(dir, fromUser(part)), prefix);
    if (raw === '/') return { kind: 'entry', snap, path: '/', version: null, attr: this.virtualAttr(`/snap/${snap.id}`, S_IFDIR | 0o755) };
    const v = lookupEntry(this.catalog, snap, raw, prefix);
    if (!v) throw new ViewError('ENOENT', `${display(raw)} is not in snapshot ${snap.id.slice(0, 8)}`);
    return { kind: 'entry', snap, path: v.path, version: v, attr: this.entryAttr(snap, v) };
  }

  /** stat of a view path (resolved through the catalog; see stat() for the cached form). */
  attr(viewPath: string): NodeAttr {
    return this.resolve(viewPath).attr;
  }

  /**
   * stat of a view path as a packed STAT_INTS row. A path inside a recently listed directory
   * is answered from that listing's table (ls -l, cp -a and rsync stat every name they just
   * listed); anything else goes through the catalog.
   */
  stat(viewPath: string): Uint32Array {
    const cut = viewPath.lastIndexOf('/');
    const listing = this.listings.get(cut <= 0 ? '/' : viewPath.slice(0, cut));
    if (listing) {
      listing.index ??= new Map(listing.names.map((n, i) => [n, i]));
      const i = listing.index.get(viewPath.slice(cut + 1));
      if (i !== undefined) return listing.stats.subarray(i * STAT_INTS, (i + 1) * STAT_INTS);
    }
    const out = new Uint32Array(STAT_INTS);
    packAttr(this.resolve(viewPath).attr, out, 0);
    return out;
  }

  /**
   * A directory's names and packed attributes, in name order. Entry directories are one
   * indexed catalog query; the result is kept (bounded by entry count) for the stats that follow.
   */
  list(viewPath: string): Listing {
    const key = viewPath.length > 1 ? viewPath.replace(/\/+$/, '') : '/';
    const cached = this.listings.get(key);
    if (cached) {
      this.listings.delete(key); // LRU: move to the end
      this.listings.set(key, cached);
      return cached;
    }
    const node = this.resolve(viewPath);
    if (node.kind === 'dir') {
      const names = this.virtualChildren(viewPath);
      const stats = new Uint32Array(names.length * STAT_INTS);
      names.forEach((name, i) => packAttr(this.resolve((key === '/' ? '' : key) + '/' + name).attr, stats, i * STAT_INTS));
      // Virtual directories change as snapshots come and go: never cached.
      return { names, stats, index: null };
    }
    if (node.version && node.version.type !== 'dir') throw new ViewError('ENOTDIR', `${viewPath} is not a directory`);
    // A directory whose listing the repository lost is an I/O error (logged by the mount), not an
    // empty directory: cp -a and rsync then report it instead of copying nothing in silence.
    const lost = this.catalog.dirLost(node.snap, node.path);
    if (lost !== undefined) throw new Error(`${display(node.path)} in snapshot ${node.snap.id.slice(0, 8)}: ${lost}`);
    const rows = this.catalog.listDirStat(node.snap, node.path);
    const names = new Array<string>(rows.length);
    const stats = new Uint32Array(rows.length * STAT_INTS);
    for (let i = 0; i < rows.length; i++) {
      const n = rows[i].name;
      names[i] = ASCII.test(n) ? n : display(n);
      packAttr(this.statAttr(node.snap, rows[i]), stats, i * STAT_INTS);
    }
    const listing: Listing = { names, stats, index: null };
    this.remember(key, listing);
    return listing;
  }

  private remember(key: string, listing: Listing): void {
    if (listing.names.length > this.listedMax) return;
    this.listings.set(key, listing);
    this.listed += listing.names.length;
    for (const [k, l] of this.listings) {
      if (this.listed <= this.listedMax) break;
      this.listings.delete(k);
      this.listed -= l.names.length;
    }
  }

  private virtualChildren(viewPath: string): string[] {
    const parts = viewPath.split('/').filter((x) => x !== '');
    if (parts.length === 0) return this.snapshots().list.length ? ['accounts', 'latest', 'snapshots'] : ['accounts', 'snapshots'];
    if (parts[0] === 'snapshots') return [...this.snapshots().byLabel.keys()];
    if (parts[0] === 'accounts' && parts.length === 1) return this.accounts();
    if (parts[0] === 'accounts' && parts.length === 2) return [...this.accountSnapshots(parts[1]).keys()];
    return [];
  }

  readlink(viewPath: string): string {
    const node = this.resolve(viewPath);
    if (node.kind === 'entry' && node.version?.type === 'symlink' && node.version.target !== null) return display(node.version.target);
    throw new ViewError('EINVAL', `${viewPath} is not a symlink`);
  }

  // ---- attributes ------------------------------------------------------------------------

  /**
   * An entry's stat. The inode number is the catalog's version id: unchanged entries keep
   * their number across snapshots (diff -r may skip them: they are identical), and a
   * hardlink reports the number of the first path of its inode, so cp -a / rsync -H relink them.
   */
  entryAttr(snap: SnapshotRow, v: VersionRow): NodeAttr {
    return this.statAttr(snap, {
      ...v,
      mtimeMs: Number(v.mtime / 1_000_000n),
      ctimeMs: Number(v.ctime / 1_000_000n),
    });
  }

  private statAttr(snap: SnapshotRow, v: StatFields): NodeAttr {
    let ino = v.versionId;
    if (v.type === 'hardlink' && v.target !== null) {
      const first = this.catalog.entry(snap, v.target);
      if (first) ino = first.versionId;
    }
    const size = v.type === 'symlink' && v.target !== null ? v.target.length : v.size; // raw target: one char per byte
    return {
      mode: (TYPE_BITS[v.type] ?? S_IFREG) | (v.mode & 0o7777),
      uid: v.uid,
      gid: v.gid,
      size,
      blocks: Math.ceil(size / 512),
      ino: ino >>> 0,
      nlink: Math.max(1, v.type === 'dir' ? 2 : v.nlink),
      rdev: v.rdev,
      mtime: v.mtimeMs,
      atime: v.mtimeMs,
      ctime: v.ctimeMs,
    };
  }

  private virtualAttr(key: string, mode: number, size = 0): NodeAttr {
    let ino = this.virtualIno.get(key);
    if (ino === undefined) {
      ino = VIRTUAL_INO_TOP - this.virtualIno.size;
      this.virtualIno.set(key, ino);
    }
    const t = this.mountedAt;
    return {
      mode,
      uid: 0,
      gid: 0,
      size,
      blocks: 0,
      ino,
      nlink: (mode & S_IFMT) === S_IFDIR ? 2 : 1,
      rdev: 0,
      mtime: t,
      atime: t,
      ctime: t,
    };
  }

  private virtualDir(key: string): ViewNode {
    return { kind: 'dir', attr: this.virtualAttr(key, S_IFDIR | 0o555) };
  }
}
