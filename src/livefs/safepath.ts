import * as fs from 'node:fs';
import type { RawPath } from '../util/rawpath.js';
import { isSafeName, toFs } from '../util/rawpath.js';

/**
 * Symlink-safe access below a root directory. Node has no openat(), so we emulate it: every
 * directory is opened component by component with O_NOFOLLOW, and operations address
 * `/proc/self/fd/<dirfd>/<name>`, which the kernel resolves inside the directory we opened.
 * A customer who swaps a directory for a symlink to /etc makes the open fail (ELOOP/ENOTDIR):
 * the restore never writes through a symlink found in the target tree.
 */
export class UnsafePathError extends Error {
  constructor(path: string, reason: string) {
    super(`refusing ${path}: ${reason}`);
    this.name = 'UnsafePathError';
  }
}

const O_DIR = fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW;

export class SafeRoot {
  private readonly fds = new Map<RawPath, number>();
  private readonly rootFd: number;
  /** `root` is trusted as given (the admin named it); nothing below it is. */
  /**
   * `beforeCreate` runs before a directory is made (a crash journal must know of a directory
   * before it exists); `onCreate` after it was made by us.
   */
  constructor(
    readonly root: RawPath,
    private readonly onCreate: (rel: RawPath) => void = () => {},
    private readonly beforeCreate: (rel: RawPath) => void = () => {},
    private readonly maxOpen = 256,
  ) {
    this.rootFd = fs.openSync(toFs(root), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  }

  close(): void {
    for (const fd of this.fds.values()) fs.closeSync(fd);
    this.fds.clear();
    fs.closeSync(this.rootFd);
  }

  /** `rel` is a path relative to the root, without leading slash ('' = the root). */
  static split(rel: RawPath): RawPath[] {
    return rel === '' ? [] : rel.split('/');
  }

  /** The fd of directory `rel`, creating missing directories (mode 0700) when `create`. Returns null if absent. */
  dirFd(rel: RawPath, create: boolean): number | null {
    if (rel === '') return this.rootFd;
    const cached = this.fds.get(rel);
    if (cached !== undefined) return cached;
    const slash = rel.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : rel.slice(0, slash);
    const name = rel.slice(slash + 1);
    if (!isSafeName(name)) throw new UnsafePathError(rel, 'unsafe path component');
    const parent = this.dirFd(parentRel, create);
    if (parent === null) return null;
    const p = procPath(parent, name);
    let fd: number;
    try {
      fd = fs.openSync(p, O_DIR);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && create) {
        try {
          this.beforeCreate(rel);
          fs.mkdirSync(p, 0o700);
          this.onCreate(rel);
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw e2;
        }
        return this.dirFd(rel, false) ?? null;
      }
      if (code === 'ENOENT') return null;
      if (code === 'ELOOP' || code === 'ENOTDIR')
        throw new UnsafePathError('/' + rel, 'a symlink or non-directory is in the way in the target tree');
      throw e;
    }
    if (this.fds.size >= this.maxOpen) {
      // Evict the oldest; directories are visited in path order so the oldest is least likely needed.
      const [k, v] = this.fds.entries().next().value as [RawPath, number];
      this.fds.delete(k);
      fs.closeSync(v);
    }
    this.fds.set(rel, fd);
    return fd;
  }

  /** Forget a cached fd (after the directory was removed or replaced). */
  forget(rel: RawPath): void {
    for (const [k, fd] of this.fds) {
      if (k === rel || k.startsWith(rel + '/')) {
        fs.closeSync(fd);
        this.fds.delete(k);
      }
    }
  }
}

export function procPath(dirFd: number, name: RawPath): Buffer {
  return Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), toFs(name)]);
}

/** The same path for a child process (mknod, mkfifo), where /proc/self would be the child. */
export function procPathForChild(dirFd: number, name: RawPath): string {
  return Buffer.concat([Buffer.from(`/proc/${process.pid}/fd/${dirFd}/`), toFs(name)]).toString('latin1');
}

export function splitParent(rel: RawPath): [RawPath, RawPath] {
  const i = rel.lastIndexOf('/');
  return i < 0 ? ['', rel] : [rel.slice(0, i), rel.slice(i + 1)];
}
