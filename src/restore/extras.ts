import * as fs from 'node:fs';
import type { VersionRow } from '../catalog/catalog.js';
import { SafeRoot, procPath } from '../livefs/safepath.js';
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
  const live = (fs.readdirSync(procPath(fd, '.'), { encoding: 'buffer' }) as Buffer[]).map((b) => b.toString('latin1'));
  for (const name of live) {
    const p = dir === '/' ? '/' + name : dir + '/' + name;
    const st = fs.lstatSync(procPath(fd, name), { throwIfNoEntry: false });
    if (!st) continue;
    const snapV = want.get(name);
    if (snapV) {
      if (snapV.type === 'dir' && st.isDirectory() && !run.scope.excluded(p)) deleteIn(run, safe, p);
      continue;
    }
    if (run.scope.excluded(p) || run.scope.omittedBySnapshot(p)) continue;
    if (run.scope.included && (st.isDirectory() || !run.scope.included(p))) continue;
    deleteOne(run, fd, name, p, rel);
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
    tally.res.deleted += removeTree(dirFd, name);
    if (tally.restoresDirTimes) tally.touchedDirs.add(dirRel);
  } catch (e) {
    tally.error(p, `cannot delete: ${(e as Error).message}`);
  }
}

/** rm -rf without following symlinks: directories are opened with O_NOFOLLOW. Returns entries removed. */
function removeTree(parentFd: number, name: RawPath): number {
  const p = procPath(parentFd, name);
  const st = fs.lstatSync(p);
  if (!st.isDirectory()) {
    fs.unlinkSync(p);
    return 1;
  }
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  let n = 0;
  try {
    for (const child of fs.readdirSync(procPath(fd, '.'), { encoding: 'buffer' }) as Buffer[])
      n += removeTree(fd, child.toString('latin1'));
  } finally {
    fs.closeSync(fd);
  }
  fs.rmdirSync(p);
  return n + 1;
}
