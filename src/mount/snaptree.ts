import type { Catalog, DirStatRow, SnapshotRow, VersionRow } from '../index/catalog.js';
import { lookupEntry } from '../index/lookup.js';
import { display, fromUser, join, normalizeAbs, type RawPath } from '../util/rawpath.js';

/**
 * The browsable view of a repository that `snapfill mount` serves, independent of FUSE:
 *
 *   /snapshots/<time>_<shortid>/<original absolute paths>
 *   /latest -> snapshots/<newest>
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
  file: S_IFREG, hardlink: S_IFREG, dir: S_IFDIR, symlink: S_IFLNK,
  fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000, socket: 0o140000,
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
type StatFields = Pick<DirStatRow, 'versionId' | 'type' | 'mode' | 'uid' | 'gid' | 'size' | 'mtimeMs' | 'ctimeMs' | 'nlink' | 'rdev' | 'target'>;

export type ViewNode =
  | { kind: 'dir'; attr: NodeAttr }
  | { kind: 'symlink'; attr: NodeAttr; target: string }
  | { kind: 'entry'; attr: NodeAttr; snap: SnapshotRow; path: RawPath; version: VersionRow | null };

export class ViewError extends Error {
  constructor(readonly code: 'ENOENT' | 'ENOTDIR' | 'EISDIR' | 'EINVAL', message: string) {
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
  /** Bound on cached child attributes (filled by directory listings, read by stat). */
  attrCacheEntries?: number;
  /** How long the snapshot list is trusted before re-reading the catalog (new snapshots appear). */
  snapshotListTtlMs?: number;
}

export class SnapshotTree {
  readonly accountsRoot: RawPath;
  private snaps: SnapCache | null = null;
  private readonly virtualIno = new Map<string, number>();
  private readonly attrCache = new Map<string, NodeAttr>();
  private readonly attrCacheMax: number;
  private readonly ttl: number;
  private readonly accountsBySnap = new Map<string, Set<string>>();
  private readonly mountedAt = Date.now();

  constructor(readonly catalog: Catalog, opts: SnapshotTreeOptions = {}) {
    this.accountsRoot = normalizeAbs(fromUser(opts.accountsRoot ?? '/home'));
    this.attrCacheMax = opts.attrCacheEntries ?? 200_000;
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
    if (top === 'latest' && parts.length === 1) {
      const list = this.snapshots().list;
      if (!list.length) throw new ViewError('ENOENT', 'no snapshots');
      return this.virtualLink('/latest', 'snapshots/' + snapshotLabel(list[list.length - 1]));
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

  /** stat of a view path, served from the listing cache when a readdir just produced it. */
  attr(viewPath: string): NodeAttr {
    const hit = this.attrCache.get(viewPath);
    if (hit) return hit;
    return this.resolve(viewPath).attr;
  }

  /** A directory's names and attributes, in order. Entry directories stream from the catalog. */
  list(viewPath: string): { names: string[]; attrs: NodeAttr[] } {
    const node = this.resolve(viewPath);
    if (node.kind === 'symlink') throw new ViewError('ENOTDIR', `${viewPath} is a symlink`);
    const names: string[] = [];
    const attrs: NodeAttr[] = [];
    const base = viewPath === '/' ? '' : viewPath.replace(/\/+$/, '');
    const add = (name: string, attr: NodeAttr) => {
      names.push(name);
      attrs.push(attr);
      this.cacheAttr(base + '/' + name, attr);
    };
    if (node.kind === 'dir') {
      for (const name of this.virtualChildren(viewPath)) add(name, this.resolve(base + '/' + name).attr);
      return { names, attrs };
    }
    if (node.version && node.version.type !== 'dir') throw new ViewError('ENOTDIR', `${viewPath} is not a directory`);
    for (const r of this.catalog.listDirStat(node.snap, node.path)) add(display(r.name), this.statAttr(node.snap, r));
    return { names, attrs };
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
    if (node.kind === 'symlink') return node.target;
    if (node.kind === 'entry' && node.version?.type === 'symlink' && node.version.target !== null) return display(node.version.target);
    throw new ViewError('EINVAL', `${viewPath} is not a symlink`);
  }

  // ---- attributes ------------------------------------------------------------------------

  private cacheAttr(key: string, attr: NodeAttr): void {
    this.attrCache.delete(key);
    this.attrCache.set(key, attr);
    if (this.attrCache.size > this.attrCacheMax) {
      const oldest = this.attrCache.keys().next().value;
      if (oldest !== undefined) this.attrCache.delete(oldest);
    }
  }

  /**
   * An entry's stat. The inode number is the catalog's version id: unchanged entries keep
   * their number across snapshots (diff -r may skip them: they are identical), and a
   * hardlink reports the number of the first path of its inode, so cp -a / rsync -H relink them.
   */
  entryAttr(snap: SnapshotRow, v: VersionRow): NodeAttr {
    return this.statAttr(snap, {
      ...v, mtimeMs: Number(v.mtime / 1_000_000n), ctimeMs: Number(v.ctime / 1_000_000n),
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
      mode: (TYPE_BITS[v.type] ?? S_IFREG) | (v.mode & 0o7777), uid: v.uid, gid: v.gid, size,
      blocks: Math.ceil(size / 512), ino: ino >>> 0, nlink: Math.max(1, v.type === 'dir' ? 2 : v.nlink), rdev: v.rdev,
      mtime: v.mtimeMs, atime: v.mtimeMs, ctime: v.ctimeMs,
    };
  }

  private virtualAttr(key: string, mode: number, size = 0): NodeAttr {
    let ino = this.virtualIno.get(key);
    if (ino === undefined) {
      ino = VIRTUAL_INO_TOP - this.virtualIno.size;
      this.virtualIno.set(key, ino);
    }
    const t = this.mountedAt;
    return { mode, uid: 0, gid: 0, size, blocks: 0, ino, nlink: (mode & S_IFMT) === S_IFDIR ? 2 : 1, rdev: 0, mtime: t, atime: t, ctime: t };
  }

  private virtualDir(key: string): ViewNode {
    return { kind: 'dir', attr: this.virtualAttr(key, S_IFDIR | 0o555) };
  }

  private virtualLink(key: string, target: string): ViewNode {
    return { kind: 'symlink', target, attr: this.virtualAttr(key + '->' + target, S_IFLNK | 0o777, Buffer.byteLength(target)) };
  }
}
