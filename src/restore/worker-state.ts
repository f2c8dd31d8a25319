import * as fs from 'node:fs';
import { threadId } from 'node:worker_threads';
import type { XXHashAPI } from 'xxhash-wasm';
import { xxh } from '../livefs/fingerprint.js';
import { SafeRoot, splitParent, UnsafePathError } from '../livefs/safepath.js';
import { joinWriteGate } from '../livefs/writegate.js';
import type { InstallResult, MetaPolicy, Placement } from '../livefs/install.js';
import type { WorkerInit } from './protocol.js';

/**
 * The state of one restore worker thread, shared by its classify and content halves: the
 * run's settings, the symlink-safe root, and what this thread created or wrote into.
 */
export const worker = {
  init: undefined as unknown as WorkerInit,
  root: undefined as unknown as SafeRoot,
  hasher: undefined as unknown as XXHashAPI,
  snapshotTimeNs: 0n,
  /** What files may be: owners only as root; umask 0 lets them be created with their final mode. */
  policy: { chown: false, umask: 0 } as MetaPolicy,
  /** Directories this batch created (reported back; their metadata is set at the end). */
  createdDirs: [] as string[],
  /** Existing directories this batch created, replaced or linked entries in: their times moved. */
  touchedDirs: new Set<string>(),
  /** Directories this worker created in this run: entries below them are known to be missing. */
  freshDirs: new Set<string>(),
  /** Passes the write gate (waiting until the run may write) and returns the blob key (livefs/writegate.ts). */
  blobKey: (() => null) as () => Uint8Array | null,
};

export async function startWorker(init: WorkerInit): Promise<void> {
  worker.init = init;
  worker.snapshotTimeNs = BigInt(init.snapshotTimeNs);
  worker.policy = { chown: init.chown, umask: init.umask };
  worker.blobKey = joinWriteGate(init.gate);
  // Opened at the first directory this worker creates, which is past the write gate: a run
  // stopped before it may write (a wrong password) leaves no journal behind.
  let journal: number | null = null;
  worker.root = new SafeRoot(
    init.root,
    (rel) => {
      worker.createdDirs.push(rel);
      worker.freshDirs.add(rel);
    },
    (rel) => {
      // Journaled before the directory exists: a killed run's re-run finds and finishes it.
      if (init.journalDir === null) return;
      worker.blobKey(); // the write gate: the journal is a write too
      journal ??= fs.openSync(`${init.journalDir}/worker-${process.pid}-${threadId}.log`, 'a', 0o600);
      fs.writeSync(journal, Buffer.from(rel, 'latin1').toString('base64') + '\n');
    },
  );
  worker.hasher = await xxh();
}

/** Starts a batch: what it creates and touches is reported with its reply. */
export function startBatch(): void {
  worker.createdDirs = [];
  worker.touchedDirs = new Set();
}

/** Dir fd of the parent of `rel`, creating missing parents when `create`. */
export function parentFd(rel: string, create: boolean): { fd: number | null; name: string } {
  const [parentRel, name] = splitParent(rel);
  return { fd: worker.root.dirFd(parentRel, create), name };
}

/**
 * Calls `fn(parentRel, i, j)` for each run of consecutive items in one directory (items
 * i..j-1): a batch in path order is worked a directory at a time, one native call per run.
 */
export function forRuns<T>(items: readonly T[], relOf: (x: T) => string, fn: (parentRel: string, i: number, j: number) => void): void {
  let i = 0;
  while (i < items.length) {
    const rel = relOf(items[i]);
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? '' : rel.slice(0, slash);
    let j = i + 1;
    for (; j < items.length; j++) {
      const r = relOf(items[j]);
      // Same directory: the same prefix, and no further slash after it.
      if (r.length <= slash + 1 || (slash >= 0 && (r.charCodeAt(slash) !== 47 || !r.startsWith(parent))) || r.indexOf('/', slash + 1) >= 0)
        break;
    }
    fn(parent, i, j);
    i = j;
  }
}

/** How an entry is put in place: replaced only when allowed, never over a newer one unless told. */
export function placement(replace: boolean, fresh = false, clean = false): Placement {
  return { replace, fresh, clean, keepNewerThanNs: worker.init.overwriteNewer ? null : worker.snapshotTimeNs };
}

/**
 * Notes that an install wrote into `rel`'s parent (a temp entry came and went even when the
 * final name was left alone), so its times are set back at the end, unless this run made it.
 */
export function installed(rel: string, r: InstallResult): InstallResult {
  const parentRel = splitParent(rel)[0];
  if ((r.installed || r.reason !== 'newer') && !worker.freshDirs.has(parentRel)) worker.touchedDirs.add(parentRel);
  return r;
}

export function errMsg(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof UnsafePathError) return err.message;
  return err.code ? `${err.code}: ${err.syscall ?? ''}`.trim() : String(err.message ?? e);
}
