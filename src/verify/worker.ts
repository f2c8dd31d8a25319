import * as fs from 'node:fs';
import * as os from 'node:os';
import { parentPort } from 'node:worker_threads';
import type { XXHashAPI } from 'xxhash-wasm';
import { ENTRY_TYPES } from '../repo/tree.js';
import { xxh } from '../livefs/fingerprint.js';
import { lstatExact } from '../livefs/compare.js';
import { DirScan, errnoName, lstatAt, ScanStat } from '../livefs/native.js';
import { procPath, relOf, SafeRoot, splitParent, UnsafePathError } from '../livefs/safepath.js';
import { DIGEST_SKIP_OFF, DirDigest, digestListing, digestMatches } from '../livefs/dirdigest.js';
import { ShortcutProbe } from '../util/shortcutprobe.js';
import { CatalogReader, type VerifyChildRow } from '../catalog/reader.js';
import { omittedBySnapshot } from '../util/snapshotrules.js';
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

/**
 * One verify worker thread: takes directories, and for each runs one indexed catalog query
 * (the snapshot's children) and one native scan (getdents64 + fstatat) of the live directory, all synchronous. Measured on
 * these machines, sync fs calls in a few threads are ~4x cheaper than promise-based calls for
 * small files (DESIGN.md section 3). Subdirectories found are processed locally up to a budget,
 * the rest handed back so the coordinator can balance them over the threads.
 */
// The catalog is read through its own read-only reader (src/catalog/reader.ts), which holds
// the queries and the tricks that keep their per-row cost down.
let catalog!: CatalogReader;
let snapParams!: { lineage: number; seq: number };
let checksumOpt!: { checksum: boolean };
let target = '';
/** xxh64: directory digests; with --checksum also content fingerprints. */
let hasher!: XXHashAPI;
let omitted: (p: string) => boolean = () => false;
/**
 * The live tree's directories, each opened relative to its parent's fd with O_NOFOLLOW (issue
 * 17): a directory a customer swaps for a symlink mid-run is refused, never listed, stat-ed or
 * read through, as in the restore.
 */
let safe!: SafeRoot;
/** The same for the first names of hard link groups: its own fds, so none of the walk's is evicted while in use. */
let linkDirs!: SafeRoot;
const BUDGET_ENTRIES = 2000;
const ENOENT = os.constants.errno.ENOENT;

/**
 * Opens the catalog, then tells the pool this thread is ready. A failure is left unhandled on
 * purpose: it ends the thread, which the pool sees as the worker's 'error'.
 */
async function init(i: VerifyWorkerInit): Promise<void> {
  catalog = CatalogReader.openReadOnly(i.catalogFile);
  snapParams = { lineage: i.lineage, seq: i.seq };
  checksumOpt = { checksum: i.checksum };
  target = i.target;
  safe = new SafeRoot(target === '' ? '/' : target);
  linkDirs = new SafeRoot(target === '' ? '/' : target, undefined, undefined, 16);
  omitted = omittedBySnapshot(i.sources, i.excludes);
  hasher = await xxh();
  parentPort!.postMessage({ id: -1 });
}

function livePath(raw: string): Buffer {
  return Buffer.from(target + raw, 'latin1');
}

function childPath(dir: string, name: string): string {
  return dir === '/' ? '/' + name : dir + '/' + name;
}

function rowToEntry(r: VerifyChildRow, path: string): VerifyEntry {
  const type = ENTRY_TYPES[r[2]];
  const target = r[8] ? r[8].toString('latin1') : null;
  return {
    pathId: r[0],
    path,
    type,
    mode: r[3],
    uid: r[4],
    gid: r[5],
    size: r[6],
    mtimeNs: BigInt(r[7]) * 1000n + BigInt(r[11]),
    linkTarget: type === 'symlink' ? target : null,
    linkFirst: type === 'hardlink' ? target : null,
    fingerprint: r[9] ? r[9].toString('hex') : null,
    rdev: r[10],
  };
}

/** A scanned entry: its stat, or the errno fstatat gave it. */
type LiveEntry = fs.BigIntStats | number;
const scanned = new DirScan();

/**
 * Lists the live directory into `scanned`: one getdents64 + fstatat pass in the addon
 * (livefs/native.ts) for the whole directory, on its fd opened through SafeRoot. Returns the fd,
 * or why the directory cannot be listed (`unsafe`: a symlink or non-directory is in its way).
 */
function scanLive(task: DirTask): { fd: number } | { why: string; cause: 'unsafe' | 'gone' | 'unreadable' } {
  let fd: number | null;
  try {
    fd = safe.dirFd(relOf(task.path), false);
  } catch (e) {
    if (e instanceof UnsafePathError) return { why: 'a symlink or non-directory is in its way; not followed', cause: 'unsafe' };
    return { why: `cannot list directory: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, cause: 'unreadable' };
  }
  if (fd === null) return { why: 'cannot list directory: ENOENT', cause: 'gone' };
  const rc = scanned.read(fd);
  return rc < 0 ? { why: `cannot list directory: ${errnoName(-rc)}`, cause: 'unreadable' } : { fd };
}

/** The live entries just scanned, each not in the snapshot named as extra (unless the snapshot's rules never looked at it). */
function presentEntries(task: DirTask, wanted: Map<string, VerifyEntry>, out: VerifyBatchResult): Map<string, LiveEntry> {
  const present = new Map<string, LiveEntry>();
  for (let i = 0; i < scanned.count; i++) {
    const name = scanned.name(i);
    if (wanted.has(name)) {
      present.set(name, scanned.errs[i] === 0 ? new ScanStat(scanned, i) : scanned.errs[i]);
      continue;
    }
    const p = childPath(task.path, name);
    if (!omitted(p)) out.extra.push(p);
  }
  return present;
}

const digest = new DirDigest();
/** Whether directories lately were untouched (a damaged tree or restored copy stops paying for the digest). */
const digestFirst = new ShortcutProbe(1 / 3);

/**
 * A directory nobody touched since the snapshot (issue 17): when the live directory just
 * scanned has the stat digest (livefs/dirdigest.ts) the snapshot recorded for its tree, every
 * entry is there with the stat fields the snapshot recorded, ctime and inode included, and
 * nothing else is: all of them are checked and the same, without reading their rows; its
 * subdirectories are verified as usual. Not with --checksum (content is read then), nor where
 * digestListing refuses to vouch. Returns whether it handled the directory.
 */
function untouchedSinceSnapshot(task: DirTask, out: VerifyBatchResult, local: DirTask[]): boolean {
  if (checksumOpt.checksum || DIGEST_SKIP_OFF || !digestFirst.worth()) return false;
  const recorded = catalog.dirDigest(task.id, snapParams);
  const entries: [string, number][] = [];
  if (recorded !== undefined) for (let i = 0; i < scanned.count; i++) entries.push([scanned.name(i), i]);
  const listing = recorded === undefined ? null : digestListing(entries, scanned, digest, hasher);
  const untouched = digestMatches(recorded, listing);
  digestFirst.saw(untouched);
  if (!untouched) return false;
  const subdirs = listing.entries.filter((e) => e.type === 'dir').map((e) => e.name);
  const ids = catalog.childPathIds(task.id, subdirs);
  if (ids.some((id) => id === undefined)) return false;
  out.checked += listing.entries.length;
  subdirs.forEach((name, k) => local.push({ id: ids[k]!, path: childPath(task.path, name) }));
  return true;
}

/** The live stat of a listed entry: undefined when absent (or gone since the scan); an fstatat error is thrown as lstat would. */
function liveStat(live: LiveEntry | undefined): fs.BigIntStats | undefined {
  if (typeof live !== 'number') return live;
  if (live === ENOENT) return undefined;
  throw Object.assign(new Error(errnoName(live)), { code: errnoName(live) });
}

function processDir(task: DirTask, out: VerifyBatchResult, local: DirTask[]): void {
  const scan = scanLive(task);
  if ('cause' in scan && scan.cause === 'unsafe') {
    out.errors.push({ path: task.path, message: scan.why });
    return;
  }
  const unlisted = 'why' in scan ? scan.why : null;
  // Gone since its parent was listed: every entry is missing, none looked up by path.
  const gone = 'cause' in scan && scan.cause === 'gone';
  const dirFd = 'fd' in scan ? scan.fd : -1;
  if (unlisted === null && untouchedSinceSnapshot(task, out, local)) return;
  const rows = catalog.childrenForVerify(task.id, snapParams, checksumOpt);
  const wanted = new Map<string, VerifyEntry>();
  for (const r of rows) {
    const name = r[1];
    wanted.set(name, rowToEntry(r, childPath(task.path, name)));
  }
  // null when the directory cannot be listed: then each entry is looked up on its own.
  if (unlisted !== null) out.errors.push({ path: task.path, message: unlisted });
  const present = unlisted === null ? presentEntries(task, wanted, out) : null;
  for (const [name, e] of wanted) {
    out.checked++;
    // A listed directory's entries are read relative to its pinned fd; the path is only for a
    // directory this user cannot list (a 711 home, not root): looked up one by one as before.
    const lp = (): Buffer => (dirFd >= 0 ? procPath(dirFd, name) : livePath(e.path));
    let st: fs.BigIntStats | undefined;
    try {
      st = gone ? undefined : present === null ? lstatExact(lp()) : liveStat(present.get(name));
      const f = judge(e, st, lp, checksumOpt.checksum ? hasher : null);
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
function brokenLink(e: VerifyEntry, st: fs.BigIntStats): string | null {
  if (e.linkFirst === null) return null;
  const [dir, name] = splitParent(relOf(e.linkFirst));
  let first: fs.BigIntStats | undefined;
  try {
    const fd = linkDirs.dirFd(dir, false);
    first = fd === null ? undefined : lstatAt(fd, name);
  } catch {
    first = undefined; // not safely reachable: not the same file
  }
  if (first && first.ino === st.ino && first.dev === st.dev) return null;
  return `hard link broken: no longer the same file as ${Buffer.from(e.linkFirst, 'latin1').toString('utf8')}`;
}

/** Everything the snapshot holds below a directory that is gone counts as missing. */
function addMissingSubtree(dir: string, out: VerifyBatchResult): void {
  for (const p of catalog.subtreePaths(dir, snapParams)) {
    out.missing.push(p);
    out.checked++;
  }
}

function verifyDirs(dirs: DirTask[]): VerifyBatchResult {
  const out = emptyBatch();
  const local: DirTask[] = [...dirs];
  // One read transaction for the batch's queries, not one per statement (CatalogDb.reading).
  catalog.reading(() => {
    while (local.length) {
      processDir(local.pop()!, out, local);
      if (out.checked >= BUDGET_ENTRIES) break;
    }
  });
  out.more = local;
  return out;
}

// The protocol of livefs/pool.ts: init first (answered with id -1), then one reply per request id.
parentPort!.on('message', (msg: { op: 'init'; init: VerifyWorkerInit } | (VerifyRequest & { id: number })) => {
  if ('op' in msg) {
    void init(msg.init);
    return;
  }
  try {
    parentPort!.postMessage({ ...verifyDirs(msg.dirs), id: msg.id } satisfies VerifyReply);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, fatal: (e as Error).message });
  }
});
