import type { Catalog } from './catalog.js';
import { STAMP_WINDOW_MS } from '../repo/clock.js';
import { SYNC_FULL_AFTER_MS } from '../repo/deletions.js';

/**
 * Where a catalog's last sync left its listings (issue 15; docs/FORMAT.md "Catalog sync"): data
 * pack indexes and deletion records are named by store time, so a sync lists only those stamped
 * from a window before the newest it saw. Kept in the catalog's meta table, written last by a
 * sync that completed, so a crash never leaves a cursor ahead of what the catalog took in.
 */
export interface SyncCursor {
  v: 1;
  /** Newest data index stamp listed (store time, ms); null: none seen yet. */
  index_ms: number | null;
  /** Newest deletion record stamp listed; null: none seen yet. */
  deleted_ms: number | null;
  /** Deletion records (ids) already applied that the next listing returns again (within the window). */
  deleted_read: string[];
  /** This host's clock when the sync that wrote the cursor ran. */
  at_ms: number;
  /**
   * Whether the repository has snapshot records of the flat layout (older releases): a resumed
   * sync lists `snapshots/` one level deep only then (one request, one common prefix per host).
   */
  flat_records: boolean;
}

const META = 'sync_cursor';

function isStamp(v: unknown): v is number | null {
  return v === null || (typeof v === 'number' && Number.isFinite(v));
}

/**
 * The cursor to resume from, or null when this sync must list everything: none yet (a new or
 * rebuilt catalog, or one of an earlier release), unreadable, or written longer ago than deletion
 * records are kept (SYNC_FULL_AFTER_MS; or in the future: this host's clock went back), when the
 * records of what was deleted meanwhile may be gone.
 */
export function readSyncCursor(catalog: Catalog, nowMs = Date.now()): SyncCursor | null {
  let c: Partial<SyncCursor>;
  try {
    c = JSON.parse(catalog.getMeta(META) ?? 'null') as Partial<SyncCursor>;
  } catch {
    return null;
  }
  if (!c || c.v !== 1 || !isStamp(c.index_ms) || !isStamp(c.deleted_ms) || !Array.isArray(c.deleted_read)) return null;
  if (typeof c.flat_records !== 'boolean') return null;
  if (typeof c.at_ms !== 'number' || c.at_ms > nowMs || nowMs - c.at_ms > SYNC_FULL_AFTER_MS) return null;
  return c as SyncCursor;
}

/** Where a listing resumes: a window before the newest stamp seen (never after this host's now); 0 (everything) when none was seen. */
export function resumeFrom(newestMs: number | null, nowMs = Date.now()): number {
  return newestMs === null ? 0 : Math.max(0, Math.min(newestMs, nowMs) - STAMP_WINDOW_MS);
}

export function saveSyncCursor(catalog: Catalog, c: SyncCursor): void {
  catalog.setMeta(META, JSON.stringify(c));
}

/** Forgets the cursor: the next sync lists everything (a rebuild). */
export function clearSyncCursor(catalog: Catalog): void {
  catalog.setMeta(META, 'null');
}

/** The newer of two stamps (null: none). */
function newer(a: number | null, b: number | null): number | null {
  return a === null ? b : b === null ? a : Math.max(a, b);
}

/**
 * The cursor a completed sync leaves: the newest stamps it listed (or those of the cursor it
 * resumed from, when newer), the deletion records the next listing returns again (within its
 * window: not read again), and whether the flat record layout holds anything (as the last
 * listing of it found: `flatRecords` null when this sync did not list it).
 */
export function advanceSyncCursor(
  from: SyncCursor | null,
  listed: { indexNewestMs: number | null; deletions: { id: string; ms: number }[]; flatRecords: number | null },
): SyncCursor {
  const deleted_ms = listed.deletions.reduce((n, d) => newer(n, d.ms), from?.deleted_ms ?? null);
  const window = resumeFrom(deleted_ms);
  return {
    v: 1,
    index_ms: newer(from?.index_ms ?? null, listed.indexNewestMs),
    deleted_ms,
    deleted_read: listed.deletions.filter((d) => d.ms >= window).map((d) => d.id),
    at_ms: Date.now(),
    // Flat records appear only where a release before host tags writes one.
    flat_records: listed.flatRecords === null ? (from?.flat_records ?? true) : listed.flatRecords > 0,
  };
}
