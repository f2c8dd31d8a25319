import { createRequire } from 'node:module';
import type * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * The native live-file-system addon (native/livefs.c, built by node-gyp during `npm ci`):
 * getdents64 + fstatat, openat, mkdirat, renameat, linkat and utimensat in nanoseconds, each a
 * whole directory or batch per call. There is no slow fallback: without the addon the
 * operations that touch the live tree stop with one line that names the fix.
 */

export const NATIVE_MISSING = 'native addon not built: run `npm rebuild` (needs g++, make, python3)';

/** Names cross as one buffer of NUL-terminated names and n + 1 offsets (see native/livefs.c). */
interface Addon {
  layout: number;
  scan(
    fd: number,
    names: Buffer,
    offs: Uint32Array,
    u64: BigUint64Array,
    i64: BigInt64Array,
    u32: Uint32Array,
    errs: Int32Array,
    restart: number,
  ): number;
  openDir(parentFd: number, names: Buffer, offs: Uint32Array): number;
  mkdirAt(dirFd: number, names: Buffer, offs: Uint32Array, mode: number): number;
  symlinkAt(target: Buffer, dirFd: number, names: Buffer, offs: Uint32Array): number;
  mknodAt(dirFd: number, names: Buffer, offs: Uint32Array, mode: number, rdev: number): number;
  linkAt(oldFd: number, oldNames: Buffer, oldOffs: Uint32Array, newFd: number, newNames: Buffer, newOffs: Uint32Array): number;
  unlinkAt(dirFd: number, names: Buffer, offs: Uint32Array, removeDir: number): number;
  install(
    dirFd: number,
    tmp: Buffer,
    tmpOffs: Uint32Array,
    fin: Buffer,
    finOffs: Uint32Array,
    data: Buffer,
    dataOffs: Float64Array,
    meta: Uint32Array,
    times: BigInt64Array,
    result: Int32Array,
  ): number;
  applyMeta(
    dirFd: number,
    names: Buffer,
    offs: Uint32Array,
    meta: Uint32Array,
    ids: BigUint64Array,
    times: BigInt64Array,
    errs: Int32Array,
  ): number;
  close(fd: number): number;
}

const U64 = 5; // ino, dev, size, blocks, spare
const I64 = 3; // atime, mtime, ctime (ns)
const U32 = 5; // mode, uid, gid, nlink, rdev

let addon: Addon | null = null;

/** The addon, loaded once per thread; throws the one-line NATIVE_MISSING error when it is not built. */
export function native(): Addon {
  if (addon) return addon;
  try {
    // From src/livefs (vitest) and dist/livefs (the CLI) alike, the build is two levels up.
    addon = createRequire(import.meta.url)('../../build/Release/livefs.node') as Addon;
  } catch {
    throw new Error(NATIVE_MISSING);
  }
  if (addon.layout !== U64 * 100 + I64 * 10 + U32) throw new Error(`${NATIVE_MISSING}: the built addon is stale`);
  return addon;
}

/** Raw (latin1) names packed the way the addon reads them. */
export function packNames(list: readonly string[]): { buf: Buffer; offs: Uint32Array } {
  let bytes = 0;
  for (const n of list) bytes += n.length + 1;
  const buf = Buffer.allocUnsafe(bytes);
  const offs = new Uint32Array(list.length + 1);
  let at = 0;
  list.forEach((n, i) => {
    at += buf.write(n, at, 'latin1');
    buf[at++] = 0;
    offs[i + 1] = at;
  });
  return { buf, offs };
}

function one(name: string): [Buffer, Uint32Array] {
  const p = packNames([name]);
  return [p.buf, p.offs];
}

/** Throws an errno from the addon as Node would (code, errno, syscall), so callers keep their checks. */
export function check(rc: number, syscall: string, what: string): number {
  if (rc >= 0) return rc;
  const name = errnoName(-rc);
  const e = new Error(`${name}: ${syscall} '${what}'`) as NodeJS.ErrnoException;
  e.code = name;
  e.errno = rc;
  e.syscall = syscall;
  throw e;
}

/** The errno name of a positive errno (per-entry results). */
export function errnoName(errno: number): string {
  return Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `E${errno}`;
}

/** One directory's entries as the addon returns them: parallel arrays, index i is one entry. */
export class DirScan {
  count = 0;
  private nameBuf: Buffer;
  offs: Uint32Array;
  u64: BigUint64Array;
  i64: BigInt64Array;
  u32: Uint32Array;
  errs: Int32Array;

  constructor(private capacity = 1024) {
    this.nameBuf = Buffer.allocUnsafe(capacity * 256);
    this.offs = new Uint32Array(capacity + 1);
    this.u64 = new BigUint64Array(capacity * U64);
    this.i64 = new BigInt64Array(capacity * I64);
    this.u32 = new Uint32Array(capacity * U32);
    this.errs = new Int32Array(capacity);
  }

  /** Reads the whole directory open at `fd` (from its start); returns 0 or -errno. Buffers grow as needed, never per entry. */
  read(fd: number): number {
    const a = native();
    this.count = 0;
    for (let restart = 1; ; restart = 0) {
      if (this.count === this.capacity) this.grow();
      const at = this.count;
      const room = this.capacity - at;
      const base = this.offs[at];
      // Each name takes at most 256 bytes, so the entry count is always what fills up first.
      const n = a.scan(
        fd,
        this.nameBuf.subarray(base),
        this.offs.subarray(at),
        this.u64.subarray(at * U64),
        this.i64.subarray(at * I64),
        this.u32.subarray(at * U32),
        this.errs.subarray(at),
        restart,
      );
      if (n < 0) return n;
      for (let i = 0; i <= n; i++) this.offs[at + i] += base;
      this.count += n;
      if (n < room) return 0;
    }
  }

  name(i: number): string {
    return this.nameBuf.toString('latin1', this.offs[i], this.offs[i + 1] - 1);
  }
  mode(i: number): number {
    return this.u32[i * U32];
  }
  uid(i: number): number {
    return this.u32[i * U32 + 1];
  }
  gid(i: number): number {
    return this.u32[i * U32 + 2];
  }
  nlink(i: number): number {
    return this.u32[i * U32 + 3];
  }
  rdev(i: number): number {
    return this.u32[i * U32 + 4];
  }
  ino(i: number): bigint {
    return this.u64[i * U64];
  }
  dev(i: number): bigint {
    return this.u64[i * U64 + 1];
  }
  size(i: number): bigint {
    return this.u64[i * U64 + 2];
  }
  blocks(i: number): bigint {
    return this.u64[i * U64 + 3];
  }
  atimeNs(i: number): bigint {
    return this.i64[i * I64];
  }
  mtimeNs(i: number): bigint {
    return this.i64[i * I64 + 1];
  }
  ctimeNs(i: number): bigint {
    return this.i64[i * I64 + 2];
  }

  private grow(): void {
    const n = this.count;
    const g = new DirScan(this.capacity * 2);
    this.nameBuf.copy(g.nameBuf, 0, 0, this.offs[n]);
    g.offs.set(this.offs.subarray(0, n + 1));
    g.u64.set(this.u64.subarray(0, n * U64));
    g.i64.set(this.i64.subarray(0, n * I64));
    g.u32.set(this.u32.subarray(0, n * U32));
    g.errs.set(this.errs.subarray(0, n));
    this.nameBuf = g.nameBuf;
    this.offs = g.offs;
    this.u64 = g.u64;
    this.i64 = g.i64;
    this.u32 = g.u32;
    this.errs = g.errs;
    this.capacity = g.capacity;
  }
}

/** openat(parentFd, name, O_DIRECTORY|O_NOFOLLOW): an fd, or -errno (ELOOP/ENOTDIR for a symlink in the way). */
export function openDirAt(parentFd: number, name: string): number {
  return native().openDir(parentFd, ...one(name));
}

export function mkdirAt(dirFd: number, name: string, mode: number): number {
  return native().mkdirAt(dirFd, ...one(name), mode);
}

export function symlinkAt(target: string, dirFd: number, name: string): number {
  return native().symlinkAt(Buffer.from(target, 'latin1'), dirFd, ...one(name));
}

export function mknodAt(dirFd: number, name: string, mode: number, rdev: number): number {
  return native().mknodAt(dirFd, ...one(name), mode, rdev);
}

export function linkAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string): number {
  return native().linkAt(oldDirFd, ...one(oldName), newDirFd, ...one(newName));
}

export function unlinkAt(dirFd: number, name: string, removeDir = false): number {
  return native().unlinkAt(dirFd, ...one(name), removeDir ? 1 : 0);
}

export function closeFd(fd: number): void {
  check(native().close(fd), 'close', String(fd));
}

/** One file of an install batch: content, owner, mode, times (ns). */
export interface InstallItem {
  tmp: string;
  name: string;
  data: Buffer;
  mode: number;
  uid: number;
  gid: number;
  atimeNs: bigint;
  mtimeNs: bigint;
}

/** The step of a failed install entry, as native/livefs.c numbers them. */
export const INSTALL_STEPS = ['', 'open', 'write', 'chown', 'chmod', 'times', 'rename'] as const;

/**
 * Installs a batch of files into one directory: each under its temp name, written, owned,
 * moded and timed, then renamed (or, with noClobber, linked) to its name. Per entry: 0 or an
 * errno and the step that failed; a failed entry leaves neither its temp nor its final name.
 */
export function installFiles(
  dirFd: number,
  items: readonly InstallItem[],
  opts: { chown: boolean; noClobber: boolean },
): { errno: number; step: string }[] {
  const n = items.length;
  const tmp = packNames(items.map((i) => i.tmp));
  const fin = packNames(items.map((i) => i.name));
  const data = Buffer.concat(items.map((i) => i.data));
  const dataOffs = new Float64Array(n + 1);
  const meta = new Uint32Array(n * 4);
  const times = new BigInt64Array(n * 2);
  const flags = (opts.chown ? 1 : 0) | (opts.noClobber ? 2 : 0);
  items.forEach((it, i) => {
    dataOffs[i + 1] = dataOffs[i] + it.data.length;
    meta.set([it.mode, it.uid, it.gid, flags], i * 4);
    times[i * 2] = it.atimeNs;
    times[i * 2 + 1] = it.mtimeNs;
  });
  const res = new Int32Array(n * 2);
  native().install(dirFd, tmp.buf, tmp.offs, fin.buf, fin.offs, data, dataOffs, meta, times, res);
  return items.map((_, i) => ({ errno: res[i * 2], step: INSTALL_STEPS[res[i * 2 + 1]] ?? '' }));
}

/** One entry of an applyMeta batch: the inode examined (ino, dev) and the links the snapshot recorded. */
export interface MetaItem {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  ino: bigint;
  dev: bigint;
  recordedLinks: number;
}

/** The errno applyMeta gives an entry that is no longer the inode examined (or has foreign links). */
export const ESTALE = os.constants.errno.ESTALE;

/** Owner (when chown), mode and times (atime = mtime, ns) of existing entries, never following a symlink. */
export function applyMeta(dirFd: number, items: readonly MetaItem[], chown: boolean): number[] {
  const n = items.length;
  const names = packNames(items.map((i) => i.name));
  const meta = new Uint32Array(n * 5);
  const ids = new BigUint64Array(n * 2);
  const times = new BigInt64Array(n * 2);
  items.forEach((it, i) => {
    meta.set([it.mode, it.uid, it.gid, chown ? 1 : 0, it.recordedLinks], i * 5);
    ids[i * 2] = it.ino;
    ids[i * 2 + 1] = it.dev;
    times[i * 2] = it.mtimeNs;
    times[i * 2 + 1] = it.mtimeNs;
  });
  const errs = new Int32Array(n);
  native().applyMeta(dirFd, names.buf, names.offs, meta, ids, times, errs);
  return Array.from(errs);
}

const S_IFMT = 0o170000;
const nsToMs = (ns: bigint): bigint => ns / 1_000_000n;
const nsToDate = (ns: bigint): Date => new Date(Number(ns / 1_000_000n));

/**
 * Entry i of a scan as a BigIntStats, so the one compare rule (compare.ts) judges a scanned
 * entry exactly as it judges an lstat. Birth time is not in fstatat's answer: it reads as ctime.
 */
export class ScanStat implements fs.BigIntStats {
  dev: bigint;
  ino: bigint;
  mode: bigint;
  nlink: bigint;
  uid: bigint;
  gid: bigint;
  rdev: bigint;
  size: bigint;
  blksize = 4096n;
  blocks: bigint;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  birthtimeNs: bigint;

  constructor(s: DirScan, i: number) {
    this.dev = s.dev(i);
    this.ino = s.ino(i);
    this.mode = BigInt(s.mode(i));
    this.nlink = BigInt(s.nlink(i));
    this.uid = BigInt(s.uid(i));
    this.gid = BigInt(s.gid(i));
    this.rdev = BigInt(s.rdev(i));
    this.size = s.size(i);
    this.blocks = s.blocks(i);
    this.atimeNs = s.atimeNs(i);
    this.mtimeNs = s.mtimeNs(i);
    this.ctimeNs = s.ctimeNs(i);
    this.birthtimeNs = this.ctimeNs;
  }
  private is(t: number): boolean {
    return (Number(this.mode) & S_IFMT) === t;
  }
  isFile(): boolean {
    return this.is(0o100000);
  }
  isDirectory(): boolean {
    return this.is(0o040000);
  }
  isBlockDevice(): boolean {
    return this.is(0o060000);
  }
  isCharacterDevice(): boolean {
    return this.is(0o020000);
  }
  isSymbolicLink(): boolean {
    return this.is(0o120000);
  }
  isFIFO(): boolean {
    return this.is(0o010000);
  }
  isSocket(): boolean {
    return this.is(0o140000);
  }
  get atimeMs(): bigint {
    return nsToMs(this.atimeNs);
  }
  get mtimeMs(): bigint {
    return nsToMs(this.mtimeNs);
  }
  get ctimeMs(): bigint {
    return nsToMs(this.ctimeNs);
  }
  get birthtimeMs(): bigint {
    return nsToMs(this.birthtimeNs);
  }
  get atime(): Date {
    return nsToDate(this.atimeNs);
  }
  get mtime(): Date {
    return nsToDate(this.mtimeNs);
  }
  get ctime(): Date {
    return nsToDate(this.ctimeNs);
  }
  get birthtime(): Date {
    return nsToDate(this.birthtimeNs);
  }
}
