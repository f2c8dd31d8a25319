import * as fs from 'node:fs';
import { entryTypeOf, type EntryType } from '../repo/tree.js';

/**
 * Comparison of one snapshot entry with the live file-system entry at the same place.
 * Shared by the verify coordinator (root entries) and its worker threads (everything else).
 */
export interface SnapEntry {
  pathId: number;
  path: string; // raw
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time in whole microseconds (a safe JS number; see MTIME_TOLERANCE_US). */
  mtimeUs: number;
  target: string | null; // raw
  fp: string | null;
  rdev: number;
}

export type Finding =
  | { kind: 'missing' }
  | { kind: 'changed'; reason: string }
  | { kind: 'metadata'; fields: string[] }
  | { kind: 'ok' };

/**
 * Restore sets times through utimes(), whose seconds argument is a double: at today's epoch
 * that keeps ~0.25 µs; the live mtimeMs is a double too, and the snapshot time is compared in
 * whole microseconds. A difference below 2 µs is therefore "same time", not drift.
 */
const MTIME_TOLERANCE_US = 2;

/**
 * `fingerprint` is called only in checksum mode, only for a regular file whose size matches;
 * it returns the xxh64 hex of the live content (as the snapshotter computes it).
 */
export function compareEntry(
  s: SnapEntry, st: fs.Stats | undefined, livePath: Buffer, checksum: boolean,
  fingerprint: (p: Buffer) => string,
): Finding {
  if (!st) return { kind: 'missing' };
  const want: EntryType = s.type === 'hardlink' ? 'file' : s.type;
  const have = entryTypeOf(st);
  if (want !== have) return { kind: 'changed', reason: `type: ${s.type} in the snapshot, ${have} now` };
  const sameMtime = Math.abs(st.mtimeMs * 1000 - s.mtimeUs) < MTIME_TOLERANCE_US;
  const fields: string[] = [];
  if (want === 'file') {
    if (st.size !== s.size) return { kind: 'changed', reason: `size: ${s.size} in the snapshot, ${st.size} now` };
    if (checksum && s.fp !== null) {
      const fp = fingerprint(livePath);
      if (fp !== s.fp) return { kind: 'changed', reason: 'content differs (xxh64 fingerprint)' };
      if (!sameMtime) fields.push('mtime');
    } else if (!sameMtime) {
      return { kind: 'changed', reason: 'mtime differs (size equal; use --checksum to compare content)' };
    }
  } else if (want === 'symlink') {
    const t = fs.readlinkSync(livePath, { encoding: 'buffer' }).toString('latin1');
    if (t !== s.target) return { kind: 'changed', reason: 'symlink target differs' };
  } else if ((want === 'chardev' || want === 'blockdev') && st.rdev !== s.rdev) {
    return { kind: 'changed', reason: 'device number differs' };
  }
  // A symlink's own mode is always 0777 on Linux. A directory's mtime is restored (a restore that
  // wrote into it sets it back), so a difference is drift like any other.
  if (want === 'dir' && !sameMtime) fields.push('mtime');
  if (want !== 'symlink' && (st.mode & 0o7777) !== s.mode) fields.push('mode');
  if (st.uid !== s.uid || st.gid !== s.gid) fields.push('owner');
  if (fields.length) return { kind: 'metadata', fields };
  return { kind: 'ok' };
}

export function lstatOrUndefined(p: Buffer): fs.Stats | undefined {
  return fs.lstatSync(p, { throwIfNoEntry: false });
}
