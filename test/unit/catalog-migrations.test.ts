import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/catalog/catalog.js';
import { CatalogReader } from '../../src/catalog/reader.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../src/catalog/migrations.js';
import { hex, REPO_ID, tempCatalogFile } from './catalog-fixture.js';

/**
 * The schema exactly as the releases before numbered migrations created it (they ran it on
 * every open and left user_version at 0). A copy, not an import: it is what is on disk.
 */
const OLD_SCHEMA = `
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

/** A catalog as the previous release left it: one committed snapshot with one file, its pack known. */
function oldCatalog(file: string, repoId = REPO_ID): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec(OLD_SCHEMA);
  db.prepare(`INSERT OR REPLACE INTO meta VALUES('repo_id', ?), ('schema', '1')`).run(repoId);
  db.exec(`INSERT INTO lineages(id, host, paths) VALUES(1, 'web1', '["/srv"]')`);
  db.prepare(
    `INSERT INTO snapshots(seq, id, lineage, state, pid, time, host, paths, tags, tree, parent, record)
    VALUES(1, ?, 1, 'committed', NULL, '2024-05-01T00:00:00Z', 'web1', '["/srv"]', '["daily"]', ?, NULL, '{"hostname":"web1"}')`,
  ).run(hex('5'), hex('6'));
  db.exec(`INSERT INTO paths(id, parent, name, path) VALUES(1, NULL, X'', X'2f'), (2, 1, CAST('srv' AS BLOB), CAST('/srv' AS BLOB)),
    (3, 2, CAST('f' AS BLOB), CAST('/srv/f' AS BLOB))`);
  const ins = db.prepare(`INSERT INTO versions(path, lineage, from_seq, to_seq, type, mode, uid, gid, uname, gname, size, mtime, ctime,
    ino, dev, nlink, rdev, target, fp, content, tree, flags) VALUES(?, 1, 1, NULL, ?, ?, 0, 0, 'root', 'root', ?, 1714521600123456789, 1714521600123456789,
    7, 8, 1, 0, NULL, ?, ?, ?, 0)`);
  ins.run(2, 1, 0o755, 0, null, null, Buffer.from(hex('6'), 'hex'));
  ins.run(3, 0, 0o644, 11, Buffer.from(hex('f', 16), 'hex'), Buffer.from(hex('c'), 'hex'), null);
  db.prepare(`INSERT INTO packs(id, hash, type, size) VALUES(1, ?, 'data', 4096)`).run(hex('9'));
  db.prepare(`INSERT INTO blobs VALUES(?, 1, 512, 11)`).run(Buffer.from(hex('c'), 'hex'));
  db.close();
}

const userVersion = (file: string): number => {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('user_version', { simple: true }) as number;
  } finally {
    db.close();
  }
};

describe('catalog schema migrations', () => {
  it('are numbered 1, 2, ... in order', () => {
    expect(MIGRATIONS.map((m) => m.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('a catalog of the previous release opens, upgrades and reads as before', () => {
    const file = tempCatalogFile();
    oldCatalog(file);
    expect(userVersion(file)).toBe(0);
    const cat = Catalog.open(file, REPO_ID);
    const [s] = cat.listSnapshots();
    expect(s).toMatchObject({ id: hex('5'), host: 'web1', paths: ['/srv'], tags: ['daily'], record: { hostname: 'web1' } });
    const f = cat.entry(s, '/srv/f')!;
    expect(f).toMatchObject({ type: 'file', size: 11, fp: hex('f', 16), content: [hex('c')], mtime: 1714521600123456789n });
    expect(cat.blobLocation(hex('c'))).toEqual({ pack: hex('9'), offset: 512, length: 11 });
    expect([...cat.walk(s)].map((v) => v.path)).toEqual(['/srv', '/srv/f']);
    expect(cat.getMeta('schema')).toBe(String(SCHEMA_VERSION));
    // It takes new snapshots on top of the old rows.
    const lineage = cat.lineageId('web1', ['/srv']);
    expect(lineage).toBe(1);
    const seq = cat.beginSnapshot(lineage, '2024-05-02T00:00:00Z', 'web1', ['/srv'], []);
    cat.commitSnapshot(seq, hex('4'), hex('6'), s.id, {});
    expect(cat.entry(cat.snapshotById(hex('4'))!, '/srv/f')!.versionId).toBe(f.versionId);
    cat.close();
    expect(userVersion(file)).toBe(SCHEMA_VERSION);
    // Opening again applies nothing twice.
    Catalog.open(file, REPO_ID).close();
    expect(userVersion(file)).toBe(SCHEMA_VERSION);
  });

  it('a new catalog starts at the latest schema version', () => {
    const file = tempCatalogFile();
    Catalog.open(file, REPO_ID).close();
    expect(userVersion(file)).toBe(SCHEMA_VERSION);
    const ro = CatalogReader.openReadOnly(file);
    expect(ro.listSnapshots()).toEqual([]);
    ro.close();
  });

  it('refuses a catalog of another repository, and one written by a newer schema', () => {
    const other = tempCatalogFile();
    oldCatalog(other, 'b'.repeat(64));
    expect(() => Catalog.open(other, REPO_ID)).toThrow(/belongs to repository b{64}/);
    const newer = tempCatalogFile();
    Catalog.open(newer, REPO_ID).close();
    const db = new Database(newer);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => Catalog.open(newer, REPO_ID)).toThrow(/newer than this snapfill reads/);
    expect(() => CatalogReader.openReadOnly(newer)).toThrow(/newer than this snapfill reads/);
  });
});
