/**
 * Snapshot reader thread: lists directories (native scan, relative to the parent's fd) and
 * reads small files whole (native batched read, relative to the directory's fd), fingerprints
 * them (xxh64), identifies them (SHA-256) and compresses them for the repository, off the main
 * thread (DESIGN.md: synchronous calls in a few threads). Files larger than one chunk go back
 * to the main thread.
 */
import { parentPort } from 'node:worker_threads';
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { XXHashAPI } from 'xxhash-wasm';
import { xxh } from '../livefs/fingerprint.js';
import { DirScan, errnoName, openDirAt } from '../livefs/native.js';
import { FileBatch, nativeRead, NOT_REGULAR, openRoot, readErrorName } from '../livefs/nativeread.js';
import { encodeForStore, sealBlob } from '../pack/codec.js';
import { blobIdNative } from '../pack/nativecodec.js';
import {
  SCAN_FIELDS,
  type HashInit,
  EXPECT_FIELDS,
  type HashItems,
  type HashReply,
  type HashRequest,
  type HashResult,
  type HashStat,
  type ScanResult,
} from './hashprotocol.js';

const ENOENT = os.constants.errno.ENOENT;

const RETRIES = 3;
/** Bytes of file content one native read call may gather (one file bigger than this goes alone). */
const BATCH_BYTES = 4 << 20;
let hasher: XXHashAPI;
/** The repository's data key: stored blobs are sealed here, not on the main thread (null: unencrypted). */
let key: Buffer | null = null;
const batch = new FileBatch();
const scanned = new DirScan();
/** Content this thread already stored: no need to compress it again (the main thread has it). */
const seen = new Set<string>();
/** Bounded memory: a miss only costs a redundant compression. */
const SEEN_MAX = 20000;

function statOf(b: FileBatch, i: number): HashStat {
  return {
    mode: b.mode(i),
    uid: b.uid(i),
    gid: b.gid(i),
    size: Number(b.size(i)),
    mtime: b.mtimeNs(i).toString(),
    ctime: b.ctimeNs(i).toString(),
    ino: b.ino(i).toString(),
    dev: b.dev(i).toString(),
    nlink: b.nlink(i),
    isFile: true,
  };
}

interface Expect {
  size: bigint;
  mtime: bigint;
  ctime: bigint;
  ino: bigint;
}

/** The result of entry i of a batch just read; null when it changed during the read and gets another attempt. */
function resultOf(b: FileBatch, i: number, expect: Expect, last: boolean, chunkSize: number): HashResult | null {
  const err = b.errno(i);
  if (err === NOT_REGULAR) return { code: 'error', msg: 'no longer a regular file' };
  if (err !== 0) return { code: 'error', msg: `${readErrorName(err)}: open` };
  const n = b.length(i);
  if (n > chunkSize || b.size(i) > BigInt(chunkSize)) return { code: 'big' };
  const stable =
    b.size(i) === expect.size &&
    b.mtimeNs(i) === expect.mtime &&
    b.ctimeNs(i) === expect.ctime &&
    b.ino(i) === expect.ino &&
    BigInt(n) === b.size(i);
  if (!stable && !last) return null;
  const data = b.data(i);
  const fp = hasher.h64Raw(data).toString(16).padStart(16, '0');
  const st = statOf(b, i);
  if (n === 0) return { code: 'ok', fp, id: null, stored: null, sealed: false, st, torn: !stable, read: 0 };
  const id = blobIdNative(data);
  let stored: Uint8Array | null = null;
  if (!seen.has(id)) {
    const enc = encodeForStore(data);
    // Sealed here when encrypted (the same bytes PackWriter.add would write); a fresh buffer
    // either way, as it is transferred to the main thread.
    stored = key ? sealBlob(key, id, enc) : new Uint8Array(enc === data ? Buffer.from(data) : enc);
    if (seen.size >= SEEN_MAX) seen.clear();
    seen.add(id);
  }
  return { code: 'ok', fp, id, stored, sealed: key !== null && stored !== null, st, torn: !stable, read: n };
}

/**
 * Reads, fingerprints, identifies and compresses the small files of one directory: batches of
 * whole-file reads relative to the directory's fd (native/read.c), each file's stat taken on
 * its open fd after the read. A file whose stat after the read differs from what was expected
 * (or whose bytes do not match its size) is read again, up to RETRIES times, then kept as torn.
 */
function hashDir(dirFd: number, items: HashItems, chunkSize: number): HashResult[] {
  const names = items.names.split('/');
  const e = items.expect;
  const results: (HashResult | null)[] = names.map(() => null);
  let todo = names.map((_, i) => {
    const o = i * EXPECT_FIELDS;
    return { i, expect: { size: e[o], mtime: e[o + 1], ctime: e[o + 2], ino: BigInt.asUintN(64, e[o + 3]) } };
  });
  for (let attempt = 1; todo.length; attempt++) {
    const again: typeof todo = [];
    for (let from = 0; from < todo.length;) {
      // One call gathers files up to BATCH_BYTES; each slot is one byte more than the size expected, to see growth.
      let bytes = 0;
      let to = from;
      const cap = (t: (typeof todo)[number]) => Math.min(Number(t.expect.size), chunkSize) + 1;
      while (to < todo.length && (to === from || bytes + cap(todo[to]) <= BATCH_BYTES)) bytes += cap(todo[to++]);
      const part = todo.slice(from, to);
      batch.read(
        dirFd,
        part.map((t) => names[t.i]),
        part.map(cap),
      );
      part.forEach((t, k) => {
        const r = resultOf(batch, k, t.expect, attempt >= RETRIES, chunkSize);
        if (r) results[t.i] = r;
        else again.push({ i: t.i, expect: { size: batch.size(k), mtime: batch.mtimeNs(k), ctime: batch.ctimeNs(k), ino: batch.ino(k) } });
      });
      from = to;
    }
    todo = again;
  }
  return results as HashResult[];
}

/**
 * The directory `name` opened relative to its parent's fd, never through a symlink; or the
 * root by path. Always through the addon, never fs.openSync: Node closes at a worker's exit
 * the fds that worker opened through fs, and these fds outlive the call (the main thread
 * closes them); a second close would hit whatever reused the number (an S3 socket: EBADF).
 */
function openDir(parentFd: number, name: string, path: string): number {
  return parentFd >= 0 ? openDirAt(parentFd, name) : openRoot(path);
}

/**
 * Opens a directory and lists it with each entry's lstat fields in one native call per
 * directory (getdents64 + fstatat), sorted by name; the fd stays open for the walk.
 */
function scanDir(parentFd: number, name: string, path: string): ScanResult {
  const fd = openDir(parentFd, name, path);
  if (fd < 0) return { error: `${errnoName(-fd)}: opendir` };
  const rc = scanned.read(fd);
  if (rc < 0) {
    fs.closeSync(fd);
    return { error: `${errnoName(-rc)}: scandir` };
  }
  const count = scanned.count;
  const raw: string[] = new Array<string>(count);
  const order = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    raw[i] = scanned.name(i);
    order[i] = i;
  }
  order.sort((a, b) => (raw[a] < raw[b] ? -1 : raw[a] > raw[b] ? 1 : 0));
  const names: string[] = new Array<string>(count);
  const stats = new BigUint64Array(count * SCAN_FIELDS);
  const status = new Uint8Array(count);
  const errors: string[] = [];
  for (let k = 0; k < count; k++) {
    const i = order[k];
    names[k] = raw[i];
    const err = scanned.errs[i];
    if (err === ENOENT) {
      status[k] = 1;
      continue;
    }
    if (err !== 0) {
      status[k] = 2;
      errors.push(`${errnoName(err)}: lstat`);
      continue;
    }
    const o = k * SCAN_FIELDS;
    stats[o] = BigInt(scanned.mode(i));
    stats[o + 1] = BigInt(scanned.uid(i));
    stats[o + 2] = BigInt(scanned.gid(i));
    stats[o + 3] = scanned.size(i);
    stats[o + 4] = BigInt.asUintN(64, scanned.mtimeNs(i));
    stats[o + 5] = BigInt.asUintN(64, scanned.ctimeNs(i));
    stats[o + 6] = scanned.ino(i);
    stats[o + 7] = scanned.dev(i);
    stats[o + 8] = BigInt(scanned.nlink(i));
    stats[o + 9] = BigInt(scanned.rdev(i));
  }
  return { fd, names, stats, status, errors };
}

/** A listing's arrays, moved to the main thread rather than copied. */
function scanBuffers(r: ScanResult): ArrayBuffer[] {
  return 'stats' in r ? [r.stats.buffer as ArrayBuffer, r.status.buffer as ArrayBuffer] : [];
}

/**
 * Loads the hasher, then tells the pool this thread is ready. A failure is left unhandled on
 * purpose: it ends the thread, which the pool sees as the worker's 'error'.
 */
async function init(init: HashInit | null): Promise<void> {
  key = init?.key ? Buffer.from(init.key) : null;
  nativeRead(); // the addon is loaded now: a missing build fails the start, not the first read
  hasher = await xxh();
  parentPort!.postMessage({ id: -1 });
}

// The protocol of livefs/pool.ts: init first (answered with id -1), then one reply per request id.
parentPort!.on('message', (m: { op: 'init'; init: HashInit | null } | (HashRequest & { id: number })) => {
  if (m.op === 'init') {
    void init(m.init);
    return;
  }
  if (m.op === 'scan') {
    const r = scanDir(m.parentFd, m.name, m.path);
    parentPort!.postMessage({ id: m.id, scan: r } satisfies HashReply, scanBuffers(r));
    return;
  }
  if (m.op === 'scans') {
    const rs = m.names.map((name) => scanDir(m.parentFd, name, ''));
    parentPort!.postMessage({ id: m.id, scans: rs } satisfies HashReply, rs.flatMap(scanBuffers));
    return;
  }
  const results = hashDir(m.dirFd, m.items, m.chunkSize);
  const transfer = results.flatMap((r) => (r.code === 'ok' && r.stored ? [r.stored.buffer as ArrayBuffer] : []));
  parentPort!.postMessage({ id: m.id, results } satisfies HashReply, transfer);
});
