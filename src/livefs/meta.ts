import * as fs from 'node:fs';
import { hasForeignLinks } from './compare.js';
import { procPath } from './safepath.js';
import { utimesSeconds } from './times.js';

/** The metadata a restored entry gets: permission bits, owner and modification time. */
export interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as a decimal string (set with microsecond precision). */
  mtimeNs: string;
}

/** Linux O_PATH: pins an inode without opening it for I/O (no side effects on FIFOs or devices). */
const O_PATH = 0o10000000;

export class ForeignInodeError extends Error {}

/** Owner, mode and times of an open entry. chown first: it clears set-id bits that chmod then sets. */
export function setMetaFd(fd: number, meta: EntryMeta, chown: boolean): void {
  if (chown) fs.fchownSync(fd, meta.uid, meta.gid);
  fs.fchmodSync(fd, meta.mode);
  const t = utimesSeconds(meta.mtimeNs);
  fs.futimesSync(fd, t, t);
}

/**
 * Metadata of an existing non-directory entry `name` in directory `dirFd`, never following a
 * symlink. The inode is pinned with O_PATH (no open side effects on FIFOs and devices) and
 * proven to be the one the caller examined as `st` (same inode, no more links than
 * `recordedLinks`), so a swap between that lstat and this call cannot redirect it.
 */
export function setMetaAt(dirFd: number, name: string, meta: EntryMeta, st: fs.BigIntStats, chown: boolean, recordedLinks: number): void {
  const p = procPath(dirFd, name);
  if (st.isSymbolicLink()) {
    // No O_PATH trick for a symlink's own inode in Node; lchown/lutimes never follow the link.
    if (chown) fs.lchownSync(p, meta.uid, meta.gid);
    const t = utimesSeconds(meta.mtimeNs);
    fs.lutimesSync(p, t, t);
    return;
  }
  const fd = fs.openSync(p, O_PATH | fs.constants.O_NOFOLLOW);
  try {
    const now = fs.fstatSync(fd, { bigint: true });
    if (now.ino !== st.ino || now.dev !== st.dev || hasForeignLinks(now, recordedLinks)) {
      throw new ForeignInodeError('changed during the restore (another inode or extra hard links); metadata not applied');
    }
    // /proc/self/fd/N of an O_PATH descriptor resolves to exactly the pinned inode.
    const pinned = `/proc/self/fd/${fd}`;
    if (chown) fs.chownSync(pinned, meta.uid, meta.gid);
    fs.chmodSync(pinned, meta.mode);
    const t = utimesSeconds(meta.mtimeNs);
    fs.utimesSync(pinned, t, t);
  } finally {
    fs.closeSync(fd);
  }
}
