import type * as fs from 'node:fs';
import { applyMeta, errnoName, ESTALE, F_CHOWN, fdMeta } from './native.js';

/** The metadata a restored entry gets: permission bits, owner and modification time. */
export interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  /** Nanoseconds since the epoch, as a decimal string (set to the nanosecond). */
  mtimeNs: string;
}

export class ForeignInodeError extends Error {}

const FOREIGN = 'changed during the restore (another inode or extra hard links); metadata not applied';

/** Owner, mode and times of an open entry (a directory). chown first: it clears set-id bits that chmod then sets. */
export function setMetaFd(fd: number, meta: EntryMeta, chown: boolean): void {
  fdMeta(fd, meta, chown ? F_CHOWN : 0, BigInt(meta.mtimeNs));
}

/**
 * One entry of a metadata batch: the name, what it gets, and the inode the caller examined
 * (with its owner, mode and mtime when known: then only what differs is applied).
 */
export interface MetaFix {
  name: string;
  meta: EntryMeta;
  st: { ino: bigint; dev: bigint; mode?: bigint; uid?: bigint; gid?: bigint; mtimeNs?: bigint };
  recordedLinks: number;
}

/**
 * Metadata of existing entries of directory `dirFd`, one native call for the batch, never
 * following a symlink. Each inode is pinned (O_PATH, no open side effects on FIFOs and
 * devices) and proven to be the one the caller examined (same inode, no more links than
 * recorded), so a swap between the caller's look and this call cannot redirect it. Per entry:
 * null, or why it was not applied.
 */
export function setMetaBatch(dirFd: number, fixes: readonly MetaFix[], chown: boolean): (string | null)[] {
  if (!fixes.length) return [];
  const errs = applyMeta(
    dirFd,
    fixes.map((f) => ({
      name: f.name,
      mode: f.meta.mode,
      uid: f.meta.uid,
      gid: f.meta.gid,
      mtimeNs: BigInt(f.meta.mtimeNs),
      ino: f.st.ino,
      dev: f.st.dev,
      recordedLinks: f.recordedLinks,
      seen:
        f.st.mode !== undefined && f.st.uid !== undefined && f.st.gid !== undefined && f.st.mtimeNs !== undefined
          ? { mode: f.st.mode, uid: f.st.uid, gid: f.st.gid, mtimeNs: f.st.mtimeNs }
          : undefined,
    })),
    chown,
  );
  return errs.map((e) => (e === 0 ? null : e === ESTALE ? FOREIGN : `${errnoName(e)}: setattr`));
}

/** The same for one entry: throws ForeignInodeError (or the errno) when not applied. */
export function setMetaAt(dirFd: number, name: string, meta: EntryMeta, st: fs.BigIntStats, chown: boolean, recordedLinks: number): void {
  const err = setMetaBatch(dirFd, [{ name, meta, st, recordedLinks }], chown)[0];
  if (err === FOREIGN) throw new ForeignInodeError(err);
  if (err !== null) throw new Error(err);
}
