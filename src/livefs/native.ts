import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as fs from 'node:fs';
import * as os from 'node:os';

/**
 * The native live-file-system addon (native/livefs.c, built by node-gyp during `npm ci`):
 * getdents64 + fstatat, openat, mkdirat, renameat, linkat and utimensat in nanoseconds, each a
 * whole directory or batch per call. There is no slow fallback: without the addon the
 * operations that touch the live tree stop with one line that names the fix.
 */

import { NATIVE_MISSING } from '../util/errors.js';

export { NATIVE_MISSING };

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
    data: Uint8Array,
    ranges: Float64Array,
    meta: Uint32Array,
    times: BigInt64Array,
    result: Int32Array,
  ): number;
  openTemp(dirFd: number, tmp: Buffer, tmpOffs: Uint32Array, meta: Uint32Array): number;
  seal(
    fd: number,
    dirFd: number,
    tmp: Buffer,
    tmpOffs: Uint32Array,
    fin: Buffer,
    finOffs: Uint32Array,
    size: number,
    meta: Uint32Array,
    times: BigInt64Array,
    result: Int32Array,
  ): number;
  place(
    dirFd: number,
    tmp: Buffer,
    tmpOffs: Uint32Array,
    fin: Buffer,
    finOffs: Uint32Array,
    meta: Uint32Array,
    times: BigInt64Array,
    result: Int32Array,
  ): number;
  special(
    dirFd: number,
    tmp: Buffer,
    tmpOffs: Uint32Array,
    fin: Buffer,
    finOffs: Uint32Array,
    target: Buffer,
    meta: Uint32Array,
    times: BigInt64Array,
    result: Int32Array,
  ): number;
  statAt(dirFd: number, names: Buffer, offs: Uint32Array, u64: BigUint64Array, i64: BigInt64Array, u32: Uint32Array): number;
  readlinkAt(dirFd: number, names: Buffer, offs: Uint32Array, out: Buffer): number;
  fdMeta(fd: number, meta: Uint32Array, times: BigInt64Array): number;
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
  limitArenas(n: number): number;
}

/** Bumped with native/livefs.c's ABI whenever a call's arguments change. */
const ABI = 3;
const U64 = 5; // ino, dev, size, blocks, spare
const I64 = 3; // atime, mtime, ctime (ns)
const U32 = 5; // mode, uid, gid, nlink, rdev
const ENOENT = os.constants.errno.ENOENT;

let addon: Addon | null = null;

/**
 * Where a built addon is loaded from. SNAPFILL_TEST_NATIVE_DIR (tests only, undocumented on
 * purpose) points the loaders at another build directory, so a test can run the real CLI
 * with the addon missing.
 */
export function addonPath(file: string): string {
  const dir = process.env.SNAPFILL_TEST_NATIVE_DIR;
  // From src/livefs (vitest) and dist/livefs (the CLI) alike, the build is two levels up.
  return dir ? `${dir}/${file}` : fileURLToPath(new URL(`../../build/Release/${file}`, import.meta.url));
}

/** The addon, loaded once per thread; throws the one-line NATIVE_MISSING error when it is not built. */
export function native(): Addon {
  if (addon) return addon;
  let a: Addon;
  try {
    a = createRequire(import.meta.url)(addonPath('livefs.node')) as Addon;
  } catch {
    throw new Error(NATIVE_MISSING);
  }
  if (a.layout !== ABI * 1000 + U64 * 100 + I64 * 10 + U32) throw new Error(`${NATIVE_MISSING}: the built addon is stale`);
  addon = a;
  return addon;
}

/**
 * This thread's write gate (livefs/writegate.ts): called before every call that changes the
 * live tree, it returns once the run may write (or never: the run is stopped). Null: no gate.
 */
let writeGate: (() => void) | null = null;

/** Holds this thread's writes to the live tree behind `wait` (null lifts the gate). */
export function setWriteGate(wait: (() => void) | null): void {
  writeGate = wait;
}

/** The addon, for a call that changes the live tree: through this thread's write gate first. */
function writer(): Addon {
  if (writeGate !== null) writeGate();
  return native();
}

/**
 * Caps glibc's malloc arenas before worker threads start (issue 17, peak RSS). Each thread
 * otherwise gets an arena of its own; a worker's results (sealed blobs, read batches) are
 * allocated in it and freed by the main thread, which left ~35 MiB of fragments per worker
 * at the peak of a 200k-file snapshot. Two arenas: the main thread's and one the workers share.
 */
export function limitMallocArenas(): void {
  native().limitArenas(2);
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

  /**
   * Reads the whole directory open at `fd` (from its start); returns 0 or -errno. Buffers grow
   * as needed, never per entry. `namesOnly`: no fstatat (existence is all the caller needs):
   * ino and the type bits of mode only (mode 0 where the file system does not give d_type).
   */
  read(fd: number, namesOnly = false): number {
    const a = native();
    this.count = 0;
    const only = namesOnly ? 2 : 0;
    for (let restart = 1 | only; ; restart = only) {
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
  return writer().mkdirAt(dirFd, ...one(name), mode);
}

export function symlinkAt(target: string, dirFd: number, name: string): number {
  return writer().symlinkAt(Buffer.from(target, 'latin1'), dirFd, ...one(name));
}

export function mknodAt(dirFd: number, name: string, mode: number, rdev: number): number {
  return writer().mknodAt(dirFd, ...one(name), mode, rdev);
}

export function linkAt(oldDirFd: number, oldName: string, newDirFd: number, newName: string): number {
  return writer().linkAt(oldDirFd, ...one(oldName), newDirFd, ...one(newName));
}

export function unlinkAt(dirFd: number, name: string, removeDir = false): number {
  return writer().unlinkAt(dirFd, ...one(name), removeDir ? 1 : 0);
}

export function closeFd(fd: number): void {
  check(native().close(fd), 'close', String(fd));
}

/** Flags of an entry put in place (native/livefs.c). */
export const F_CHOWN = 1;
/** Link into place, never replace (rename only where hard links are impossible and nothing is there). */
export const F_NOCLOBBER = 2;
/** Leave a final name modified after the keep-newer time alone. */
export const F_KEEP_NEWER = 4;
/** Remove a leftover temp entry of an interrupted run first. */
export const F_CLEAR = 8;
/** Created with its final permission bits (umask 0): chmod only for set-id and sticky bits. */
export const F_FINAL_MODE = 16;

/** The step of a failed entry, as native/livefs.c numbers them ('newer': left alone, modified after the snapshot). */
export const INSTALL_STEPS = ['', 'open', 'write', 'chown', 'chmod', 'times', 'rename', 'newer', 'setattr'] as const;
export type InstallStep = (typeof INSTALL_STEPS)[number];

/** Per entry: 0 or an errno, and the step that failed. */
export interface StepResult {
  errno: number;
  step: InstallStep;
}

const OK: StepResult = { errno: 0, step: '' };
function stepResult(res: Int32Array, i: number): StepResult {
  return res[i * 2] === 0 ? OK : { errno: res[i * 2], step: INSTALL_STEPS[res[i * 2 + 1]] ?? '' };
}

/**
 * A batch of files for one directory, collected without an object per entry on the C side:
 * each file is a range of one data buffer (a shared buffer of decoded blobs is passed as it is).
 */
export class InstallBatch {
  private tmps: string[] = [];
  private names: string[] = [];
  private ranges: number[] = [];
  private meta: number[] = [];
  private times: bigint[] = [];

  get size(): number {
    return this.names.length;
  }

  add(
    tmp: string,
    name: string,
    offset: number,
    length: number,
    m: { mode: number; uid: number; gid: number },
    flags: number,
    mtimeNs: bigint,
    keepNewerThanNs: bigint,
    atimeNs = mtimeNs,
  ): void {
    this.tmps.push(tmp);
    this.names.push(name);
    this.ranges.push(offset, length);
    this.meta.push(m.mode, m.uid, m.gid, flags);
    this.times.push(atimeNs, mtimeNs, keepNewerThanNs);
  }

  /**
   * Each file under its temp name, written (all-zero blocks left as holes), owned, moded and
   * timed, then renamed or linked to its name; a failed entry leaves neither temp nor final name.
   */
  run(dirFd: number, data: Uint8Array): StepResult[] {
    const n = this.names.length;
    if (n === 0) return [];
    const tmp = packNames(this.tmps);
    const fin = packNames(this.names);
    const res = new Int32Array(n * 2);
    writer().install(
      dirFd,
      tmp.buf,
      tmp.offs,
      fin.buf,
      fin.offs,
      data,
      Float64Array.from(this.ranges),
      Uint32Array.from(this.meta),
      BigInt64Array.from(this.times),
      res,
    );
    const out: StepResult[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = stepResult(res, i);
    return out;
  }
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

/** A batch of files with data buffers of their own (tests, small callers): see InstallBatch. */
export function installFiles(dirFd: number, items: readonly InstallItem[], opts: { chown: boolean; noClobber: boolean }): StepResult[] {
  const b = new InstallBatch();
  let at = 0;
  const flags = (opts.chown ? F_CHOWN : 0) | (opts.noClobber ? F_NOCLOBBER : 0);
  for (const it of items) {
    b.add(it.tmp, it.name, at, it.data.length, it, flags, it.mtimeNs, 0n, it.atimeNs);
    at += it.data.length;
  }
  return b.run(dirFd, Buffer.concat(items.map((i) => i.data)));
}

/** Entry metadata for the single-entry calls: mode (type bits for special()), owner, flags, times. */
function metaArgs(mode: number, uid: number, gid: number, flags: number, extra = 0): Uint32Array {
  const m = new Uint32Array(5);
  m[0] = mode;
  m[1] = uid;
  m[2] = gid;
  m[3] = flags;
  m[4] = extra;
  return m;
}
function timeArgs(atimeNs: bigint, mtimeNs: bigint, keepNewerThanNs: bigint): BigInt64Array {
  const t = new BigInt64Array(3);
  t[0] = atimeNs;
  t[1] = mtimeNs;
  t[2] = keepNewerThanNs;
  return t;
}

/** A temp file to be written from JavaScript (large files, chunk by chunk), then sealTemp()ed: an fd or -errno. */
export function openTemp(dirFd: number, tmp: string, mode: number, flags: number): number {
  return writer().openTemp(dirFd, ...one(tmp), metaArgs(mode, 0, 0, flags));
}

/** Length (when >= 0), owner, mode, times of an open temp file; closed; then into place. The fd is closed either way. */
export function sealTemp(
  fd: number,
  dirFd: number,
  tmp: string,
  name: string,
  size: number,
  m: { mode: number; uid: number; gid: number },
  flags: number,
  mtimeNs: bigint,
  keepNewerThanNs: bigint,
): StepResult {
  const res = new Int32Array(2);
  writer().seal(
    fd,
    dirFd,
    ...one(tmp),
    ...one(name),
    size,
    metaArgs(m.mode, m.uid, m.gid, flags),
    timeArgs(mtimeNs, mtimeNs, keepNewerThanNs),
    res,
  );
  return stepResult(res, 0);
}

/** Moves a finished temp entry to its name (rename, or link with F_NOCLOBBER); the temp is removed on failure. */
export function placeTemp(dirFd: number, tmp: string, name: string, flags: number, keepNewerThanNs: bigint): StepResult {
  const res = new Int32Array(2);
  writer().place(dirFd, ...one(tmp), ...one(name), metaArgs(0, 0, 0, flags), timeArgs(0n, 0n, keepNewerThanNs), res);
  return stepResult(res, 0);
}

/**
 * A symlink (`target`), FIFO or device (`rdev`) made under its temp name, given owner, mode and
 * times through a pin proven to be what was just made, then put in place. `mode` carries the type bits.
 */
export function installSpecialAt(
  dirFd: number,
  tmp: string,
  name: string,
  target: string,
  rdev: number,
  m: { mode: number; uid: number; gid: number },
  flags: number,
  mtimeNs: bigint,
  keepNewerThanNs: bigint,
): StepResult {
  const res = new Int32Array(2);
  writer().special(
    dirFd,
    ...one(tmp),
    ...one(name),
    Buffer.from(target, 'latin1'),
    metaArgs(m.mode, m.uid, m.gid, flags, rdev),
    timeArgs(mtimeNs, mtimeNs, keepNewerThanNs),
    res,
  );
  return stepResult(res, 0);
}

const one1 = { u64: new BigUint64Array(U64), i64: new BigInt64Array(I64), u32: new Uint32Array(U32) };

/** fstatat(AT_SYMLINK_NOFOLLOW) of one entry: its stat, undefined when absent; other errors thrown as Node would. */
export function lstatAt(dirFd: number, name: string): ScanStat | undefined {
  const rc = native().statAt(dirFd, ...one(name), one1.u64, one1.i64, one1.u32);
  if (rc === -ENOENT) return undefined;
  check(rc, 'lstat', name);
  return new ScanStat(one1, 0);
}

const linkBuf = Buffer.allocUnsafe(4096);
/** A symlink's target (raw latin1), read relative to its directory. */
export function readlinkAt(dirFd: number, name: string): string {
  const n = check(native().readlinkAt(dirFd, ...one(name), linkBuf), 'readlink', name);
  return linkBuf.toString('latin1', 0, n);
}

/** Owner (when F_CHOWN in flags), mode and times (ns) of an open directory. */
export function fdMeta(fd: number, m: { mode: number; uid: number; gid: number }, flags: number, mtimeNs: bigint): void {
  const t = new BigInt64Array(2);
  t[0] = mtimeNs;
  t[1] = mtimeNs;
  check(writer().fdMeta(fd, metaArgs(m.mode, m.uid, m.gid, flags), t), 'setattr', String(fd));
}

/**
 * One entry of an applyMeta batch: the inode examined (ino, dev) and the links the snapshot
 * recorded. With the examined owner, mode and mtime as well, only what differs is applied.
 */
export interface MetaItem {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
  ino: bigint;
  dev: bigint;
  recordedLinks: number;
  /** What the caller saw (lstat or scan), when it has it. */
  seen?: { mode: bigint; uid: bigint; gid: bigint; mtimeNs: bigint };
}

/** The errno applyMeta gives an entry that is no longer the inode examined (or has foreign links). */
export const ESTALE = os.constants.errno.ESTALE;
/** applyMeta flags: the mode (permission bits) / the mtime already equal what is wanted. */
const F_SAME_MODE = 32;
const F_SAME_TIMES = 64;

/**
 * Owner (when chown), mode and times (atime = mtime, ns) of existing entries, never following a
 * symlink. Of an entry whose examined state is given, only what differs is applied (issue 17:
 * a chmod-only repair needs one call per entry, not chown + chmod + utimensat, each of the
 * last two a path lookup through /proc).
 */
export function applyMeta(dirFd: number, items: readonly MetaItem[], chown: boolean): number[] {
  const n = items.length;
  const names = packNames(items.map((i) => i.name));
  const meta = new Uint32Array(n * 5);
  const ids = new BigUint64Array(n * 2);
  const times = new BigInt64Array(n * 2);
  items.forEach((it, i) => {
    const seen = it.seen;
    let flags = chown && !(seen && Number(seen.uid) === it.uid && Number(seen.gid) === it.gid) ? F_CHOWN : 0;
    if (seen && (Number(seen.mode) & 0o7777) === it.mode) flags |= F_SAME_MODE;
    if (seen && seen.mtimeNs === it.mtimeNs) flags |= F_SAME_TIMES;
    meta.set([it.mode, it.uid, it.gid, flags, it.recordedLinks], i * 5);
    ids[i * 2] = it.ino;
    ids[i * 2 + 1] = it.dev;
    times[i * 2] = it.mtimeNs;
    times[i * 2 + 1] = it.mtimeNs;
  });
  const errs = new Int32Array(n);
  writer().applyMeta(dirFd, names.buf, names.offs, meta, ids, times, errs);
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

  /** Entry i of scan-layout arrays (a DirScan, a copy of one, or lstatAt's). */
  constructor(s: { u64: BigUint64Array; i64: BigInt64Array; u32: Uint32Array }, i: number) {
    const a = i * U64;
    const b = i * I64;
    const c = i * U32;
    this.ino = s.u64[a];
    this.dev = s.u64[a + 1];
    this.size = s.u64[a + 2];
    this.blocks = s.u64[a + 3];
    this.atimeNs = s.i64[b];
    this.mtimeNs = s.i64[b + 1];
    this.ctimeNs = s.i64[b + 2];
    this.mode = BigInt(s.u32[c]);
    this.uid = BigInt(s.u32[c + 1]);
    this.gid = BigInt(s.u32[c + 2]);
    this.nlink = BigInt(s.u32[c + 3]);
    this.rdev = BigInt(s.u32[c + 4]);
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

const listScratch = new DirScan(256);

/** A directory's entries with their lstat mode (0 and the errno when fstatat failed): small callers (--delete, sweeps). */
export function listDir(fd: number): { name: string; mode: number; err: number }[] {
  check(listScratch.read(fd), 'scandir', String(fd));
  const out: { name: string; mode: number; err: number }[] = new Array(listScratch.count);
  for (let i = 0; i < listScratch.count; i++) out[i] = { name: listScratch.name(i), mode: listScratch.mode(i), err: listScratch.errs[i] };
  return out;
}
