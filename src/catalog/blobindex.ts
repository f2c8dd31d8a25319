import type { BlobId } from '../pack/blobid.js';
import type { PackIndex } from '../pack/format.js';
import type { CatalogDb } from './db.js';
import type { BlobLocationRow } from './rows.js';

/** What the catalog holds for one pack, from its imported index. */
export interface PackContents {
  type: string;
  size: number;
  blobs: Map<BlobId, { offset: number; length: number }>;
}

/**
 * Where every blob lives: the packs the repository has (tables packs, blobs, blob_alt), as
 * imported from their index objects. A blob has one row in `blobs` (the copy readers use) and
 * any further copies in `blob_alt`, which take over when the first copy's pack goes away.
 */
export class BlobIndex {
  constructor(private readonly db: CatalogDb) {}

  hasBlob(id: BlobId): boolean {
    return this.db.st(`SELECT 1 FROM blobs WHERE hash=?`).get(Buffer.from(id, 'hex')) !== undefined;
  }

  blobLocation(id: BlobId): BlobLocationRow | undefined {
    return this.db
      .st(`SELECT p.hash AS pack, b.offset, b.length FROM blobs b JOIN packs p ON p.id=b.pack WHERE b.hash=?`)
      .get(Buffer.from(id, 'hex')) as BlobLocationRow | undefined;
  }

  hasPack(packId: string): boolean {
    return this.db.st(`SELECT 1 FROM packs WHERE hash=?`).get(packId) !== undefined;
  }

  addPackIndex(idx: PackIndex): void {
    this.db.atomic(() => {
      const r = this.db.st(`INSERT OR IGNORE INTO packs(hash, type, size) VALUES(?,?,?)`).run(idx.pack, idx.type, idx.size);
      const packRow = r.changes
        ? Number(r.lastInsertRowid)
        : (this.db.st(`SELECT id FROM packs WHERE hash=?`).get(idx.pack) as { id: number }).id;
      const ins = this.db.st(`INSERT OR IGNORE INTO blobs VALUES(?,?,?,?)`);
      const alt = this.db.st(`INSERT OR IGNORE INTO blob_alt VALUES(?,?,?,?)`);
      for (const b of idx.blobs) {
        const h = Buffer.from(b.id, 'hex');
        // A blob already known in another pack (a repack by prune, or two hosts storing the
        // same content) keeps this copy as an alternative, used when that other pack goes away.
        if (ins.run(h, packRow, b.offset, b.length).changes === 0) alt.run(h, packRow, b.offset, b.length);
      }
    });
  }

  packIds(): string[] {
    return (this.db.st(`SELECT hash FROM packs`).all() as { hash: string }[]).map((r) => r.hash);
  }

  removePack(packId: string): void {
    this.db.atomic(() => {
      const r = this.db.st(`SELECT id FROM packs WHERE hash=?`).get(packId) as { id: number } | undefined;
      if (!r) return;
      // Blobs of this pack that have a copy elsewhere move to it; the others are gone.
      this.db
        .st(
          `INSERT OR REPLACE INTO blobs SELECT a.hash, a.pack, a.offset, a.length FROM blob_alt a
        WHERE a.hash IN (SELECT hash FROM blobs WHERE pack=?) AND a.pack<>?
        AND a.pack = (SELECT min(a2.pack) FROM blob_alt a2 WHERE a2.hash=a.hash AND a2.pack<>?)`,
        )
        .run(r.id, r.id, r.id);
      this.db.st(`DELETE FROM blobs WHERE pack=?`).run(r.id);
      this.db.st(`DELETE FROM blob_alt WHERE pack=? OR hash IN (SELECT hash FROM blobs WHERE blobs.pack=blob_alt.pack)`).run(r.id);
      this.db.st(`DELETE FROM packs WHERE id=?`).run(r.id);
    });
  }

  countBlobs(): number {
    return (this.db.st(`SELECT count(*) AS n FROM blobs`).get() as { n: number }).n;
  }

  /**
   * What the catalog holds for one pack (from its imported index), blobs by id; undefined when
   * the pack is unknown. `check` compares it with the index object in the repository.
   */
  packContents(packId: string): PackContents | undefined {
    const p = this.db.st(`SELECT id, type, size FROM packs WHERE hash=?`).get(packId) as
      { id: number; type: string; size: number } | undefined;
    if (!p) return undefined;
    const blobs = new Map<BlobId, { offset: number; length: number }>();
    // A blob stored in several packs has one row in blobs and the others in blob_alt.
    for (const sql of [`SELECT hash, offset, length FROM blobs WHERE pack=?`, `SELECT hash, offset, length FROM blob_alt WHERE pack=?`]) {
      for (const r of this.db.st(sql).all(p.id) as { hash: Buffer; offset: number; length: number }[]) {
        blobs.set(r.hash.toString('hex'), { offset: r.offset, length: r.length });
      }
    }
    return { type: p.type, size: p.size, blobs };
  }

  /** [prune, issue 15] Every pack holding a copy of the blob (its row in blobs and in blob_alt). */
  blobHomes(id: BlobId): string[] {
    const h = Buffer.from(id, 'hex');
    const rows = this.db
      .st(
        `SELECT p.hash FROM blobs b JOIN packs p ON p.id=b.pack WHERE b.hash=?
         UNION SELECT p.hash FROM blob_alt a JOIN packs p ON p.id=a.pack WHERE a.hash=?`,
      )
      .all(h, h) as { hash: string }[];
    return rows.map((r) => r.hash);
  }

  /**
   * [prune, issue 15] Which of `ids` the open rows of a lineage reference (content or directory
   * tree): every row of its newest or pending snapshot, plus rows a pending snapshot is about to
   * close. A superset of what that snapshot references, which is all a caller that copies
   * blobs to keep them alive needs (one more copy is harmless). One pass over the lineage's rows.
   */
  lineageReferences(lineage: number, ids: Set<BlobId>): Set<BlobId> {
    const out = new Set<BlobId>();
    if (!ids.size) return out;
    const rows = this.db.st(`SELECT content, tree FROM versions WHERE lineage=? AND to_seq IS NULL`).iterate(lineage) as Iterable<{
      content: Buffer | null;
      tree: Buffer | null;
    }>;
    for (const r of rows) {
      if (r.tree) {
        const t = r.tree.toString('hex');
        if (ids.has(t)) out.add(t);
      }
      if (r.content)
        for (let i = 0; i + 32 <= r.content.length; i += 32) {
          const c = r.content.toString('hex', i, i + 32);
          if (ids.has(c)) out.add(c);
        }
    }
    return out;
  }

  /** Forgets every pack and blob (the start of a full rebuild). */
  clear(): void {
    this.db.atomic(() => this.db.exec(`DELETE FROM blobs; DELETE FROM blob_alt; DELETE FROM packs;`));
  }
}
