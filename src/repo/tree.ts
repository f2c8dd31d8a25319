import type { BlobId } from '../pack/blobid.js';
import type { RawPath } from '../util/rawpath.js';

export type EntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';

export const ENTRY_TYPES: EntryType[] = ['file', 'dir', 'symlink', 'hardlink', 'fifo', 'chardev', 'blockdev', 'socket'];

/** The entry type of an lstat result (fs.Stats, fs.BigIntStats or the walk's scan stats). */
export function entryTypeOf(st: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chardev';
  if (st.isBlockDevice()) return 'blockdev';
  return 'socket';
}

/** Flags recorded on an entry. */
export const FLAG_CHANGED_DURING_READ = 1;

/**
 * One file-system entry as recorded in a snapshot. Times are nanoseconds since the epoch.
 * `name` is a raw (byte) path component. A `hardlink` entry names in `target` the absolute
 * path of the first entry of its inode in the snapshot, and also carries the content so a
 * restore of just the link still works.
 */
export interface Entry {
  name: RawPath;
  type: EntryType;
  /** Permission and special bits (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  size: number;
  mtime: bigint;
  ctime: bigint;
  ino: bigint;
  dev: bigint;
  nlink: number;
  rdev: number;
  /** Symlink target, or the first path of a hardlinked inode. */
  target: RawPath | null;
  /** xxh64 of the content, as 16 hex chars; the cheap change detector. */
  fp: string | null;
  /** Content blobs in order. */
  content: BlobId[] | null;
  /**
   * Plain size of each content blob, when the file was cut by content (FastCDC, version-2
   * repositories; tree key `cs`). Absent: blob i holds bytes [i*chunk_size, (i+1)*chunk_size).
   */
  chunkSizes?: number[];
  /** For a directory: the id of its tree blob. */
  tree: BlobId | null;
  flags: number;
}

/** A tree blob: the entries of one directory, sorted by name (byte order). */
export interface Tree {
  v: 1;
  entries: Entry[];
}

const TYPE_CODE: Record<EntryType, string> = {
  file: 'f',
  dir: 'd',
  symlink: 'l',
  hardlink: 'h',
  fifo: 'p',
  chardev: 'c',
  blockdev: 'b',
  socket: 's',
};
const CODE_TYPE: Record<string, EntryType> = Object.fromEntries(Object.entries(TYPE_CODE).map(([k, v]) => [v, k as EntryType]));

/** One entry as its tree row (the keys and order of the canonical bytes). */
function rowOf(e: Entry): Record<string, unknown> {
  const o: Record<string, unknown> = {
    n: e.name,
    t: TYPE_CODE[e.type],
    m: e.mode,
    u: e.uid,
    g: e.gid,
    U: e.user,
    G: e.group,
    s: e.size,
    mt: e.mtime.toString(),
    ct: e.ctime.toString(),
    i: e.ino.toString(),
    d: e.dev.toString(),
    nl: e.nlink,
  };
  if (e.rdev) o.rd = e.rdev;
  if (e.target !== null) o.l = e.target;
  if (e.fp !== null) o.fp = e.fp;
  if (e.content !== null) o.c = e.content;
  if (e.chunkSizes) o.cs = e.chunkSizes;
  if (e.tree !== null) o.st = e.tree;
  if (e.flags) o.x = e.flags;
  return o;
}

/** The tree's bytes around its rows: `JSON.stringify({ v: 1, e: rows })` is HEAD, the rows joined by commas, TAIL. */
const TREE_HEAD = Buffer.from('{"v":1,"e":[');
const TREE_TAIL = Buffer.from(']}');

/**
 * Encodes a tree to its canonical bytes (equal trees give equal bytes, hence equal ids), the
 * entries in the order given (the snapshot's TreeEncoder sorts them).
 */
export function encodeTree(entries: Entry[]): Buffer {
  const enc = new TreeEncoder();
  for (const e of entries) enc.add(e);
  return enc.finish(false);
}

/**
 * Builds a tree's canonical bytes an entry at a time: each entry is kept only as its encoded
 * row, in one growing buffer, until the directory is complete, instead of as an Entry with its
 * BigInts, arrays and strings (issue 17: a mail folder of 100k messages held ~400 bytes of
 * objects per entry until its tree was built, and then the whole tree once more as a string).
 */
export class TreeEncoder {
  private buf = Buffer.allocUnsafe(16 * 1024);
  private used = 0;
  private names: RawPath[] = [];
  /** Start and end of each row in `buf`, in the order added. */
  private bounds: number[] = [];

  add(e: Entry): void {
    // Raw names are latin1 strings; JSON carries each byte as one code point, losslessly (UTF-8 here).
    const row = JSON.stringify(rowOf(e));
    const len = Buffer.byteLength(row, 'utf8');
    if (this.used + len > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.used + len, this.buf.length * 2));
      this.buf.copy(bigger, 0, 0, this.used);
      this.buf = bigger;
    }
    this.bounds.push(this.used, this.used + this.buf.write(row, this.used, 'utf8'));
    this.used += len;
    this.names.push(e.name);
  }

  /** The tree's bytes, the entries sorted by name (byte order) unless `sort` is false. */
  finish(sort = true): Buffer {
    const n = this.names.length;
    const order = Array.from({ length: n }, (_, i) => i);
    const names = this.names;
    if (sort) order.sort((a, b) => (names[a] < names[b] ? -1 : names[a] > names[b] ? 1 : 0));
    const out = Buffer.allocUnsafe(TREE_HEAD.length + this.used + Math.max(0, n - 1) + TREE_TAIL.length);
    let at = TREE_HEAD.copy(out, 0);
    order.forEach((i, k) => {
      if (k > 0) out[at++] = 0x2c; // ','
      at += this.buf.copy(out, at, this.bounds[2 * i], this.bounds[2 * i + 1]);
    });
    TREE_TAIL.copy(out, at);
    this.buf = Buffer.allocUnsafe(0);
    this.names = [];
    this.bounds = [];
    return out;
  }
}

export function decodeTree(bytes: Buffer): Entry[] {
  const obj = JSON.parse(bytes.toString('utf8')) as { v: number; e: Record<string, any>[] };
  if (obj.v !== 1 || !Array.isArray(obj.e)) throw new Error('unsupported tree format');
  return obj.e.map((o) => {
    const type = CODE_TYPE[o.t];
    if (!type) throw new Error(`unknown entry type code ${JSON.stringify(o.t)}`);
    return {
      name: String(o.n),
      type,
      mode: o.m,
      uid: o.u,
      gid: o.g,
      user: o.U ?? '',
      group: o.G ?? '',
      size: o.s,
      mtime: BigInt(o.mt),
      ctime: BigInt(o.ct),
      ino: BigInt(o.i),
      dev: BigInt(o.d),
      nlink: o.nl,
      rdev: o.rd ?? 0,
      target: o.l ?? null,
      fp: o.fp ?? null,
      content: o.c ?? null,
      tree: o.st ?? null,
      flags: o.x ?? 0,
      // Checked against content and size where it is used (query/filecontent.ts): reads fail closed.
      ...(validSizes(o.cs) ? { chunkSizes: o.cs } : {}),
    } satisfies Entry;
  });
}

/** Chunk sizes as a tree may carry them: anything else is dropped (the file's reads then fail closed). */
function validSizes(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((n) => Number.isSafeInteger(n) && n > 0 && n <= 0xffffffff);
}

/** True when two entries record the same state (so a catalog row can be shared). */
export function sameEntry(a: Entry, b: Entry): boolean {
  return (
    a.type === b.type &&
    a.mode === b.mode &&
    a.uid === b.uid &&
    a.gid === b.gid &&
    a.user === b.user &&
    a.group === b.group &&
    a.size === b.size &&
    a.mtime === b.mtime &&
    a.ctime === b.ctime &&
    a.ino === b.ino &&
    a.dev === b.dev &&
    a.nlink === b.nlink &&
    a.rdev === b.rdev &&
    a.target === b.target &&
    a.fp === b.fp &&
    a.tree === b.tree &&
    a.flags === b.flags &&
    sameList(a.content, b.content)
  );
}

function sameList(a: string[] | null, b: string[] | null): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
