import * as fs from 'node:fs';
import type { RawPath } from '../util/rawpath.js';
import { isSafeName, toFs } from '../util/rawpath.js';
import { check, closeFd, mkdirAt, openDirAt } from './native.js';

/**
 * Symlink-safe access below a root directory: every directory is opened component by
 * component, each relative to its parent's fd with openat(O_DIRECTORY|O_NOFOLLOW) (the native
 * addon), and every operation addresses a name relative to such an fd. A customer who swaps a
 * directory for a symlink to /etc makes the open fail (ELOOP/ENOTDIR): the restore never
 * writes through a symlink found in the target tree.
 */
export class UnsafePathError extends Error {
  constructor(path: string, reason: string) {
    super(`refusing ${path}: ${reason}`);
    this.name = 'UnsafePathError';
  }
}

const ENOENT = -2;
const EEXIST = -17;
const ELOOP = -40;
const ENOTDIR = -20;

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
    for (const fd of this.fds.values()) closeFd(fd);
    this.fds.clear();
    fs.closeSync(this.rootFd);
  }

  /** The root's own fd. */
  get fd(): number {
    return this.rootFd;
  }

  /** `rel` is a path relative to the root, without leading slash ('' = the root). */
  static split(rel: RawPath): RawPath[] {
    return rel === '' ? [] : rel.split('/');
  }

  /** The fd of directory `rel`, creating missing directories (mode 0700) when `create`. Returns null if absent. */
  dirFd(rel: RawPath, create: boolean): number | null {
    if (rel === '') return this.rootFd;
    const cached = this.fds.get(rel);
    if (cached !== undefined) {
      // Most recently used last: an fd in use is never the one evicted (its number could be reused).
      this.fds.delete(rel);
      this.fds.set(rel, cached);
      return cached;
    }
    const slash = rel.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : rel.slice(0, slash);
    const name = rel.slice(slash + 1);
    if (!isSafeName(name)) throw new UnsafePathError(rel, 'unsafe path component');
    const parent = this.dirFd(parentRel, create);
    if (parent === null) return null;
    const fd = openDirAt(parent, name);
    if (fd < 0) {
      if (fd === ENOENT && create) {
        this.beforeCreate(rel);
        const rc = mkdirAt(parent, name, 0o700);
        if (rc === 0) this.onCreate(rel);
        else if (rc !== EEXIST) check(rc, 'mkdir', '/' + rel);
        return this.dirFd(rel, false) ?? null;
      }
      if (fd === ENOENT) return null;
      if (fd === ELOOP || fd === ENOTDIR)
        throw new UnsafePathError('/' + rel, 'a symlink or non-directory is in the way in the target tree');
      check(fd, 'open', '/' + rel);
    }
    if (this.fds.size >= this.maxOpen) {
      // Evict the oldest; directories are visited in path order so the oldest is least likely needed.
      const [k, v] = this.fds.entries().next().value as [RawPath, number];
      this.fds.delete(k);
      closeFd(v);
    }
    this.fds.set(rel, fd);
    return fd;
  }

  /** Forget a cached fd (after the directory was removed or replaced). */
  forget(rel: RawPath): void {
    for (const [k, fd] of this.fds) {
      if (k === rel || rel === '' || k.startsWith(rel + '/')) {
        closeFd(fd);
        this.fds.delete(k);
      }
    }
  }
}

/** A snapshot path's place below a SafeRoot's root (no leading slash; '' is the root itself). */
export function relOf(p: RawPath): RawPath {
  return p.slice(1);
}

/** A name below an open directory as a path, for the few calls that only take paths (fingerprint reads). */
export function procPath(dirFd: number, name: RawPath): Buffer {
  return Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), toFs(name)]);
}

export function splitParent(rel: RawPath): [RawPath, RawPath] {
  const i = rel.lastIndexOf('/');
  return i < 0 ? ['', rel] : [rel.slice(0, i), rel.slice(i + 1)];
}
