import { mtimeUsOf, sameMtime, tooManyLinks } from '../livefs/compare.js';
import { installFile, installLink, type InstallResult } from '../livefs/install.js';
import { setMetaFd } from '../livefs/meta.js';
import { CorruptChunkError, LocalPacks } from './localpacks.js';
import type { ChunkRef, ClassifyResult, ItemResult, LinkItem, RestoreItem, WireEntry, WriteItem } from './protocol.js';
import { classify } from './worker-classify.js';
import { installed, lstatAt, parentFd, placement, worker } from './worker-state.js';

/**
 * The content phase in a worker: files written through the one install primitive
 * (livefs/install.ts) from a shared buffer of decoded blobs (planned strategy) or straight from
 * the local pack files (direct strategy), hard links, and directory metadata at the end.
 */

function asItem(r: InstallResult): ItemResult {
  return r.installed ? { ok: true } : { ok: true, skipped: true, msg: r.msg };
}

/** A file whose content the orchestrator decoded into a shared buffer (planned strategy). */
export function write(it: WriteItem): ItemResult {
  const { fd: dfd, name } = parentFd(it.rel, true);
  if (dfd === null) return { ok: false, msg: 'parent directory missing' };
  const r = installFile(dfd, name, it.entry, worker.policy, placement(it.replace, it.fresh), (t) =>
    t.write(Buffer.from(it.sab, it.offset, it.length)),
  );
  return asItem(installed(it.rel, r));
}

let packs: LocalPacks | null = null;

/** Writes a file from its chunks in the local packs; nothing lands at the final path unless complete and verified. */
function writeFromChunks(e: WireEntry, chunks: ChunkRef[], replace: boolean, fresh: boolean): ClassifyResult {
  const { fd: dfd, name } = parentFd(e.rel, true);
  if (dfd === null) return { outcome: 'error', msg: 'parent directory missing' };
  packs ??= new LocalPacks(worker.init.repoDir!);
  const local = packs;
  let r: InstallResult;
  try {
    r = installFile(dfd, name, e, worker.policy, placement(replace, fresh), (t) => {
      for (const c of chunks) t.write(local.read(c));
    });
  } catch (err) {
    if (err instanceof CorruptChunkError) return { outcome: 'error', msg: `${err.message}; file not restored` };
    throw err;
  }
  installed(e.rel, r);
  if (r.installed) return { outcome: 'written' };
  return r.reason === 'newer' ? { outcome: 'skip-newer', msg: r.msg } : { outcome: 'skip-present', msg: r.msg };
}

/** Direct strategy: classify, and write the content at once when it is needed. */
export function restoreItem(it: RestoreItem): ClassifyResult {
  const r = classify(it.entry);
  if (r.outcome !== 'content' || worker.init.dryRun) return r;
  // The first name of a hard-link group: a surviving name may be re-linked instead of a fresh
  // copy, which only the orchestrator can know (it sees the whole group): written later.
  if (it.entry.nlink > 1 && !r.replace) return r;
  if (!it.chunks) return { outcome: 'error', msg: 'content blob is not in the repository index' };
  const w = writeFromChunks(it.entry, it.chunks, !!r.replace, !!r.fresh);
  return r.why ? { ...w, why: r.why } : w;
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
    !sameMtime(src, mtimeUsOf(want.mtimeNs)) ||
    tooManyLinks(Number(src.nlink) + 1, want.nlink) ||
    (worker.policy.chown && (Number(src.uid) !== want.uid || Number(src.gid) !== want.gid))
  ) {
    return { ok: false, msg: 'hardlink source no longer matches the snapshot' };
  }
  const { fd: dfd, name } = parentFd(it.rel, true);
  const r = installed(it.rel, installLink({ dirFd: first.fd, name: first.name, expect: src }, dfd!, name, placement(it.replace)));
  if (!r.installed && r.reason === 'source-changed') return { ok: false, msg: r.msg };
  return asItem(r);
}

export function dirmeta(e: WireEntry): ItemResult {
  const fd = worker.root.dirFd(e.rel, false);
  if (fd === null) return { ok: false, msg: 'directory vanished' };
  setMetaFd(fd, e, worker.policy.chown);
  return { ok: true };
}
