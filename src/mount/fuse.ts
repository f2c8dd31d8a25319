import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import type { RepoContext } from '../catalog/context.js';
import { FileContentReader, type FilePieces } from '../query/filecontent.js';
import { SnapshotTree, STAT_INTS, ViewError } from './snaptree.js';
import { display } from '../util/rawpath.js';

/**
 * `snapfill mount`: serves a SnapshotTree read-only through FUSE with fuse-native, an optional
 * dependency (a native module). Everything here is glue: FUSE callbacks -> SnapshotTree /
 * FileContentReader -> errno.
 */

export class MountUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MountUnavailableError';
  }
}

type FuseCtor = any;

/** The parts of a fuse-native Fuse object this module uses or overrides (it ships no types). */
interface FuseNative {
  mnt: string;
  _thread: Buffer;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
  _fuseOptions(): string;
  _close(cb: (err: Error | null) => void): void;
  _op_getattr(signal: (err: number, st?: Uint32Array) => void, p: string): void;
  _op_readdir(signal: (err: number, names?: string[], stats?: Uint32Array[]) => void, p: string): void;
}

/** Loads fuse-native, or explains exactly why FUSE cannot be used here. */
export function loadFuse(): FuseCtor {
  if (process.platform !== 'linux')
    throw new MountUnavailableError(`mount needs Linux FUSE; this is ${process.platform}. Use "snapfill ls", "cat" or "dump" instead`);
  if (!fs.existsSync('/dev/fuse')) {
    throw new MountUnavailableError(
      'cannot mount: /dev/fuse does not exist (load the fuse kernel module with "modprobe fuse", or in a container pass --device /dev/fuse). Use "snapfill ls", "cat" or "dump" instead',
    );
  }
  try {
    fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    throw new MountUnavailableError('cannot mount: no read/write access to /dev/fuse (run as root or add the user to the fuse group)');
  }
  const require = createRequire(import.meta.url);
  try {
    return require('fuse-native');
  } catch (e) {
    throw new MountUnavailableError(
      `cannot mount: the optional module fuse-native is not installed or did not build here (${(e as Error).message.split('\n')[0]}). ` +
        'Install it with "npm install fuse-native" (x64 Linux uses a prebuilt binary; elsewhere it compiles: apt-get install build-essential python3), ' +
        'or use "snapfill ls", "cat" or "dump" instead',
    );
  }
}

export interface MountOptions {
  mountpoint: string;
  accountsRoot?: string;
  /** Let other users see the mount (needs user_allow_other in /etc/fuse.conf for non-root). */
  allowOther?: boolean;
  /** Blob cache budget in bytes. */
  cacheBytes?: number;
  debug?: boolean;
  onLog?: (msg: string) => void;
}

export interface MountHandle {
  mountpoint: string;
  unmount(): Promise<void>;
}

const ERRNO: Record<string, number> = { ENOENT: -2, EIO: -5, EBADF: -9, EACCES: -13, ENOTDIR: -20, EISDIR: -21, EINVAL: -22, EROFS: -30 };

function errnoOf(e: unknown): number {
  if (e instanceof ViewError) return ERRNO[e.code];
  return ERRNO.EIO;
}

/** Mounts; resolves once the kernel has the file system. Keep the session open until unmount. */
export async function mountSnapshots(session: RepoContext, opts: MountOptions): Promise<MountHandle> {
  const Fuse = loadFuse();
  const mnt = resolveMountpoint(opts.mountpoint);
  const log = opts.onLog ?? (() => {});
  // Entries the catalog import refused or lost are not in the mount: say so once, loudly.
  for (const d of session.catalog.damagedInAll('/'))
    log(`warning: snapshot ${d.snapshot.id.slice(0, 8)}: ${display(d.path)}: ${d.message} (not shown in the mount)`);
  const { ops, counts } = fuseOperations(session, opts, log);
  const SnapFuse = snapFuseClass(Fuse, ops);
  // Snapshots never change: let the kernel cache names, attributes and data for a while.
  const fuse = new SnapFuse(mnt, ops, {
    allowOther: opts.allowOther,
    debug: opts.debug,
    kernelCache: true,
    entryTimeout: 60,
    attrTimeout: 60,
    timeout: false,
  });
  await new Promise<void>((resolve, reject) => fuse.mount((err: Error | null) => (err ? reject(mountError(err, mnt)) : resolve())));

  let unmounting: Promise<void> | null = null;
  return {
    mountpoint: mnt,
    unmount: () => {
      if (process.env.SNAPFILL_DEBUG) log(`operations served: ${JSON.stringify(counts)}; memory: ${JSON.stringify(process.memoryUsage())}`);
      unmounting ??= new Promise<void>((resolve, reject) => {
        fuse.unmount((err: Error | null) => {
          if (!err) return resolve();
          reject(new Error(`could not unmount ${mnt}: ${err.message}; run ${unmountHint(mnt)}`));
        });
      });
      return unmounting;
    },
  };
}

/** The mount point's real path; a stale mount or a missing directory is explained. */
function resolveMountpoint(mountpoint: string): string {
  try {
    const mnt = fs.realpathSync(mountpoint);
    if (!fs.statSync(mnt).isDirectory()) throw new Error(`mount point ${mnt} is not a directory`);
    return mnt;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN') {
      throw new Error(`${mountpoint} is a stale mount (its snapfill process died): run ${unmountHint(mountpoint)}, then mount again`, {
        cause: e,
      });
    }
    if (code === 'ENOENT') throw new Error(`mount point ${mountpoint} does not exist: create an empty directory first`, { cause: e });
    throw e;
  }
}

type StatCb = (err: number, st?: Uint32Array) => void;
type ReaddirCb = (err: number, names?: string[], stats?: Uint32Array[]) => void;

interface FuseOps {
  getattr(p: string, cb: StatCb): void;
  readdir(p: string, cb: ReaddirCb): void;
  [op: string]: unknown;
}

/** The FUSE callbacks: SnapshotTree for names and attributes, FileContentReader for content. */
function fuseOperations(
  session: RepoContext,
  opts: MountOptions,
  log: (msg: string) => void,
): { ops: FuseOps; counts: Record<string, number> } {
  const tree = new SnapshotTree(session.catalog, { accountsRoot: opts.accountsRoot });
  const reader = new FileContentReader(session.repo, session.catalog, opts.cacheBytes ?? 64 * 1024 * 1024);
  const handles = new Map<number, FilePieces>();
  let nextFd = 10;
  // The catalog may also be written by a snapshot process; a failed query is an EIO for that call, not a crash.
  const guard = <T>(what: string, fn: () => T, cb: (err: number, v?: T) => void) => {
    let v: T;
    try {
      v = fn();
    } catch (e) {
      if (!(e instanceof ViewError)) log(`${what}: ${(e as Error).message}`);
      return cb(errnoOf(e));
    }
    cb(0, v);
  };
  const counts: Record<string, number> = {};
  const count = (op: string) => {
    counts[op] = (counts[op] ?? 0) + 1;
  };
  const ops: FuseOps = {
    // getattr and readdir answer with packed stat rows (see snapFuseClass).
    getattr: (p: string, cb: StatCb) => {
      count('getattr');
      guard(`stat ${p}`, () => tree.stat(p), cb);
    },
    readdir: (p: string, cb: ReaddirCb) => {
      count('readdir');
      guard(
        `readdir ${p}`,
        () => statRows(tree, p),
        (err, v) => (err ? cb(err) : cb(0, v!.names, v!.rows)),
      );
    },
    readlink: (p: string, cb: (err: number, target?: string) => void) => guard(`readlink ${p}`, () => tree.readlink(p), cb),
    open: (p: string, flags: number, cb: (err: number, fd?: number) => void) => {
      if ((flags & 3) !== fs.constants.O_RDONLY) return cb(ERRNO.EROFS);
      guard(
        `open ${p}`,
        () => {
          const pieces = openPieces(tree, reader, p);
          const fd = nextFd++;
          handles.set(fd, pieces);
          return fd;
        },
        cb,
      );
    },
    read: (_p: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void) => {
      const pieces = handles.get(fd);
      if (!pieces) return cb(ERRNO.EBADF);
      reader.readInto(pieces, pos, buf, len).then(cb, (e) => {
        log(`read ${_p}: ${(e as Error).message}`);
        cb(ERRNO.EIO);
      });
    },
    release: (_p: string, fd: number, cb: (err: number) => void) => {
      handles.delete(fd);
      cb(0);
    },
    statfs: (_p: string, cb: (err: number, st?: unknown) => void) =>
      cb(0, { bsize: 4096, frsize: 4096, blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, favail: 0, fsid: 0, flag: 1, namemax: 255 }),
  };
  return { ops, counts };
}

/** A directory's names with their stat rows (views into the tree's packed attributes). */
function statRows(tree: SnapshotTree, p: string): { names: string[]; rows: Uint32Array[] } {
  const { names, stats } = tree.list(p);
  const rows = new Array<Uint32Array>(names.length);
  for (let i = 0; i < names.length; i++) rows[i] = stats.subarray(i * STAT_INTS, (i + 1) * STAT_INTS);
  return { names, rows };
}

/** What an open file handle reads: the content pieces of a file (none for other non-directories). */
function openPieces(tree: SnapshotTree, reader: FileContentReader, p: string): FilePieces {
  const node = tree.resolve(p);
  if (node.kind !== 'entry' || !node.version) throw new ViewError('EISDIR', p);
  const v = node.version;
  if (v.type === 'dir') throw new ViewError('EISDIR', p);
  return v.type === 'file' || v.type === 'hardlink' ? reader.layout(v, p) : [];
}

/**
 * fuse-native's Fuse with what this mount needs changed. fuse-native passes only the options
 * it knows; these three matter here, so they are added: ro (the kernel refuses writes),
 * use_ino (our inode numbers, so hardlinks share one), fsname (what mount(8) and fusermount show).
 */
function snapFuseClass(Fuse: FuseCtor, ops: FuseOps): new (mnt: string, ops: object, opts: object) => FuseNative {
  const FuseBase: new (mnt: string, ops: object, opts: object) => FuseNative = Fuse;
  return class SnapFuse extends FuseBase {
    override _fuseOptions(): string {
      const base: string = super._fuseOptions();
      const extra = 'ro,use_ino,fsname=snapfill,subtype=snapfill';
      return base ? `${base},${extra}` : `-o${extra}`;
    }

    // fuse-native converts stat objects to its 18-uint32 layout one object at a time; the tree
    // already keeps attributes in that layout, so hand the rows over as they are. This halves
    // the CPU of listing and stat-ing a 100k-entry directory and spares the GC 100k objects.
    override _op_getattr(signal: StatCb, p: string): void {
      ops.getattr(p, (err, st) => (err ? signal(err, new Uint32Array(STAT_INTS)) : signal(0, st)));
    }

    // fuse-native unmounts with "fusermount -uz" only, which FUSE 3 systems lack (they have
    // fusermount3): try each way, then stop fuse-native's thread as its own _close does.
    override _close(cb: (err: Error | null) => void): void {
      lazyUnmount(this.mnt).then(
        () => {
          try {
            fuseBinding().fuse_native_unmount(this.mnt, this._thread);
          } catch (e) {
            return cb(e as Error);
          }
          cb(null);
        },
        (e: Error) => cb(e),
      );
    }

    override _op_readdir(signal: ReaddirCb, p: string): void {
      ops.readdir(p, (err, names, stats) => (err ? signal(err) : signal(0, names, stats)));
    }
  };
}

/** The command that removes a (stale) FUSE mount on this machine: FUSE 3 systems only have fusermount3. */
export function unmountHint(mnt: string): string {
  const has = (cmd: string) => (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => d && fs.existsSync(`${d}/${cmd}`));
  const tool = has('fusermount') ? 'fusermount' : has('fusermount3') ? 'fusermount3' : 'fusermount';
  return `"${tool} -u ${mnt}" (or, as root, "umount -l ${mnt}")`;
}

function mountError(err: Error, mnt: string): Error {
  const msg = err.message || String(err);
  if (/in use|busy|already/i.test(msg)) {
    return new Error(`cannot mount on ${mnt}: ${msg}. If an earlier snapfill mount died, remove it with ${unmountHint(mnt)} and try again`);
  }
  return new Error(`cannot mount on ${mnt}: ${msg}`);
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => execFile(cmd, args, (e: Error | null) => (e ? reject(e) : resolve())));
}

async function lazyUnmount(mnt: string): Promise<void> {
  const failures: string[] = [];
  for (const [cmd, args] of [
    ['fusermount', ['-uz', mnt]],
    ['fusermount3', ['-uz', mnt]],
    ['umount', ['-l', mnt]],
  ] as const) {
    try {
      await run(cmd, [...args]);
      return;
    } catch (e) {
      failures.push(`${cmd}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(failures.join('; '));
}

/** fuse-native's native binding (the same loaded instance fuse-native uses). */
function fuseBinding(): { fuse_native_unmount(mnt: string, thread: Buffer): void } {
  const fuseMain = createRequire(import.meta.url).resolve('fuse-native');
  const gypBuild = createRequire(fuseMain)('node-gyp-build') as (dir: string) => any;
  return gypBuild(path.dirname(fuseMain));
}
