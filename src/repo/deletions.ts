import type { Repository } from './repository.js';
import { DELETED_PREFIX, deletionCursor, deletionKey, parseDeletionKey } from '../pack/keys.js';
import { ObjectNotFoundError } from '../store/store.js';
import { thisHost } from '../util/host.js';

/**
 * Deletion records (issue 15): before a prune deletes packs, it writes `deleted/<stamp>-<id>`
 * naming them, stamped with the store's time. A catalog sync that lists only the indexes new
 * since its last one (a cursor, docs/FORMAT.md "Catalog sync") no longer sees a pack vanish from
 * a full listing; it learns what went from these records instead, listed from a cursor too.
 * Records are kept DELETION_RETENTION_MS (store time); a catalog whose last sync is older than
 * SYNC_FULL_AFTER_MS lists everything again instead of trusting the records it may have missed.
 */
export interface DeletionRecord {
  v: 1;
  /** Packs whose index and pack object are being deleted. */
  packs: string[];
  /** Host that deleted, for people. */
  host: string;
}

/** How long prune keeps a deletion record (store time since its stamp). */
export const DELETION_RETENTION_MS = 14 * 86_400_000;

/** A catalog whose last sync is older than this (its host's clock) syncs with a full listing. */
export const SYNC_FULL_AFTER_MS = DELETION_RETENTION_MS - 86_400_000;

export interface ListedDeletion {
  key: string;
  id: string;
  /** The record's stamp (store time, ms). */
  ms: number;
}

/**
 * Writes the record naming `packs`, stamped with the store's time now (Repository.putStamped).
 */
export async function saveDeletionRecord(repo: Repository, packs: string[]): Promise<void> {
  const rec: DeletionRecord = { v: 1, packs, host: thisHost() };
  // Mutable: deleted after DELETION_RETENTION_MS, so never under Object Lock retention.
  await repo.putStamped(async (ms) => {
    await repo.putRecord((id) => deletionKey(ms, id), rec, { mutable: true });
  });
}

/** Deletion records stamped at or after `since` (every one when null), oldest first. */
export async function listDeletionRecords(repo: Repository, since: number | null): Promise<ListedDeletion[]> {
  const out: ListedDeletion[] = [];
  const opts = since === null ? {} : { startAfter: deletionCursor(since) };
  for await (const o of repo.store.list(DELETED_PREFIX, opts)) {
    const k = parseDeletionKey(o.key);
    if (k) out.push({ key: o.key, ...k });
  }
  return out;
}

/**
 * The packs a record names; [] when it vanished meanwhile (expired: a sync that could have
 * needed it lists everything). Throws when it cannot be read or is not a deletion record.
 */
export async function readDeletionRecord(repo: Repository, d: ListedDeletion): Promise<string[]> {
  let rec: DeletionRecord;
  try {
    rec = await repo.getRecord<DeletionRecord>(d.key);
  } catch (e) {
    if (e instanceof ObjectNotFoundError) return [];
    throw new Error(`deletion record ${d.key} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  if (rec?.v !== 1 || !Array.isArray(rec.packs) || rec.packs.some((p) => typeof p !== 'string'))
    throw new Error(`deletion record ${d.key} is not a deletion record`);
  return rec.packs;
}

/** Deletes the records stamped more than DELETION_RETENTION_MS before `nowMs` (store time); returns how many. */
export async function expireDeletionRecords(repo: Repository, nowMs: number): Promise<number> {
  let n = 0;
  for (const d of await listDeletionRecords(repo, null)) {
    if (d.ms > nowMs - DELETION_RETENTION_MS) continue;
    await repo.store.delete(d.key, { mutable: true });
    n++;
  }
  return n;
}
