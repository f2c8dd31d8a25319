import Database from 'better-sqlite3';
import * as fs from 'node:fs';
import { toBlob, fromBlob, type RawPath } from '../util/rawpath.js';
import type { LinkSource, WireEntry } from './protocol.js';

export interface ContentRow {
  id?: number;
  rel: RawPath;
  entry: WireEntry;
  blobs: string[];
  pack: string | null;
  off: number;
  len: number;
  replace: boolean;
  fresh: boolean;
}

export interface LinkRow {
  rel: RawPath;
  first: RawPath;
  entry: WireEntry;
  blobs: string[];
  replace: boolean;
  source: LinkSource;
}

/**
 * The restore plan lives in a scratch SQLite file, not in memory: a million pending writes
 * stay on disk and stream back ordered by pack and offset, so every pack is read once.
 */
export class RestorePlan {
  private readonly db: Database.Database;
  private readonly insContent: Database.Statement;
  private readonly insLink: Database.Statement;
  private readonly insDir: Database.Statement;
  private readonly insSurvivor: Database.Statement;
  private pending = 0;

  constructor(readonly file: string) {
    try {
      fs.rmSync(file, { force: true });
    } catch {
      /* fresh */
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = OFF');
    this.db.pragma('synchronous = OFF');
    this.db.exec(`
      CREATE TABLE content(id INTEGER PRIMARY KEY, pack TEXT, off INTEGER, len INTEGER, nblobs INTEGER, blobs TEXT, rel BLOB, e TEXT, replace INTEGER, fresh INTEGER);
      CREATE TABLE links(id INTEGER PRIMARY KEY, rel BLOB, first BLOB, e TEXT, blobs TEXT, replace INTEGER, source TEXT);
      CREATE TABLE survivors(first BLOB, rel BLOB, e TEXT);
      CREATE INDEX survivors_first ON survivors(first);
      CREATE TABLE dirs(rel BLOB PRIMARY KEY, e TEXT);
    `);
    this.insContent = this.db.prepare(
      `INSERT INTO content(pack, off, len, nblobs, blobs, rel, e, replace, fresh) VALUES(?,?,?,?,?,?,?,?,?)`,
    );
    this.insLink = this.db.prepare(`INSERT INTO links(rel, first, e, blobs, replace, source) VALUES(?,?,?,?,?,?)`);
    this.insSurvivor = this.db.prepare(`INSERT INTO survivors(first, rel, e) VALUES(?,?,?)`);
    this.insDir = this.db.prepare(`INSERT INTO dirs(rel, e) VALUES(?, ?) ON CONFLICT(rel) DO UPDATE SET e=coalesce(excluded.e, dirs.e)`);
    this.db.exec('BEGIN');
  }

  private tick(): void {
    if (++this.pending >= 5000) {
      this.db.exec('COMMIT; BEGIN');
      this.pending = 0;
    }
  }

  addContent(
    rel: RawPath,
    e: WireEntry,
    blobs: string[],
    loc: { pack: string; offset: number; length: number } | undefined,
    replace: boolean,
    fresh: boolean,
  ): void {
    this.insContent.run(
      loc?.pack ?? null,
      loc?.offset ?? 0,
      loc?.length ?? 0,
      blobs.length,
      blobs.join(','),
      toBlob(rel),
      JSON.stringify(e),
      replace ? 1 : 0,
      fresh ? 1 : 0,
    );
    this.tick();
  }

  addLink(rel: RawPath, first: RawPath, e: WireEntry, blobs: string[], replace: boolean, source: LinkSource): void {
    this.insLink.run(toBlob(rel), toBlob(first), JSON.stringify(e), blobs.join(','), replace ? 1 : 0, JSON.stringify(source));
    this.tick();
  }

  /** A hardlink name that is still present: a missing first name of its group may be linked to it. */
  addSurvivor(first: RawPath, rel: RawPath, e: WireEntry): void {
    this.insSurvivor.run(toBlob(first), toBlob(rel), JSON.stringify(e));
    this.tick();
  }

  /** Missing first names of hard-link groups (to be created, not replaced) that have a surviving name. */
  *groupFirstsWithSurvivor(): Iterable<{
    id: number;
    rel: RawPath;
    entry: WireEntry;
    replace: boolean;
    survivor: RawPath;
    survivorEntry: WireEntry;
  }> {
    for (const r of this
      .stream(`SELECT c.id, c.rel, c.e, c.replace, min(s.rel) AS srel, s.e AS se FROM content c JOIN survivors s ON s.first = c.rel
      WHERE c.replace = 0 AND json_extract(c.e, '$.nlink') > 1 GROUP BY c.id`)) {
      yield {
        id: r.id,
        rel: fromBlob(r.rel),
        entry: JSON.parse(r.e),
        replace: !!r.replace,
        survivor: fromBlob(r.srel),
        survivorEntry: JSON.parse(r.se),
      };
    }
  }

  /** A content row made unnecessary (its name was linked to a surviving name instead). */
  dropContent(id: number): void {
    this.db.prepare(`DELETE FROM content WHERE id=?`).run(id);
    this.tick();
  }

  /** A directory whose metadata is set at the end; `e` null = created on demand, look it up later. */
  addDir(rel: RawPath, e: WireEntry | null): void {
    this.insDir.run(toBlob(rel), e ? JSON.stringify(e) : null);
    this.tick();
  }

  private commit(): void {
    this.db.exec('COMMIT');
    this.pending = 0;
  }

  private *stream(sql: string): Iterable<any> {
    this.commit();
    try {
      yield* this.db.prepare(sql).iterate() as Iterable<any>;
    } finally {
      this.db.exec('BEGIN');
    }
  }

  /** Whole-blob files ordered by pack and offset; multi-chunk files come separately. */
  *singleBlobFiles(): Iterable<ContentRow> {
    for (const r of this.stream(`SELECT * FROM content WHERE nblobs=1 AND pack IS NOT NULL ORDER BY pack, off`)) yield toRow(r);
  }

  *otherFiles(): Iterable<ContentRow> {
    for (const r of this.stream(`SELECT * FROM content WHERE nblobs<>1 OR pack IS NULL ORDER BY rel`)) yield toRow(r);
  }

  *links(): Iterable<LinkRow> {
    for (const r of this.stream(`SELECT * FROM links ORDER BY id`)) {
      yield {
        rel: fromBlob(r.rel),
        first: fromBlob(r.first),
        entry: JSON.parse(r.e),
        blobs: r.blobs ? r.blobs.split(',') : [],
        replace: !!r.replace,
        source: JSON.parse(r.source),
      };
    }
  }

  /** Directories deepest first, so a parent's times are set after its children are done. */
  *dirsDeepestFirst(): Iterable<{ rel: RawPath; entry: WireEntry | null }> {
    for (const r of this.stream(`SELECT rel, e FROM dirs ORDER BY rel DESC`))
      yield { rel: fromBlob(r.rel), entry: r.e ? JSON.parse(r.e) : null };
  }

  counts(): { content: number; bytes: number; links: number; dirs: number } {
    this.commit();
    const c = this.db.prepare(`SELECT count(*) AS n, coalesce(sum(json_extract(e, '$.size')),0) AS b FROM content`).get() as {
      n: number;
      b: number;
    };
    const l = this.db.prepare(`SELECT count(*) AS n FROM links`).get() as { n: number };
    const d = this.db.prepare(`SELECT count(*) AS n FROM dirs`).get() as { n: number };
    this.db.exec('BEGIN');
    return { content: c.n, bytes: c.b, links: l.n, dirs: d.n };
  }

  close(): void {
    try {
      this.db.exec('COMMIT');
    } catch {
      /* none open */
    }
    this.db.close();
    fs.rmSync(this.file, { force: true });
  }
}

function toRow(r: any): ContentRow {
  return {
    id: r.id,
    rel: fromBlob(r.rel),
    entry: JSON.parse(r.e),
    blobs: r.blobs ? r.blobs.split(',') : [],
    pack: r.pack,
    off: r.off,
    len: r.len,
    replace: !!r.replace,
    fresh: !!r.fresh,
  };
}
