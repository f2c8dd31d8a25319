/**
 * Snapshot reader thread: reads a small file whole, fingerprints it (xxh64), identifies it
 * (SHA-256) and compresses it for the repository, off the main thread (DESIGN.md: synchronous
 * calls in a few threads). Files larger than one chunk go back to the main thread.
 */
import { parentPort } from 'node:worker_threads';
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import type { XXHashAPI } from 'xxhash-wasm';
import { xxh } from '../livefs/fingerprint.js';
import { encodeForStore } from '../pack/codec.js';
import {
  SCAN_FIELDS,
  type HashItem,
  type HashReply,
  type HashRequest,
  type HashResult,
  type HashStat,
  type ScanResult,
} from './hashprotocol.js';

const O_NOATIME = (fs.constants as Record<string, number>).O_NOATIME ?? 0;
const FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const RETRIES = 3;
let hasher: XXHashAPI;
let noatime = O_NOATIME;
let buf = Buffer.allocUnsafe(1 << 16);
/** Content this thread already stored: no need to compress it again (the main thread has it). */
const seen = new Set<string>();

function statOf(st: fs.BigIntStats): HashStat {
  return {
    mode: Number(st.mode),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtime: st.mtimeNs.toString(),
    ctime: st.ctimeNs.toString(),
    ino: st.ino.toString(),
    dev: st.dev.toString(),
    nlink: Number(st.nlink),
    isFile: st.isFile(),
  };
}

function open(p: Buffer): number {
  try {
    return fs.openSync(p, FLAGS | noatime);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EPERM' && noatime) {
      noatime = 0; // not the owner and not root: O_NOATIME is refused
      return fs.openSync(p, FLAGS);
    }
    throw e;
  }
}

function hashOne(it: HashItem, chunkSize: number): HashResult {
  const path = Buffer.from(it.path, 'latin1');
  let expect = { size: BigInt(it.size), mtime: BigInt(it.mtime), ctime: BigInt(it.ctime), ino: BigInt(it.ino) };
  for (let attempt = 1; ; attempt++) {
    let fd: number;
    try {
      fd = open(path);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return { code: 'error', msg: err.code ? `${err.code}: ${err.syscall ?? 'open'}` : String(err.message) };
    }
    try {
      const before = fs.fstatSync(fd, { bigint: true });
      if (!before.isFile()) return { code: 'error', msg: 'no longer a regular file' };
      if (before.size > BigInt(chunkSize)) return { code: 'big' };
      const want = Number(before.size) + 1; // one byte more shows growth during the read
      if (buf.length < want) buf = Buffer.allocUnsafe(Math.max(want, buf.length * 2));
      let n = 0;
      while (n < want) {
        const r = fs.readSync(fd, buf, n, want - n, null);
        if (r === 0) break;
        n += r;
      }
      if (n > chunkSize) return { code: 'big' };
      const after = fs.fstatSync(fd, { bigint: true });
      const stable =
        after.size === expect.size &&
        after.mtimeNs === expect.mtime &&
        after.ctimeNs === expect.ctime &&
        after.ino === expect.ino &&
        BigInt(n) === after.size;
      if (!stable && attempt < RETRIES) {
        expect = { size: after.size, mtime: after.mtimeNs, ctime: after.ctimeNs, ino: after.ino };
        continue;
      }
      const data = buf.subarray(0, n);
      const fp = hasher.h64Raw(data).toString(16).padStart(16, '0');
      if (n === 0) return { code: 'ok', fp, id: null, stored: null, st: statOf(after), torn: !stable, read: 0 };
      const id = createHash('sha256').update(data).digest('hex');
      let stored: Uint8Array | null = null;
      if (!seen.has(id)) {
        const enc = encodeForStore(data);
        stored = new Uint8Array(enc === data ? Buffer.from(data) : enc);
        if (seen.size > 100000) seen.clear(); // bounded memory; a miss only costs a redundant compression
        seen.add(id);
      }
      return { code: 'ok', fp, id, stored, st: statOf(after), torn: !stable, read: n };
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return { code: 'error', msg: err.code ? `${err.code}: ${err.syscall ?? 'read'}` : String(err.message) };
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Lists a directory and lstats its entries: the walk's syscalls, done off the main thread. */
function scanDir(dir: string): ScanResult {
  let names: string[];
  try {
    names = (fs.readdirSync(Buffer.from(dir, 'latin1'), { encoding: 'buffer' }) as Buffer[]).map((b) => b.toString('latin1'));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { error: err.code ? `${err.code}: ${err.syscall ?? 'scandir'}` : String(err.message) };
  }
  names.sort();
  const stats = new BigUint64Array(names.length * SCAN_FIELDS);
  const status = new Uint8Array(names.length);
  const errors: string[] = [];
  const prefix = dir === '/' ? '/' : dir + '/';
  for (let i = 0; i < names.length; i++) {
    let st: fs.BigIntStats | undefined;
    try {
      st = fs.lstatSync(Buffer.from(prefix + names[i], 'latin1'), { bigint: true, throwIfNoEntry: false });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      status[i] = 2;
      errors.push(err.code ? `${err.code}: lstat` : String(err.message));
      continue;
    }
    if (!st) {
      status[i] = 1;
      continue;
    }
    const o = i * SCAN_FIELDS;
    stats[o] = st.mode;
    stats[o + 1] = st.uid;
    stats[o + 2] = st.gid;
    stats[o + 3] = st.size;
    stats[o + 4] = st.mtimeNs;
    stats[o + 5] = st.ctimeNs;
    stats[o + 6] = st.ino;
    stats[o + 7] = st.dev;
    stats[o + 8] = st.nlink;
    stats[o + 9] = st.rdev;
  }
  return { names, stats, status, errors };
}

/**
 * Loads the hasher, then tells the pool this thread is ready. A failure is left unhandled on
 * purpose: it ends the thread, which the pool sees as the worker's 'error'.
 */
async function init(): Promise<void> {
  hasher = await xxh();
  parentPort!.postMessage({ id: -1 });
}

// The protocol of livefs/pool.ts: init first (answered with id -1), then one reply per request id.
parentPort!.on('message', (m: { op: 'init' } | (HashRequest & { id: number })) => {
  if (m.op === 'init') {
    void init();
    return;
  }
  if (m.op === 'scan') {
    const r = scanDir(m.dir);
    parentPort!.postMessage(
      { id: m.id, scan: r } satisfies HashReply,
      'stats' in r ? [r.stats.buffer as ArrayBuffer, r.status.buffer as ArrayBuffer] : [],
    );
    return;
  }
  const results = m.items.map((it) => hashOne(it, m.chunkSize));
  const transfer = results.flatMap((r) => (r.code === 'ok' && r.stored ? [r.stored.buffer as ArrayBuffer] : []));
  parentPort!.postMessage({ id: m.id, results } satisfies HashReply, transfer);
});
