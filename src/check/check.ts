import { createHash } from 'node:crypto';
import type { Repository, StoredSnapshot } from '../repo/repository.js';
import type { Catalog } from '../catalog/catalog.js';
import type { PackIndex } from '../pack/format.js';
import type { BlobId } from '../pack/blobid.js';
import { indexKey, keyObjectKey } from '../pack/keys.js';
import { listKeyIds, loadKeyObject } from '../repo/keys.js';
import { bufferReader, loadBlobsFromPackSync } from '../repo/blobloader.js';
import { PackCache } from '../repo/packcache.js';
import { decodeTree, type Entry } from '../repo/tree.js';
import { display, join, type RawPath } from '../util/rawpath.js';
import type { RepoContext } from '../catalog/context.js';
import { syncCatalog } from '../catalog/sync.js';
import { listCatalogPackIndexes } from '../catalog/treeindexes.js';
import { listDeletionRecords, readDeletionRecord } from '../repo/deletions.js';
import { clearSyncCursor } from '../catalog/synccursor.js';
import { LockBusyError } from '../util/pidlock.js';
import { OptionError } from '../util/errors.js';
import { nameProblem, quoteName, refusedPath } from '../util/names.js';

/**
 * Repository integrity check.
 *
 * Structure (always): every snapshot record loads and matches its id; every pack index loads;
 * every indexed pack exists with the size its index records; every tree of every snapshot
 * loads (and so verifies its SHA-256); every blob a tree refers to is in an indexed pack; the
 * catalog holds exactly the repository's snapshots and packs, and for each pack exactly what
 * the pack's index object in the repository says (a warm catalog must not hide an altered index).
 *
 * Data (`readData`, or a subset of packs): each selected pack is read once, its SHA-256 must
 * equal its id, and every blob in it must hash to its id.
 *
 * Damage is reported per pack, with the snapshots and paths it affects, found by walking the
 * snapshots' trees (the repository is the source of truth; the catalog may be stale or gone).
 */
export interface CheckOptions {
  readData?: boolean;
  /** Read only a deterministic subset of packs: `{ part, of }` (1-based part) or a percentage. */
  subset?: PackSubset;
  /** Day number used by a percentage subset (defaults to days since the epoch, UTC). */
  day?: number;
  /**
   * Compare every pack index read from the repository with what this catalog holds for that
   * pack. Restores read blob locations from the catalog, so a warm catalog would hide an index
   * object altered in the repository until a new machine rebuilt from it.
   */
  compareIndexesWith?: Catalog;
  onProgress?: (msg: string) => void;
}

export type PackSubset = { part: number; of: number } | { percent: number };

export interface CheckError {
  path: string;
  message: string;
}

export interface AffectedPath {
  snapshot_id: string;
  path: string;
}

export interface BrokenPack {
  pack: string;
  problem: string;
  bad_blobs: number;
  snapshots: string[];
  paths: AffectedPath[];
}

export interface CheckResult {
  ok: boolean;
  snapshots_checked: number;
  trees_checked: number;
  packs_checked: number;
  packs_read: number;
  /** Packs chosen for reading (--read-data: all; a subset: at least one when there are packs); 0 when no data was read. */
  packs_selected: number;
  blobs_checked: number;
  bytes_read: number;
  broken_packs: BrokenPack[];
  /** Packs without an index: leftovers of an interrupted snapshot; harmless, removed by prune. */
  unindexed_packs: string[];
  /**
   * Packs a deletion record names that are still in the repository: a prune died between
   * writing the record and deleting them (catalogs have let them go); the next prune deletes them.
   */
  packs_left_by_interrupted_prune?: string[];
  catalog_synced: boolean;
  /** Repository format version (1 or 2). */
  format_version: number;
  /** True when objects and blobs are encrypted (format 2 without --insecure-no-encryption). */
  encrypted: boolean;
  errors: CheckError[];
}

interface BlobHome {
  pack: string;
  offset: number;
  length: number;
}

/** Parses `10%`, `2.5%` or `n/m` (e.g. `3/7`). */
export function parseSubset(s: string): PackSubset {
  const pct = /^(\d+(?:\.\d+)?)%$/.exec(s.trim());
  if (pct) {
    const percent = Number(pct[1]);
    if (!(percent > 0 && percent <= 100)) throw new OptionError((n) => `${n('readDataSubset')}: ${s}: the percentage must be in (0, 100]`);
    return { percent };
  }
  const frac = /^(\d+)\/(\d+)$/.exec(s.trim());
  if (frac) {
    const part = Number(frac[1]);
    const of = Number(frac[2]);
    if (!(of >= 1 && part >= 1 && part <= of)) throw new OptionError((n) => `${n('readDataSubset')}: ${s}: need 1 <= n <= m in n/m`);
    return { part, of };
  }
  throw new OptionError((n) => `${n('readDataSubset')}: "${s}" is neither a percentage (10%) nor a part n/m (3/7)`);
}

/** A pack's fixed position in [0, 1), from its id: stable across runs and machines. */
function packPosition(packId: string): number {
  return parseInt(packId.slice(0, 13), 16) / 2 ** 52;
}

/**
 * Whether a pack belongs to the subset. `n/m` splits packs into m fixed buckets. A percentage
 * is a window of that width over the packs' positions that moves by its width every day, so
 * a daily cron with 10% reads every pack once in 10 days, and new packs are covered too.
 */
export function inSubset(packId: string, subset: PackSubset, day: number): boolean {
  const pos = packPosition(packId);
  if ('part' in subset) return Math.floor(pos * subset.of) === subset.part - 1;
  const width = subset.percent / 100;
  if (width >= 1) return true;
  const start = (day * width) % 1;
  const rel = (pos - start + 1) % 1;
  return rel < width;
}

/**
 * `snapfill check` on an open session (opened without sync): under a shared repository lock,
 * brings the catalog up to date when it can, then checks. A damaged snapshot that stops the
 * catalog sync does not stop the check: the repository is then checked alone.
 */
export async function checkSession(s: RepoContext, opts: CheckOptions = {}): Promise<CheckResult> {
  const log = opts.onProgress;
  return s.withRepoLock('check', false, async () => {
    let synced = true;
    let catalogErrors: CheckError[] = [];
    let leftByPrune: string[] = [];
    let deletions: Awaited<ReturnType<typeof readDeletionRecords>> | null = null;
    try {
      s.lockCatalog('check');
      // Every host's records: compareCatalog below compares with the whole repository.
      await syncCatalog(s.repo, s.catalog, log, { allRecords: true });
      // Compared while the catalog lock still keeps local snapshots out: a snapshot finishing
      // during a long --read-data must not look like a disagreement. The deletion records are
      // read after the sync: every record it applied is among them.
      deletions = await readDeletionRecords(s.repo);
      ({ errors: catalogErrors, leftByPrune } = await compareCatalog(s.repo, s.catalog, deletions.packs));
      // A pack gone without a prune's deletion record (removed by hand, lost): the next sync
      // lists everything, so the catalog forgets it (a sync from a cursor would not see it go).
      if (catalogErrors.some((e) => e.message.startsWith(CATALOG_PACK_NOT_IN_REPO))) clearSyncCursor(s.catalog);
    } catch (e) {
      synced = false;
      log?.(`note: catalog not synced (${e instanceof LockBusyError ? 'busy' : (e as Error).message}); checking the repository alone`);
    } finally {
      s.unlockCatalog();
    }
    const result = await checkRepository(s.repo, null, { ...opts, compareIndexesWith: synced ? s.catalog : undefined });
    result.catalog_synced = synced;
    result.errors.push(...catalogErrors, ...(deletions ?? (await readDeletionRecords(s.repo))).errors);
    result.ok = result.errors.length === 0;
    result.packs_left_by_interrupted_prune = leftByPrune;
    if (leftByPrune.length)
      log?.(
        `warning: ${leftByPrune.length} ${leftByPrune.length === 1 ? 'pack named by a deletion record is' : 'packs named by a deletion record are'} still in the repository (an interrupted prune); "snapfill prune" deletes them`,
      );
    // Temp objects of dead writers are garbage, not damage: a warning (prune removes them)
    // that leaves `ok` and the exit code alone.
    const temps = (await s.repo.store.listStaleTemps?.()) ?? [];
    const tempBytes = temps.reduce((n, t) => n + t.size, 0);
    if (temps.length)
      log?.(
        `warning: ${temps.length} stale temporary objects (${tempBytes} bytes) left by interrupted writes; "snapfill prune" removes them`,
      );
    Object.assign(result, { stale_temp_objects: temps.length, stale_temp_bytes: tempBytes });
    return result;
  });
}

/**
 * Every deletion record (issue 15): the packs they name, and an error for each that cannot be
 * read: while one is there, every host's catalog sync lists every pack index (it cannot know what
 * the record deleted). Removing it is safe once the packs it named are gone; prune removes it
 * after DELETION_RETENTION_MS anyway.
 */
async function readDeletionRecords(repo: Repository): Promise<{ packs: Set<string>; errors: CheckError[] }> {
  const packs = new Set<string>();
  const errors: CheckError[] = [];
  for (const d of await listDeletionRecords(repo, null)) {
    try {
      for (const p of await readDeletionRecord(repo, d)) packs.add(p);
    } catch (e) {
      errors.push({ path: d.key, message: `${(e as Error).message} (catalog syncs list every pack index while it is there)` });
    }
  }
  return { packs, errors };
}

const CATALOG_PACK_NOT_IN_REPO = 'catalog lists a pack the repository does not have';

/**
 * Disagreements between the catalog and the repository's current snapshot and pack lists. A pack
 * that `deleted` (the packs deletion records name) lists is being deleted: a catalog sync lets it
 * go before it is gone, so its presence is an interrupted prune's leftover (`leftByPrune`), not a
 * disagreement.
 */
export async function compareCatalog(
  repo: Repository,
  catalog: Catalog,
  deleted: ReadonlySet<string> = new Set(),
): Promise<{ errors: CheckError[]; leftByPrune: string[] }> {
  const errors: CheckError[] = [];
  const leftByPrune: string[] = [];
  const hint = '(run "snapfill catalog rebuild")';
  const repoSnaps = new Set<string>();
  for await (const id of repo.listSnapshotIds()) repoSnaps.add(id);
  const catSnaps = catalog.knownSnapshotIds(); // imported, or records of hosts not followed (issue 15)
  for (const id of repoSnaps)
    if (!catSnaps.has(id)) errors.push({ path: `snapshot ${id}`, message: `snapshot is in the repository but not in the catalog ${hint}` });
  for (const id of catSnaps)
    if (!repoSnaps.has(id))
      errors.push({ path: `snapshot ${id}`, message: `catalog lists a snapshot the repository does not have ${hint}` });
  // The packs the catalog's own sync lists (issue 15): other hosts' tree packs are not its to hold.
  const repoPacks = new Set((await listCatalogPackIndexes(repo, catalog)).packs.keys());
  const catPacks = new Set(catalog.packIds());
  for (const id of repoPacks) {
    if (catPacks.has(id)) continue;
    if (deleted.has(id)) leftByPrune.push(id);
    else errors.push({ path: `pack ${id}`, message: `pack is in the repository but not in the catalog ${hint}` });
  }
  for (const id of catPacks) if (!repoPacks.has(id)) errors.push({ path: `pack ${id}`, message: `${CATALOG_PACK_NOT_IN_REPO} ${hint}` });
  return { errors, leftByPrune };
}

/** Everything found wrong so far: errors to report, and per pack what is broken and which blobs. */
class Findings {
  readonly errors: CheckError[] = [];
  readonly broken = new Map<string, { problem: string; badBlobs: Set<BlobId> }>();

  markBroken(pack: string, problem: string, blobs: Iterable<BlobId>): void {
    const b = this.broken.get(pack) ?? { problem, badBlobs: new Set<BlobId>() };
    if (!b.problem.includes(problem)) b.problem += `; ${problem}`;
    for (const id of blobs) b.badBlobs.add(id);
    this.broken.set(pack, b);
  }
}

/** What the pack indexes say exists. */
interface IndexedPacks {
  sizes: Map<string, number>;
  indexes: Map<string, PackIndex>;
  blobHome: Map<BlobId, BlobHome>;
}

export async function checkRepository(repo: Repository, catalog: Catalog | null, opts: CheckOptions = {}): Promise<CheckResult> {
  const log = opts.onProgress ?? (() => {});
  const found = new Findings();
  const result: CheckResult = {
    ok: false,
    snapshots_checked: 0,
    trees_checked: 0,
    packs_checked: 0,
    packs_read: 0,
    packs_selected: 0,
    blobs_checked: 0,
    bytes_read: 0,
    broken_packs: [],
    unindexed_packs: [],
    catalog_synced: catalog !== null,
    format_version: repo.config.version,
    encrypted: repo.encrypted,
    errors: found.errors,
  };
  if (repo.encrypted) await checkKeys(repo, found);
  const packs = await checkPacks(repo, catalog ?? opts.compareIndexesWith ?? null, result, found);
  log(`check: ${packs.indexes.size} packs indexed, ${packs.blobHome.size} blobs`);
  if (opts.readData || opts.subset) await readSelectedPacks(repo, packs, opts, result, found);
  const affected = await checkSnapshots(repo, packs, result, found);
  // The catalog must describe exactly what the repository holds.
  if (catalog) found.errors.push(...(await compareCatalog(repo, catalog)).errors);
  result.broken_packs = brokenPacks(found, affected);
  result.ok = found.errors.length === 0;
  return result;
}

/** Every key object parses and matches its id (one damaged key object may be the only copy of a password). */
async function checkKeys(repo: Repository, found: Findings): Promise<void> {
  for (const id of await listKeyIds(repo.store)) {
    try {
      await loadKeyObject(repo.store, id);
    } catch (e) {
      found.errors.push({ path: keyObjectKey(id), message: (e as Error).message });
    }
  }
}

/** Packs and their indexes: every index loads (and agrees with `cmp`), every indexed pack exists with its recorded size. */
async function checkPacks(repo: Repository, cmp: Catalog | null, result: CheckResult, found: Findings): Promise<IndexedPacks> {
  const sizes = new Map<string, number>();
  for await (const p of repo.listPacks()) sizes.set(p.id, p.size);
  const indexes = new Map<string, PackIndex>();
  const blobHome = new Map<BlobId, BlobHome>();
  for await (const id of repo.listPackIndexes()) {
    let idx: PackIndex;
    try {
      idx = await repo.loadPackIndex(id);
    } catch (e) {
      found.errors.push({ path: repo.indexKeyForDisplay(id), message: `pack index cannot be loaded: ${(e as Error).message}` });
      found.markBroken(id, 'pack index unreadable', []);
      continue;
    }
    indexes.set(id, idx);
    const differs = cmp ? compareIndex(cmp, idx, repo.indexKeyForDisplay(id)) : null;
    if (differs) found.errors.push(differs);
    for (const b of idx.blobs) if (!blobHome.has(b.id)) blobHome.set(b.id, { pack: id, offset: b.offset, length: b.length });
  }
  for (const [id, idx] of indexes) {
    result.packs_checked++;
    const size = sizes.get(id);
    if (size === undefined) {
      found.errors.push({ path: `pack ${id}`, message: 'pack file is missing (its index exists)' });
      found.markBroken(
        id,
        'pack missing',
        idx.blobs.map((b) => b.id),
      );
    } else if (size !== idx.size) {
      found.errors.push({
        path: `pack ${id}`,
        message: `pack size ${size} differs from the ${idx.size} bytes its index records (truncated or damaged)`,
      });
      // Blobs past the end are certainly lost; the rest is judged by --read-data.
      found.markBroken(
        id,
        size < idx.size ? 'pack truncated' : 'pack size mismatch',
        idx.blobs.filter((b) => b.offset + b.length > size).map((b) => b.id),
      );
    }
  }
  for (const id of sizes.keys()) if (!indexes.has(id)) result.unindexed_packs.push(id);
  return { sizes, indexes, blobHome };
}

/**
 * The packs of a subset, in id order. A small repository can leave the day's window (or an
 * n/m bucket) empty: 10% of 4 packs is most days no pack at all, and a daily check would
 * then read nothing while looking as if it did. So a non-empty repository always gives at
 * least one pack: the first one at or after the window's start, going round.
 */
export function selectSubset(ids: string[], subset: PackSubset, day: number): string[] {
  const selected = ids.filter((id) => inSubset(id, subset, day));
  if (selected.length || !ids.length) return selected;
  const start = 'part' in subset ? (subset.part - 1) / subset.of : (day * (subset.percent / 100)) % 1;
  const after = (id: string) => (packPosition(id) - start + 1) % 1;
  return [ids.reduce((best, id) => (after(id) < after(best) ? id : best))];
}

/** Read data: every selected pack once, in id order. */
async function readSelectedPacks(
  repo: Repository,
  packs: IndexedPacks,
  opts: CheckOptions,
  result: CheckResult,
  found: Findings,
): Promise<void> {
  const day = opts.day ?? Math.floor(Date.now() / 86_400_000);
  const ids = [...packs.indexes.keys()].filter((id) => packs.sizes.has(id)).sort();
  const selected = opts.subset ? selectSubset(ids, opts.subset, day) : ids;
  result.packs_selected = selected.length;
  let n = 0;
  for (const id of selected) {
    await readPackData(repo, packs.indexes.get(id)!, result, found);
    if (++n % 50 === 0) opts.onProgress?.(`check: read ${n}/${selected.length} packs`);
  }
}

/** Snapshots and their trees; every bad or absent blob attributed to snapshot paths, by pack. */
async function checkSnapshots(
  repo: Repository,
  packs: IndexedPacks,
  result: CheckResult,
  found: Findings,
): Promise<Map<string, AffectedPath[]>> {
  const snapIds: string[] = [];
  for await (const id of repo.listSnapshotIds()) snapIds.push(id);
  snapIds.sort();
  const walker = new TreeWalker(repo, packs.blobHome, found.broken);
  const affected = new Map<string, AffectedPath[]>();
  for (const id of snapIds) {
    let snap: StoredSnapshot;
    try {
      snap = await repo.loadSnapshot(id);
    } catch (e) {
      found.errors.push({ path: `snapshot ${id}`, message: `snapshot record cannot be loaded: ${(e as Error).message}` });
      continue;
    }
    result.snapshots_checked++;
    if (!(await repo.recordUnderItsHost(snap)))
      found.errors.push({
        path: `snapshot ${id}`,
        message: `snapshot record of host "${snap.host}" is stored below another host's tag (moved or crafted): catalogs of that host do not import it`,
      });
    for (const h of await walker.damageBelow(snap.tree, 'dir')) {
      const list = affected.get(h.pack) ?? [];
      list.push({ snapshot_id: id, path: display(h.path) });
      affected.set(h.pack, list);
      found.errors.push({ path: display(h.path), message: `snapshot ${id.slice(0, 8)}: ${h.message}` });
    }
  }
  result.trees_checked = walker.treesRead;
  return affected;
}

/** The broken packs in pack id order, each with the snapshots and paths it affects. */
function brokenPacks(found: Findings, affected: Map<string, AffectedPath[]>): BrokenPack[] {
  if (affected.has('(none)')) found.markBroken('(none)', 'blobs referenced by snapshots but absent from every pack index', []);
  const out: BrokenPack[] = [];
  for (const [pack, b] of [...found.broken].sort(([a], [c]) => (a < c ? -1 : 1))) {
    const paths = affected.get(pack) ?? [];
    out.push({
      pack,
      problem: b.problem,
      bad_blobs: b.badBlobs.size,
      snapshots: [...new Set(paths.map((p) => p.snapshot_id))].sort(),
      paths,
    });
  }
  return out;
}

/**
 * A pack index object from the repository against the catalog's copy (imported from it
 * earlier): type, size, and every blob's offset and length. Null when they agree, or when the
 * catalog does not know the pack (compareCatalog reports that).
 */
export function compareIndex(catalog: Catalog, idx: PackIndex, key = indexKey(idx.pack)): CheckError | null {
  const have = catalog.packContents(idx.pack);
  if (!have) return null;
  const diffs: string[] = [];
  let blobs = 0;
  if (have.type !== idx.type) diffs.push(`type "${idx.type}" in the repository, "${have.type}" in the catalog`);
  if (have.size !== idx.size) diffs.push(`pack size ${idx.size} in the repository, ${have.size} in the catalog`);
  const seen = new Set<BlobId>();
  for (const b of idx.blobs) {
    seen.add(b.id);
    const c = have.blobs.get(b.id);
    if (c && c.offset === b.offset && c.length === b.length) continue;
    blobs++;
    if (diffs.length < 3)
      diffs.push(
        c
          ? `blob ${b.id.slice(0, 12)} at ${b.offset}+${b.length} in the repository, ${c.offset}+${c.length} in the catalog`
          : `blob ${b.id.slice(0, 12)} is not in the catalog`,
      );
  }
  for (const id of have.blobs.keys()) {
    if (seen.has(id)) continue;
    blobs++;
    if (diffs.length < 3) diffs.push(`blob ${id.slice(0, 12)} is missing from the repository's index`);
  }
  if (!diffs.length) return null;
  return {
    path: key,
    message:
      `pack index differs from the catalog's copy (${blobs} blobs differ; ${diffs.join('; ')}): the index object or the catalog was altered. ` +
      '"snapfill check --read-data" shows which blobs are damaged; then "snapfill catalog rebuild"',
  };
}

/** Reads one pack whole: its SHA-256 must be its id, and every blob in it must verify (through the blob loader). */
async function readPackData(repo: Repository, idx: PackIndex, result: CheckResult, found: Findings): Promise<void> {
  let bytes: Buffer;
  try {
    bytes = await repo.readPack(idx.pack);
  } catch (e) {
    found.errors.push({ path: `pack ${idx.pack}`, message: `pack cannot be read: ${(e as Error).message}` });
    found.markBroken(
      idx.pack,
      'pack unreadable',
      idx.blobs.map((b) => b.id),
    );
    return;
  }
  result.packs_read++;
  result.bytes_read += bytes.length;
  if (createHash('sha256').update(bytes).digest('hex') !== idx.pack) {
    found.errors.push({ path: `pack ${idx.pack}`, message: 'pack content does not match its id (SHA-256 mismatch)' });
    found.markBroken(idx.pack, 'pack hash mismatch', []);
  }
  const read = bufferReader(bytes);
  const bad: BlobId[] = [];
  for (const b of idx.blobs) {
    result.blobs_checked++;
    // One blob per load: the loaded plain bytes are dropped at once (a pack inflates to several times its size).
    if (loadBlobsFromPackSync(read, [b], repo.blobKey()).bad.has(b.id)) bad.push(b.id);
  }
  if (bad.length) {
    found.errors.push({
      path: `pack ${idx.pack}`,
      message: `${bad.length} of ${idx.blobs.length} blobs are corrupt (content does not match their SHA-256 id)`,
    });
    found.markBroken(idx.pack, 'corrupt blobs', bad);
  }
}

interface Damage {
  path: RawPath;
  pack: string;
  message: string;
}

/**
 * Walks trees, reading each distinct tree once. Damage found below a tree is memoized by tree
 * id (as paths relative to it), so snapshots sharing unchanged subtrees cost nothing more and
 * still get every affected path named.
 */
class TreeWalker {
  treesRead = 0;
  private readonly memo = new Map<BlobId, Damage[]>();
  /** Tree blobs are read a whole (tree) pack at a time: one request per pack, not per directory, on S3. */
  private readonly trees: PackCache;

  constructor(
    private readonly repo: Repository,
    private readonly blobHome: Map<BlobId, BlobHome>,
    private readonly broken: Map<string, { problem: string; badBlobs: Set<BlobId> }>,
  ) {
    this.trees = new PackCache(repo);
  }

  /** Problems of one blob: absent from every index, or in a pack known to be damaged. */
  private blobDamage(id: BlobId): { pack: string; message: string } | null {
    const home = this.blobHome.get(id);
    if (!home) return { pack: '(none)', message: `blob ${id.slice(0, 12)} is not in any pack` };
    const b = this.broken.get(home.pack);
    if (b && b.badBlobs.has(id))
      return { pack: home.pack, message: `blob ${id.slice(0, 12)} in pack ${home.pack.slice(0, 12)} is damaged (${b.problem})` };
    return null;
  }

  /** Damage below tree `treeId`, paths relative to it ('' is the tree's own directory). */
  async damageBelow(treeId: BlobId, _kind: 'dir'): Promise<Damage[]> {
    const hit = this.memo.get(treeId);
    if (hit) return hit;
    const out: Damage[] = [];
    const own = this.blobDamage(treeId);
    let entries: Entry[] | null = null;
    if (own) {
      out.push({ path: '/', pack: own.pack, message: `directory listing lost: ${own.message}` });
    } else {
      const home = this.blobHome.get(treeId)!;
      try {
        const data = await this.trees.readBlob(home.pack, home.offset, home.length, treeId);
        this.treesRead++;
        entries = decodeTree(data);
      } catch (e) {
        const b = this.broken.get(home.pack) ?? { problem: 'corrupt tree blob', badBlobs: new Set<BlobId>() };
        b.badBlobs.add(treeId);
        this.broken.set(home.pack, b);
        out.push({
          path: '/',
          pack: home.pack,
          message: `directory listing lost: tree blob ${treeId.slice(0, 12)} in pack ${home.pack.slice(0, 12)}: ${(e as Error).message}`,
        });
      }
    }
    const seen = new Set<string>();
    for (const e of entries ?? []) {
      // The same rule as the catalog import (src/catalog/sync.ts), which refuses these entries.
      const bad = nameProblem(e.name) ?? (seen.has(e.name) ? 'appears twice in its directory' : null);
      if (bad) {
        out.push({
          path: refusedPath('/', e.name),
          pack: '',
          message: `unsafe entry name ${quoteName(e.name)} ${bad} (refused by restore, ls, dump)`,
        });
        continue;
      }
      seen.add(e.name);
      const p = join('/', e.name);
      if (e.type === 'dir') {
        if (!e.tree) continue;
        for (const d of await this.damageBelow(e.tree, 'dir')) out.push({ ...d, path: d.path === '/' ? p : p + d.path });
      } else if (e.content) {
        for (const id of e.content) {
          const d = this.blobDamage(id);
          if (d) {
            out.push({ path: p, ...d });
            break; // one line per file is enough to say it is affected
          }
        }
      }
    }
    this.memo.set(treeId, out);
    return out;
  }
}
