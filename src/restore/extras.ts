import type { VersionRow } from '../catalog/catalog.js';
import { check, closeFd, listDir, openDirAt, unlinkAt } from '../livefs/native.js';
import { SafeRoot } from '../livefs/safepath.js';
import { type RawPath } from '../util/rawpath.js';
import { relOf, type RestoreRun } from './context.js';

/**
 * --delete: removes live entries the snapshot does not have, strictly inside the restore roots
 * (and the include/exclude patterns), never following a symlink. An entry the snapshot's own
 * rules left out (its excludes, or outside its source paths) is absent by design and is kept.
 */
export function deleteExtras(run: RestoreRun): void {
  run.tally.phase('delete');
  const safe = new SafeRoot(run.targetRoot);
  try {
    for (const r of run.scope.roots) {
      const v = run.s.catalog.entry(run.snap, r);
      if (v?.type === 'dir') deleteIn(run, safe, r);
    }
  } finally {
    safe.close();
  }
}

function deleteIn(run: RestoreRun, safe: SafeRoot, dir: RawPath): void {
  const rel = relOf(dir);
  let fd: number | null;
  try {
    fd = safe.dirFd(rel, false);
  } catch (e) {
    run.tally.error(dir, (e as Error).message);
    return;
  }
  if (fd === null) return;
  const want = new Map<RawPath, VersionRow>();
  for (const v of run.s.catalog.listDir(run.snap, dir)) want.set(v.name, v);
  for (const { name, mode, err } of listDir(fd)) {
    const p = dir === '/' ? '/' + name : dir + '/' + name;
    if (err !== 0) continue; // gone since the scan
    const isDir = (mode & S_IFMT) === S_IFDIR;
    const snapV = want.get(name);
    if (snapV) {
      if (snapV.type === 'dir' && isDir && !run.scope.excluded(p)) deleteIn(run, safe, p);
      continue;
    }
    if (run.scope.excluded(p) || run.scope.omittedBySnapshot(p)) continue;
    if (run.scope.included && (isDir || !run.scope.included(p))) continue;
    // Asked again: the recursion above may have evicted (and closed) the cached fd.
    let cur: number | null;
    try {
      cur = safe.dirFd(rel, false);
    } catch (e) {
      run.tally.error(dir, (e as Error).message);
      return;
    }
    if (cur !== null) deleteOne(run, cur, name, p, rel);
  }
}

function deleteOne(run: RestoreRun, dirFd: number, name: RawPath, p: RawPath, dirRel: RawPath): void {
  const { tally } = run;
  tally.action(p, 'delete');
  tally.note('delete');
  if (run.o.dryRun) {
    tally.res.deleted++;
    return;
  }
  try {
    tally.res.deleted += removeTree(dirFd, name, true);
    if (tally.restoresDirTimes) tally.touchedDirs.add(dirRel);
  } catch (e) {
    tally.error(p, `cannot delete: ${(e as Error).message}`);
  }
}

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const EISDIR = -21;
const ENOTDIR = -20;
const ELOOP = -40;

/**
 * rm -rf without following symlinks: each directory is opened relative to its parent with
 * O_NOFOLLOW (a directory swapped for a symlink meanwhile is unlinked as the symlink it now
 * is, never entered). Returns entries removed.
 */
function removeTree(parentFd: number, name: string, top = false): number {
  const fd = openDirAt(parentFd, name);
  if (fd === ENOTDIR || fd === ELOOP) {
    const rc = unlinkAt(parentFd, name);
    // Raced into a directory between the two calls: removed as a tree on a second look.
    if (rc === EISDIR && top) return removeTree(parentFd, name);
    check(rc, 'unlink', name);
    return 1;
  }
  check(fd, 'open', name);
  let n = 0;
  try {
    for (const child of listDir(fd)) n += removeTree(fd, child.name);
  } finally {
    closeFd(fd);
  }
  check(unlinkAt(parentFd, name, true), 'rmdir', name);
  return n + 1;
}
