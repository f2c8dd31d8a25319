import type { Repository, StoredSnapshot } from '../repo/repository.js';
import type { Catalog } from './catalog.js';
import { decodeTree, sameEntry } from '../repo/tree.js';
import { join, type RawPath } from '../util/rawpath.js';

export interface SyncReport {
  packs_added: number;
  packs_removed: number;
  snapshots_added: number;
  snapshots_removed: number;
  abandoned_discarded: number;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Brings the catalog in line with the repository, which is the source of truth: imports pack
 * indexes and snapshots it lacks (written by another host, or before a crash), and drops what
 * the repository no longer has. On an empty catalog this is a full rebuild.
 */
export async function syncCatalog(repo: Repository, catalog: Catalog, onProgress?: (msg: string) => void): Promise<SyncReport> {
  const report: SyncReport = { packs_added: 0, packs_removed: 0, snapshots_added: 0, snapshots_removed: 0, abandoned_discarded: 0 };
  report.abandoned_discarded = catalog.discardAbandoned(isAlive);

  const repoPacks = new Set<string>();
  for await (const id of repo.listPackIndexes()) repoPacks.add(id);
  for (const id of repoPacks) {
    if (catalog.hasPack(id)) continue;
    catalog.addPackIndex(await repo.loadPackIndex(id));
    report.packs_added++;
    if (report.packs_added % 100 === 0) onProgress?.(`catalog: ${report.packs_added} pack indexes imported`);
  }
  for (const id of catalog.packIds()) {
    if (!repoPacks.has(id)) {
      catalog.removePack(id);
      report.packs_removed++;
    }
  }

  const repoSnaps = new Set<string>();
  for await (const id of repo.listSnapshotIds()) repoSnaps.add(id);
  const known = new Map(catalog.listSnapshots().map((s) => [s.id, s]));
  for (const [id] of known) {
    if (!repoSnaps.has(id)) {
      catalog.forgetSnapshot(id);
      report.snapshots_removed++;
    }
  }
  const fresh: StoredSnapshot[] = [];
  for (const id of repoSnaps) if (!known.has(id)) fresh.push(await repo.loadSnapshot(id));
  if (!fresh.length) return report;

  fresh.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
  // Lineage rows must be added in time order; a snapshot older than what a lineage holds forces a re-import of all.
  const outOfOrder = fresh.some((s) => {
    const head = catalog.lineageHead(catalog.lineageId(s.host, s.paths));
    return head !== undefined && head.time > s.time;
  });
  let toImport = fresh;
  if (outOfOrder) {
    catalog.clearSnapshots();
    toImport = [];
    for (const id of repoSnaps) toImport.push(await repo.loadSnapshot(id));
    toImport.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1));
  }
  let n = 0;
  for (const s of toImport) {
    await importSnapshot(repo, catalog, s);
    n++;
    onProgress?.(`catalog: imported snapshot ${s.id.slice(0, 8)} (${n}/${toImport.length})`);
  }
  report.snapshots_added = toImport.length;
  return report;
}

/** Adds one snapshot to the catalog by walking its trees; subtrees equal to the parent's are skipped whole. */
export async function importSnapshot(repo: Repository, catalog: Catalog, s: StoredSnapshot): Promise<void> {
  const lineage = catalog.lineageId(s.host, s.paths);
  const seq = catalog.beginSnapshot(lineage, s.time, s.host, s.paths, s.tags);
  try {
    const rootId = catalog.ensurePath('/');
    await importTree(repo, catalog, lineage, seq, '/', rootId, s.tree);
    catalog.commitSnapshot(seq, s.id, s.tree, s.parent, s);
  } catch (e) {
    catalog.flush();
    catalog.discardPending(seq);
    throw new Error(`cannot import snapshot ${s.id.slice(0, 8)}: ${(e as Error).message}`);
  }
}

async function readTree(repo: Repository, catalog: Catalog, treeId: string) {
  const loc = catalog.blobLocation(treeId);
  if (!loc) throw new Error(`tree blob ${treeId.slice(0, 12)} is not in any pack`);
  return decodeTree(await repo.readBlob(loc.pack, loc.offset, loc.length, treeId));
}

async function importTree(repo: Repository, catalog: Catalog, lineage: number, seq: number, dir: RawPath, dirPathId: number, treeId: string): Promise<void> {
  const entries = await readTree(repo, catalog, treeId);
  const prevChildren = catalog.openChildren(dirPathId, lineage, seq);
  for (const e of entries) {
    const prev = prevChildren.get(e.name);
    prevChildren.delete(e.name);
    const p = join(dir, e.name);
    const pathId = prev?.pathId ?? catalog.childPathId(dirPathId, dir, e.name);
    if (prev && sameEntry(prev, e)) continue; // identical, and for a directory its whole subtree too
    if (prev) {
      catalog.closeVersion(seq, prev.versionId);
      if (prev.type === 'dir' && e.type !== 'dir') catalog.closeSubtree(seq, lineage, p);
    }
    catalog.insertVersion(pathId, lineage, seq, e);
    if (e.type === 'dir' && e.tree) await importTree(repo, catalog, lineage, seq, p, pathId, e.tree);
  }
  for (const [name, prev] of prevChildren) {
    catalog.closeVersion(seq, prev.versionId);
    if (prev.type === 'dir') catalog.closeSubtree(seq, lineage, join(dir, name));
  }
}

export async function rebuildCatalog(repo: Repository, catalog: Catalog, onProgress?: (msg: string) => void): Promise<SyncReport> {
  catalog.clearAll();
  return syncCatalog(repo, catalog, onProgress);
}
