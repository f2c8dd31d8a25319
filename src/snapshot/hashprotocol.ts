import os from 'node:os';

// Messages between the snapshot walk and its reader threads: read requests go packed (below); a
// reader's stat of a file comes back with its big numbers as decimal strings (HashStat).

/**
 * A reader's request for files of one directory, packed (issue 17: an object of five decimal
 * strings per file was most of the walk's postMessage time): the names joined by '/' (a name
 * never holds one), and per file the stat it is checked against while read, EXPECT_FIELDS
 * values each (size, mtime ns, ctime ns, inode; times signed, the inode as its 64 bits).
 */
export interface HashItems {
  names: string;
  expect: BigInt64Array;
}
export const EXPECT_FIELDS = 4;

/** A file to read: its name in the directory and the listing's stat of it. */
export interface HashTarget {
  name: string;
  st: { size: bigint; mtimeNs: bigint; ctimeNs: bigint; ino: bigint };
}

/** Packs targets for one request (the typed array is moved to the reader, not copied). */
export function packHashItems(targets: readonly HashTarget[]): HashItems {
  const expect = new BigInt64Array(targets.length * EXPECT_FIELDS);
  const names: string[] = new Array(targets.length);
  targets.forEach((t, i) => {
    const o = i * EXPECT_FIELDS;
    names[i] = t.name;
    // BigInt64Array stores any BigInt modulo 2^64: times read back signed, as the reader's own
    // stat of the file has them (a time before 1970 too); the reader reads the inode back unsigned.
    expect[o] = t.st.size;
    expect[o + 1] = t.st.mtimeNs;
    expect[o + 2] = t.st.ctimeNs;
    expect[o + 3] = t.st.ino;
  });
  return { names: names.join('/'), expect };
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
  | { op: 'hash'; dirFd: number; items: HashItems; chunkSize: number }
  | { op: 'scan'; parentFd: number; name: string; path: string }
  | { op: 'scans'; parentFd: number; names: string[] };

/** What a reader thread gets at start: the repository's data key (null: unencrypted), so it seals the blobs it stores. */
export interface HashInit {
  key: Uint8Array | null;
}

export type HashReply = { id: number; results: HashResult[] } | { id: number; scan: ScanResult } | { id: number; scans: ScanResult[] };

/** A directory listing with lstat fields: SCAN_FIELDS values per entry (mode, uid, gid, size,
 * mtime ns, ctime ns, ino, dev, nlink, rdev); status 0 = ok, 1 = vanished, 2 = error (in order in
 * `errors`). `fd` is the directory, open: the walk closes it when it is done with the directory. */
export const SCAN_FIELDS = 10;

export type ScanResult = { fd: number; names: string[]; stats: BigUint64Array; status: Uint8Array; errors: string[] } | { error: string };

const S_IFMT = 0o170000;
const LITTLE_ENDIAN = os.endianness() === 'LE';

/**
 * The lstat fields of one scanned entry, shaped like fs.BigIntStats for the walk's needs. Read
 * from the scan's array when asked, not copied: each read of a BigUint64Array allocates a
 * BigInt, and a walk asks most entries only for their type (a number here) and a field or two.
 * Copying all ten per entry was a large share of the walk's allocations (issue 17).
 */
export class ScanStat {
  private readonly o: number;
  /** S_IFMT bits of the mode. */
  private readonly kind: number;

  /** `u32`: the same memory as `a` seen as Uint32Array (scanWords), so the type is read without a BigInt. */
  constructor(
    private readonly a: BigUint64Array,
    i: number,
    u32?: Uint32Array,
  ) {
    this.o = i * SCAN_FIELDS;
    this.kind = (u32 ? u32[2 * this.o + (LITTLE_ENDIAN ? 0 : 1)] : Number(a[this.o])) & S_IFMT;
  }

  get mode(): bigint {
    return this.a[this.o];
  }
  get uid(): bigint {
    return this.a[this.o + 1];
  }
  get gid(): bigint {
    return this.a[this.o + 2];
  }
  get size(): bigint {
    return this.a[this.o + 3];
  }
  get mtimeNs(): bigint {
    return this.a[this.o + 4];
  }
  get ctimeNs(): bigint {
    return this.a[this.o + 5];
  }
  get ino(): bigint {
    return this.a[this.o + 6];
  }
  get dev(): bigint {
    return this.a[this.o + 7];
  }
  get nlink(): bigint {
    return this.a[this.o + 8];
  }
  get rdev(): bigint {
    return this.a[this.o + 9];
  }
  isFile(): boolean {
    return this.kind === 0o100000;
  }
  isDirectory(): boolean {
    return this.kind === 0o040000;
  }
  isSymbolicLink(): boolean {
    return this.kind === 0o120000;
  }
  isFIFO(): boolean {
    return this.kind === 0o010000;
  }
  isCharacterDevice(): boolean {
    return this.kind === 0o020000;
  }
  isBlockDevice(): boolean {
    return this.kind === 0o060000;
  }
  isSocket(): boolean {
    return this.kind === 0o140000;
  }
}

/** A scan's stats array seen as 32-bit words, for ScanStat's type reads. */
export function scanWords(a: BigUint64Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length * 2);
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
