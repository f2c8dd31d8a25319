import * as os from 'node:os';
import { compareEntry, hasForeignLinks, metadataFields, typeMatches, type Recorded } from '../livefs/compare.js';
import { fingerprintFile } from '../livefs/fingerprint.js';
import { installSpecial, modifiedAfter, TMP_PREFIX, type SpecialType } from '../livefs/install.js';
import { setMetaBatch, type MetaFix } from '../livefs/meta.js';
import { DirScan, errnoName, readlinkAt, ScanStat } from '../livefs/native.js';
import { procPath, UnsafePathError } from '../livefs/safepath.js';
import type { ClassifyResult, WireEntry } from './protocol.js';
import { errMsg, forRuns, installed, placement, worker } from './worker-state.js';

/**
 * The classify phase in a worker: compares snapshot entries with the live entries at their
 * places (the one compare rule, livefs/compare.ts) and decides what the restore does with
 * each. A batch arrives in path order; it is taken a directory at a time: the live directory
 * is opened relative to its parent (O_NOFOLLOW) and scanned once by the native addon
 * (getdents64 + fstatat), and the metadata fixes of its entries go to the addon as one batch.
 * Entries that need no content (directories, symlinks, FIFOs, devices, metadata fixes) are
 * done here; files and hard links are left to the content phase.
 */

const ENOENT = os.constants.errno.ENOENT;

/** A live directory as one scan saw it: name -> index into copies of the scan's stat arrays. */
export interface LiveDir {
  index: Map<string, number>;
  /** Scanned for existence only (missing mode): no stat fields. */
  namesOnly: boolean;
  /** Some name is a temp entry's (an interrupted run's leftover): a create here clears its temp name first. */
  leftovers: boolean;
  u64: BigUint64Array;
  i64: BigInt64Array;
  u32: Uint32Array;
  errs: Int32Array;
}

const scratch = new DirScan();
/** Entries arrive a directory at a time (worker-walk.ts), in chunks: a small cache of scans suffices. */
const liveDirs = new Map<string, LiveDir>();
const MAX_LIVE_DIRS = 8;
const MAX_LIVE_ENTRIES = 20_000;
let cachedEntries = 0;

function forgetOne(rel: string): void {
  const d = liveDirs.get(rel);
  if (!d) return;
  cachedEntries -= d.index.size;
  liveDirs.delete(rel);
}

function liveDir(rel: string, fd: number, namesOnly: boolean): LiveDir {
  const cached = liveDirs.get(rel);
  if (cached && (!cached.namesOnly || namesOnly)) return cached;
  const rc = scratch.read(fd, namesOnly);
  if (rc < 0) throw new Error(`${errnoName(-rc)}: scandir`);
  const n = scratch.count;
  const index = new Map<string, number>();
  let leftovers = false;
  for (let i = 0; i < n; i++) {
    const name = scratch.name(i);
    index.set(name, i);
    if (name.startsWith(TMP_PREFIX)) leftovers = true;
  }
  const d: LiveDir = namesOnly
    ? { index, namesOnly, leftovers, u64: EMPTY_U64, i64: EMPTY_I64, u32: EMPTY_U32, errs: EMPTY_I32 }
    : {
        index,
        namesOnly,
        leftovers,
        u64: scratch.u64.slice(0, n * 5),
        i64: scratch.i64.slice(0, n * 3),
        u32: scratch.u32.slice(0, n * 5),
        errs: scratch.errs.slice(0, n),
      };
  forgetOne(rel);
  // Bounded by directories and by entries (a few huge directories must not pile up in memory).
  while (liveDirs.size && (liveDirs.size >= MAX_LIVE_DIRS || cachedEntries + n > MAX_LIVE_ENTRIES))
    forgetOne(liveDirs.keys().next().value as string);
  liveDirs.set(rel, d);
  cachedEntries += n;
  return d;
}
const EMPTY_U64 = new BigUint64Array(0);
const EMPTY_I64 = new BigInt64Array(0);
const EMPTY_U32 = new Uint32Array(0);
const EMPTY_I32 = new Int32Array(0);

/**
 * The names in live directory `rel` (scanned names-only, and kept for the classify that
 * follows), or null when the directory is not there or cannot be opened or read safely: the
 * caller then classifies the entries one by one, which reports why.
 */
export function liveNames(rel: string): ReadonlyMap<string, number> | null {
  if (worker.freshDirs.has(rel)) return null;
  try {
    const fd = worker.root.dirFd(rel, false);
    return fd === null ? null : liveDir(rel, fd, true).index;
  } catch {
    return null;
  }
}

/**
 * Live directory `rel` scanned with every entry's stat (and kept for the classify that may
 * follow), or null as for liveNames.
 */
export function liveStats(rel: string): LiveDir | null {
  if (worker.freshDirs.has(rel)) return null;
  try {
    const fd = worker.root.dirFd(rel, false);
    return fd === null ? null : liveDir(rel, fd, false);
  } catch {
    return null;
  }
}

/** Forgets what was scanned below `rel` (after a failure there). */
export function forgetLive(rel: string): void {
  for (const k of [...liveDirs.keys()]) if (k === rel || rel === '' || k.startsWith(rel + '/')) forgetOne(k);
}

function recorded(e: WireEntry): Recorded {
  return {
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtimeNs: BigInt(e.mtimeNs),
    linkTarget: e.type === 'symlink' ? e.linkTarget : null,
    rdev: e.rdev,
    fingerprint: e.fingerprint,
  };
}

function guarded(fn: () => ClassifyResult): ClassifyResult {
  try {
    return fn();
  } catch (e) {
    return { outcome: 'error', msg: errMsg(e) };
  }
}

/** Metadata fixes of one directory, applied as one batch after its entries are classified. */
interface PendingFix {
  k: number;
  fix: MetaFix;
}

/** Classifies a batch of entries (in path order): one result per entry. */
export function classifyBatch(items: readonly WireEntry[]): ClassifyResult[] {
  const out: ClassifyResult[] = new Array(items.length);
  forRuns(
    items,
    (e) => e.rel,
    (parentRel, i, j) => {
      try {
        classifyDir(parentRel, items, i, j, out);
      } catch (e) {
        if (e instanceof UnsafePathError) {
          worker.root.forget(parentRel);
          forgetLive(parentRel);
        }
        const msg = errMsg(e);
        for (let k = i; k < j; k++) out[k] ??= { outcome: 'error', msg };
      }
    },
  );
  return out;
}

/** Entries i..j-1 of `items`, all in directory `parentRel`. */
function classifyDir(parentRel: string, items: readonly WireEntry[], i: number, j: number, out: ClassifyResult[]): void {
  const skip = parentRel === '' ? 0 : parentRel.length + 1;
  if (worker.freshDirs.has(parentRel) && !worker.init.dryRun) {
    // Created by us moments ago: its entries cannot exist yet, no need to look.
    for (let k = i; k < j; k++) out[k] = guarded(() => ({ ...create(items[k]), fresh: true }));
    return;
  }
  const dfd = worker.root.dirFd(parentRel, false);
  const mode = worker.init.mode;
  if (dfd === null) {
    for (let k = i; k < j; k++) out[k] = guarded(() => absent(items[k]));
    return;
  }
  const live = liveDir(parentRel, dfd, mode === 'missing');
  const fixes: PendingFix[] = [];
  for (let k = i; k < j; k++) {
    const e = items[k];
    out[k] = guarded(() => classifyOne(e, dfd, e.rel.slice(skip), live, fixes, k));
  }
  if (!fixes.length) return;
  // Creating subdirectories above may have reopened fds: ask for this one again (cached).
  const fd = worker.root.dirFd(parentRel, false);
  if (fd === null) {
    for (const f of fixes) out[f.k] = { outcome: 'error', msg: 'directory vanished during the restore' };
    return;
  }
  const errs = setMetaBatch(
    fd,
    fixes.map((f) => f.fix),
    worker.policy.chown,
  );
  errs.forEach((err, n) => {
    if (err !== null) out[fixes[n].k] = { outcome: 'error', msg: err };
  });
}

/** Nothing is at the entry's place (`live`: its directory's listing, when one was read). */
function absent(e: WireEntry, live?: LiveDir): ClassifyResult {
  if (worker.init.mode === 'metadata') return { outcome: 'skip-present', msg: 'missing; metadata mode writes no content' };
  return live ? createIn(e, live) : create(e);
}

function classifyOne(e: WireEntry, dfd: number, name: string, live: LiveDir, fixes: PendingFix[], k: number): ClassifyResult {
  const idx = live.index.get(name);
  const mode = worker.init.mode;
  if (live.namesOnly) return idx !== undefined ? { outcome: 'skip-present' } : createIn(e, live);
  let st: ScanStat | undefined;
  if (idx !== undefined) {
    const err = live.errs[idx];
    if (err !== 0 && err !== ENOENT) return { outcome: 'error', msg: `${errnoName(err)}: lstat` };
    if (err === 0) st = new ScanStat(live, idx);
  }
  if (!st) return absent(e, live);
  if (e.ancestor || mode === 'missing') return { outcome: 'skip-present' };
  if (mode === 'metadata') return classifyMetadata(e, name, st, fixes, k);
  return classifyContent(e, dfd, name, st, fixes, k);
}

function foreignReason(st: ScanStat, e: WireEntry): string {
  return `the live entry has ${st.nlink} hard links, the snapshot recorded ${e.nlink}: not the snapshot's inode`;
}

/** A metadata fix of an existing non-directory entry, applied with its directory's batch. */
function fixMeta(e: WireEntry, name: string, st: ScanStat, fixes: PendingFix[], k: number): ClassifyResult {
  if (!worker.init.dryRun) fixes.push({ k, fix: { name, meta: e, st, recordedLinks: e.nlink } });
  return { outcome: 'meta' };
}

/** --mode metadata: owner, mode and times of what is there; never content, never another inode. */
function classifyMetadata(e: WireEntry, name: string, st: ScanStat, fixes: PendingFix[], k: number): ClassifyResult {
  if (!typeMatches(st, e.type))
    return { outcome: 'skip-conflict', msg: `type differs (snapshot: ${e.type}); metadata mode does not replace entries` };
  if (hasForeignLinks(st, e.nlink)) {
    return { outcome: 'error', msg: `${foreignReason(st, e)}; refused (metadata mode writes no content; restore it with --mode changed)` };
  }
  const differs = metadataFields(recorded(e), st, worker.policy.chown).length > 0;
  if (e.type === 'dir') return differs ? { outcome: 'dirmeta' } : { outcome: 'skip-same' };
  if (!differs) return { outcome: 'skip-same' };
  return fixMeta(e, name, st, fixes, k);
}

/** --mode changed / checksum / all: rewrite what differs, fix metadata of what does not. */
function classifyContent(e: WireEntry, dfd: number, name: string, st: ScanStat, fixes: PendingFix[], k: number): ClassifyResult {
  const mode = worker.init.mode;
  const same = typeMatches(st, e.type);
  const newer = modifiedAfter(st, worker.snapshotTimeNs) && !worker.init.overwriteNewer;
  if (e.type === 'dir') {
    if (!same) {
      if (st.isDirectory()) return { outcome: 'skip-conflict' };
      return newer
        ? { outcome: 'skip-newer' }
        : { outcome: 'skip-conflict', msg: 'a non-directory is where the snapshot has a directory; not replaced' };
    }
    return metadataFields(recorded(e), st, worker.policy.chown).length ? { outcome: 'dirmeta' } : { outcome: 'skip-same' };
  }
  if (st.isDirectory()) return { outcome: 'skip-conflict', msg: `a directory is where the snapshot has a ${e.type}; not replaced` };
  if (newer) return { outcome: 'skip-newer', msg: 'modified after the snapshot' };
  // Someone else's inode at this name: the name gets a fresh copy; the inode is never touched.
  if (hasForeignLinks(st, e.nlink)) return { ...create(e, true), why: foreignReason(st, e) };
  if (mode === 'all') return create(e, true);
  const verdict = compareEntry(recorded(e), st, {
    content: mode === 'checksum' ? 'stat-then-checksum' : 'stat',
    owner: worker.policy.chown,
    readLink: () => readlinkAt(dfd, name),
    fingerprint: () => fingerprintFile(worker.hasher, procPath(dfd, name)),
  });
  if (verdict.kind === 'type' || verdict.kind === 'content') return create(e, true);
  if (verdict.kind === 'same') return { outcome: 'skip-same' };
  return fixMeta(e, name, st, fixes, k);
}

/** create() of an entry missing from a listed directory: its file needs no leftover temp cleared when the listing had none. */
function createIn(e: WireEntry, live: LiveDir): ClassifyResult {
  const r = create(e);
  if (!live.leftovers && r.outcome === 'content') r.clean = true;
  return r;
}

/** Creates an entry that is missing (or replaces one when `replace`). Files and hardlinks are deferred. */
function create(e: WireEntry, replace = false): ClassifyResult {
  if (e.type === 'file') {
    return e.hasContent
      ? { outcome: 'content', replace }
      : { outcome: 'skip-nocontent', msg: 'the snapshot could not read this file; nothing to restore' };
  }
  if (e.type === 'hardlink') return { outcome: 'link', replace };
  if (e.type === 'socket') return { outcome: 'skip-unsupported', msg: 'sockets are not restored' };
  if (worker.init.dryRun) return { outcome: 'created', replace };
  if (e.type === 'dir') {
    worker.root.dirFd(e.rel, true);
    return { outcome: 'created' };
  }
  const slash = e.rel.lastIndexOf('/');
  const dfd = worker.root.dirFd(slash < 0 ? '' : e.rel.slice(0, slash), true);
  const r = installed(
    e.rel,
    installSpecial(
      dfd!,
      e.rel.slice(slash + 1),
      { type: e.type as SpecialType, linkTarget: e.linkTarget, rdev: e.rdev },
      e,
      worker.policy,
      placement(replace),
    ),
  );
  if (r.installed) return { outcome: 'created', replace };
  if (r.reason === 'failed') return { outcome: 'error', msg: r.msg };
  return { outcome: 'skip-present', msg: r.msg };
}
