import * as os from 'node:os';
import type { Catalog, SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { lstatExact } from '../livefs/compare.js';
import { xxh } from '../livefs/fingerprint.js';
import { runDirTasks } from '../livefs/dirtasks.js';
import { WorkerPool } from '../livefs/pool.js';
import { display, isUnder, type RawPath } from '../util/rawpath.js';
import { recordedExcludes } from '../util/snapshotrules.js';
import { workerUrl } from '../util/workerurl.js';
import { judge } from './judge.js';
import {
  emptyBatch,
  type DirTask,
  type VerifyBatchResult,
  type VerifyEntry,
  type VerifyReply,
  type VerifyRequest,
  type VerifyWorkerInit,
} from './protocol.js';

export type { DirTask, VerifyBatchResult, VerifyWorkerInit } from './protocol.js';

/**
 * `verify`: compares the live tree with a snapshot, read-only. Reports entries that are
 * missing, whose content differs (size/mtime, or the xxh64 fingerprint with `checksum`), whose
 * metadata drifted (mode, owner, and mtime when content is proven equal), and live entries the
 * snapshot does not have (`extra`; below an extra directory only the directory is named). What
 * the snapshot's own rules left out (its excludes, paths outside its sources) is never extra.
 *
 * Work is split by directory over worker threads doing synchronous syscalls; each directory
 * costs one indexed catalog query, one readdir and one lstat per entry (what `find` costs).
 */
export interface VerifyOptions {
  /** Raw absolute paths inside the snapshot; default: the snapshot's source paths. */
  paths?: RawPath[];
  /** Compare against `target + path` instead of the original location. */
  target?: RawPath;
  checksum?: boolean;
  threads?: number;
  onProgress?: (checked: number) => void;
}

export interface VerifyResult {
  ok: boolean;
  snapshot_id: string;
  checked: number;
  missing: number;
  changed: number;
  metadata_mismatch: number;
  extra: number;
  missing_paths: string[];
  changed_paths: { path: string; reason: string }[];
  metadata_mismatch_paths: { path: string; fields: string[] }[];
  extra_paths: string[];
  errors: { path: string; message: string }[];
}

export async function verifySnapshot(catalog: Catalog, snap: SnapshotRow, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const target = opts.target && opts.target !== '/' ? opts.target.replace(/\/+$/, '') : '';
  const acc = emptyBatch();
  const roots = opts.paths?.length ? opts.paths : snap.paths;
  const queue: DirTask[] = [];
  const hasher = opts.checksum ? await xxh() : null;
  for (const root of dropNested(roots)) {
    // (issue 11) What the snapshot lost or refused here cannot be compared: named as errors.
    for (const d of catalog.damagedUnder(snap, root)) acc.errors.push({ path: d.path, message: d.message });
    const v = catalog.entry(snap, root);
    if (!v) {
      acc.errors.push({ path: root, message: `not in snapshot ${snap.id.slice(0, 8)}` });
      continue;
    }
    const lp = Buffer.from(target + root, 'latin1');
    acc.checked++;
    let isDir = false;
    try {
      const st = lstatExact(lp);
      isDir = !!st?.isDirectory();
      const f = judge(rootEntry(v), st, lp, hasher);
      if (f.kind === 'missing') acc.missing.push(root);
      else if (f.kind === 'changed') acc.changed.push({ path: root, reason: f.reason });
      else if (f.kind === 'metadata') acc.metadata.push({ path: root, fields: f.fields });
    } catch (err) {
      acc.errors.push({ path: root, message: `cannot compare: ${(err as Error).message}` });
    }
    if (v.type === 'dir') {
      if (isDir) queue.push({ id: v.pathId, path: root });
      else
        for (const d of catalog.walk(snap, root))
          if (d.path !== root) {
            acc.missing.push(d.path);
            acc.checked++;
          }
    }
  }
  if (queue.length) {
    catalog.flush(); // workers read the catalog file through their own connections
    await runWorkers(
      queue,
      acc,
      {
        catalogFile: catalog.file,
        lineage: snap.lineage,
        seq: snap.seq,
        target,
        checksum: !!opts.checksum,
        sources: snap.paths,
        excludes: recordedExcludes(snap.record),
      },
      opts.threads ?? defaultThreads(),
      opts.onProgress,
    );
  }
  return report(snap, acc);
}

function rootEntry(v: VersionRow): VerifyEntry {
  return {
    pathId: v.pathId,
    path: v.path,
    type: v.type,
    mode: v.mode,
    uid: v.uid,
    gid: v.gid,
    size: v.size,
    mtimeNs: v.mtime,
    linkTarget: v.type === 'symlink' ? v.target : null,
    linkFirst: v.type === 'hardlink' ? v.target : null,
    fingerprint: v.fp,
    rdev: v.rdev,
  };
}

function report(snap: SnapshotRow, acc: VerifyBatchResult): VerifyResult {
  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  acc.missing.sort();
  acc.extra.sort();
  acc.changed.sort(byPath);
  acc.metadata.sort(byPath);
  const problems = acc.missing.length + acc.changed.length + acc.metadata.length + acc.extra.length + acc.errors.length;
  return {
    ok: problems === 0,
    snapshot_id: snap.id,
    checked: acc.checked,
    missing: acc.missing.length,
    changed: acc.changed.length,
    metadata_mismatch: acc.metadata.length,
    extra: acc.extra.length,
    missing_paths: acc.missing.map(display),
    changed_paths: acc.changed.map((c) => ({ path: display(c.path), reason: c.reason })),
    metadata_mismatch_paths: acc.metadata.map((m) => ({ path: display(m.path), fields: m.fields })),
    extra_paths: acc.extra.map(display),
    errors: acc.errors.map((e) => ({ path: display(e.path), message: e.message })),
  };
}

/** The same default as restore (src/restore/restorer.ts): 2-4 threads by CPU count. */
function defaultThreads(): number {
  return Math.min(4, Math.max(2, os.availableParallelism()));
}

function dropNested(paths: RawPath[]): RawPath[] {
  const sorted = [...new Set(paths)].sort();
  return sorted.filter((p) => !sorted.some((q) => q !== p && isUnder(p, q)));
}

function merge(acc: VerifyBatchResult, m: VerifyBatchResult, queue: DirTask[]): void {
  acc.checked += m.checked;
  for (const x of m.missing) acc.missing.push(x);
  for (const x of m.changed) acc.changed.push(x);
  for (const x of m.metadata) acc.metadata.push(x);
  for (const x of m.extra) acc.extra.push(x);
  for (const x of m.errors) acc.errors.push(x);
  for (const x of m.more) queue.push(x);
}

/** Verify's directories over its worker threads (livefs/dirtasks.ts). */
async function runWorkers(
  queue: DirTask[],
  acc: VerifyBatchResult,
  init: VerifyWorkerInit,
  n: number,
  onProgress?: (checked: number) => void,
): Promise<void> {
  const pool = await WorkerPool.start<VerifyRequest, VerifyReply>(workerUrl(import.meta.url, 'worker.js'), n, init, {
    depth: 1,
    label: 'verify worker',
  });
  try {
    await runDirTasks(
      pool,
      queue,
      (dirs) => ({ dirs }),
      (m, q) => {
        merge(acc, m, q);
        onProgress?.(acc.checked);
      },
    );
  } finally {
    await pool.close();
  }
}
