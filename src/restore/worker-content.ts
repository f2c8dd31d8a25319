import { sameMtime, tooManyLinks } from '../livefs/compare.js';
import { installFile, installFiles, installLink, type FileInstall, type InstallResult } from '../livefs/install.js';
import { setMetaFd } from '../livefs/meta.js';
import { lstatAt } from '../livefs/native.js';
import { UnsafePathError } from '../livefs/safepath.js';
import { CorruptChunkError, LocalPacks } from './localpacks.js';
import type { ChunkRef, ClassifyResult, ItemResult, LinkItem, RestoreItem, WireEntry, WriteItem } from './protocol.js';
import { classifyBatch, forgetLive } from './worker-classify.js';
import { errMsg, forRuns, installed, parentFd, placement, worker } from './worker-state.js';

/**
 * The content phase in a worker: files written through the one install primitive
 * (livefs/install.ts), a directory's files per native call, from a shared buffer of decoded
 * blobs (planned strategy) or straight from the local pack files (direct strategy); hard
 * links; and directory metadata at the end.
 */

function asItem(r: InstallResult): ItemResult {
  if (r.installed) return { ok: true };
  if (r.reason === 'failed') return { ok: false, msg: r.msg };
  return { ok: true, skipped: true, msg: r.msg };
}

/** The directory fd for a run of items, creating missing parents; an error message for the run instead when it cannot be had. */
function runDir(parentRel: string): number | string {
  try {
    const fd = worker.root.dirFd(parentRel, true);
    return fd === null ? 'parent directory missing' : fd;
  } catch (e) {
    if (e instanceof UnsafePathError) {
      worker.root.forget(parentRel);
      forgetLive(parentRel);
    }
    return errMsg(e);
  }
}

/** Files whose content the orchestrator decoded into a shared buffer (planned strategy): a directory per native call. */
export function writeBatch(items: readonly WriteItem[]): ItemResult[] {
  const out: ItemResult[] = new Array(items.length);
  forRuns(
    items,
    (x) => x.rel,
    (parentRel, i, j) => {
      const dfd = runDir(parentRel);
      for (let a = i; a < j;) {
        // Items of one batch share the pack group's buffer; split where one does not.
        let b = a + 1;
        while (b < j && items[b].sab === items[a].sab) b++;
        if (typeof dfd === 'string') for (let k = a; k < b; k++) out[k] = { ok: false, msg: dfd };
        else {
          const files: FileInstall[] = [];
          for (let k = a; k < b; k++) {
            const it = items[k];
            files.push({
              name: nameOf(it.rel),
              meta: it.entry,
              place: placement(it.replace, it.fresh),
              offset: it.offset,
              length: it.length,
            });
          }
          const res = installFiles(dfd, files, new Uint8Array(items[a].sab), worker.policy);
          for (let k = a; k < b; k++) out[k] = asItem(installed(items[k].rel, res[k - a]));
        }
        a = b;
      }
    },
  );
  return out;
}

function nameOf(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

let packs: LocalPacks | null = null;

/** The local packs, read with the blob key that crosses with the write gate: reading waits there like a write. */
function openPacks(): LocalPacks {
  const key = worker.blobKey();
  return new LocalPacks(worker.init.repoDir!, key ? Buffer.from(key.buffer, key.byteOffset, key.byteLength) : null);
}
/** The direct strategy's batch buffer: files of one directory read from the packs, installed in one call. */
let batchBuf = Buffer.allocUnsafe(1 << 20);
/** Files larger than this are written chunk by chunk on their own; a batch holds at most about this much. */
const BATCH_BYTES = 8 << 20;

function outcomeOf(r: InstallResult): ClassifyResult {
  if (r.installed) return { outcome: 'written' };
  if (r.reason === 'failed') return { outcome: 'error', msg: r.msg };
  return r.reason === 'newer' ? { outcome: 'skip-newer', msg: r.msg } : { outcome: 'skip-present', msg: r.msg };
}

/** Direct strategy: classify a batch, then write the content it needs, a directory per native call, straight from the local packs. */
export function restoreBatch(items: readonly RestoreItem[]): ClassifyResult[] {
  return restoreEntries(
    items.map((x) => x.entry),
    (k) => items[k].chunks,
  );
}

/**
 * The same for entries whose chunk locations are looked up only when they are written
 * (`chunksOf`, null when a chunk is not in the index): a pass that writes little looks up little.
 */
export function restoreEntries(entries: readonly WireEntry[], chunksOf: (k: number) => ChunkRef[] | null): ClassifyResult[] {
  const res = classifyBatch(entries);
  if (worker.init.dryRun) return res;
  const todo: number[] = [];
  const chunks: (ChunkRef[] | null)[] = new Array(entries.length);
  res.forEach((r, k) => {
    const e = entries[k];
    if (r.outcome !== 'content') return;
    // The first name of a hard-link group: a surviving name may be re-linked instead of a fresh
    // copy, which only the orchestrator can know (it sees the whole group): written later.
    if (e.nlink > 1 && !r.replace) return;
    chunks[k] = chunksOf(k);
    if (!chunks[k]) res[k] = { outcome: 'error', msg: 'content blob is not in the repository index' };
    else todo.push(k);
  });
  if (!todo.length) return res; // nothing to write: no wait at the write gate either
  packs ??= openPacks();
  forRuns(
    todo,
    (k) => entries[k].rel,
    (parentRel, i, j) => {
      const dfd = runDir(parentRel);
      if (typeof dfd === 'string') {
        for (let n = i; n < j; n++) res[todo[n]] = { outcome: 'error', msg: dfd };
        return;
      }
      writeDir(dfd, todo.slice(i, j), entries, chunks, res);
    },
  );
  return res;
}

/** Room for `n` bytes in the batch buffer, keeping the first `used`. */
function ensure(used: number, n: number): void {
  if (batchBuf.length >= used + n) return;
  const grown = Buffer.allocUnsafe(Math.max(used + n, batchBuf.length * 2));
  batchBuf.copy(grown, 0, 0, used);
  batchBuf = grown;
}

/** Writes the files `ks` of one directory; results replace their classify results (keeping a replace reason). */
function writeDir(
  dfd: number,
  ks: number[],
  entries: readonly WireEntry[],
  chunkLists: (ChunkRef[] | null)[],
  res: ClassifyResult[],
): void {
  const local = packs!;
  let files: FileInstall[] = [];
  let batchKs: number[] = [];
  let used = 0;
  const done = (k: number, r: InstallResult) => {
    const why = res[k].why;
    const w = outcomeOf(installed(entries[k].rel, r));
    res[k] = why ? { ...w, why } : w;
  };
  const flush = () => {
    if (!files.length) return;
    const out = installFiles(dfd, files, batchBuf, worker.policy);
    out.forEach((r, n) => done(batchKs[n], r));
    files = [];
    batchKs = [];
    used = 0;
  };
  for (const k of ks) {
    const e = entries[k];
    const chunks = chunkLists[k];
    const r = res[k];
    const place = placement(!!r.replace, !!r.fresh, !!r.clean);
    try {
      if (e.size > BATCH_BYTES) {
        // Large: streamed chunk by chunk through a temp file of its own, never whole in memory.
        done(
          k,
          installFile(dfd, nameOf(e.rel), e, worker.policy, place, (t) => writeChunks(local, chunks!, (b) => t.write(b))),
        );
        continue;
      }
      if (used + e.size > BATCH_BYTES) flush();
      // Each chunk opened straight into the batch buffer (room for the recorded size); one
      // that does not fit there (its blob is not what the size says) is opened and copied.
      ensure(used, e.size);
      let at = used;
      for (const c of chunks!) {
        const n = local.readInto(c, batchBuf.subarray(at));
        if (n >= 0) {
          at += n;
          continue;
        }
        const b = local.read(c);
        ensure(at, b.length);
        b.copy(batchBuf, at);
        at += b.length;
      }
      files.push({ name: nameOf(e.rel), meta: e, place, offset: used, length: at - used });
      batchKs.push(k);
      used = at;
    } catch (err) {
      if (err instanceof CorruptChunkError) res[k] = { outcome: 'error', msg: `${err.message}; file not restored` };
      else res[k] = { outcome: 'error', msg: errMsg(err) };
    }
  }
  flush();
}

function writeChunks(local: LocalPacks, chunks: ChunkRef[], put: (b: Buffer) => void): void {
  for (const c of chunks) put(local.read(c));
}

/**
 * Links `rel` to the live entry at `first`, only when that entry is still the snapshot's file:
 * a regular file with the recorded size, mtime and owner, and no more links than recorded.
 * Anything else (missing, changed, someone else's inode) is refused, and the caller writes a
 * copy of its own instead.
 */
export function link(it: LinkItem): ItemResult {
  const first = parentFd(it.first, false);
  if (first.fd === null) return { ok: false, msg: 'hardlink source missing' };
  const src = lstatAt(first.fd, first.name);
  if (!src || !src.isFile()) return { ok: false, msg: 'hardlink source missing' };
  const want = it.source;
  // One more link must not exceed the recorded count: more means links the snapshot never had.
  if (
    Number(src.size) !== want.size ||
    !sameMtime(src, BigInt(want.mtimeNs)) ||
    tooManyLinks(Number(src.nlink) + 1, want.nlink) ||
    (worker.policy.chown && (Number(src.uid) !== want.uid || Number(src.gid) !== want.gid))
  ) {
    return { ok: false, msg: 'hardlink source no longer matches the snapshot' };
  }
  const { fd: dfd, name } = parentFd(it.rel, true);
  const r = installed(
    it.rel,
    installLink({ dirFd: first.fd, name: first.name, expect: src }, dfd!, name, placement(it.replace), worker.policy),
  );
  if (!r.installed && (r.reason === 'source-changed' || r.reason === 'failed')) return { ok: false, msg: r.msg };
  return asItem(r);
}

export function dirmeta(e: WireEntry): ItemResult {
  const fd = worker.root.dirFd(e.rel, false);
  if (fd === null) return { ok: false, msg: 'directory vanished' };
  setMetaFd(fd, e, worker.policy.chown);
  return { ok: true };
}
