import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Catalog, SnapshotRow } from '../catalog/catalog.js';
import { xxh, fpHex } from '../livefs/fingerprint.js';
import { display, isUnder, type RawPath } from '../util/rawpath.js';
import { compareEntry, lstatOrUndefined, type SnapEntry } from '../livefs/compare.js';
import * as fs from 'node:fs';

/**
 * `verify`: compares the live tree with a snapshot, read-only. Reports entries that are
 * missing, whose content differs (size/mtime, or the xxh64 fingerprint with `checksum`), whose
 * metadata drifted (mode, owner, and mtime when content is proven equal), and live entries the
 * snapshot does not have (`extra`; below an extra directory only the directory is named).
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

export interface DirTask {
  id: number;
  path: RawPath;
}

export interface VerifyBatchResult {
  checked: number;
  missing: RawPath[];
  changed: { path: RawPath; reason: string }[];
  metadata: { path: RawPath; fields: string[] }[];
  extra: RawPath[];
  errors: { path: RawPath; message: string }[];
  more: DirTask[];
}

export interface VerifyWorkerInit {
  catalogFile: string;
  lineage: number;
  seq: number;
  target: RawPath;
  checksum: boolean;
}

export async function verifySnapshot(catalog: Catalog, snap: SnapshotRow, opts: VerifyOptions = {}): Promise<VerifyResult> {
  const target = opts.target && opts.target !== '/' ? opts.target.replace(/\/+$/, '') : '';
  const acc: VerifyBatchResult = { checked: 0, missing: [], changed: [], metadata: [], extra: [], errors: [], more: [] };
  const roots = opts.paths?.length ? opts.paths : snap.paths;
  const queue: DirTask[] = [];
  const hasher = opts.checksum ? await xxh() : null;
  const fingerprint = (p: Buffer) => {
    const h = hasher!.create64();
    h.update(fs.readFileSync(p));
    return fpHex(h.digest());
  };

  for (const root of dropNested(roots)) {
    // (issue 11) What the snapshot lost or refused here cannot be compared: named as errors.
    for (const d of catalog.damagedUnder(snap, root)) acc.errors.push({ path: d.path, message: d.message });
    const v = catalog.entry(snap, root);
    if (!v) {
      acc.errors.push({ path: root, message: `not in snapshot ${snap.id.slice(0, 8)}` });
      continue;
    }
    const e: SnapEntry = {
      pathId: v.pathId, path: v.path, type: v.type, mode: v.mode, uid: v.uid, gid: v.gid, size: v.size,
      mtimeUs: Number(v.mtime / 1000n), target: v.target, fp: v.fp, rdev: v.rdev,
    };
    const lp = Buffer.from(target + root, 'latin1');
    acc.checked++;
    let st: fs.Stats | undefined;
    try {
      st = lstatOrUndefined(lp);
      const f = compareEntry(e, st, lp, !!opts.checksum, fingerprint);
      if (f.kind === 'missing') acc.missing.push(root);
      else if (f.kind === 'changed') acc.changed.push({ path: root, reason: f.reason });
      else if (f.kind === 'metadata') acc.metadata.push({ path: root, fields: f.fields });
    } catch (err) {
      acc.errors.push({ path: root, message: `cannot compare: ${(err as Error).message}` });
    }
    if (v.type === 'dir') {
      if (st?.isDirectory()) queue.push({ id: v.pathId, path: root });
      else for (const d of catalog.walk(snap, root)) if (d.path !== root) { acc.missing.push(d.path); acc.checked++; }
    }
  }

  if (queue.length) {
    catalog.flush(); // workers read the catalog file through their own connections
    await runWorkers(queue, acc, {
      catalogFile: catalog.file, lineage: snap.lineage, seq: snap.seq, target, checksum: !!opts.checksum,
    }, opts.threads ?? defaultThreads(), opts.onProgress);
  }

  const byPath = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  acc.missing.sort();
  acc.extra.sort();
  acc.changed.sort(byPath);
  acc.metadata.sort(byPath);
  const problems = acc.missing.length + acc.changed.length + acc.metadata.length + acc.extra.length + acc.errors.length;
  return {
    ok: problems === 0, snapshot_id: snap.id, checked: acc.checked,
    missing: acc.missing.length, changed: acc.changed.length, metadata_mismatch: acc.metadata.length, extra: acc.extra.length,
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

/** Hands directories to idle workers until none is left and none is busy. */
async function runWorkers(queue: DirTask[], acc: VerifyBatchResult, init: VerifyWorkerInit, n: number,
  onProgress?: (checked: number) => void): Promise<void> {
  const url = new URL('./worker.js', import.meta.url);
  const workers: Worker[] = [];
  let busy = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const idle: Worker[] = [];
      const dispatch = () => {
        while (idle.length && queue.length) {
          const w = idle.pop()!;
          // Split the queue fairly among idle workers so none starves while another is busy.
          const take = Math.max(1, Math.ceil(queue.length / (idle.length + 1 + busy)));
          busy++;
          w.postMessage({ dirs: queue.splice(queue.length - take, take) });
        }
        if (!busy && !queue.length) resolve();
      };
      for (let i = 0; i < n; i++) {
        const w = new Worker(url, { workerData: init });
        workers.push(w);
        w.on('error', reject);
        w.on('message', (m: VerifyBatchResult | { ready: true }) => {
          if (!('ready' in m)) {
            busy--;
            acc.checked += m.checked;
            for (const x of m.missing) acc.missing.push(x);
            for (const x of m.changed) acc.changed.push(x);
            for (const x of m.metadata) acc.metadata.push(x);
            for (const x of m.extra) acc.extra.push(x);
            for (const x of m.errors) acc.errors.push(x);
            for (const x of m.more) queue.push(x);
            onProgress?.(acc.checked);
          }
          idle.push(w);
          dispatch();
        });
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
