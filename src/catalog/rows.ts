import type { BlobId } from '../pack/blobid.js';
import { ENTRY_TYPES, type Entry, type EntryType } from '../repo/tree.js';
import { basename, fromBlob, type RawPath } from '../util/rawpath.js';

/**
 * The shapes the catalog hands out, and the conversions between them and SQLite rows. Shared
 * by the reader (which decodes rows) and the writer (which encodes entries).
 */

export interface SnapshotRow {
  seq: number;
  id: string;
  lineage: number;
  time: string;
  host: string;
  paths: RawPath[];
  tags: string[];
  tree: string;
  parent: string | null;
  record: Record<string, any>;
  /**
   * A snapshot of a host this catalog does not follow: its record only, no entries (issue 15,
   * catalog/remote.ts). Select it through api/snapshots.ts pickSnapshot, which imports its host.
   */
  remote?: boolean;
}

/** What a query needs to select the rows of one snapshot (see IN_SNAP). */
export type SnapshotKey = Pick<SnapshotRow, 'lineage' | 'seq'>;

export interface VersionRow extends Entry {
  versionId: number;
  pathId: number;
  path: RawPath;
}

/** One directory entry as listDirStat returns it. */
export interface DirStatRow {
  name: RawPath;
  versionId: number;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  nlink: number;
  rdev: number;
  target: RawPath | null;
}

export interface BlobLocationRow {
  pack: string;
  offset: number;
  length: number;
}

/** An entry as a restore needs it: no BigInts, the first blob's location joined in. */
export interface LightEntry {
  path: RawPath;
  type: EntryType;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  size: number;
  mtimeNs: string;
  target: RawPath | null;
  fp: string | null;
  content: BlobId[] | null;
  rdev: number;
  /** Link count recorded at snapshot time: a live file with more links is not the snapshot's file. */
  nlink: number;
  loc: BlobLocationRow | null;
}

export function lightFromVersion(v: VersionRow, loc: BlobLocationRow | null): LightEntry {
  return {
    path: v.path,
    type: v.type,
    mode: v.mode,
    uid: v.uid,
    gid: v.gid,
    user: v.user,
    group: v.group,
    size: v.size,
    mtimeNs: v.mtime.toString(),
    target: v.target,
    fp: v.fp,
    content: v.content,
    rdev: v.rdev,
    nlink: v.nlink,
    loc,
  };
}

// Nanosecond times (and some inode numbers) exceed 2^53: they are read as text and parsed to
// BigInt, which is far cheaper than safeIntegers() turning every integer column into a BigInt.
export const VCOLS = `v.id AS vid, v.path AS pid, p.path AS ppath, v.type, v.mode, v.uid, v.gid, v.uname, v.gname, v.size,
  CAST(v.mtime AS TEXT) AS mtime, CAST(v.ctime AS TEXT) AS ctime, CAST(v.ino AS TEXT) AS ino, CAST(v.dev AS TEXT) AS dev, v.nlink, v.rdev, v.target, v.fp, v.content, v.tree, v.flags, v.csizes`;

/**
 * A version row belongs to a snapshot when it is of the snapshot's lineage and valid at its seq:
 * from_seq <= seq <= to_seq, with to_seq NULL while the row is in the lineage's newest snapshot.
 */
export const IN_SNAP = `v.lineage = @lineage AND v.from_seq <= @seq AND (v.to_seq IS NULL OR v.to_seq >= @seq)`;

/** A file's blob ids, concatenated as 32-byte hashes in one BLOB column. */
export function contentToBlob(c: BlobId[] | null): Buffer | null {
  if (!c) return null;
  return Buffer.from(c.join(''), 'hex');
}

export function contentFromBlob(b: Buffer | null): BlobId[] | null {
  if (!b) return null;
  const hex = b.toString('hex');
  const out: BlobId[] = [];
  for (let i = 0; i < hex.length; i += 64) out.push(hex.slice(i, i + 64));
  return out;
}

/** Plain chunk sizes (Entry.chunkSizes) as 4-byte little-endian words in one BLOB column. */
export function sizesToBlob(s: number[] | undefined): Buffer | null {
  if (!s) return null;
  const b = Buffer.alloc(s.length * 4);
  for (let i = 0; i < s.length; i++) b.writeUInt32LE(s[i], i * 4);
  return b;
}

export function sizesFromBlob(b: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 4 <= b.length; i += 4) out.push(b.readUInt32LE(i));
  return out;
}

/** A row as VCOLS selects it. */
export interface VersionSqlRow {
  vid: number;
  pid: number;
  ppath: Buffer;
  type: number;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  mtime: string;
  ctime: string;
  ino: string;
  dev: string;
  nlink: number;
  rdev: number;
  target: Buffer | null;
  fp: Buffer | null;
  content: Buffer | null;
  tree: Buffer | null;
  flags: number;
  csizes: Buffer | null;
}

/** A row selected with VCOLS, as the entry it records. */
export function rowToVersion(r: VersionSqlRow): VersionRow {
  const p = fromBlob(r.ppath);
  return {
    versionId: Number(r.vid),
    pathId: Number(r.pid),
    path: p,
    name: basename(p),
    type: ENTRY_TYPES[Number(r.type)],
    mode: Number(r.mode),
    uid: Number(r.uid),
    gid: Number(r.gid),
    user: r.uname,
    group: r.gname,
    size: Number(r.size),
    mtime: BigInt(r.mtime),
    ctime: BigInt(r.ctime),
    ino: BigInt.asUintN(64, BigInt(r.ino)),
    dev: BigInt.asUintN(64, BigInt(r.dev)),
    nlink: Number(r.nlink),
    rdev: Number(r.rdev),
    target: r.target ? fromBlob(r.target) : null,
    fp: r.fp ? r.fp.toString('hex') : null,
    content: contentFromBlob(r.content),
    tree: r.tree ? r.tree.toString('hex') : null,
    flags: Number(r.flags),
    ...(r.csizes ? { chunkSizes: sizesFromBlob(r.csizes) } : {}),
  };
}

/** A row of the snapshots table (SELECT *). */
export interface SnapshotSqlRow {
  seq: number;
  id: string;
  lineage: number;
  state: string;
  pid: number | null;
  time: string;
  host: string;
  paths: string;
  tags: string;
  tree: string;
  parent: string | null;
  record: string | null;
}

export function rowToSnapshot(r: SnapshotSqlRow): SnapshotRow {
  return {
    seq: Number(r.seq),
    id: r.id,
    lineage: Number(r.lineage),
    time: r.time,
    host: r.host,
    paths: JSON.parse(r.paths),
    tags: JSON.parse(r.tags),
    tree: r.tree,
    parent: r.parent,
    record: r.record ? JSON.parse(r.record) : {},
  };
}
