import type { BlobId } from '../pack/blobid.js';
import type { PackIndex } from '../pack/format.js';
import type { CatalogDb } from './db.js';
import type { BlobLocationRow } from './rows.js';

/** What the catalog holds for one pack, from its imported index. */

/** [issue 15] A data pack listed and not read: the blob filter its index key names, and that key. */
export interface UnreadPack {
  pack: string;
  filter: Buffer;
  key: string | null;
}

export interface PackContents {
  type: string;
  size: number;
  blobs: Map<BlobId, { offset: number; length: number }>;
}

/**
 * How addPackIndex stores a pack's blobs (issue 15, migration 4). 'near': rows in blobs and
 * blob_alt, indexed by pack (the packs this catalog writes, which its snapshots reference
 * most). 'far': compact rows (the packs a sync imports: other hosts' packs, or every pack of a
 * rebuilt catalog). A far DATA pack's rows (far_blobs) hold every blob's exact id and
 * location, so every question below has the same answer as for a near pack. A far TREE pack
 * has hints only (tree_hints: 8-byte id prefixes): its blobs count as absent (dedup stores a
 * directory again, prune's checks see no copy there: both the safe side) until an import that
 * needs one of its trees loads the pack as 'near' (catalog/sync.ts).
 */
export type PackForm = 'near' | 'far';

/** A pack index as the catalog takes it: `form` for a pack it does not know yet (default 'near'). */
export type PackIndexInput = PackIndex & { form?: PackForm };

const FAR_BLOB = `SELECT f.hash, p.hash AS pack, f.offset, f.length FROM far_blobs f JOIN packs p ON p.id=f.pack
  WHERE substr(f.hash, 1, 8)=? AND f.hash=?`;

/**
 * Where every blob lives: the packs the repository has (tables packs, blobs, blob_alt,
 * far_blobs), as imported from their index objects. A blob of a 'near' pack has one row in
 * `blobs` (the copy readers use) and any further copies in `blob_alt`, which take over when
 * the first copy's pack goes away; a blob of a 'far' pack has one row per copy in far_blobs,
 * looked up when `blobs` has none.
 */
export class BlobIndex {
  constructor(private readonly db: CatalogDb) {}

  hasBlob(id: BlobId): boolean {
    const h = Buffer.from(id, 'hex');
    if (this.db.st(`SELECT 1 FROM blobs WHERE hash=?`).get(h) !== undefined) return true;
    return this.db.st(FAR_BLOB).get(h.subarray(0, 8), h) !== undefined;
  }

  blobLocation(id: BlobId): BlobLocationRow | undefined {
    const h = Buffer.from(id, 'hex');
    const near = this.db.st(`SELECT p.hash AS pack, b.offset, b.length FROM blobs b JOIN packs p ON p.id=b.pack WHERE b.hash=?`).get(h) as
      BlobLocationRow | undefined;
    if (near) return near;
    const far = this.db.st(FAR_BLOB).get(h.subarray(0, 8), h) as (BlobLocationRow & { hash: Buffer }) | undefined;
    return far && { pack: far.pack, offset: far.offset, length: far.length };
  }

  hasPack(packId: string): boolean {
    return this.db.st(`SELECT 1 FROM packs WHERE hash=?`).get(packId) !== undefined;
  }

  /**
   * Adds a pack's blobs. A pack the catalog does not know yet is stored in `idx.form` (default
   * 'near'); one it knows keeps its form: 'near' rows are added where missing (a refill after
   * packs vanished), 'far' rows are never partly missing (a far pack's rows go with it).
   */
  addPackIndex(idx: PackIndexInput): void {
    this.db.atomic(() => {
      this.db.st(`DELETE FROM unread_packs WHERE hash=?`).run(idx.pack); // read now
      const known = this.db.st(`SELECT id, far FROM packs WHERE hash=?`).get(idx.pack) as { id: number; far: number } | undefined;
      if (known?.far) {
        if (idx.form !== 'near') return;
        // Loaded as near from now on (an import needs its trees): its compact rows go.
        this.dropFarRows(known.id);
        this.db.st(`UPDATE packs SET far=0, far_lo=NULL, far_hi=NULL WHERE id=?`).run(known.id);
      }
      if (!known && idx.form === 'far') return this.addFar(idx);
      const packRow = known
        ? known.id
        : Number(this.db.st(`INSERT INTO packs(hash, type, size) VALUES(?,?,?)`).run(idx.pack, idx.type, idx.size).lastInsertRowid);
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

  /**
   * A new pack as far rows: a data pack's blobs in far_blobs, ids far_lo..far_hi (consecutive:
   * the pack's rows are one range); a tree pack's 8-byte id prefixes in one tree_hints row.
   */
  private addFar(idx: PackIndex): void {
    if (idx.type === 'tree') {
      const packRow = Number(
        this.db.st(`INSERT INTO packs(hash, type, size, far) VALUES(?,?,?,2)`).run(idx.pack, idx.type, idx.size).lastInsertRowid,
      );
      const prefixes = Buffer.concat(idx.blobs.map((b) => Buffer.from(b.id.slice(0, 16), 'hex')));
      this.db.st(`INSERT OR REPLACE INTO tree_hints(pack, prefixes) VALUES(?,?)`).run(packRow, prefixes);
      return;
    }
    const lo = (this.db.st(`SELECT coalesce(max(id), 0) + 1 AS n FROM far_blobs`).get() as { n: number }).n;
    const hi = lo + idx.blobs.length - 1;
    const packRow = Number(
      this.db.st(`INSERT INTO packs(hash, type, size, far, far_lo, far_hi) VALUES(?,?,?,1,?,?)`).run(idx.pack, idx.type, idx.size, lo, hi)
        .lastInsertRowid,
    );
    const ins = this.db.st(`INSERT INTO far_blobs(id, hash, pack, offset, length) VALUES(?,?,?,?,?)`);
    idx.blobs.forEach((b, i) => ins.run(lo + i, Buffer.from(b.id, 'hex'), packRow, b.offset, b.length));
  }

  /** Deletes a far pack's rows (its range in far_blobs, or its tree_hints row). */
  private dropFarRows(packRow: number): void {
    const r = this.db.st(`SELECT far, far_lo, far_hi FROM packs WHERE id=?`).get(packRow) as
      { far: number; far_lo: number | null; far_hi: number | null } | undefined;
    if (r?.far === 2) this.db.st(`DELETE FROM tree_hints WHERE pack=?`).run(packRow);
    else if (r?.far === 1 && r.far_lo !== null && r.far_hi !== null)
      this.db.st(`DELETE FROM far_blobs WHERE id BETWEEN ? AND ?`).run(r.far_lo, r.far_hi);
  }

  /**
   * The far tree packs that may hold tree blob `id` (a hint matches its first 8 bytes):
   * candidates to load as 'near' when an import needs the tree. Never proof that it is there.
   * Scans every hint (8 bytes per tree blob of the packs concerned): only an import's misses ask.
   */
  treePackHints(id: BlobId): string[] {
    const want = Buffer.from(id.slice(0, 16), 'hex');
    const out: string[] = [];
    const rows = this.db.st(`SELECT p.hash, t.prefixes FROM tree_hints t JOIN packs p ON p.id=t.pack ORDER BY t.pack`).all() as {
      hash: string;
      prefixes: Buffer;
    }[];
    for (const r of rows) {
      for (let at = r.prefixes.indexOf(want); at >= 0; at = r.prefixes.indexOf(want, at + 1)) {
        if (at % 8 === 0) {
          out.push(r.hash);
          break;
        }
      }
    }
    return out;
  }

  /**
   * [issue 15] Records a data pack a lazy sync listed and did not read: only the blob filter its
   * index key names is known (pack/blobfilter.ts). Its blobs count as absent until it is read.
   */
  addUnreadPack(packId: string, filter: Buffer, key: string | null): void {
    this.db.st(`INSERT OR REPLACE INTO unread_packs(hash, filter, key) VALUES(?,?,?)`).run(packId, filter, key);
  }

  /** [issue 15] The packs listed but not read, with their blob filters and index keys (null: not recorded). */
  unreadPacks(): UnreadPack[] {
    return (this.db.st(`SELECT hash, filter, key FROM unread_packs`).all() as { hash: string; filter: Buffer; key: string | null }[]).map(
      (r) => ({ pack: r.hash, filter: r.filter, key: r.key }),
    );
  }

  /** [issue 15] Forgets an unread pack (gone from the repository). */
  removeUnreadPack(packId: string): void {
    this.db.st(`DELETE FROM unread_packs WHERE hash=?`).run(packId);
  }

  packIds(): string[] {
    return (this.db.st(`SELECT hash FROM packs`).all() as { hash: string }[]).map((r) => r.hash);
  }

  removePack(packId: string): void {
    this.db.atomic(() => {
      const r = this.db.st(`SELECT id, far, far_lo, far_hi FROM packs WHERE hash=?`).get(packId) as
        { id: number; far: number; far_lo: number | null; far_hi: number | null } | undefined;
      if (!r) return;
      if (r.far) {
        // Its rows are one range; other copies of its blobs keep their own rows.
        this.dropFarRows(r.id);
        this.db.st(`DELETE FROM packs WHERE id=?`).run(r.id);
        return;
      }
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

  /** Distinct blobs the catalog knows a home of. */
  countBlobs(): number {
    return (
      this.db
        .st(
          `SELECT (SELECT count(*) FROM blobs) + (SELECT count(DISTINCT f.hash) FROM far_blobs f
          WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.hash=f.hash)) AS n`,
        )
        .get() as { n: number }
    ).n;
  }

  /**
   * What the catalog holds for one pack (from its imported index), blobs by id; undefined when
   * the pack is unknown. `check` compares it with the index object in the repository.
   */
  packContents(packId: string): PackContents | undefined {
    const p = this.db.st(`SELECT id, type, size, far, far_lo, far_hi FROM packs WHERE hash=?`).get(packId) as
      { id: number; type: string; size: number; far: number; far_lo: number | null; far_hi: number | null } | undefined;
    // A far tree pack's blobs are not known (hints only): as for a pack the catalog lacks.
    if (!p || p.far === 2) return undefined;
    const blobs = new Map<BlobId, { offset: number; length: number }>();
    if (p.far) {
      const rows = this.db.st(`SELECT hash, offset, length FROM far_blobs WHERE id BETWEEN ? AND ?`).all(p.far_lo ?? 0, p.far_hi ?? -1) as {
        hash: Buffer;
        offset: number;
        length: number;
      }[];
      for (const r of rows) blobs.set(r.hash.toString('hex'), { offset: r.offset, length: r.length });
      return { type: p.type, size: p.size, blobs };
    }
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
         UNION SELECT p.hash FROM blob_alt a JOIN packs p ON p.id=a.pack WHERE a.hash=?
         UNION SELECT p.hash FROM far_blobs f JOIN packs p ON p.id=f.pack WHERE substr(f.hash, 1, 8)=? AND f.hash=?`,
      )
      .all(h, h, h.subarray(0, 8), h) as { hash: string }[];
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
    this.db.atomic(() =>
      this.db.exec(
        `DELETE FROM blobs; DELETE FROM blob_alt; DELETE FROM far_blobs; DELETE FROM tree_hints; DELETE FROM packs; DELETE FROM unread_packs;`,
      ),
    );
  }
}
