import { Repository, type StoredSnapshot } from '../repo/repository.js';
import { RepoLock } from '../repo/lock.js';
import { decodeTree } from '../repo/tree.js';
import { encodeForStore } from '../pack/codec.js';
import type { BlobId } from '../pack/blobid.js';
import type { BlobLocation, BlobType } from '../pack/format.js';
import type { PackWriter } from '../pack/packwriter.js';
import { passwordSource } from '../config/password.js';
import { openSettingsStore, repoPassword, type OpenOptions } from './session.js';

/**
 * `snapfill copy --to <repo>`: copies snapshots into another repository, keeping their time,
 * host, user, paths, tags and excludes. It is how a version-1 repository moves to version 2
 * (and to encryption): init a new repository, copy, switch. Blobs are copied by id: what the
 * target already holds is not stored again, so a re-run after an interruption only adds what
 * is missing, and copying the same snapshot twice stores nothing (it is skipped).
 */
export interface CopyOptions extends OpenOptions {
  /** The target repository (a directory or s3://bucket/prefix); it must exist (`snapfill init`). */
  to: string;
  /** The target's password file (default: the same password sources as the source). */
  toPasswordFile?: string;
  toPasswordCommand?: string;
  /** Only these snapshots (ids or unique prefixes); default all. */
  snapshots?: string[];
  host?: string;
  tag?: string;
  onProgress?: (msg: string) => void;
}

export interface CopyReport {
  copied: { from: string; to: string; time: string; host: string }[];
  skipped: string[];
  blobs_copied: number;
  bytes_copied: number;
}

interface Located extends BlobLocation {
  pack: string;
  type: BlobType;
}

async function indexOf(repo: Repository): Promise<Map<BlobId, Located>> {
  const m = new Map<BlobId, Located>();
  for await (const id of repo.listPackIndexes()) {
    const idx = await repo.loadPackIndex(id);
    for (const b of idx.blobs) m.set(b.id, { ...b, pack: idx.pack, type: idx.type });
  }
  return m;
}

export async function copySnapshots(o: CopyOptions): Promise<CopyReport> {
  const log = o.onProgress ?? (() => {});
  const src = await openSettingsStore(o);
  const dst = await openSettingsStore({ ...o, repo: o.to });
  const locks: RepoLock[] = [];
  try {
    const source = await Repository.open(src.store, repoPassword(o, src.settings));
    const targetPw =
      o.toPasswordFile !== undefined || o.toPasswordCommand !== undefined
        ? passwordSource({ passwordFile: o.toPasswordFile, passwordCommand: o.toPasswordCommand })
        : repoPassword(o, dst.settings);
    const target = await Repository.open(dst.store, targetPw);
    if (source.config.id === target.config.id) throw new Error('the source and the target are the same repository');
    // Files cut into fixed chunks name no chunk sizes: their blobs are only readable with the same chunk_size.
    if (source.config.chunk_size !== target.config.chunk_size)
      throw new Error(`the target's chunk_size (${target.config.chunk_size}) differs from the source's (${source.config.chunk_size})`);
    const srcLock = await RepoLock.acquireForReading(source.store, 'copy (source)');
    if (srcLock) locks.push(srcLock);
    locks.push(await RepoLock.acquire(target.store, 'copy', false));

    const chosen = await chooseSnapshots(source, o);
    const have = new Set((await indexOf(target)).keys());
    const srcIndex = await indexOf(source);
    const existing: StoredSnapshot[] = [];
    for await (const id of target.listSnapshotIds()) existing.push(await target.loadSnapshot(id));
    const report: CopyReport = { copied: [], skipped: [], blobs_copied: 0, bytes_copied: 0 };
    const writers: Partial<Record<BlobType, PackWriter>> = {};
    const flush = async (type: BlobType) => {
      const w = writers[type];
      delete writers[type];
      // A tree pack goes below the tag of the host whose snapshot is being copied (issue 15).
      if (w?.count) await target.savePack(w, treeTag);
    };
    const put = async (id: BlobId, plain: Buffer, type: BlobType) => {
      const w = (writers[type] ??= target.newPackWriter(type));
      w.add(id, encodeForStore(plain, type === 'tree' ? 6 : 1));
      have.add(id);
      report.blobs_copied++;
      report.bytes_copied += plain.length;
      if (w.size >= target.config.pack_size) await flush(type);
    };
    const read = async (id: BlobId): Promise<Buffer> => {
      const at = srcIndex.get(id);
      if (!at) throw new Error(`blob ${id.slice(0, 12)} is missing from the source repository (run "snapfill check" there)`);
      return source.readBlob(at.pack, at.offset, at.length, id);
    };
    const idMap = new Map<string, string>();
    let treeTag: string | null = null;
    for (const snap of chosen) {
      const dup = existing.find((e) => e.tree === snap.tree && e.time === snap.time && e.host === snap.host);
      if (dup) {
        idMap.set(snap.id, dup.id);
        report.skipped.push(snap.id);
        continue;
      }
      // Every tree is walked (a tree present in the target does not prove its subtree is: an
      // interrupted copy may have stored a tree pack but not its data pack); blobs go by id.
      const seenTrees = new Set<BlobId>();
      treeTag = await target.hostTag(snap.host);
      const walk = async (treeId: BlobId): Promise<void> => {
        if (seenTrees.has(treeId)) return;
        seenTrees.add(treeId);
        const bytes = await read(treeId);
        for (const e of decodeTree(bytes)) {
          for (const c of e.content ?? []) if (!have.has(c)) await put(c, await read(c), 'data');
          if (e.tree) await walk(e.tree);
        }
        if (!have.has(treeId)) await put(treeId, bytes, 'tree');
      };
      await walk(snap.tree);
      // Data before trees, trees before the record (docs/FORMAT.md write order).
      await flush('data');
      await flush('tree');
      const { id: _old, ...rec } = snap;
      const newId = await target.saveSnapshot({ ...rec, parent: snap.parent ? (idMap.get(snap.parent) ?? null) : null });
      idMap.set(snap.id, newId);
      existing.push({ ...rec, id: newId });
      report.copied.push({ from: snap.id, to: newId, time: snap.time, host: snap.host });
      log(`copied snapshot ${snap.id.slice(0, 8)} -> ${newId.slice(0, 8)} (${snap.time}, ${snap.host})`);
    }
    return report;
  } finally {
    for (const l of locks) await l.release();
    await src.store.close?.();
    await dst.store.close?.();
  }
}

async function chooseSnapshots(repo: Repository, o: CopyOptions): Promise<StoredSnapshot[]> {
  const all: StoredSnapshot[] = [];
  for await (const id of repo.listSnapshotIds()) all.push(await repo.loadSnapshot(id));
  let out = all.filter((s) => (!o.host || s.host === o.host) && (!o.tag || s.tags.includes(o.tag)));
  if (o.snapshots?.length) {
    out = o.snapshots.map((p) => {
      const hit = out.filter((s) => s.id.startsWith(p));
      if (hit.length !== 1) throw new Error(hit.length ? `snapshot prefix ${p} is ambiguous` : `no snapshot ${p} in the source repository`);
      return hit[0];
    });
  }
  // Oldest first: parents are copied before their children, so `parent` can be mapped.
  return out.sort((a, b) => a.time.localeCompare(b.time));
}
