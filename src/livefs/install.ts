import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { procPath, procPathForChild } from './safepath.js';
import { setMetaAt, type EntryMeta } from './meta.js';
import { SPARSE_BLOCK, writeAt } from './sparse.js';
import { utimesSeconds } from './times.js';
import { toFs } from '../util/rawpath.js';

/**
 * The one install primitive: every entry a restore puts in place is made under a temp name in
 * its final directory (created O_EXCL|O_NOFOLLOW), given its content, owner, mode and times,
 * and only then renamed (may replace) or linked (never clobbers) to its final name. Nothing
 * half-written is ever visible under the final name, and nothing is written through a symlink.
 */

/** Temp entries are named `<prefix><final name>` in the final directory. */
export const TMP_PREFIX = '.snapfill-tmp.';

/**
 * The temp name for an entry: derived from the final name, so a re-run after a crash reuses
 * (and so removes) what an interrupted run left. Long names are shortened with a hash.
 */
export function tempNameFor(finalName: string): string {
  const n = finalName.length > 200 ? createHash('sha256').update(finalName, 'latin1').digest('hex') : finalName;
  return `${TMP_PREFIX}${n}`;
}

/** The one "modified after the snapshot" rule: a live entry newer than the snapshot is the customer's. */
export function modifiedAfter(st: { mtimeNs: bigint } | undefined, snapshotTimeNs: bigint): boolean {
  return st !== undefined && st.mtimeNs > snapshotTimeNs;
}

/** How an entry is put in place. */
export interface Placement {
  /** An existing entry may be replaced (rename); otherwise it is only created (link: never clobbers). */
  replace: boolean;
  /** The directory was created by this run (mode 0700, ours): no leftovers in it, and a rename cannot clobber anyone's data. */
  fresh: boolean;
  /** When replacing: refuse an entry modified after this time (ns); null replaces newer entries too. */
  keepNewerThanNs: bigint | null;
}

/** Who may set what: owners only as root; the umask decides whether a created file already has its final mode. */
export interface MetaPolicy {
  chown: boolean;
  umask: number;
}

export type InstallResult = { installed: true } | { installed: false; reason: 'newer' | 'present' | 'source-changed'; msg: string };

const INSTALLED: InstallResult = { installed: true };
const NEWER: InstallResult = { installed: false, reason: 'newer', msg: 'modified after the snapshot' };
const PRESENT: InstallResult = { installed: false, reason: 'present', msg: 'appeared during the restore; left untouched' };

function lstatAt(dirFd: number, name: string): fs.BigIntStats | undefined {
  return fs.lstatSync(procPath(dirFd, name), { bigint: true, throwIfNoEntry: false });
}

/** Removes a leftover temp entry of an interrupted run, so O_EXCL creation can proceed. */
function clearTemp(dirFd: number, tmp: string): void {
  try {
    fs.unlinkSync(procPath(dirFd, tmp));
  } catch {
    /* none */
  }
}

function refusedAsNewer(dirFd: number, name: string, place: Placement): boolean {
  return place.replace && place.keepNewerThanNs !== null && modifiedAfter(lstatAt(dirFd, name), place.keepNewerThanNs);
}

/** A regular file being written under its temp name; content goes in order, hole-aware. */
export class TempFile {
  private pos = 0;

  private constructor(
    readonly dirFd: number,
    readonly name: string,
    private fd: number | null,
  ) {}

  static create(dirFd: number, finalName: string, mode: number, clearLeftover: boolean): TempFile {
    const tmp = tempNameFor(finalName);
    if (clearLeftover) clearTemp(dirFd, tmp);
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
    // Under umask 0 the file is created with its final permission bits: one chmod less per file.
    return new TempFile(dirFd, tmp, fs.openSync(procPath(dirFd, tmp), flags, mode & 0o777));
  }

  write(data: Buffer): void {
    writeAt(this.fd!, data, this.pos);
    this.pos += data.length;
  }

  /** Final length (covers a trailing hole), owner, mode, times; then closed. */
  seal(meta: EntryMeta, policy: MetaPolicy): void {
    const fd = this.fd!;
    if (this.pos > SPARSE_BLOCK) fs.ftruncateSync(fd, this.pos);
    // Created with its final permission bits (under umask 0): only set-id/sticky bits need a
    // chmod, after the chown that clears them. setMetaFd would cost a chmod per file.
    if (policy.chown) fs.fchownSync(fd, meta.uid, meta.gid);
    if (meta.mode & 0o7000 || policy.umask !== 0) fs.fchmodSync(fd, meta.mode);
    const t = utimesSeconds(meta.mtimeNs);
    fs.futimesSync(fd, t, t);
    this.close();
  }

  /** Closes and removes the temp file (after a failure). */
  discard(): void {
    this.close();
    fs.rmSync(procPath(this.dirFd, this.name), { force: true });
  }

  private close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Moves a finished temp entry to its final name: rename when replacing is allowed (or the
 * directory is ours), else link, which fails if something appeared meanwhile.
 */
export function moveIntoPlace(dirFd: number, tmp: string, name: string, place: Placement): InstallResult {
  const from = procPath(dirFd, tmp);
  const to = procPath(dirFd, name);
  if (place.replace || place.fresh) {
    if (refusedAsNewer(dirFd, name, place)) {
      fs.unlinkSync(from);
      return NEWER;
    }
    fs.renameSync(from, to);
    return INSTALLED;
  }
  try {
    fs.linkSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      fs.unlinkSync(from);
      return PRESENT;
    }
    if (code === 'EPERM' || code === 'EXDEV' || code === 'ENOTSUP') {
      // No hardlinks here (or to this type): check-then-rename, a tiny window instead of none.
      if (lstatAt(dirFd, name)) {
        fs.unlinkSync(from);
        return PRESENT;
      }
      fs.renameSync(from, to);
      return INSTALLED;
    }
    fs.unlinkSync(from);
    throw e;
  }
  fs.unlinkSync(from);
  return INSTALLED;
}

/** Writes regular file `name` in `dirFd`: temp, content from `fill`, owner, mode, times, into place. */
export function installFile(
  dirFd: number,
  name: string,
  meta: EntryMeta,
  policy: MetaPolicy,
  place: Placement,
  fill: (t: TempFile) => void,
): InstallResult {
  if (refusedAsNewer(dirFd, name, place)) return NEWER;
  const t = TempFile.create(dirFd, name, meta.mode, !place.fresh);
  try {
    fill(t);
    t.seal(meta, policy);
  } catch (e) {
    t.discard();
    throw e;
  }
  return moveIntoPlace(dirFd, t.name, name, place);
}

/** The same with content that arrives asynchronously (large files read from the store chunk by chunk). */
export async function installFileAsync(
  dirFd: number,
  name: string,
  meta: EntryMeta,
  policy: MetaPolicy,
  place: Placement,
  fill: (t: TempFile) => Promise<void>,
): Promise<InstallResult> {
  if (refusedAsNewer(dirFd, name, place)) return NEWER;
  const t = TempFile.create(dirFd, name, meta.mode, !place.fresh);
  try {
    await fill(t);
    t.seal(meta, policy);
  } catch (e) {
    t.discard();
    throw e;
  }
  return moveIntoPlace(dirFd, t.name, name, place);
}

export type SpecialType = 'symlink' | 'fifo' | 'chardev' | 'blockdev';

/** Creates a symlink, FIFO or device node under its temp name, sets its metadata, and puts it in place. */
export function installSpecial(
  dirFd: number,
  name: string,
  what: { type: SpecialType; linkTarget: string | null; rdev: number },
  meta: EntryMeta,
  policy: MetaPolicy,
  place: Placement,
): InstallResult {
  const tmp = tempNameFor(name);
  clearTemp(dirFd, tmp);
  const child = () => Buffer.from(procPathForChild(dirFd, tmp), 'latin1') as unknown as string;
  if (what.type === 'symlink') {
    fs.symlinkSync(toFs(what.linkTarget ?? ''), procPath(dirFd, tmp));
  } else if (what.type === 'fifo') {
    execFileSync('mkfifo', ['-m', (meta.mode & 0o777).toString(8), child()]);
  } else {
    // Linux dev_t layout (glibc gnu_dev_major/minor) for the 32-bit values devices use in practice.
    const major = (what.rdev >>> 8) & 0xfff;
    const minor = (what.rdev & 0xff) | ((what.rdev >>> 12) & 0xfff00);
    execFileSync('mknod', [child(), what.type === 'chardev' ? 'c' : 'b', String(major), String(minor)]);
  }
  try {
    setMetaAt(dirFd, tmp, meta, lstatAt(dirFd, tmp)!, policy.chown, 1);
  } catch (e) {
    fs.rmSync(procPath(dirFd, tmp), { force: true });
    throw e;
  }
  return moveIntoPlace(dirFd, tmp, name, place);
}

/**
 * Links `name` to the inode the caller examined at `source` (its lstat `expect`): linked under
 * the temp name first, then proven to be that inode (a swap in between is undone), then put in place.
 */
export function installLink(
  source: { dirFd: number; name: string; expect: fs.BigIntStats },
  dirFd: number,
  name: string,
  place: Placement,
): InstallResult {
  const tmp = tempNameFor(name);
  clearTemp(dirFd, tmp);
  fs.linkSync(procPath(source.dirFd, source.name), procPath(dirFd, tmp));
  const linked = lstatAt(dirFd, tmp);
  if (!linked || linked.ino !== source.expect.ino || linked.dev !== source.expect.dev) {
    fs.unlinkSync(procPath(dirFd, tmp));
    return { installed: false, reason: 'source-changed', msg: 'hardlink source changed during the restore' };
  }
  return moveIntoPlace(dirFd, tmp, name, place);
}
