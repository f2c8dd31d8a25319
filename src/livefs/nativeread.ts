import { createRequire } from 'node:module';
import * as os from 'node:os';
import { NATIVE_MISSING } from './native.js';

/**
 * The batched small-file reader of the native addon (native/read.c, its own node-gyp target
 * `livefs_read`): files read whole by name relative to a directory fd, one call per batch, with
 * the stat of each open file taken after its read (the snapshot's change-during-read check).
 * Like livefs/native.ts there is no slow fallback: without the addon the snapshot stops with
 * the one line that names the build step.
 */
interface ReadAddon {
  layout: number;
  readFiles(
    dirFd: number,
    names: Buffer,
    offs: Uint32Array,
    data: Buffer,
    slots: Float64Array,
    lens: Float64Array,
    u64: BigUint64Array,
    i64: BigInt64Array,
    u32: Uint32Array,
    errs: Int32Array,
  ): number;
  raiseNofile(): number;
  openRoot(path: Buffer): number;
}

const U64 = 3; // ino, dev, size
const I64 = 2; // mtime, ctime (ns)
const U32 = 4; // mode, uid, gid, nlink

/** errs[i] of an entry that is not a regular file (a FIFO, a device, a symlink, ...): it was not opened. */
export const NOT_REGULAR = -1;

let addon: ReadAddon | null = null;

/** The addon, loaded once per thread; throws the one-line NATIVE_MISSING error when it is not built. */
export function nativeRead(): ReadAddon {
  if (addon) return addon;
  try {
    // From src/livefs (vitest) and dist/livefs (the CLI) alike, the build is two levels up.
    addon = createRequire(import.meta.url)('../../build/Release/livefs_read.node') as ReadAddon;
  } catch {
    throw new Error(NATIVE_MISSING);
  }
  if (addon.layout !== U64 * 100 + I64 * 10 + U32 || typeof addon.openRoot !== 'function')
    throw new Error(`${NATIVE_MISSING}: the built addon is stale`);
  return addon;
}

/** A walk's starting directory by absolute (raw, latin1) path, not through a symlink: fd or -errno. */
export function openRoot(path: string): number {
  return nativeRead().openRoot(Buffer.from(path + '\0', 'latin1'));
}

/** Raises the soft limit of open files to the hard one; returns the limit now in force (or -errno). */
export function raiseNofile(): number {
  return nativeRead().raiseNofile();
}

/**
 * One batch of whole-file reads in one directory, with buffers that grow as needed and are
 * reused by the next batch (never per entry). After read(), entry i is data(i), errno(i) (0, an
 * errno, or NOT_REGULAR) and the stat fields of the open file after its read.
 */
export class FileBatch {
  count = 0;
  private nameBuf = Buffer.allocUnsafe(64 * 256);
  private offs = new Uint32Array(65);
  private dataBuf = Buffer.allocUnsafe(1 << 20);
  private slots = new Float64Array(65);
  private lens = new Float64Array(64);
  private u64 = new BigUint64Array(64 * U64);
  private i64 = new BigInt64Array(64 * I64);
  private u32 = new Uint32Array(64 * U32);
  private errs = new Int32Array(64);

  /**
   * Reads `names[i]` (raw latin1 names, one path component each) of the directory open at
   * `dirFd`, at most `caps[i]` bytes each. Give each cap one byte more than the size expected:
   * a file that fills its slot has grown. Returns the number of entries that failed.
   */
  read(dirFd: number, names: readonly string[], caps: readonly number[]): number {
    const n = names.length;
    this.reserve(n, names, caps);
    let at = 0;
    let data = 0;
    this.offs[0] = 0;
    this.slots[0] = 0;
    for (let i = 0; i < n; i++) {
      at += this.nameBuf.write(names[i], at, 'latin1');
      this.nameBuf[at++] = 0;
      this.offs[i + 1] = at;
      data += caps[i];
      this.slots[i + 1] = data;
    }
    this.count = n;
    return nativeRead().readFiles(
      dirFd,
      this.nameBuf.subarray(0, at),
      this.offs.subarray(0, n + 1),
      this.dataBuf.subarray(0, data),
      this.slots.subarray(0, n + 1),
      this.lens,
      this.u64,
      this.i64,
      this.u32,
      this.errs,
    );
  }

  /** The bytes read of entry i: a view into the batch's buffer, valid until the next read(). */
  data(i: number): Buffer {
    return this.dataBuf.subarray(this.slots[i], this.slots[i] + this.lens[i]);
  }
  length(i: number): number {
    return this.lens[i];
  }
  /** 0, an errno, or NOT_REGULAR. */
  errno(i: number): number {
    return this.errs[i];
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
  mtimeNs(i: number): bigint {
    return this.i64[i * I64];
  }
  ctimeNs(i: number): bigint {
    return this.i64[i * I64 + 1];
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

  private reserve(n: number, names: readonly string[], caps: readonly number[]): void {
    let nameBytes = 0;
    let dataBytes = 0;
    for (let i = 0; i < n; i++) {
      nameBytes += names[i].length + 1;
      dataBytes += caps[i];
    }
    if (nameBytes > this.nameBuf.length) this.nameBuf = Buffer.allocUnsafe(Math.max(nameBytes, this.nameBuf.length * 2));
    if (dataBytes > this.dataBuf.length) this.dataBuf = Buffer.allocUnsafe(Math.max(dataBytes, this.dataBuf.length * 2));
    if (n <= this.lens.length) return;
    const cap = Math.max(n, this.lens.length * 2);
    this.offs = new Uint32Array(cap + 1);
    this.slots = new Float64Array(cap + 1);
    this.lens = new Float64Array(cap);
    this.u64 = new BigUint64Array(cap * U64);
    this.i64 = new BigInt64Array(cap * I64);
    this.u32 = new Uint32Array(cap * U32);
    this.errs = new Int32Array(cap);
  }
}

/** The errno name of a positive errno, NOT_REGULAR as its own word. */
export function readErrorName(errno: number): string {
  if (errno === NOT_REGULAR) return 'not a regular file';
  return Object.entries(os.constants.errno).find(([, v]) => v === errno)?.[0] ?? `E${errno}`;
}
