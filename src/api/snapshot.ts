import { Snapshotter, type SnapshotOptions, type SnapshotResult } from '../snapshot/snapshotter.js';
import { syncCatalog } from '../catalog/sync.js';
import { ReuseGuard } from '../snapshot/reuseguard.js';
import { HashPool, type SpawnedReaders } from '../snapshot/hashpool.js';
import type { Session } from './session.js';
import { thisHost } from '../util/host.js';

export interface TakeSnapshotOptions extends SnapshotOptions {
  /** Named in the catalog lock, so a second writer's error says who holds it. */
  lockName?: string;
  /** Catalog sync and repair messages. */
  onLog?: (msg: string) => void;
}

/**
 * The one snapshot sequence, for `snapfill snapshot` and the scheduled run alike: the catalog
 * lock (one writer per machine), the shared repository lock (prune waits), a catalog sync under
 * that lock, blob locations refilled when packs vanished, then the snapshot itself.
 */
export async function takeSnapshot(s: Session, opts: TakeSnapshotOptions): Promise<SnapshotResult> {
  const { lockName = 'snapshot', onLog, ...snapshotOpts } = opts;
  s.lockCatalog(lockName);
  // The reader threads load now, while the key is derived (a session opened with deferUnlock,
  // issue 17); they get the key when the walk starts. Spawning writes nothing; the key is proven
  // before the marker (the first write), so a wrong password still writes nothing.
  const readers = HashPool.spawn();
  try {
    await s.repo.unlock();
    return await lockedSnapshot(s, snapshotOpts, readers, onLog);
  } finally {
    await readers.close(); // the snapshot closed them already, unless it failed before starting them
  }
}

async function lockedSnapshot(
  s: Session,
  snapshotOpts: SnapshotOptions,
  readers: SpawnedReaders,
  onLog?: (msg: string) => void,
): Promise<SnapshotResult> {
  // [prune, issue 15] The shared lock is the snapshot's MARKER: it does not stop prune; prune
  // keeps the packs it marks after this marker's creation until the marker goes.
  return s.withRepoLock('snapshot', false, async () => {
    // [prune, issue 15] Garbage records are read after the marker is written and BEFORE the sync
    // lists the pack indexes (docs/FORMAT.md, "Garbage and the two-phase prune": why this order).
    const guard = await ReuseGuard.start(s.repo, s.catalog);
    // Re-read the repository under the lock: a prune by another host between open and lock may
    // have removed packs, and dedup must only trust blobs that still exist.
    // The host recorded (--host) is followed: its earlier snapshots are this one's parents.
    // Lazy (issue 15): other hosts' small data packs are recorded by the blob filters their index
    // keys name; the snapshot reads one only when it is about to store a blob it may hold.
    await syncCatalog(s.repo, s.catalog, onLog, { follow: [snapshotOpts.host ?? thisHost()], lazyData: true });
    // Packs another host's prune removed take their rows with them; a blob with another copy
    // keeps it (blob_alt for this host's packs, its own compact rows for another host's).
    // [prune, issue 15] blobs only marked packs hold count as absent; re-checked before the record.
    await guard.prepare(onLog);
    const marker = s.heldLock;
    return new Snapshotter(s.repo, s.catalog, {
      ...snapshotOpts,
      guard,
      markerHealthy: () => marker?.healthy() ?? true,
      onLog,
      readers,
    }).run();
  });
}
