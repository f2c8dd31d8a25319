import type Database from 'better-sqlite3';

/**
 * The catalog's schema, as numbered migrations. `PRAGMA user_version` holds the number of the
 * last one applied; opening a catalog applies the ones after it, each in its own transaction,
 * so a catalog of any earlier release opens and upgrades. To change the schema, append a
 * migration: never edit one that has shipped, since catalogs on disk already ran it.
 *
 * Entry versions are stored once and shared by every snapshot they appear in: a row is valid
 * for snapshots of its lineage (host + source paths) with from_seq <= seq <= to_seq, and
 * to_seq is NULL while the row is still in the lineage's newest snapshot. A snapshot of an
 * unchanged tree therefore writes no rows at all.
 */
export interface Migration {
  /** The user_version a catalog has once this migration ran. */
  version: number;
  what: string;
  up(db: Database.Database): void;
}

/**
 * Migration 1 is the schema of the releases before numbered migrations, exactly as they created
 * it. Their catalogs have user_version 0 and all of these tables already: every statement is
 * IF [NOT] EXISTS, so on such a file it only drops an index of still older releases.
 */
const SCHEMA_1 = `
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS packs(
  id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE, type TEXT NOT NULL, size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS blobs(
  hash BLOB PRIMARY KEY, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_pack ON blobs(pack);
CREATE TABLE IF NOT EXISTS blob_alt(
  hash BLOB NOT NULL, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, PRIMARY KEY(hash, pack)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blob_alt_pack ON blob_alt(pack);
CREATE TABLE IF NOT EXISTS lineages(id INTEGER PRIMARY KEY, host TEXT NOT NULL, paths TEXT NOT NULL, UNIQUE(host, paths));
CREATE TABLE IF NOT EXISTS snapshots(
  seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, lineage INTEGER NOT NULL, state TEXT NOT NULL,
  pid INTEGER, time TEXT NOT NULL, host TEXT NOT NULL, paths TEXT NOT NULL, tags TEXT NOT NULL,
  tree TEXT, parent TEXT, record TEXT);
CREATE TABLE IF NOT EXISTS paths(
  id INTEGER PRIMARY KEY, parent INTEGER, name BLOB NOT NULL, path BLOB NOT NULL UNIQUE);
CREATE INDEX IF NOT EXISTS paths_parent ON paths(parent, name);
CREATE TABLE IF NOT EXISTS versions(
  id INTEGER PRIMARY KEY, path INTEGER NOT NULL, lineage INTEGER NOT NULL,
  from_seq INTEGER NOT NULL, to_seq INTEGER,
  type INTEGER NOT NULL, mode INTEGER NOT NULL, uid INTEGER NOT NULL, gid INTEGER NOT NULL,
  uname TEXT NOT NULL, gname TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
  ino INTEGER NOT NULL, dev INTEGER NOT NULL, nlink INTEGER NOT NULL, rdev INTEGER NOT NULL,
  target BLOB, fp BLOB, content BLOB, tree BLOB, flags INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS versions_path ON versions(path, lineage, from_seq);
DROP INDEX IF EXISTS versions_open;
CREATE INDEX IF NOT EXISTS versions_from ON versions(lineage, from_seq);
CREATE TABLE IF NOT EXISTS dirstate(tree BLOB PRIMARY KEY, digest BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_close(seq INTEGER NOT NULL, version INTEGER NOT NULL, PRIMARY KEY(seq, version)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS damaged(
  seq INTEGER NOT NULL, path BLOB NOT NULL, dir BLOB NOT NULL, message TEXT NOT NULL, PRIMARY KEY(seq, path)) WITHOUT ROWID;
`;

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, what: 'the schema of the releases before numbered migrations', up: (db) => db.exec(SCHEMA_1) },
  // Content-defined chunks (issue 14) have sizes of their own: a ranged read (mount) needs each
  // chunk's plain size, 4 bytes little-endian per blob; NULL for fixed chunk_size chunks.
  { version: 2, what: 'plain sizes of content-defined chunks', up: (db) => db.exec(`ALTER TABLE versions ADD COLUMN csizes BLOB`) },
  // (3 is the prune helper's; 4 is issue 15's per-host catalog, numbered ahead of it.)
  // A fleet in one bucket (issue 15): a catalog imports the trees of the hosts it follows
  // (this host, and those a command asked for); of the other hosts' snapshots it keeps the
  // record only, so listing, forget and selection see them and their trees are fetched on demand.
  {
    version: 3,
    what: 'records of snapshots of hosts this catalog does not follow',
    up: (db) =>
      db.exec(`CREATE TABLE IF NOT EXISTS remote_snapshots(
        id TEXT PRIMARY KEY, host TEXT NOT NULL, time TEXT NOT NULL, record TEXT NOT NULL) WITHOUT ROWID`),
  },
  // Per-host cost (issue 15): packs a sync imports (written by other hosts, or before this
  // catalog existed) get compact rows instead of rows in blobs, blobs_pack and blob_alt, and
  // the rows of one pack are consecutive ids packs.far_lo..far_hi (a pack's rows are a range:
  // no index by pack is needed).
  // - packs.far = 1, a data pack: far_blobs holds one row per blob and copy (exact id, pack,
  //   offset, length), found through an index on the id's first 8 bytes (a lookup compares
  //   the full id in the row). Dedup, restores and prune's checks read these like blobs.
  // - packs.far = 2, a tree pack (other hosts' directories, needed only when a command asks
  //   for that host): tree_hints holds only its blobs' first 8 bytes, concatenated, to find
  //   the pack an import must load (catalog/sync.ts); a hint is never taken as the blob.
  // Packs this catalog wrote stay far = 0; catalogs of earlier releases keep their rows.
  {
    version: 4,
    what: 'compact blob rows for packs a sync imported',
    up: (db) =>
      db.exec(`ALTER TABLE packs ADD COLUMN far INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE packs ADD COLUMN far_lo INTEGER;
        ALTER TABLE packs ADD COLUMN far_hi INTEGER;
        CREATE TABLE IF NOT EXISTS far_blobs(
          id INTEGER PRIMARY KEY, hash BLOB NOT NULL, pack INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL);
        CREATE INDEX IF NOT EXISTS far_blobs_prefix ON far_blobs(substr(hash, 1, 8));
        CREATE TABLE IF NOT EXISTS tree_hints(pack INTEGER PRIMARY KEY, prefixes BLOB NOT NULL);`),
  },
  // Per-host cost (issue 15): a data pack of few blobs names a keyed filter of its blob ids in
  // its index key (pack/blobfilter.ts). A routine sync (a snapshot's, `catalog sync`) records
  // other hosts' such packs here without reading their indexes; a snapshot about to store a
  // blob a filter may hold reads that index then, and every other command's sync reads them
  // all first. A pack is here or in packs, never both.
  {
    version: 5,
    what: 'data packs listed but not read, with the blob filter their index key names',
    up: (db) => db.exec(`CREATE TABLE IF NOT EXISTS unread_packs(hash TEXT PRIMARY KEY, filter BLOB NOT NULL) WITHOUT ROWID`),
  },
  // Issue 15: data pack index keys are named by store time (index/t/<day>/<time>-<id>), and a
  // sync resumes its listing from a cursor, so a later process no longer lists an unread pack's
  // key: it is kept, to read the index without listing everything (NULL: rows of before).
  {
    version: 6,
    what: 'the index key of each unread data pack',
    up: (db) => db.exec(`ALTER TABLE unread_packs ADD COLUMN key TEXT`),
  },
  // Issue 17: a snapshot reads the parent's state of every directory it walks (tree and stat
  // digest). One lookup by path per directory was ~15% of a no-change snapshot's main thread;
  // this index of the open directory rows alone lets it read them all in one query.
  {
    version: 7,
    what: 'an index of the open directory rows of each lineage',
    up: (db) => db.exec(`CREATE INDEX IF NOT EXISTS versions_open_dirs ON versions(lineage, from_seq) WHERE type = 1 AND to_seq IS NULL`),
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

export function schemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings an open, writable catalog to SCHEMA_VERSION. Each step runs in an IMMEDIATE
 * transaction that re-reads the version first: two processes opening the same new catalog
 * apply each migration once, the second waiting (busy_timeout) and then finding it done.
 */
export function migrate(db: Database.Database, file: string): void {
  refuseNewer(db, file);
  for (const m of MIGRATIONS) {
    if (schemaVersion(db) >= m.version) continue;
    db.transaction(() => {
      if (schemaVersion(db) >= m.version) return;
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
}

/** A catalog written by a newer release may hold what this one cannot read correctly. */
export function refuseNewer(db: Database.Database, file: string): void {
  const have = schemaVersion(db);
  if (have > SCHEMA_VERSION) {
    throw new Error(
      `catalog ${file} has schema version ${have}, newer than this snapfill reads (${SCHEMA_VERSION}); upgrade snapfill or use another catalog file`,
    );
  }
}
