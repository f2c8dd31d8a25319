import type { RepoContext } from '../catalog/context.js';
import type { BlobLocationRow, LightEntry, SnapshotRow } from '../catalog/catalog.js';
import type { WorkerPool } from '../livefs/pool.js';
import type { MetaPolicy, Placement } from '../livefs/install.js';
import { IdNames } from '../util/ids.js';
import { display, type RawPath } from '../util/rawpath.js';
import { relOf } from '../livefs/safepath.js';
import { CONTENT_NOT_READ } from '../catalog/reader.js';
import type { RestoreJournal } from './journal.js';
import type { RestoreOptions } from './options.js';
import type { RestorePlan } from './plan.js';
import type { ChunkRef, RestoreMode, WireEntry, WorkerReply, WorkerRequest } from './protocol.js';
import type { Scope } from './scope.js';
import type { Tally } from './tally.js';

/** What every phase of one restore run shares (the orchestrator, restorer.ts, builds it). */
export interface RestoreRun {
  readonly s: RepoContext;
  readonly o: RestoreOptions;
  readonly snap: SnapshotRow;
  readonly mode: RestoreMode;
  /** Where the snapshot's '/' lands: '/' in place, or the --target directory. */
  readonly targetRoot: RawPath;
  readonly scope: Scope;
  readonly tally: Tally;
  readonly plan: RestorePlan;
  readonly pool: WorkerPool<WorkerRequest, WorkerReply>;
  /** Journal of directories this thread creates (crash recovery); null in a dry run. */
  readonly journal: RestoreJournal | null;
  /** Workers read local packs themselves (see RestoreStrategy). */
  readonly direct: boolean;
  /** The snapshot time in ns: a live entry modified after it is the customer's. */
  readonly snapshotTimeNs: bigint;
  /** What files this thread writes may be: owners only as root, created under umask 0. */
  readonly policy: MetaPolicy;
  readonly ids: IdNames;
}

/** Entries are sent to workers in batches of this many (links, directory metadata). */
export const BATCH = 256;

export { relOf };

/** How this thread puts a file in place (the workers decide the same way). */
export function placementOf(run: RestoreRun, replace: boolean, fresh: boolean): Placement {
  return { replace, fresh, keepNewerThanNs: run.o.overwriteNewer ? null : run.snapshotTimeNs };
}

/** The wire form of an entry for a worker (orchestrator side). */
export function wire(run: RestoreRun, v: LightEntry, ancestor = false): WireEntry {
  return wireEntry(v, run.o.ownerByName ? run.ids : null, ancestor);
}

/** An entry as a worker compares and installs it; owner ids mapped through `byName` when given. */
export function wireEntry(v: LightEntry, byName: IdNames | null, ancestor = false): WireEntry {
  let uid = v.uid;
  let gid = v.gid;
  if (byName) {
    uid = byName.uidOf(v.user) ?? uid;
    gid = byName.gidOf(v.group) ?? gid;
  }
  return {
    rel: relOf(v.path),
    type: v.type,
    mode: v.mode,
    uid,
    gid,
    size: v.size,
    mtimeNs: v.mtimeNs,
    fingerprint: v.fp,
    linkTarget: v.target,
    rdev: v.rdev,
    nlink: v.nlink,
    hasContent: v.content !== null,
    ...(ancestor ? { ancestor: true } : {}),
  };
}

/** Refuses an entry whose blob ids were not read (a metadata-mode row): it would be written empty. */
export function contentWasRead(v: LightEntry): void {
  if (v.content === CONTENT_NOT_READ) throw new Error(`internal: the content of ${display(v.path)} was not read; nothing written`);
}

/**
 * Where a file's chunks lie, for the direct strategy (the first chunk's location comes joined
 * with the entry); null when the entry has no content or a chunk is not in the index.
 */
export function chunkRefs(
  v: LightEntry,
  first: BlobLocationRow | null | undefined,
  locate: (id: string) => BlobLocationRow | undefined,
): ChunkRef[] | null {
  if (!v.content || (v.type !== 'file' && v.type !== 'hardlink')) return null;
  contentWasRead(v);
  const out: ChunkRef[] = [];
  for (let i = 0; i < v.content.length; i++) {
    const loc = i === 0 && first ? first : locate(v.content[i]);
    if (!loc) return null;
    out.push({ pack: loc.pack, offset: loc.offset, length: loc.length, id: v.content[i] });
  }
  return out;
}
