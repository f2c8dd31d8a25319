import * as fs from 'node:fs';

/**
 * The one compare rule: does a live file-system entry still match what a snapshot recorded?
 * Restore's classify (what to rewrite, what to re-own) and verify (what to report) both ask
 * here, so "same" means the same thing to both.
 */

/** What an lstat says an entry is (a hard link is a regular file to the file system). */
export type LiveType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev' | 'socket';

/** What the snapshot recorded of one entry, as the rule needs it. */
export interface Recorded {
  /** An entry type of the snapshot (src/repo/tree.ts EntryType); 'hardlink' is a regular file. */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time in nanoseconds since the epoch, as the snapshot recorded it (see sameMtime). */
  mtimeNs: bigint;
  /** A symlink's target (raw); null for everything else. */
  linkTarget: string | null;
  rdev: number;
  /** xxh64 hex of the content as the snapshot read it; null when it has none. */
  fingerprint: string | null;
}

/**
 * How a regular file's content is judged:
 * - 'stat': by size and mtime (a different mtime means the content may differ);
 * - 'checksum': by size, then the fingerprint; a different mtime is then metadata drift
 *   (verify --checksum: content proven equal, only the time moved);
 * - 'stat-then-checksum': by size and mtime, then the fingerprint when both match (restore
 *   --mode checksum: a file whose mtime moved is rewritten without being read first).
 * A record without a fingerprint is always judged by 'stat'.
 */
export type ContentRule = 'stat' | 'checksum' | 'stat-then-checksum';

export type MetaField = 'mtime' | 'mode' | 'owner';

export interface CompareOptions {
  content: ContentRule;
  /** Compare owners (a restore that cannot chown does not: it could not fix them). */
  owner: boolean;
  /** The live symlink's target (raw); called only for symlinks. */
  readLink: () => string;
  /** The live file's xxh64 fingerprint; called only when the content rule needs it. */
  fingerprint: () => string;
}

export type Verdict =
  | { kind: 'type'; live: LiveType; reason: string }
  | { kind: 'content'; reason: string }
  | { kind: 'metadata'; fields: MetaField[] }
  | { kind: 'same' };

const S_IFMT = 0o170000;
const LIVE_TYPES: Record<number, LiveType> = {
  0o100000: 'file',
  0o040000: 'dir',
  0o120000: 'symlink',
  0o010000: 'fifo',
  0o020000: 'chardev',
  0o060000: 'blockdev',
  0o140000: 'socket',
};

export function liveTypeOf(st: fs.BigIntStats): LiveType {
  return LIVE_TYPES[Number(st.mode) & S_IFMT] ?? 'socket';
}

/** Whether the live entry is of the recorded type (a recorded hardlink is a regular file). */
export function typeMatches(st: fs.BigIntStats, recordedType: string): boolean {
  return liveTypeOf(st) === (recordedType === 'hardlink' ? 'file' : recordedType);
}

/** lstat with exact (nanosecond) times; undefined when nothing is there. */
export function lstatExact(p: Buffer | string): fs.BigIntStats | undefined {
  return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
}

/**
 * The one mtime rule: equal to the nanosecond. A restore sets times through the native addon
 * (utimensat/futimens with nanoseconds), so a restored entry carries exactly the recorded time,
 * and any real change moves it. The live time comes from a BigInt lstat or the addon's scan
 * (a double mtimeMs is too coarse to compare).
 */
export function sameMtime(st: { mtimeNs: bigint }, recordedNs: bigint): boolean {
  return st.mtimeNs === recordedNs;
}

/**
 * The link-count rule: a live non-directory entry with more hard links than the snapshot
 * recorded is not the snapshot's inode. A customer who replaced a file by a link to one it
 * does not own (another account's upload, /etc/passwd) must not get that inode chowned,
 * chmod-ed, re-timed or linked to. `liveLinks` may count a link about to be added.
 */
export function tooManyLinks(liveLinks: number, recordedLinks: number): boolean {
  return liveLinks > Math.max(1, recordedLinks);
}

export function hasForeignLinks(st: fs.BigIntStats, recordedLinks: number): boolean {
  return !st.isDirectory() && tooManyLinks(Number(st.nlink), recordedLinks);
}

/** Metadata fields that differ, whatever the content: mtime, mode (not a symlink's: always 0777 on Linux), owner. */
export function metadataFields(rec: Recorded, st: fs.BigIntStats, owner: boolean): MetaField[] {
  const fields: MetaField[] = [];
  if (!sameMtime(st, rec.mtimeNs)) fields.push('mtime');
  if (rec.type !== 'symlink' && (Number(st.mode) & 0o7777) !== rec.mode) fields.push('mode');
  if (owner && (Number(st.uid) !== rec.uid || Number(st.gid) !== rec.gid)) fields.push('owner');
  return fields;
}

/** Why a regular file's content differs under `rule`, or null when it is the recorded content. */
function fileContentDiffers(rec: Recorded, st: fs.BigIntStats, o: CompareOptions): string | null {
  if (Number(st.size) !== rec.size) return `size: ${rec.size} in the snapshot, ${st.size} now`;
  const rule = rec.fingerprint === null ? 'stat' : o.content;
  if (rule !== 'checksum' && !sameMtime(st, rec.mtimeNs)) return 'mtime differs (size equal; use --checksum to compare content)';
  if (rule !== 'stat' && o.fingerprint() !== rec.fingerprint) return 'content differs (xxh64 fingerprint)';
  return null;
}

/** Compares one recorded entry with the live entry `st` at its place. */
export function compareEntry(rec: Recorded, st: fs.BigIntStats, o: CompareOptions): Verdict {
  const live = liveTypeOf(st);
  const want = rec.type === 'hardlink' ? 'file' : rec.type;
  if (live !== want) return { kind: 'type', live, reason: `type: ${rec.type} in the snapshot, ${live} now` };
  let differs: string | null = null;
  if (want === 'file') differs = fileContentDiffers(rec, st, o);
  else if (want === 'symlink' && o.readLink() !== rec.linkTarget) differs = 'symlink target differs';
  else if ((want === 'chardev' || want === 'blockdev') && Number(st.rdev) !== rec.rdev) differs = 'device number differs';
  if (differs !== null) return { kind: 'content', reason: differs };
  const fields = metadataFields(rec, st, o.owner);
  return fields.length ? { kind: 'metadata', fields } : { kind: 'same' };
}
