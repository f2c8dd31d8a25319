import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { EntryMeta } from './meta.js';
import {
  errnoName,
  F_CHOWN,
  F_CLEAR,
  F_FINAL_MODE,
  F_KEEP_NEWER,
  F_NOCLOBBER,
  InstallBatch,
  installSpecialAt,
  linkAt,
  lstatAt,
  openTemp,
  placeTemp,
  sealTemp,
  unlinkAt,
  type StepResult,
} from './native.js';
import { SPARSE_BLOCK, writeAt } from './sparse.js';

/**
 * The one install primitive: every entry a restore puts in place is made under a temp name in
 * its final directory (created O_EXCL|O_NOFOLLOW relative to the directory's fd), given its
 * content, owner, mode and times (nanoseconds), and only then renamed (may replace) or linked
 * (never clobbers) to its final name. Nothing half-written is ever visible under the final
 * name, and nothing is written through a symlink. The work is the native addon's
 * (native/livefs.c), a whole directory's batch per call; this file says what to ask of it.
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
  /** The directory's listing, read by this run, held no temp entry: nothing of an earlier run to clear first. */
  clean?: boolean;
  /** When replacing: refuse an entry modified after this time (ns); null replaces newer entries too. */
  keepNewerThanNs: bigint | null;
}

/** Who may set what: owners only as root; the umask decides whether a created file already has its final mode. */
export interface MetaPolicy {
  chown: boolean;
  umask: number;
}

export type InstallResult =
  { installed: true } | { installed: false; reason: 'newer' | 'present' | 'source-changed' | 'failed'; msg: string };

const INSTALLED: InstallResult = { installed: true };
const NEWER: InstallResult = { installed: false, reason: 'newer', msg: 'modified after the snapshot' };
const PRESENT: InstallResult = { installed: false, reason: 'present', msg: 'appeared during the restore; left untouched' };

/** The addon's flags for an entry placed as `place` under `policy`. */
export function placeFlags(place: Placement, policy: MetaPolicy): number {
  let f = policy.chown ? F_CHOWN : 0;
  // Under umask 0 a file is created with its final permission bits: one chmod less per file.
  if (policy.umask === 0) f |= F_FINAL_MODE;
  if (!place.replace && !place.fresh) f |= F_NOCLOBBER;
  if (place.replace && place.keepNewerThanNs !== null) f |= F_KEEP_NEWER;
  // A directory this run created, or one whose listing showed no temp entry, holds no leftovers
  // of an earlier run (one planted since makes the create fail: EEXIST, never a clobber).
  if (!place.fresh && !place.clean) f |= F_CLEAR;
  return f;
}

function keepNs(place: Placement): bigint {
  return place.keepNewerThanNs ?? 0n;
}

/** An addon result as an install result: 'present' when no-clobber found the name taken, errors as `ECODE: step`. */
export function resultOf(r: StepResult, flags: number): InstallResult {
  if (r.errno === 0) return INSTALLED;
  if (r.step === 'newer') return NEWER;
  if (r.step === 'rename' && r.errno === EEXIST && flags & F_NOCLOBBER) return PRESENT;
  return { installed: false, reason: 'failed', msg: `${errnoName(r.errno)}: ${r.step || 'name'}` };
}

const EEXIST = 17;

/** One regular file of an install batch: its name, metadata, placement, and where its content lies in the batch's data. */
export interface FileInstall {
  name: string;
  meta: EntryMeta;
  place: Placement;
  offset: number;
  length: number;
}

/**
 * Installs regular files into one directory, one native call for the batch: per file, its
 * result. `data` holds every file's content (a shared buffer of decoded blobs is passed as is).
 */
export function installFiles(dirFd: number, files: readonly FileInstall[], data: Uint8Array, policy: MetaPolicy): InstallResult[] {
  const batch = new InstallBatch();
  const flags = files.map((f) => placeFlags(f.place, policy));
  files.forEach((f, i) =>
    batch.add(tempNameFor(f.name), f.name, f.offset, f.length, f.meta, flags[i], BigInt(f.meta.mtimeNs), keepNs(f.place)),
  );
  return batch.run(dirFd, data).map((r, i) => resultOf(r, flags[i]));
}

/** A regular file being written under its temp name, chunk by chunk (large files); content goes in order, hole-aware. */
export class TempFile {
  private pos = 0;

  private constructor(
    readonly dirFd: number,
    readonly name: string,
    readonly finalName: string,
    private readonly flags: number,
    private fd: number | null,
  ) {}

  static create(dirFd: number, finalName: string, mode: number, flags: number): TempFile {
    const tmp = tempNameFor(finalName);
    const fd = openTemp(dirFd, tmp, mode, flags);
    if (fd < 0) {
      const e = new Error(`${errnoName(-fd)}: open`) as NodeJS.ErrnoException;
      e.code = errnoName(-fd);
      throw e;
    }
    return new TempFile(dirFd, tmp, finalName, flags, fd);
  }

  write(data: Buffer): void {
    writeAt(this.fd!, data, this.pos);
    this.pos += data.length;
  }

  /** Final length (covers a trailing hole), owner, mode, times; closed; then into place. */
  seal(meta: EntryMeta, place: Placement): InstallResult {
    const fd = this.fd!;
    this.fd = null;
    const r = sealTemp(
      fd,
      this.dirFd,
      this.name,
      this.finalName,
      this.pos > SPARSE_BLOCK ? this.pos : -1,
      meta,
      this.flags,
      BigInt(meta.mtimeNs),
      keepNs(place),
    );
    return resultOf(r, this.flags);
  }

  /** Closes and removes the temp file (after a failure). */
  discard(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    unlinkAt(this.dirFd, this.name);
  }
}

function refusedAsNewer(dirFd: number, name: string, place: Placement): boolean {
  return place.replace && place.keepNewerThanNs !== null && modifiedAfter(lstatAt(dirFd, name), place.keepNewerThanNs);
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
  const t = TempFile.create(dirFd, name, meta.mode, placeFlags(place, policy));
  try {
    fill(t);
  } catch (e) {
    t.discard();
    throw e;
  }
  return t.seal(meta, place);
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
  const t = TempFile.create(dirFd, name, meta.mode, placeFlags(place, policy));
  try {
    await fill(t);
  } catch (e) {
    t.discard();
    throw e;
  }
  return t.seal(meta, place);
}

export type SpecialType = 'symlink' | 'fifo' | 'chardev' | 'blockdev';

const TYPE_BITS: Record<SpecialType, number> = { symlink: 0o120000, fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000 };

/** Creates a symlink, FIFO or device node under its temp name, sets its metadata, and puts it in place. */
export function installSpecial(
  dirFd: number,
  name: string,
  what: { type: SpecialType; linkTarget: string | null; rdev: number },
  meta: EntryMeta,
  policy: MetaPolicy,
  place: Placement,
): InstallResult {
  // Specials always get an explicit chmod (the pin in the addon); F_FINAL_MODE only concerns files.
  const flags = placeFlags(place, policy) | F_CLEAR;
  const m = { mode: TYPE_BITS[what.type] | (meta.mode & 0o7777), uid: meta.uid, gid: meta.gid };
  const r = installSpecialAt(
    dirFd,
    tempNameFor(name),
    name,
    what.linkTarget ?? '',
    what.rdev,
    m,
    flags,
    BigInt(meta.mtimeNs),
    keepNs(place),
  );
  return resultOf(r, flags);
}

/**
 * Links `name` to the inode the caller examined at `source` (its lstat `expect`): linked under
 * the temp name first, then proven to be that inode (a swap in between is undone), then put in place.
 */
export function installLink(
  source: { dirFd: number; name: string; expect: { ino: bigint; dev: bigint } },
  dirFd: number,
  name: string,
  place: Placement,
  policy: MetaPolicy = { chown: false, umask: 0 },
): InstallResult {
  const tmp = tempNameFor(name);
  unlinkAt(dirFd, tmp);
  const rc = linkAt(source.dirFd, source.name, dirFd, tmp);
  if (rc < 0) return { installed: false, reason: 'failed', msg: `${errnoName(-rc)}: link` };
  const linked = lstatAt(dirFd, tmp);
  if (!linked || linked.ino !== source.expect.ino || linked.dev !== source.expect.dev) {
    unlinkAt(dirFd, tmp);
    return { installed: false, reason: 'source-changed', msg: 'hardlink source changed during the restore' };
  }
  const flags = placeFlags(place, policy);
  return resultOf(placeTemp(dirFd, tmp, name, flags, keepNs(place)), flags);
}
