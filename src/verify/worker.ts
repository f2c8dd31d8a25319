import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { ENTRY_TYPES, type EntryType } from '../repo/tree.js';
import { xxh, fpHex } from '../livefs/fingerprint.js';
import { compareEntry, lstatOrUndefined, type SnapEntry } from '../livefs/compare.js';
import type { DirTask, VerifyBatchResult, VerifyWorkerInit } from './verify.js';

/**
 * One verify worker thread: takes directories, and for each runs one indexed catalog query
 * (the snapshot's children), one readdir and one lstat per child, all synchronous. Measured on
 * these machines, sync fs calls in a few threads are ~4x cheaper than promise-based calls for
 * small files (DESIGN.md section 3). Subdirectories found are processed locally up to a budget,
 * the rest handed back so the coordinator can balance them over the threads.
 */
const init = workerData as VerifyWorkerInit;
const db = new Database(init.catalogFile, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 10000');
// CROSS JOIN fixes the join order (paths first, by parent or path range, then that path's
// versions): without statistics SQLite otherwise scans the lineage's every version per query.
const IN_SNAP = 'v.lineage = @lineage AND v.from_seq <= @seq AND (v.to_seq IS NULL OR v.to_seq >= @seq)';
// This query runs once per directory and its per-row cost is most of verify's own CPU time,
// so: rows as arrays; mtime in whole microseconds (< 2^53, no BigInt per row); and no BLOB
// column unless needed (each becomes a Buffer, ~2x the cost of the row): the name as TEXT
// (exact for ASCII; other names are fetched as bytes on their own), the symlink target only
// for symlinks, the fingerprint only with --checksum.
const SYMLINK = ENTRY_TYPES.indexOf('symlink');
const HARDLINK = ENTRY_TYPES.indexOf('hardlink');
const childrenStmt = db.prepare(`SELECT p.id, CAST(p.name AS TEXT), v.type, v.mode, v.uid, v.gid, v.size, v.mtime / 1000,
  CASE WHEN v.type IN (${SYMLINK}, ${HARDLINK}) THEN v.target END, ${init.checksum ? 'v.fp' : 'NULL'}, v.rdev
  FROM paths p CROSS JOIN versions v ON v.path = p.id WHERE p.parent = @pid AND ${IN_SNAP}`).raw(true);
const nameStmt = db.prepare('SELECT name FROM paths WHERE id = ?').pluck();
const NON_ASCII = /[^\x00-\x7f]/;
const subtreeStmt = db.prepare(`SELECT p.path FROM paths p CROSS JOIN versions v ON v.path = p.id
  WHERE p.path >= @lo AND p.path < @hi AND ${IN_SNAP} ORDER BY p.path`);
const snapParams = { lineage: init.lineage, seq: init.seq };
const target = init.target;
const BUDGET_ENTRIES = 2000;

const hasher = init.checksum ? await xxh() : null; // wasm compile only when content is compared
const readBuf = Buffer.allocUnsafe(1 << 20);

function fingerprint(p: Buffer): string {
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const h = hasher!.create64();
    for (;;) {
      const n = fs.readSync(fd, readBuf, 0, readBuf.length, null);
      if (n === 0) break;
      h.update(readBuf.subarray(0, n));
    }
    return fpHex(h.digest());
  } finally {
    fs.closeSync(fd);
  }
}

function livePath(raw: string): Buffer {
  return Buffer.from(target + raw, 'latin1');
}

function childPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name;
}

function rowToEntry(r: any[], path: string): SnapEntry {
  return {
    pathId: r[0], path, type: ENTRY_TYPES[r[2]] as EntryType, mode: r[3], uid: r[4], gid: r[5], size: r[6], mtimeUs: r[7],
    target: r[8] ? (r[8] as Buffer).toString('latin1') : null, fp: r[9] ? (r[9] as Buffer).toString('hex') : null, rdev: r[10],
  };
}

function processDir(task: DirTask, out: VerifyBatchResult, local: DirTask[]): void {
  const rows = childrenStmt.all({ ...snapParams, pid: task.id }) as any[][];
  const wanted = new Map<string, SnapEntry>();
  for (const r of rows) {
    const text = r[1] as string;
    const name = NON_ASCII.test(text) ? (nameStmt.get(r[0]) as Buffer).toString('latin1') : text;
    wanted.set(name, rowToEntry(r, childPath(task.path, name)));
  }
  // null when the directory cannot be listed: then each entry is looked up on its own.
  let present: Set<string> | null = new Set<string>();
  try {
    for (const b of fs.readdirSync(livePath(task.path), { encoding: 'buffer' }) as Buffer[]) {
      const name = b.toString('latin1');
      present.add(name);
      if (!wanted.has(name)) out.extra.push(childPath(task.path, name));
    }
  } catch (e) {
    out.errors.push({ path: task.path, message: `cannot list directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}` });
    present = null;
  }
  for (const [name, e] of wanted) {
    out.checked++;
    const lp = livePath(e.path);
    let st: fs.Stats | undefined;
    try {
      st = present === null || present.has(name) ? lstatOrUndefined(lp) : undefined;
      const f = compareEntry(e, st, lp, init.checksum, fingerprint);
      if (f.kind === 'missing') {
        out.missing.push(e.path);
        if (e.type === 'dir') addMissingSubtree(e.path, out);
        continue;
      }
      const broken = f.kind !== 'changed' && e.type === 'hardlink' && st ? brokenLink(e, st) : null;
      if (broken) out.changed.push({ path: e.path, reason: broken });
      else if (f.kind === 'changed') out.changed.push({ path: e.path, reason: f.reason });
      else if (f.kind === 'metadata') out.metadata.push({ path: e.path, fields: f.fields });
    } catch (err) {
      out.errors.push({ path: e.path, message: `cannot compare: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      continue;
    }
    if (e.type === 'dir') {
      if (st?.isDirectory()) local.push({ id: e.pathId, path: e.path });
      else addMissingSubtree(e.path, out); // replaced by a non-directory: all below is gone
    }
  }
}

/**
 * A hardlink name must still be the same inode as the first name of its group: a group
 * restored as separate copies has the right bytes but is not what the snapshot recorded.
 */
function brokenLink(e: SnapEntry, st: fs.Stats): string | null {
  if (e.target === null) return null;
  const first = lstatOrUndefined(livePath(e.target));
  if (first && first.ino === st.ino && first.dev === st.dev) return null;
  return `hard link broken: no longer the same file as ${Buffer.from(e.target, 'latin1').toString('utf8')}`;
}

/** Everything the snapshot holds below a directory that is gone counts as missing. */
function addMissingSubtree(dir: string, out: VerifyBatchResult): void {
  const lo = dir + '/';
  const hi = dir + '0';
  for (const r of subtreeStmt.iterate({ ...snapParams, lo: Buffer.from(lo, 'latin1'), hi: Buffer.from(hi, 'latin1') }) as Iterable<{ path: Buffer }>) {
    out.missing.push(r.path.toString('latin1'));
    out.checked++;
  }
}

parentPort!.on('message', (msg: { dirs: DirTask[] }) => {
  const out: VerifyBatchResult = { checked: 0, missing: [], changed: [], metadata: [], extra: [], errors: [], more: [] };
  const local: DirTask[] = [...msg.dirs];
  while (local.length) {
    processDir(local.pop()!, out, local);
    if (out.checked >= BUDGET_ENTRIES) break;
  }
  out.more = local;
  parentPort!.postMessage(out);
});
parentPort!.postMessage({ ready: true });
