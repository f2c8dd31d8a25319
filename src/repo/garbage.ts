import type { Repository } from './repository.js';
import { GARBAGE_PREFIX, garbageKey, idOfKey } from '../pack/keys.js';
import { ObjectNotFoundError } from '../store/store.js';

/**
 * Garbage records (issue 15): prune's first phase writes the packs it found unreferenced (and
 * the old packs of a repack, whose live blobs it has already copied elsewhere) into a record
 * `garbage/<id>` instead of deleting them. A later prune deletes them once the grace period has
 * passed in the store's time, after deriving the references again from every snapshot record
 * then present. Snapshots treat blobs whose only homes are marked packs as absent and store
 * them again. The argument for why no referenced pack is ever deleted is in docs/FORMAT.md,
 * "Garbage and the two-phase prune". Records are sealed like snapshot records.
 */
export interface GarbageRecord {
  v: 1;
  /** Packs (index and pack object; or an orphan pack object without an index). */
  packs: string[];
  /**
   * When the packs were first marked, in the store's time (ISO). Absent in a record written by
   * a first mark: then the record object's own store time (LastModified) is the mark time. A
   * record rewritten with fewer packs carries the first record's mark time here.
   */
  marked?: string;
  /** The grace the marking prune asked for (ms); the deleting prune waits at least this long too. */
  grace_ms: number;
  /** Host that marked, for people. */
  host: string;
}

export interface StoredGarbage extends GarbageRecord {
  id: string;
  /** When the packs were marked, store time (ms since the epoch). */
  markedMs: number;
}

/** Writes a garbage record; the mark time is the record object's own store time unless `marked` is given. */
export async function saveGarbage(repo: Repository, rec: GarbageRecord): Promise<string> {
  // Mutable: a record is deleted once its packs are gone, so it must never carry Object Lock retention.
  return repo.putRecord(garbageKey, rec, { mutable: true });
}

/**
 * Every garbage record. A record that vanished between list and read (another prune finished
 * with it) is skipped; one that cannot be read fails the call: its packs' fate is unknown.
 */
export async function listGarbage(repo: Repository): Promise<StoredGarbage[]> {
  const out: StoredGarbage[] = [];
  for await (const o of repo.store.list(GARBAGE_PREFIX)) {
    const id = idOfKey(GARBAGE_PREFIX, o.key);
    let rec: GarbageRecord;
    try {
      rec = await repo.getRecord<GarbageRecord>(o.key);
    } catch (e) {
      if (e instanceof ObjectNotFoundError) continue;
      throw new Error(`garbage record ${id.slice(0, 12)} cannot be read: ${(e as Error).message}`, { cause: e });
    }
    if (rec.v !== 1 || !Array.isArray(rec.packs)) throw new Error(`garbage record ${id.slice(0, 12)} is not a garbage record`);
    const fromField = rec.marked ? Date.parse(rec.marked) : NaN;
    // Without a store time (a store that reports none), "now" at listing is the safe guess:
    // it only makes the grace longer.
    const markedMs = !Number.isNaN(fromField) ? fromField : (o.mtime?.getTime() ?? Date.now());
    out.push({ ...rec, id, markedMs });
  }
  return out;
}

/** Every marked pack id, with the earliest mark time of any record naming it. */
export function markedPacks(records: StoredGarbage[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) for (const p of r.packs) m.set(p, Math.min(m.get(p) ?? Infinity, r.markedMs));
  return m;
}

export async function deleteGarbage(repo: Repository, id: string): Promise<void> {
  await repo.store.delete(garbageKey(id), { mutable: true });
}
