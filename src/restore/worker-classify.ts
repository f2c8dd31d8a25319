import * as fs from 'node:fs';
import { compareEntry, hasForeignLinks, metadataFields, mtimeUsOf, typeMatches, type Recorded } from '../livefs/compare.js';
import { fingerprintFile } from '../livefs/fingerprint.js';
import { installSpecial, modifiedAfter, type SpecialType } from '../livefs/install.js';
import { setMetaAt } from '../livefs/meta.js';
import { procPath, splitParent } from '../livefs/safepath.js';
import type { ClassifyResult, WireEntry } from './protocol.js';
import { installed, lstatAt, parentFd, placement, worker } from './worker-state.js';

/**
 * The classify phase in a worker: compares one snapshot entry with the live entry at its place
 * (the one compare rule, livefs/compare.ts) and decides what the restore does with it. Entries
 * that need no content (directories, symlinks, FIFOs, devices, metadata fixes) are done here.
 */

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

function recorded(e: WireEntry): Recorded {
  return {
    type: e.type,
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size: e.size,
    mtimeUs: mtimeUsOf(e.mtimeNs),
    linkTarget: e.type === 'symlink' ? e.linkTarget : null,
    rdev: e.rdev,
    fingerprint: e.fingerprint,
  };
}

export function classify(e: WireEntry): ClassifyResult {
  const parentRel = splitParent(e.rel)[0];
  if (worker.freshDirs.has(parentRel) && !worker.init.dryRun) {
    // Created by us moments ago: the entry cannot exist yet, no need to look.
    return { ...create(e), fresh: true };
  }
  const { fd: dfd, name } = parentFd(e.rel, false);
  const mode = worker.init.mode;
  if (mode === 'missing' && !e.ancestor) {
    // Only existence matters: one readdir per directory instead of one lstat per entry.
    if (dfd !== null && dirNames(parentRel, dfd).has(name)) return { outcome: 'skip-present' };
    return create(e);
  }
  const st = dfd === null ? undefined : lstatAt(dfd, name);
  if (!st) {
    if (mode === 'metadata') return { outcome: 'skip-present', msg: 'missing; metadata mode writes no content' };
    return create(e);
  }
  if (e.ancestor || mode === 'missing') return { outcome: 'skip-present' };
  if (mode === 'metadata') return classifyMetadata(e, dfd!, name, st);
  return classifyContent(e, dfd!, name, st);
}

function foreignReason(st: fs.BigIntStats, e: WireEntry): string {
  return `the live entry has ${st.nlink} hard links, the snapshot recorded ${e.nlink}: not the snapshot's inode`;
}

/** --mode metadata: owner, mode and times of what is there; never content, never another inode. */
function classifyMetadata(e: WireEntry, dfd: number, name: string, st: fs.BigIntStats): ClassifyResult {
  if (!typeMatches(st, e.type))
    return { outcome: 'skip-conflict', msg: `type differs (snapshot: ${e.type}); metadata mode does not replace entries` };
  if (hasForeignLinks(st, e.nlink)) {
    return { outcome: 'error', msg: `${foreignReason(st, e)}; refused (metadata mode writes no content; restore it with --mode changed)` };
  }
  const differs = metadataFields(recorded(e), st, worker.policy.chown).length > 0;
  if (e.type === 'dir') return differs ? { outcome: 'dirmeta' } : { outcome: 'skip-same' };
  if (!differs) return { outcome: 'skip-same' };
  if (!worker.init.dryRun) setMetaAt(dfd, name, e, st, worker.policy.chown, e.nlink);
  return { outcome: 'meta' };
}

/** --mode changed / checksum / all: rewrite what differs, fix metadata of what does not. */
function classifyContent(e: WireEntry, dfd: number, name: string, st: fs.BigIntStats): ClassifyResult {
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
    readLink: () => fs.readlinkSync(procPath(dfd, name), { encoding: 'buffer' }).toString('latin1'),
    fingerprint: () => fingerprintFile(worker.hasher, procPath(dfd, name)),
  });
  if (verdict.kind === 'type' || verdict.kind === 'content') return create(e, true);
  if (verdict.kind === 'same') return { outcome: 'skip-same' };
  if (!worker.init.dryRun) setMetaAt(dfd, name, e, st, worker.policy.chown, e.nlink);
  return { outcome: 'meta' };
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
  const { fd: dfd, name } = parentFd(e.rel, true);
  const r = installed(
    e.rel,
    installSpecial(
      dfd!,
      name,
      { type: e.type as SpecialType, linkTarget: e.linkTarget, rdev: e.rdev },
      e,
      worker.policy,
      placement(replace),
    ),
  );
  return r.installed ? { outcome: 'created', replace } : { outcome: 'skip-present', msg: r.msg };
}
