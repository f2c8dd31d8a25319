/** Messages between the snapshot walk and its reader threads. Big numbers travel as decimal strings. */
export interface HashItem {
  /** Raw name of the file in its directory (one component). */
  name: string;
  size: string;
  mtime: string;
  ctime: string;
  ino: string;
}

export interface HashStat {
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: string;
  ctime: string;
  ino: string;
  dev: string;
  nlink: number;
  isFile: boolean;
}

export type HashResult =
  | {
      code: 'ok';
      fp: string;
      id: string | null;
      /** The blob's encoded form, or its stored form when `sealed` (the worker sealed it with the repository's key). */
      stored: Uint8Array | null;
      sealed: boolean;
      st: HashStat;
      torn: boolean;
      read: number;
    }
  | { code: 'big' }
  | { code: 'error'; msg: string };

/**
 * Requests of the snapshot walk to a reader thread (livefs/pool.ts adds the id). Directories
 * are opened relative to their parent's fd (O_NOFOLLOW | O_DIRECTORY), files read relative to
 * their directory's fd: fds are per process, so any thread may use the fd another opened. A
 * scan with parentFd -1 opens `path` itself (the root of the walk).
 */
export type HashRequest =
  { op: 'hash'; dirFd: number; items: HashItem[]; chunkSize: number } | { op: 'scan'; parentFd: number; name: string; path: string };

/** What a reader thread gets at start: the repository's data key (null: unencrypted), so it seals the blobs it stores. */
export interface HashInit {
  key: Uint8Array | null;
}

export type HashReply = { id: number; results: HashResult[] } | { id: number; scan: ScanResult };

/** A directory listing with lstat fields: SCAN_FIELDS values per entry (mode, uid, gid, size,
 * mtime ns, ctime ns, ino, dev, nlink, rdev); status 0 = ok, 1 = vanished, 2 = error (in order in
 * `errors`). `fd` is the directory, open: the walk closes it when it is done with the directory. */
export const SCAN_FIELDS = 10;

export type ScanResult = { fd: number; names: string[]; stats: BigUint64Array; status: Uint8Array; errors: string[] } | { error: string };

const S_IFMT = 0o170000n;

/** The lstat fields of one scanned entry, shaped like fs.BigIntStats for the walk's needs. */
export class ScanStat {
  readonly mode: bigint;
  readonly uid: bigint;
  readonly gid: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly dev: bigint;
  readonly nlink: bigint;
  readonly rdev: bigint;

  constructor(a: BigUint64Array, i: number) {
    const o = i * SCAN_FIELDS;
    this.mode = a[o];
    this.uid = a[o + 1];
    this.gid = a[o + 2];
    this.size = a[o + 3];
    this.mtimeNs = a[o + 4];
    this.ctimeNs = a[o + 5];
    this.ino = a[o + 6];
    this.dev = a[o + 7];
    this.nlink = a[o + 8];
    this.rdev = a[o + 9];
  }

  private fmt(): bigint {
    return this.mode & S_IFMT;
  }
  isFile(): boolean {
    return this.fmt() === 0o100000n;
  }
  isDirectory(): boolean {
    return this.fmt() === 0o040000n;
  }
  isSymbolicLink(): boolean {
    return this.fmt() === 0o120000n;
  }
  isFIFO(): boolean {
    return this.fmt() === 0o010000n;
  }
  isCharacterDevice(): boolean {
    return this.fmt() === 0o020000n;
  }
  isBlockDevice(): boolean {
    return this.fmt() === 0o060000n;
  }
  isSocket(): boolean {
    return this.fmt() === 0o140000n;
  }
}

/** What the walk reads of a stat: fs.BigIntStats and ScanStat both provide it. */
export type StatLike = Pick<
  ScanStat,
  | 'mode'
  | 'uid'
  | 'gid'
  | 'size'
  | 'mtimeNs'
  | 'ctimeNs'
  | 'ino'
  | 'dev'
  | 'nlink'
  | 'rdev'
  | 'isFile'
  | 'isDirectory'
  | 'isSymbolicLink'
  | 'isFIFO'
  | 'isCharacterDevice'
  | 'isBlockDevice'
  | 'isSocket'
>;
