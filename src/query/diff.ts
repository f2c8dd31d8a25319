import type { Catalog, SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { display, type RawPath } from '../util/rawpath.js';

export interface DiffResult {
  added: string[];
  removed: string[];
  changed: string[];
  metadata: string[];
  counts: { added: number; removed: number; changed: number; metadata: number };
}

function contentDiffers(a: VersionRow, b: VersionRow): boolean {
  if (a.type !== b.type) return true;
  if (a.type === 'symlink') return a.target !== b.target;
  if (a.type === 'hardlink' && a.target !== b.target) return true;
  if (a.type === 'file' || a.type === 'hardlink')
    return a.size !== b.size || a.fp !== b.fp || (a.content ?? []).join() !== (b.content ?? []).join();
  return a.rdev !== b.rdev;
}

function metadataDiffers(a: VersionRow, b: VersionRow): boolean {
  return a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid || a.mtime !== b.mtime;
}

/** Compares two snapshots (or one subtree of both: `root`) by merging their path-ordered streams: memory stays flat. */
export function diffSnapshots(
  catalog: Catalog,
  a: SnapshotRow,
  b: SnapshotRow,
  onEach?: (kind: keyof DiffResult['counts'], path: string) => void,
  root: RawPath = '/',
): DiffResult {
  const res: DiffResult = { added: [], removed: [], changed: [], metadata: [], counts: { added: 0, removed: 0, changed: 0, metadata: 0 } };
  const note = (kind: keyof DiffResult['counts'], p: string) => {
    res.counts[kind]++;
    if (onEach) onEach(kind, p);
    else res[kind].push(p);
  };
  // Two iterators over one read connection are fine: both are reads.
  const ia = catalog.walk(a, root)[Symbol.iterator]();
  const ib = catalog.walk(b, root)[Symbol.iterator]();
  let x = ia.next();
  let y = ib.next();
  while (!x.done || !y.done) {
    if (y.done || (!x.done && x.value.path < y.value.path)) {
      note('removed', display(x.value!.path));
      x = ia.next();
    } else if (x.done || y.value.path < x.value.path) {
      note('added', display(y.value.path));
      y = ib.next();
    } else {
      if (x.value.versionId !== y.value.versionId) {
        if (contentDiffers(x.value, y.value)) note('changed', display(x.value.path));
        else if (x.value.type !== 'dir' && metadataDiffers(x.value, y.value)) note('metadata', display(x.value.path));
        else if (x.value.type === 'dir' && metadataDiffers(x.value, y.value)) note('metadata', display(x.value.path));
      }
      x = ia.next();
      y = ib.next();
    }
  }
  return res;
}
