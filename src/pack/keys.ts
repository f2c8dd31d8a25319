/**
 * Storage keys: the one place that knows how a repository lays its objects out in a store
 * (docs/FORMAT.md). Everything else asks here, so the layout can be read (and changed) in one file.
 *
 *   config                    the repository config
 *   data/<id[0:2]>/<id>       a pack (a tar archive of blobs)
 *   index/<id>                the index of data pack <id> (gzipped JSON); also of tree packs of
 *                             releases before tagged tree indexes (still read)
 *   index/<id>.<filter>       the same, for a data pack of few blobs: <filter> is a keyed filter
 *                             of its blob ids (pack/blobfilter.ts), read from the listing (issue 15)
 *   index/<tag>/<id>          the index of tree pack <id>, below the tag of the host whose
 *                             snapshot wrote it (issue 15: a routine sync lists only its hosts' tags)
 *   index/t/<day>/<time>-<id>[.<filter>]
 *                             the index of data pack <id>, named by the store time it was written
 *                             at, so a sync lists only what is new since its last one (issue 15)
 *   snapshots/<tag>/<id>      a snapshot record; <tag> names its host without revealing it (issue 15)
 *   snapshots/<id>            a snapshot record of releases before host tags (still read)
 *   locks/<id>                a repository lock (rewritten while held, deleted on release)
 *   keys/<id>                 a key object: the master key wrapped by one password (version 2)
 *   garbage/<id>              packs prune marked as garbage, deleted by a later prune (issue 15)
 *   deleted/<stamp>-<id>      packs a prune is deleting, named by store time: how a sync that
 *                             lists only what is new learns what went (issue 15)
 *   tmp/...                   probes (conditional-write support, the store's clock); never listed as data
 */
export const CONFIG_KEY = 'config';
export const PACK_PREFIX = 'data/';
export const INDEX_PREFIX = 'index/';
export const SNAPSHOT_PREFIX = 'snapshots/';
export const LOCK_PREFIX = 'locks/';
export const KEY_PREFIX = 'keys/';
export const GARBAGE_PREFIX = 'garbage/';
export const DELETED_PREFIX = 'deleted/';
/** Where data pack indexes named by their store time lie (issue 15: listed from a cursor). */
export const TIMED_INDEX_PREFIX = 'index/t/';
export const TMP_PREFIX = 'tmp/';

export function garbageKey(recordId: string): string {
  return GARBAGE_PREFIX + recordId;
}

export function keyObjectKey(keyId: string): string {
  return KEY_PREFIX + keyId;
}

export function packKey(packId: string): string {
  return `${PACK_PREFIX}${packId.slice(0, 2)}/${packId}`;
}

/**
 * A pack index's key: flat for data packs (every host reads them: dedup needs them) and for the
 * tree packs of older releases; below a host's tag (`hostTag`, 16 hex digits) for tree packs,
 * which only the commands that read that host's trees need.
 */
export function indexKey(packId: string, hostTag: string | null = null, filter: string | null = null): string {
  if (hostTag !== null) return `${INDEX_PREFIX}${hostTag}/${packId}`;
  return filter === null ? INDEX_PREFIX + packId : `${INDEX_PREFIX}${packId}.${filter}`;
}

/**
 * A store time as a key stamp: `YYYYMMDD/HHMMSS` (UTC) for data pack indexes (a folder a day, so
 * a local repository's folders stay few), `YYYYMMDDHHMMSS` for deletion records. Both sort as
 * the times do, which is what a listing from a cursor (`startAfter`) relies on.
 */
export function indexStamp(ms: number): string {
  const t = new Date(ms).toISOString(); // 2026-12-02T14:34:52.123Z
  return `${t.slice(0, 4)}${t.slice(5, 7)}${t.slice(8, 10)}/${t.slice(11, 13)}${t.slice(14, 16)}${t.slice(17, 19)}`;
}

export function deletionStamp(ms: number): string {
  return indexStamp(ms).replace('/', '');
}

/** The index key of a data pack written at store time `ms` (docs/FORMAT.md, "Pack index"). */
export function timedIndexKey(ms: number, packId: string, filter: string | null): string {
  return `${TIMED_INDEX_PREFIX}${indexStamp(ms)}-${packId}${filter === null ? '' : '.' + filter}`;
}

/** The key to list timed indexes after: every index stamped at or after `ms` sorts after it. */
export function timedIndexCursor(ms: number): string {
  return TIMED_INDEX_PREFIX + indexStamp(ms);
}

/** A deletion record's key: its store time, then its content id. */
export function deletionKey(ms: number, recordId: string): string {
  return `${DELETED_PREFIX}${deletionStamp(ms)}-${recordId}`;
}

/** The key to list deletion records after: every record stamped at or after `ms` sorts after it. */
export function deletionCursor(ms: number): string {
  return DELETED_PREFIX + deletionStamp(ms);
}

const STAMP = /^(\d{4})(\d{2})(\d{2})\/?(\d{2})(\d{2})(\d{2})$/;

/** The time (ms) a stamp names; NaN for text that is not one (also a month 13 or a 31 November). */
export function stampTime(stamp: string): number {
  const m = STAMP.exec(stamp);
  if (!m) return NaN;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return deletionStamp(ms) === stamp.replace('/', '') ? ms : NaN;
}

const DELETION = /^deleted\/(\d{14})-([0-9a-f]+)$/;

/** The stamp (ms) and record id of a listed `deleted/` key; null for a key of no such form. */
export function parseDeletionKey(key: string): { ms: number; id: string } | null {
  const m = DELETION.exec(key);
  if (!m) return null;
  const ms = stampTime(m[1]);
  return Number.isNaN(ms) ? null : { ms, id: m[2] };
}

/** The prefix below which the tree pack indexes of one host tag are stored. */
export function hostIndexPrefix(hostTag: string): string {
  return `${INDEX_PREFIX}${hostTag}/`;
}

const FLAT_INDEX = /^index\/([^/.]+)(?:\.([^/]*))?$/;
const TAGGED_INDEX = /^index\/([0-9a-f]{16})\/([^/]+)$/;
const TIMED_INDEX = /^index\/t\/(\d{8})\/(\d{6})-([^/.]+)(?:\.([^/]*))?$/;

/**
 * The pack id, host tag (null: flat or timed) and blob filter text (null: none) of a listed
 * `index/` key, and for a timed one its stamp (ms); null for a key of no such form (not an index:
 * ignored, as a stray object under `index/` always was).
 */
export function parseIndexKey(key: string): { id: string; hostTag: string | null; filter: string | null; stampMs?: number } | null {
  const flat = FLAT_INDEX.exec(key);
  if (flat) return { id: flat[1], hostTag: null, filter: flat[2] ?? null };
  const timed = TIMED_INDEX.exec(key);
  if (timed) {
    const stampMs = stampTime(`${timed[1]}${timed[2]}`);
    return Number.isNaN(stampMs) ? null : { id: timed[3], hostTag: null, filter: timed[4] ?? null, stampMs };
  }
  const tagged = TAGGED_INDEX.exec(key);
  return tagged ? { id: tagged[2], hostTag: tagged[1], filter: null } : null;
}

/**
 * A snapshot record's key: below its host's tag (`hostTag`, 16 hex digits), or flat (the layout
 * of releases before issue 15, still read; `hostTag` null).
 */
export function snapshotKey(snapshotId: string, hostTag: string | null = null): string {
  return hostTag === null ? SNAPSHOT_PREFIX + snapshotId : `${SNAPSHOT_PREFIX}${hostTag}/${snapshotId}`;
}

/** The prefix below which one host's records are stored (listed by a catalog sync that follows it). */
export function hostSnapshotPrefix(hostTag: string): string {
  return `${SNAPSHOT_PREFIX}${hostTag}/`;
}

const FLAT_SNAPSHOT = /^snapshots\/([^/]+)$/;
const TAGGED_SNAPSHOT = /^snapshots\/([0-9a-f]{16})\/([^/]+)$/;

/**
 * The snapshot id and host tag (null: the flat layout) of a listed `snapshots/` key; null for a
 * key of neither form (not a record: ignored). An id that is not the hash of the object's bytes
 * fails when the record is read (check reports it).
 */
export function parseSnapshotKey(key: string): { id: string; hostTag: string | null } | null {
  const flat = FLAT_SNAPSHOT.exec(key);
  if (flat) return { id: flat[1], hostTag: null };
  const tagged = TAGGED_SNAPSHOT.exec(key);
  return tagged ? { id: tagged[2], hostTag: tagged[1] } : null;
}

export function lockKey(lockId: string): string {
  return LOCK_PREFIX + lockId;
}

/** The pack id a listed `data/..` key names (its last path component). */
export function packIdOfKey(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** The id a listed key names below a flat prefix (`index/`, `snapshots/`, `locks/`, `garbage/`). */
export function idOfKey(prefix: string, key: string): string {
  return key.slice(prefix.length);
}
