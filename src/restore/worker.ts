/**
 * A restore worker thread: synchronous fs calls only (DESIGN.md: sync calls in a few threads
 * match tar; a promise per syscall costs ~4x). Every path goes through SafeRoot, so nothing
 * in the target tree is ever followed as a symlink.
 */
import { parentPort, threadId } from 'node:worker_threads';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';
import { SafeRoot, procPath, procPathForChild, splitParent, UnsafePathError } from '../livefs/safepath.js';
import type { ChunkRef, ClassifyResult, FromWorker, ItemResult, LinkItem, RestoreItem, ToWorker, WireEntry, WorkerInit, WriteItem } from './protocol.js';
import { createHash } from 'node:crypto';
import { toFs } from '../util/rawpath.js';
import { utimesSeconds } from '../livefs/times.js';
import { TMP_PREFIX } from './journal.js';
import { inflateKnown, openBlob } from '../pack/codec.js';
import { SPARSE_BLOCK, writeAt } from '../livefs/sparse.js';

let init!: WorkerInit;
let root!: SafeRoot;
let hasher!: XXHashAPI;
let createdDirs: string[] = [];
/** Existing directories this batch created, replaced or linked entries in: their times moved. */
let touchedDirs = new Set<string>();
let journal: number | null = null;
const hashBuf = Buffer.allocUnsafe(1 << 20);

const O_NOFOLLOW = fs.constants.O_NOFOLLOW;
const O_NONBLOCK = fs.constants.O_NONBLOCK;
/** Linux O_PATH: pins an inode without opening it for I/O (no side effects on FIFOs or devices). */
const O_PATH = 0o10000000;


function errMsg(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof UnsafePathError) return err.message;
  return err.code ? `${err.code}: ${err.syscall ?? ''}`.trim() : String(err.message ?? e);
}

function usec(ns: bigint): bigint {
  return ns / 1000n;
}

function mtimeSeconds(e: WireEntry): number {
  return utimesSeconds(e.mt);
}

function typeMatches(st: fs.BigIntStats, t: string): boolean {
  switch (t) {
    case 'file': case 'hardlink': return st.isFile();
    case 'dir': return st.isDirectory();
    case 'symlink': return st.isSymbolicLink();
    case 'fifo': return st.isFIFO();
    case 'chardev': return st.isCharacterDevice();
    case 'blockdev': return st.isBlockDevice();
    default: return st.isSocket();
  }
}

function metaDiffers(st: fs.BigIntStats, e: WireEntry, withMtime: boolean): boolean {
  if ((Number(st.mode) & 0o7777) !== e.m && e.t !== 'symlink') return true;
  if (init.chown && (Number(st.uid) !== e.u || Number(st.gid) !== e.g)) return true;
  // Node sets times through a double: compare at microsecond precision.
  return withMtime && usec(st.mtimeNs) !== usec(BigInt(e.mt));
}

/** Directories this worker created in this run: entries below them are known to be missing. */
const freshDirs = new Set<string>();

/** Dir fd of the parent of `rel`, creating missing parents when `create`. */
function parentFd(rel: string, create: boolean): { fd: number | null; name: string } {
  const [parentRel, name] = splitParent(rel);
  return { fd: root.dirFd(parentRel, create), name };
}

/** Names in a live directory, read once (entries arrive in path order, so a small cache suffices). */
const dirNameCache = new Map<string, Set<string>>();
function dirNames(rel: string, fd: number): Set<string> {
  let names = dirNameCache.get(rel);
  if (!names) {
    names = new Set((fs.readdirSync(procPath(fd, '.'), { encoding: 'buffer' }) as Buffer[]).map((b) => b.toString('latin1')));
    if (dirNameCache.size >= 64) dirNameCache.delete(dirNameCache.keys().next().value as string);
    dirNameCache.set(rel, names);
  }
  return names;
}

function lstatAt(fd: number, name: string): fs.BigIntStats | undefined {
  return fs.lstatSync(procPath(fd, name), { bigint: true, throwIfNoEntry: false });
}

function fileFingerprint(fd: number, name: string): string {
  const f = fs.openSync(procPath(fd, name), fs.constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    const h = hasher.create64();
    for (;;) {
      const n = fs.readSync(f, hashBuf, 0, hashBuf.length, null);
      if (n === 0) break;
      h.update(hashBuf.subarray(0, n));
    }
    return h.digest().toString(16).padStart(16, '0');
  } finally {
    fs.closeSync(f);
  }
}

function applyMetaFd(fd: number, e: WireEntry): void {
  // chown first: it clears set-id bits that chmod then sets.
  if (init.chown) fs.fchownSync(fd, e.u, e.g);
  fs.fchmodSync(fd, e.m);
  const t = mtimeSeconds(e);
  fs.futimesSync(fd, t, t);
}

/**
 * A live non-directory entry is the snapshot's only if it has no more hard links than the
 * snapshot recorded: a customer who replaced its file by a link to a file it does not own
 * (another account's upload, /etc/passwd) must not get that inode chowned, chmod-ed or re-timed.
 */
function foreignLinks(st: fs.BigIntStats, e: WireEntry): boolean {
  return !st.isDirectory() && Number(st.nlink) > Math.max(1, e.nl);
}

class ForeignInodeError extends Error {}

/**
 * Metadata of an existing non-directory entry, never following a symlink. The inode is pinned
 * with O_PATH (no open side effects on FIFOs and devices) and proven to be the one classified
 * (same inode, no extra links), so a swap between the lstat and this call cannot redirect it.
 */
function applyMetaAt(dfd: number, name: string, e: WireEntry, st: fs.BigIntStats): void {
  const p = procPath(dfd, name);
  if (st.isSymbolicLink()) {
    // No O_PATH trick for a symlink's own inode in Node; lchown/lutimes never follow the link.
    if (init.chown) fs.lchownSync(p, e.u, e.g);
    const t = mtimeSeconds(e);
    fs.lutimesSync(p, t, t);
    return;
  }
  const fd = fs.openSync(p, O_PATH | O_NOFOLLOW);
  try {
    const now = fs.fstatSync(fd, { bigint: true });
    if (now.ino !== st.ino || now.dev !== st.dev || foreignLinks(now, e)) {
      throw new ForeignInodeError('changed during the restore (another inode or extra hard links); metadata not applied');
    }
    // /proc/self/fd/N of an O_PATH descriptor resolves to exactly the pinned inode.
    const pinned = `/proc/self/fd/${fd}`;
    if (init.chown) fs.chownSync(pinned, e.u, e.g);
    fs.chmodSync(pinned, e.m);
    const t = mtimeSeconds(e);
    fs.utimesSync(pinned, t, t);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The temp name for an entry: derived from the final name, so a re-run after a crash reuses
 * (and so removes) what an interrupted run left. Long names are shortened with a hash.
 */
function tmpName(finalName: string): string {
  const n = finalName.length > 200 ? createHash('sha256').update(finalName, 'latin1').digest('hex') : finalName;
  return `${TMP_PREFIX}${n}`;
}

/** Removes a leftover temp entry of an interrupted run, so O_EXCL creation can proceed. */
function clearTmp(dfd: number, tmp: string): void {
  try { fs.unlinkSync(procPath(dfd, tmp)); } catch { /* none */ }
}

/** Moves a finished temp entry into place: rename when replacing is allowed, else link (fails if something appeared). */
function install(dfd: number, tmp: string, name: string, replace: boolean, parentRel?: string): ItemResult {
  if (parentRel !== undefined && !freshDirs.has(parentRel)) touchedDirs.add(parentRel);
  const from = procPath(dfd, tmp);
  const to = procPath(dfd, name);
  if (replace) {
    fs.renameSync(from, to);
    return { ok: true };
  }
  try {
    fs.linkSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      fs.unlinkSync(from);
      return { ok: true, skipped: true, msg: 'appeared during the restore; left untouched' };
    }
    if (code === 'EPERM' || code === 'EXDEV' || code === 'ENOTSUP') {
      // No hardlinks here (or to this type): check-then-rename, a tiny window instead of none.
      if (lstatAt(dfd, name)) { fs.unlinkSync(from); return { ok: true, skipped: true, msg: 'appeared during the restore; left untouched' }; }
      fs.renameSync(from, to);
      return { ok: true };
    }
    fs.unlinkSync(from);
    throw e;
  }
  fs.unlinkSync(from);
  return { ok: true };
}

function classify(e: WireEntry): ClassifyResult {
  const parentRel = splitParent(e.rel)[0];
  if (freshDirs.has(parentRel) && !init.dryRun) {
    // Created by us moments ago: the entry cannot exist yet, no need to look.
    return { ...create(e), fresh: true };
  }
  const { fd: dfd, name } = parentFd(e.rel, false);
  const mode = init.mode;
  if (mode === 'missing' && !e.anc) {
    // Only existence matters: one readdir per directory instead of one lstat per entry.
    if (dfd !== null && dirNames(parentRel, dfd).has(name)) return { c: 'skip-present' };
    return create(e);
  }
  const st = dfd === null ? undefined : lstatAt(dfd, name);
  if (!st) {
    if (mode === 'metadata') return { c: 'skip-present', msg: 'missing; metadata mode writes no content' };
    return create(e);
  }
  if (e.anc) return { c: 'skip-present' };
  const same = typeMatches(st, e.t);
  if (mode === 'missing') return { c: 'skip-present' };
  const foreign = foreignLinks(st, e);
  const foreignWhy = foreign ? `the live entry has ${st.nlink} hard links, the snapshot recorded ${e.nl}: not the snapshot's inode` : '';
  if (mode === 'metadata') {
    if (!same) return { c: 'skip-conflict', msg: `type differs (snapshot: ${e.t}); metadata mode does not replace entries` };
    if (foreign) return { c: 'error', msg: `${foreignWhy}; refused (metadata mode writes no content; restore it with --mode changed)` };
    if (e.t === 'dir') return metaDiffers(st, e, true) ? { c: 'dirmeta' } : { c: 'skip-same' };
    if (!metaDiffers(st, e, true)) return { c: 'skip-same' };
    if (!init.dryRun) applyMetaAt(dfd!, name, e, st);
    return { c: 'meta' };
  }
  // changed / checksum / all
  const newer = st.mtimeNs > BigInt(init.snapshotTimeNs) && !init.overwriteNewer;
  if (e.t === 'dir') {
    if (!same) return st.isDirectory() ? { c: 'skip-conflict' } : newer ? { c: 'skip-newer' } : { c: 'skip-conflict', msg: 'a non-directory is where the snapshot has a directory; not replaced' };
    return metaDiffers(st, e, true) ? { c: 'dirmeta' } : { c: 'skip-same' };
  }
  if (st.isDirectory()) return { c: 'skip-conflict', msg: `a directory is where the snapshot has a ${e.t}; not replaced` };
  if (newer) return { c: 'skip-newer', msg: 'modified after the snapshot' };
  // Someone else's inode at this name: the name gets a fresh copy; the inode is never touched.
  if (foreign) return { ...create(e, true), why: foreignWhy };
  let contentDiffers = mode === 'all' || !same;
  if (!contentDiffers && (e.t === 'file' || e.t === 'hardlink')) {
    contentDiffers = Number(st.size) !== e.s || usec(st.mtimeNs) !== usec(BigInt(e.mt));
    if (!contentDiffers && mode === 'checksum' && e.fp) contentDiffers = fileFingerprint(dfd!, name) !== e.fp;
  } else if (!contentDiffers && e.t === 'symlink') {
    contentDiffers = fs.readlinkSync(procPath(dfd!, name), { encoding: 'buffer' }).toString('latin1') !== e.tg;
  } else if (!contentDiffers && (e.t === 'chardev' || e.t === 'blockdev')) {
    contentDiffers = Number(st.rdev) !== e.rd;
  }
  if (contentDiffers) {
    const r = create(e, true);
    return r;
  }
  if (!metaDiffers(st, e, true)) return { c: 'skip-same' };
  if (!init.dryRun) applyMetaAt(dfd!, name, e, st);
  return { c: 'meta' };
}

/** Creates an entry that is missing (or replaces one when `replace`). Files and hardlinks are deferred. */
function create(e: WireEntry, replace = false): ClassifyResult {
  if (e.t === 'file') return e.content ? { c: 'content', replace } : { c: 'skip-nocontent', msg: 'the snapshot could not read this file; nothing to restore' };
  if (e.t === 'hardlink') return { c: 'link', replace };
  if (e.t === 'socket') return { c: 'skip-unsupported', msg: 'sockets are not restored' };
  if (init.dryRun) return { c: e.t === 'dir' ? 'created' : 'created', replace };
  if (e.t === 'dir') {
    root.dirFd(e.rel, true);
    return { c: 'created' };
  }
  const { fd: dfd, name } = parentFd(e.rel, true);
  const tmp = tmpName(name);
  clearTmp(dfd!, tmp);
  const tp = procPath(dfd!, tmp);
  if (e.t === 'symlink') {
    fs.symlinkSync(toFs(e.tg ?? ''), tp);
  } else if (e.t === 'fifo') {
    execFileSync('mkfifo', ['-m', (e.m & 0o777).toString(8), Buffer.from(procPathForChild(dfd!, tmp), 'latin1') as unknown as string]);
  } else {
    // Linux dev_t layout (glibc gnu_dev_major/minor) for the 32-bit values devices use in practice.
    const major = (e.rd >>> 8) & 0xfff;
    const minor = (e.rd & 0xff) | ((e.rd >>> 12) & 0xfff00);
    execFileSync('mknod', [Buffer.from(procPathForChild(dfd!, tmp), 'latin1') as unknown as string, e.t === 'chardev' ? 'c' : 'b', String(major), String(minor)]);
  }
  const st = lstatAt(dfd!, tmp)!;
  applyMetaAt(dfd!, tmp, e, st);
  const r = install(dfd!, tmp, name, replace, splitParent(e.rel)[0]);
  return r.skipped ? { c: 'skip-present', msg: r.msg } : { c: 'created', replace };
}

function write(it: WriteItem): ItemResult {
  const { fd: dfd, name } = parentFd(it.rel, true);
  if (dfd === null) return { ok: false, msg: 'parent directory missing' };
  if (it.replace && !init.overwriteNewer) {
    const st = lstatAt(dfd, name);
    if (st && st.mtimeNs > BigInt(init.snapshotTimeNs)) return { ok: true, skipped: true, msg: 'modified after the snapshot' };
  }
  const tmp = tmpName(name);
  clearTmp(dfd!, tmp);
  // The orchestrator sets umask 0, so the file is created with its final permission bits; only
  // set-id/sticky bits need a chmod after chown (chown clears them).
  const fd = fs.openSync(procPath(dfd, tmp), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW, it.e.m & 0o777);
  try {
    writeAt(fd, Buffer.from(it.sab, it.off, it.len), 0);
    if (it.len > SPARSE_BLOCK) fs.ftruncateSync(fd, it.len);
    if (init.chown) fs.fchownSync(fd, it.e.u, it.e.g);
    if (it.e.m & 0o7000 || init.umask !== 0) fs.fchmodSync(fd, it.e.m);
    const t = mtimeSeconds(it.e);
    fs.futimesSync(fd, t, t);
  } catch (e) {
    fs.closeSync(fd);
    fs.unlinkSync(procPath(dfd, tmp));
    throw e;
  }
  fs.closeSync(fd);
  return install(dfd, tmp, name, it.replace || it.fresh, splitParent(it.rel)[0]);
}


// ---- direct strategy: read pack files of a local repository in this thread ---------------

const packFds = new Map<string, number>();
let chunkBuf = Buffer.allocUnsafe(1 << 20);

function packFd(pack: string): number {
  let fd = packFds.get(pack);
  if (fd === undefined) {
    if (packFds.size >= 64) {
      const [k, v] = packFds.entries().next().value as [string, number];
      packFds.delete(k);
      fs.closeSync(v);
    }
    fd = fs.openSync(`${init.repoDir}/data/${pack.slice(0, 2)}/${pack}`, 'r');
    packFds.set(pack, fd);
  } else {
    // Keep recently used packs at the end (LRU order).
    packFds.delete(pack);
    packFds.set(pack, fd);
  }
  return fd;
}

class CorruptChunkError extends Error {}
const verified = new Map<string, boolean>();

/** Reads and verifies one chunk; the returned view is valid until the next call. */
function readChunk(c: ChunkRef): Buffer {
  if (chunkBuf.length < c.len) chunkBuf = Buffer.allocUnsafe(Math.max(c.len, chunkBuf.length * 2));
  const buf = chunkBuf.subarray(0, c.len);
  const fd = packFd(c.pack);
  let got = 0;
  while (got < c.len) {
    const n = fs.readSync(fd, buf, got, c.len - got, c.off + got);
    if (n === 0) throw new CorruptChunkError(`pack ${c.pack.slice(0, 12)} is truncated`);
    got += n;
  }
  // Shared content (the same WordPress core file in 500 accounts) is verified once per worker;
  // `verified` remembers whether it was stored plain (true) or compressed (false).
  const known = verified.get(c.id);
  if (known === true) return buf;
  if (known === false) return inflateKnown(buf);
  const plainData = openBlob(buf, c.id);
  if (plainData === null) throw new CorruptChunkError(`content blob ${c.id.slice(0, 12)} in pack ${c.pack.slice(0, 12)} is corrupt`);
  if (verified.size >= 50000) verified.clear(); // bounded memory; a miss only costs a re-hash
  verified.set(c.id, plainData === buf);
  return plainData;
}

/** Writes a file from its chunks to a temp name, then installs it; nothing lands at the final path unless complete and verified. */
function writeFromChunks(e: WireEntry, chunks: ChunkRef[], replace: boolean, fresh: boolean): ClassifyResult {
  const { fd: dfd, name } = parentFd(e.rel, true);
  if (dfd === null) return { c: 'error', msg: 'parent directory missing' };
  if (replace && !init.overwriteNewer) {
    const st = lstatAt(dfd, name);
    if (st && st.mtimeNs > BigInt(init.snapshotTimeNs)) return { c: 'skip-newer', msg: 'modified after the snapshot' };
  }
  const tmp = tmpName(name);
  if (!fresh) clearTmp(dfd, tmp); // a fresh directory cannot hold leftovers
  const fd = fs.openSync(procPath(dfd, tmp), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW, e.m & 0o777);
  try {
    let pos = 0;
    for (const c of chunks) {
      const data = readChunk(c);
      writeAt(fd, data, pos);
      pos += data.length;
    }
    if (pos > SPARSE_BLOCK) fs.ftruncateSync(fd, pos);
    if (init.chown) fs.fchownSync(fd, e.u, e.g);
    if (e.m & 0o7000 || init.umask !== 0) fs.fchmodSync(fd, e.m);
    const t = mtimeSeconds(e);
    fs.futimesSync(fd, t, t);
  } catch (err) {
    fs.closeSync(fd);
    fs.unlinkSync(procPath(dfd, tmp));
    if (err instanceof CorruptChunkError) return { c: 'error', msg: `${err.message}; file not restored` };
    throw err;
  }
  fs.closeSync(fd);
  const r = install(dfd, tmp, name, replace || fresh, splitParent(e.rel)[0]);
  return r.skipped ? { c: 'skip-present', msg: r.msg } : { c: 'written' };
}

function restoreItem(it: RestoreItem): ClassifyResult {
  const r = classify(it.e);
  if (r.c !== 'content' || init.dryRun) return r;
  // The first name of a hard-link group: a surviving name may be re-linked instead of a fresh
  // copy, which only the orchestrator can know (it sees the whole group): written later.
  if (it.e.nl > 1 && !r.replace) return r;
  if (!it.chunks) return { c: 'error', msg: 'content blob is not in the repository index' };
  const w = writeFromChunks(it.e, it.chunks, !!r.replace, !!r.fresh);
  return r.why ? { ...w, why: r.why } : w;
}

/**
 * Links `rel` to the live entry at `first`, only when that entry is still the snapshot's file:
 * a regular file with the recorded size, mtime and owner, and no more links than recorded.
 * Anything else (missing, changed, someone else's inode) is refused, and the caller writes a
 * copy of its own instead.
 */
function link(it: LinkItem): ItemResult {
  const first = parentFd(it.first, false);
  if (first.fd === null) return { ok: false, msg: 'hardlink source missing' };
  const src = lstatAt(first.fd, first.name);
  if (!src || !src.isFile()) return { ok: false, msg: 'hardlink source missing' };
  const want = it.source;
  // One more link must not exceed the recorded count: more means links the snapshot never had.
  if (Number(src.size) !== want.s || !sameMtime(src.mtimeNs, want.mt) || Number(src.nlink) >= want.nl ||
    (init.chown && (Number(src.uid) !== want.u || Number(src.gid) !== want.g))) {
    return { ok: false, msg: 'hardlink source no longer matches the snapshot' };
  }
  const { fd: dfd, name } = parentFd(it.rel, true);
  const tmp = tmpName(name);
  clearTmp(dfd!, tmp);
  fs.linkSync(procPath(first.fd, first.name), procPath(dfd!, tmp));
  // The link pinned an inode: prove it is the one checked (a swap in between is undone).
  const linked = lstatAt(dfd!, tmp);
  if (!linked || linked.ino !== src.ino || linked.dev !== src.dev) {
    fs.unlinkSync(procPath(dfd!, tmp));
    return { ok: false, msg: 'hardlink source changed during the restore' };
  }
  return install(dfd!, tmp, name, it.replace, splitParent(it.rel)[0]);
}

function sameMtime(liveNs: bigint, snapNs: string): boolean {
  return usec(liveNs) === usec(BigInt(snapNs));
}

function dirmeta(e: WireEntry): ItemResult {
  const fd = root.dirFd(e.rel, false);
  if (fd === null) return { ok: false, msg: 'directory vanished' };
  applyMetaFd(fd, e);
  return { ok: true };
}

function run<T>(items: T[], fn: (x: T) => ClassifyResult | ItemResult, relOf: (x: T) => string): (ClassifyResult | ItemResult)[] {
  return items.map((x) => {
    try {
      return fn(x);
    } catch (e) {
      if (e instanceof UnsafePathError) root.forget(splitParent(relOf(x))[0]);
      return { c: 'error', ok: false, msg: errMsg(e) } as ClassifyResult & ItemResult;
    }
  });
}

parentPort!.on('message', async (msg: ToWorker) => {
  try {
    if (msg.op === 'init') {
      init = msg.init;
      journal = init.journalDir ? fs.openSync(`${init.journalDir}/worker-${process.pid}-${threadId}.log`, 'a', 0o600) : null;
      root = new SafeRoot(init.root, (rel) => {
        createdDirs.push(rel);
        freshDirs.add(rel);
      }, (rel) => {
        // Journaled before the directory exists: a killed run's re-run finds and finishes it.
        if (journal !== null) fs.writeSync(journal, Buffer.from(rel, 'latin1').toString('base64') + '\n');
      });
      hasher = await xxhash();
      parentPort!.postMessage({ id: -1, results: [], createdDirs: [], touchedDirs: [] } satisfies FromWorker);
      return;
    }
    createdDirs = [];
    touchedDirs = new Set();
    let results: (ClassifyResult | ItemResult)[];
    if (msg.op === 'classify') results = run(msg.items, classify, (x) => x.rel);
    else if (msg.op === 'write') results = run(msg.items, write, (x) => x.rel);
    else if (msg.op === 'restore') results = run(msg.items, restoreItem, (x) => x.e.rel);
    else if (msg.op === 'link') results = run(msg.items, link, (x) => x.rel);
    else results = run(msg.items, dirmeta, (x) => x.rel);
    parentPort!.postMessage({ id: msg.id, results, createdDirs, touchedDirs: [...touchedDirs] } satisfies FromWorker);
  } catch (e) {
    parentPort!.postMessage({ id: (msg as { id?: number }).id ?? -1, fatal: errMsg(e) } satisfies FromWorker);
  }
});
