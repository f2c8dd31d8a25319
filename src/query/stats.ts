import type { RepoContext } from '../catalog/context.js';
import { INDEX_PREFIX, PACK_PREFIX, SNAPSHOT_PREFIX } from '../pack/keys.js';

export interface RepoStats {
  snapshots: number;
  packs: number;
  pack_bytes: number;
  blobs: number;
  index_bytes: number;
  snapshot_bytes: number;
  catalog_bytes: number;
  /** Bytes of the files of all snapshots together, as a restore of each would write them. */
  logical_bytes: number;
  /** Bytes the repository stores for them: every pack (content and trees). */
  stored_bytes: number;
  /** logical_bytes / stored_bytes; null while nothing is stored. */
  dedup_ratio: number | null;
  latest?: { id: string; files: number; entries: number; bytes: number };
}

export async function repoStats(s: RepoContext): Promise<RepoStats> {
  let packs = 0,
    packBytes = 0,
    indexBytes = 0,
    snapshotBytes = 0;
  for await (const o of s.repo.store.list(PACK_PREFIX)) {
    packs++;
    packBytes += o.size;
  }
  for await (const o of s.repo.store.list(INDEX_PREFIX)) indexBytes += o.size;
  for await (const o of s.repo.store.list(SNAPSHOT_PREFIX)) snapshotBytes += o.size;
  const snaps = s.catalog.listSnapshots();
  const out: RepoStats = {
    snapshots: snaps.length,
    packs,
    pack_bytes: packBytes,
    blobs: s.catalog.countBlobs(),
    index_bytes: indexBytes,
    snapshot_bytes: snapshotBytes,
    catalog_bytes: s.catalog.sizeOnDisk(),
    logical_bytes: 0,
    stored_bytes: packBytes,
    dedup_ratio: null,
  };
  // Dedup is across snapshots: the newest one alone says nothing about what the others share.
  for (const snap of snaps) out.logical_bytes += s.catalog.countEntries(snap).bytes;
  if (packBytes > 0) out.dedup_ratio = out.logical_bytes / packBytes;
  const latest = snaps[snaps.length - 1];
  if (latest) {
    const c = s.catalog.countEntries(latest);
    out.latest = { id: latest.id, files: c.files, entries: c.entries, bytes: c.bytes };
  }
  return out;
}
