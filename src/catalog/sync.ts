import type { Repository, SnapshotListing, StoredSnapshot } from '../repo/repository.js';
import type { Catalog } from './catalog.js';
import { BlobCorruptError } from '../repo/repository.js';
import { decodeTree, sameEntry, type Entry } from '../repo/tree.js';
import { display, join, type RawPath } from '../util/rawpath.js';
import { PackCache } from '../repo/packcache.js';
import { ObjectNotFoundError } from '../store/store.js';
import { nameProblem, quoteName, refusedPath } from '../util/names.js';
import { thisHost } from '../util/host.js';
import { BlobIndex, type PackIndexInput } from './blobindex.js';
import { CatalogDb } from './db.js';
import type { PackIndex } from '../pack/format.js';
import { TreeIndexSearch, listCatalogPackIndexes } from './treeindexes.js';
import { listDeletionRecords, readDeletionRecord, type ListedDeletion } from '../repo/deletions.js';
import { advanceSyncCursor, readSyncCursor, resumeFrom, saveSyncCursor, clearSyncCursor, type SyncCursor } from './synccursor.js';

/**
 * Objects in flight at once while fetching (on S3 each is a request: latency, not bandwidth, is
 * the cost). A sliding window, consumed in order: memory stays bounded by the window.
 */
const FETCH_WINDOW = 32;

/**
 * Runs `load` over `ids` with up to FETCH_WINDOW in flight, handing results to `use` in order.
 * Time spent waiting for objects counts as `get`, time in `use` as `insert`.
 */
async function pipelined<T>(ids: string[], load: (id: string) => Promise<T>, use: (v: T) => void, report?: SyncReport): Promise<void> {
  const inFlight: Promise<T>[] = [];
  let next = 0;
  const refill = () => {
    while (next < ids.length && inFlight.length < FETCH_WINDOW) {
      const p = load(ids[next++]);
      p.catch(() => {}); // awaited in order below; a rejection is not "unhandled" meanwhile
      inFlight.push(p);
    }
  };
  refill();
  while (inFlight.length) {
    const t0 = performance.now();
    const v = await inFlight.shift()!;
    const t1 = performance.now();
    refill();
    use(v);
    if (report) {
      report.phases_ms.get += t1 - t0;
      report.phases_ms.insert += performance.now() - t1;
      report.objects_read++;
    }
  }
}

export interface SyncReport {
  packs_added: number;
  packs_removed: number;
  snapshots_added: number;
  snapshots_removed: number;
  abandoned_discarded: number;
  /**
   * What the imported snapshots lack (refused entry names, directories whose tree blob is
   * unreadable), per snapshot: the rest of each snapshot was imported. Display strings.
   */
  damaged: { snapshot_id: string; path: string; message: string }[];
  /** Snapshot records of hosts this catalog does not follow, read and kept as records only (issue 15). */
  remote_added: number;
  /** How long the sync took, in seconds. */
  duration_s: number;
  /**
   * Where the time went, in milliseconds: listing keys, fetching objects (GET + decrypt +
   * decode, overlapped), writing the catalog, importing trees, the rest (issue 15 profiling).
   */
  phases_ms: { list: number; get: number; insert: number; import: number };
  /**
   * Other hosts' data packs of few blobs this (lazy) sync recorded by the blob filter their
   * index key names, without reading the index (issue 15; SyncOptions.lazyData).
   */
  packs_unread: number;
  /**
   * How the pack indexes were listed (issue 15): 'resumed' from the cursor the last sync left
   * (only what is new, and deletion records for what went), or 'full' (no cursor yet, one older
   * than deletion records are kept, `catalog sync --full`, a rebuild).
   */
  listing: 'full' | 'resumed';
  /** Deletion records read (what prune deleted since the last sync). */
  deletion_records_read: number;
  /** Objects read (GET) by this sync: pack indexes, snapshot records, deletion records. */
  objects_read: number;
  /** `objects_read` by kind: indexes of data packs, of tree packs, and snapshot records (issue 15 profiling). */
  objects_read_kinds: { data_indexes: number; tree_indexes: number; records: number };
}

/** Which hosts' trees a sync imports (issue 15: a host's catalog is bounded by its own data). */
export interface SyncOptions {
  /**
   * Hosts to follow besides this host (util/host.ts thisHost) and those the catalog already
   * has lineages of: their snapshots' trees are imported, also the ones seen before as records.
   */
  follow?: Iterable<string>;
  /** Follow every host: import every snapshot's trees (the catalog of earlier releases). */
  allHosts?: boolean;
  /**
   * Also list and read the records of hosts not followed (kept as records only, table
   * remote_snapshots): for commands over every host (`snapshots`, forget's policy, `latest` or an
   * id of another host, check). A routine sync lists only the followed hosts' record prefixes
   * (and the flat records of older releases), so it reads nothing another host wrote (issue 15).
   */
  allRecords?: boolean;
  /**
   * A routine sync (a snapshot's, `catalog sync`): a new data pack whose index key names a blob
   * filter is recorded by that filter and not read (catalog table unread_packs); a snapshot
   * reads it when it is about to store a blob the filter may hold (snapshot/blobsink.ts). Every
   * other sync reads such packs, these and those recorded earlier: its command may need any
   * blob's location (restore, check, prune).
   */
  lazyData?: boolean;
  /** List every pack index, not only those new since the last sync (`catalog sync --full`). */
  full?: boolean;
}

/** One problem of an imported snapshot, as Catalog.damagedUnder reports it. */
export interface ImportDamage {
  path: RawPath;
  message: string;
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
 *
 * Per-host cost (issue 15): only the records of followed hosts are listed (below their host
 * tags, plus the flat records of older releases) unless `allRecords`; only objects the catalog
 * does not know are read (the catalog's packs and snapshot tables are the cursor); other hosts'
 * packs get compact rows (blobindex.ts, form 'far'), and their snapshots' trees are not
 * imported unless followed.
 */
export async function syncCatalog(
  repo: Repository,
  catalog: Catalog,
  onProgress?: (msg: string) => void,
  opts: SyncOptions = {},
): Promise<SyncReport> {
  const started = performance.now();
  const follow = catalog.followedHosts();
  follow.add(thisHost());
  for (const h of opts.follow ?? []) follow.add(h);
  const followed = (host: string) => opts.allHosts === true || follow.has(host);
  const report: SyncReport = {
    packs_added: 0,
    packs_removed: 0,
    snapshots_added: 0,
    snapshots_removed: 0,
    abandoned_discarded: 0,
    damaged: [],
    remote_added: 0,
    packs_unread: 0,
    listing: 'full',
    deletion_records_read: 0,
    duration_s: 0,
    phases_ms: { list: 0, get: 0, insert: 0, import: 0 },
    objects_read: 0,
    objects_read_kinds: { data_indexes: 0, tree_indexes: 0, records: 0 },
  };
  // Listing this host's records and tree indexes needs its tag, which needs the key: the tags
  // remembered from an earlier sync let a restore or verify list while the key is derived.
  const remembered = rememberedHostTags(catalog);
  repo.knowHostTags(remembered);
  const done = (cursor: SyncCursor | null) => {
    rememberHostTags(repo, catalog, follow, remembered);
    // Last: a sync killed before this point lists again from the cursor it started with.
    catalog.flush();
    if (cursor) saveSyncCursor(catalog, cursor);
    else clearSyncCursor(catalog);
    report.duration_s = (performance.now() - started) / 1000;
    return report;
  };
  report.abandoned_discarded = catalog.discardAbandoned(isAlive);

  // Snapshots are listed before pack indexes: a writer stores packs, then indexes, then the
  // snapshot record, so every snapshot seen here has all its indexes in the listing below even
  // while another host is writing (the other order can see a record whose trees it lacks).
  let t0 = performance.now();
  let cursor = opts.full ? null : readSyncCursor(catalog);
  const listing = await repo.listSnapshots(follow, opts.allHosts === true || opts.allRecords === true, cursor?.flat_records ?? true);
  const repoSnaps = listing.ids;
  // Data pack indexes (from the cursor, or all) and the tree pack indexes below the followed
  // hosts' tags (issue 15): no other host's tree index is listed or read here (TreeIndexSearch
  // reads them on demand); and what prune deleted (docs/FORMAT.md, "Catalog sync").
  const listFrom = (c: SyncCursor | null) =>
    Promise.all([
      listCatalogPackIndexes(repo, catalog, follow, opts.allHosts === true, c && resumeFrom(c.index_ms)),
      listDeletions(repo, c),
    ]);
  let [packList, deletions] = await listFrom(cursor);
  report.phases_ms.list += performance.now() - t0;
  // The prefixes listed may have come from remembered tags, which only the key proves: a listing
  // that would change the catalog (add, or above all drop, what a wrong tag hid) waits for it.
  const unreadRows = catalog.unreadPacks();
  // A resumed listing may not list an unread pack's key again: the catalog kept it.
  for (const u of unreadRows) if (u.key) repo.knowIndexKey(u.pack, u.key);
  const known = { snaps: catalog.knownSnapshotIds(), unread: new Set(unreadRows.map((u) => u.pack)) };
  const lazy = opts.lazyData === true;
  if (deletions.unread.length || listingChangesCatalog(catalog, listing, packList.packs, known, lazy, cursor !== null)) await repo.unlock();
  let { deleted, unreadable } = await readDeletions(repo, deletions.unread, report);
  if (unreadable.length && cursor !== null) {
    // What an unreadable record deleted is unknown: this sync lists everything (absence shows it).
    cursor = null;
    t0 = performance.now();
    [packList, deletions] = await listFrom(null);
    report.phases_ms.list += performance.now() - t0;
    ({ deleted, unreadable } = await readDeletions(repo, deletions.unread, report));
  }
  for (const u of unreadable) onProgress?.(`warning: ${u}; every pack index is listed while it is there ("snapfill check" names it)`);
  report.listing = cursor === null ? 'full' : 'resumed';
  const repoPacks = packList.packs;
  for (const id of deleted) repoPacks.delete(id); // going or gone: never (re)taken in

  const fresh = await fetchNew(repo, catalog, repoSnaps, repoPacks, report, followed, known, lazy, onProgress);
  dropVanishedPacks(catalog, cursor === null ? { listed: repoPacks } : { deleted }, known.unread, report);
  // While a record cannot be read, no cursor is kept: every sync lists everything.
  const nextCursor = unreadable.length
    ? null
    : advanceSyncCursor(cursor, { indexNewestMs: packList.newestStampMs, deletions: deletions.all, flatRecords: listing.flat });
  const toImport = await snapshotsToImport(repo, catalog, listing, fresh, report, followed, opts.allHosts ? undefined : follow);
  if (!toImport.length) return done(nextCursor);
  let n = 0;
  t0 = performance.now();
  const trees = new PackCache(repo); // tree blobs are read whole packs at a time, shared across snapshots
  const search = new TreeIndexSearch(repo, catalog);
  for (const s of toImport) {
    const damage = await importSnapshot(repo, catalog, s, trees, search);
    catalog.removeRemoteSnapshot(s.id); // imported now (its host is followed): no longer a record only
    for (const d of damage) report.damaged.push({ snapshot_id: s.id, path: display(d.path), message: d.message });
    if (damage.length)
      onProgress?.(
        `warning: snapshot ${s.id.slice(0, 8)} imported without ${damage.length} damaged or refused entries (first: ${display(damage[0].path)}: ${damage[0].message})`,
      );
    n++;
    onProgress?.(`catalog: imported snapshot ${s.id.slice(0, 8)} (${n}/${toImport.length})`);
  }
  report.snapshots_added = toImport.length;
  report.phases_ms.import += performance.now() - t0;
  report.objects_read += search.indexesRead;
  report.objects_read_kinds.tree_indexes += search.indexesRead;
  // Imported rows were never checked against this catalog's blobs (e.g. a rebuild after damage).
  catalog.setMeta('verify_reuse', '1');
  return done(nextCursor);
}

/** What the catalog held when the sync began: snapshot ids (imported and records) and unread packs. */
interface KnownAtSync {
  snaps: Set<string>;
  unread: Set<string>;
}

/** Whether acting on this listing would change the catalog: a snapshot or pack added, read or dropped. */
function listingChangesCatalog(
  catalog: Catalog,
  listing: SnapshotListing,
  repoPacks: Map<string, string | null>,
  known: KnownAtSync,
  lazy: boolean,
  resumed: boolean,
): boolean {
  for (const id of listing.ids) if (!known.snaps.has(id)) return true;
  // Records of hosts not followed are in a routine listing only when it lists every host.
  const remote = listing.complete ? new Set<string>() : catalog.remoteSnapshotIds();
  for (const id of known.snaps) if (!listing.ids.has(id) && !remote.has(id)) return true;
  if (known.unread.size && !lazy) return true; // to be read now
  // A resumed listing holds only what is new (what went is in deletion records, read with the key).
  if (resumed) return [...repoPacks.keys()].some((id) => !known.unread.has(id) && !catalog.hasPack(id));
  const packs = [...catalog.packIds(), ...known.unread];
  if (packs.length !== repoPacks.size) return true;
  return packs.some((id) => !repoPacks.has(id));
}

const HOST_TAGS_META = 'host_tags';

/** Host -> tag, as an earlier sync stored them (an unreadable entry counts as none: the tag is then computed). */
function rememberedHostTags(catalog: Catalog): Record<string, string> {
  try {
    const v: unknown = JSON.parse(catalog.getMeta(HOST_TAGS_META) ?? '{}');
    return v && typeof v === 'object' ? (v as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** Stores the followed hosts' tags when the key is at hand and one is new (repo.hostTagsNow). */
function rememberHostTags(repo: Repository, catalog: Catalog, hosts: Set<string>, had: Record<string, string>): void {
  const now = repo.hostTagsNow(hosts);
  if (!now || Object.entries(now).every(([h, t]) => had[h] === t)) return;
  catalog.setMeta(HOST_TAGS_META, JSON.stringify({ ...had, ...now }));
}

/**
 * Reads the objects listed now that the catalog does not know: pack indexes (added as compact
 * 'far' rows: this catalog did not write them) and snapshot records (records of hosts not
 * followed are kept as records; those of followed hosts are returned, to import). Indexes and
 * records are fetched in one window, indexes first.
 */
async function fetchNew(
  repo: Repository,
  catalog: Catalog,
  repoSnaps: Set<string>,
  repoPacks: Map<string, string | null>,
  report: SyncReport,
  followed: (host: string) => boolean,
  known: KnownAtSync,
  lazy: boolean,
  onProgress?: (msg: string) => void,
): Promise<StoredSnapshot[]> {
  let newPacks = [...repoPacks.keys()].filter((id) => !catalog.hasPack(id) && !(lazy && known.unread.has(id)));
  if (lazy) {
    // A flat index with a blob filter in its name: recorded by the filter, read when needed.
    newPacks = newPacks.filter((id) => {
      const filter = repoPacks.get(id) === null ? repo.indexFilterOf(id) : null;
      if (!filter) return true;
      catalog.addUnreadPack(id, filter, repo.listedIndexKey(id));
      report.packs_unread++;
      return false;
    });
  }
  const newSnaps = [...repoSnaps].filter((id) => !known.snaps.has(id));
  const fresh: StoredSnapshot[] = [];
  // `placed`: the record lies where its host's records go (else it is kept as a record only).
  type Got = { index: PackIndexInput } | { snap: StoredSnapshot; placed: boolean };
  await pipelined<Got>(
    [...newPacks.map((id) => `i${id}`), ...newSnaps.map((id) => `s${id}`)],
    async (k) => {
      if (k[0] === 'i') return { index: await repo.loadPackIndex(k.slice(1)) };
      const snap = await repo.loadSnapshot(k.slice(1));
      return { snap, placed: await repo.recordUnderItsHost(snap) };
    },
    (got) => {
      if ('index' in got) {
        if (got.index.type === 'tree') report.objects_read_kinds.tree_indexes++;
        else report.objects_read_kinds.data_indexes++;
        // A tree pack below a listed host tag is of a followed host: its trees are imported, so
        // it gets full rows at once (no second read). Flat ones (every data pack, older
        // releases' tree packs) get compact rows: this catalog did not write them.
        const idx: PackIndexInput = { ...got.index, form: repoPacks.get(got.index.pack) ? 'near' : 'far' };
        catalog.addPackIndex(idx);
        report.packs_added++;
        if (report.packs_added % 100 === 0) onProgress?.(`catalog: ${report.packs_added} pack indexes imported`);
      } else {
        report.objects_read_kinds.records++;
        if (!got.placed) onProgress?.(misplaced(got.snap));
        else if (followed(got.snap.host)) fresh.push(got.snap);
        else {
          catalog.addRemoteSnapshot(got.snap);
          report.remote_added++;
        }
      }
    },
    report,
  );
  return fresh;
}

/**
 * A record below another host's tag (moved or crafted) is no host's to this catalog: neither
 * imported nor listed (a routine sync of its host never sees it; check names it).
 */
function misplaced(s: StoredSnapshot): string {
  return `warning: snapshot ${s.id.slice(0, 8)} of host "${s.host}" is stored below another host's tag: ignored ("snapfill check" names it)`;
}

/**
 * Drops the packs the repository no longer has: after a full listing, those it lacks; after a
 * resumed one (which holds only what is new), those deletion records name.
 */
function dropVanishedPacks(
  catalog: Catalog,
  gone: { listed: Map<string, string | null> } | { deleted: Set<string> },
  unread: Set<string>,
  report: SyncReport,
): void {
  const vanished = 'listed' in gone ? (id: string) => !gone.listed.has(id) : (id: string) => gone.deleted.has(id);
  // Unread packs (those of this sync are listed, so never among them): none of their blobs was
  // ever taken as stored, so nothing else changes.
  for (const id of unread) if (vanished(id)) catalog.removeUnreadPack(id);
  const packs = 'listed' in gone ? catalog.packIds() : [...gone.deleted].filter((id) => catalog.hasPack(id));
  for (const id of packs) {
    if (vanished(id)) {
      catalog.removePack(id);
      report.packs_removed++;
    }
  }
  if (report.packs_removed > 0) {
    // Packs went away (a prune, or damage). Until the next snapshot has checked them, unchanged
    // files and directories must not be taken on trust: their blobs may be among the lost ones.
    catalog.clearTreeDigests();
    catalog.setMeta('verify_reuse', '1');
  }
}

/** Deletion records listed (from the cursor's window on, or all), and those not applied yet. */
async function listDeletions(repo: Repository, cursor: SyncCursor | null): Promise<{ all: ListedDeletion[]; unread: ListedDeletion[] }> {
  const all = await listDeletionRecords(repo, cursor === null ? null : resumeFrom(cursor.deleted_ms));
  const read = new Set(cursor?.deleted_read ?? []);
  return { all, unread: all.filter((d) => !read.has(d.id)) };
}

/**
 * The packs named by deletion records (read FETCH_WINDOW at a time), and why each record that
 * could not be read was not (damaged, tampered with, or of another key).
 */
async function readDeletions(
  repo: Repository,
  records: ListedDeletion[],
  report: SyncReport,
): Promise<{ deleted: Set<string>; unreadable: string[] }> {
  const deleted = new Set<string>();
  const unreadable: string[] = [];
  const byKey = new Map(records.map((d) => [d.key, d]));
  await pipelined(
    [...byKey.keys()],
    (key) => readDeletionRecord(repo, byKey.get(key)!).catch((e: unknown) => (e as Error).message),
    (packs) => {
      report.deletion_records_read++;
      if (typeof packs === 'string') unreadable.push(packs);
      else for (const p of packs) deleted.add(p);
    },
    report,
  );
  return { deleted, unreadable };
}

const byTimeThenId = (a: StoredSnapshot, b: StoredSnapshot) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1);

/**
 * Forgets the snapshots the repository no longer has and returns the records to import, in
 * time order: `fresh` (new ones of followed hosts) and records kept earlier of hosts followed
 * now (a command asked for them). Lineage rows must be added in time order: a snapshot older
 * than what its lineage already holds forces a re-import of all.
 */
async function snapshotsToImport(
  repo: Repository,
  catalog: Catalog,
  listing: SnapshotListing,
  fresh: StoredSnapshot[],
  report: SyncReport,
  followed: (host: string) => boolean,
  followSet: Set<string> | undefined,
): Promise<StoredSnapshot[]> {
  const repoSnaps = listing.ids;
  // The catalog's snapshots are of followed hosts: their prefixes (or the flat layout) were listed.
  for (const s of catalog.listSnapshots()) {
    if (!repoSnaps.has(s.id)) {
      catalog.forgetSnapshot(s.id);
      report.snapshots_removed++;
    }
  }
  // Records of other hosts are checked only against a listing of every host (allRecords): a
  // routine sync does not list them, and the commands that read them sync with allRecords first.
  if (listing.complete) {
    for (const id of catalog.remoteSnapshotIds()) {
      if (!repoSnaps.has(id)) {
        catalog.removeRemoteSnapshot(id);
        report.snapshots_removed++;
      }
    }
  }
  // Only the records of followed hosts are parsed (all of them with allHosts).
  for (const s of catalog.remoteRecords(followSet)) if (followed(s.host) && repoSnaps.has(s.id)) fresh.push(s);
  if (!fresh.length) return [];
  fresh.sort(byTimeThenId);
  const outOfOrder = fresh.some((s) => {
    const head = catalog.lineageHead(catalog.lineageId(s.host, s.paths));
    return head !== undefined && head.time > s.time;
  });
  if (!outOfOrder) return fresh;
  // Re-import the followed hosts' snapshots; the records of the others stay as they are.
  catalog.clearSnapshots();
  const all: StoredSnapshot[] = [];
  const remoteNow = catalog.remoteSnapshotIds();
  const promoted = new Set(fresh.map((f) => f.id));
  await pipelined(
    [...repoSnaps].filter((id) => !remoteNow.has(id) || promoted.has(id)),
    async (id) => {
      const s = await repo.loadSnapshot(id);
      return { s, placed: await repo.recordUnderItsHost(s) };
    },
    ({ s, placed }) => {
      report.objects_read_kinds.records++;
      if (!placed) return; // said by the fetch that first saw it
      if (followed(s.host)) all.push(s);
      else catalog.addRemoteSnapshot(s);
    },
    report,
  );
  return all.sort(byTimeThenId);
}

/**
 * Adds one snapshot to the catalog by walking its trees; subtrees equal to the parent's are
 * skipped whole. What cannot be taken is recorded in the catalog's damage table and returned,
 * and the rest is imported: an unsafe entry name is refused with its subtree, and an
 * unreadable tree blob loses that directory's contents only (a repository's damaged part
 * loses only that part). Errors that are not damage (a store that cannot be reached) still
 * fail the import, so a network failure is never recorded as lost data.
 */
export async function importSnapshot(
  repo: Repository,
  catalog: Catalog,
  s: StoredSnapshot,
  trees = new PackCache(repo),
  search = new TreeIndexSearch(repo, catalog),
): Promise<ImportDamage[]> {
  const lineage = catalog.lineageId(s.host, s.paths);
  const parent = catalog.lineageHead(lineage);
  const seq = catalog.beginSnapshot(lineage, s.time, s.host, s.paths, s.tags);
  const ctx: ImportContext = {
    repo,
    catalog,
    lineage,
    seq,
    trees,
    search,
    // Subtrees shared with the parent carry its damage along (only looked up when it has some).
    carryFrom: parent && catalog.hasDamage(parent.seq) ? parent.seq : null,
  };
  try {
    const rootId = catalog.ensurePath('/');
    await importTree(ctx, '/', rootId, s.tree);
    catalog.commitSnapshot(seq, s.id, s.tree, s.parent, s);
    // Found here or carried from the parent with a shared subtree: all of this snapshot's damage.
    return catalog.hasDamage(seq) ? catalog.damagedUnder(catalog.snapshotById(s.id)!, '/') : [];
  } catch (e) {
    catalog.flush();
    catalog.discardPending(seq);
    throw new Error(`cannot import snapshot ${s.id.slice(0, 8)}: ${(e as Error).message}`, { cause: e });
  }
}

interface ImportContext {
  repo: Repository;
  catalog: Catalog;
  lineage: number;
  seq: number;
  trees: PackCache;
  search: TreeIndexSearch;
  carryFrom: number | null;
}

/**
 * Loads, as near packs, the far tree packs that may hold `treeId` (issue 15: the catalog keeps
 * only hints of other hosts' tree packs until an import needs them). Returns whether the
 * catalog now has the blob. The hints are read on a read-only connection of their own (the
 * Catalog facade does not expose them; a committed read is all they need).
 */
async function loadTreePacks(repo: Repository, catalog: Catalog, treeId: string): Promise<boolean> {
  catalog.flush();
  const ro = CatalogDb.openReadOnly(catalog.file);
  let hinted: string[];
  try {
    hinted = new BlobIndex(ro).treePackHints(treeId);
  } finally {
    ro.close();
  }
  for (const pack of hinted) {
    let idx: PackIndex;
    try {
      idx = await repo.loadPackIndex(pack);
    } catch (e) {
      if (e instanceof ObjectNotFoundError) continue; // pruned meanwhile: the next sync drops it
      throw e;
    }
    const near: PackIndexInput = { ...idx, form: 'near' };
    catalog.addPackIndex(near);
    if (idx.blobs.some((b) => b.id === treeId)) return true;
  }
  return catalog.blobLocation(treeId) !== undefined;
}

/** A tree's entries, or why they are lost (the blob is absent, corrupt or not a tree). */
async function readTree(ctx: ImportContext, treeId: string): Promise<Entry[] | string> {
  const { repo, catalog, trees } = ctx;
  const id = `tree blob ${treeId.slice(0, 12)}`;
  let loc = catalog.blobLocation(treeId);
  if (!loc && (await loadTreePacks(repo, catalog, treeId))) loc = catalog.blobLocation(treeId);
  // Below another host's tag (issue 15): searched only after everything this catalog lists.
  if (!loc && (await ctx.search.find(treeId))) loc = catalog.blobLocation(treeId);
  if (!loc) return `${id} is not in any pack`;
  let bytes: Buffer;
  try {
    bytes = await trees.readBlob(loc.pack, loc.offset, loc.length, treeId);
  } catch (e) {
    if (e instanceof BlobCorruptError) return `${id} is corrupt (content hash mismatch, pack ${loc.pack.slice(0, 12)})`;
    if (e instanceof ObjectNotFoundError) return `${id}: its pack ${loc.pack.slice(0, 12)} is missing`;
    if (/beyond the end of pack/.test((e as Error).message)) return `${id} is cut off (pack ${loc.pack.slice(0, 12)} is truncated)`;
    throw e; // not damage: e.g. the store could not be reached
  }
  try {
    return decodeTree(bytes);
  } catch (e) {
    return `${id} is not a valid tree (${(e as Error).message})`;
  }
}

async function importTree(ctx: ImportContext, dir: RawPath, dirPathId: number, treeId: string): Promise<void> {
  const { catalog, lineage, seq } = ctx;
  let entries = await readTree(ctx, treeId);
  if (typeof entries === 'string') {
    catalog.addDamage(seq, dir, dir, `${entries}: directory contents lost`);
    entries = []; // the parent's children are not known to be here: they are closed below
  }
  const prevChildren = catalog.openChildren(dirPathId, lineage, seq);
  const seen = new Set<RawPath>();
  for (const e of entries) {
    // Names become paths here: this is where unsafe ones are stopped, for every reader of the catalog.
    const bad = nameProblem(e.name) ?? (seen.has(e.name) ? 'appears twice in its directory' : null);
    if (bad) {
      catalog.addDamage(
        seq,
        dir,
        refusedPath(dir, e.name),
        `unsafe entry name ${quoteName(e.name)} ${bad}: refused with everything below it`,
      );
      continue;
    }
    seen.add(e.name);
    const prev = prevChildren.get(e.name);
    prevChildren.delete(e.name);
    const p = join(dir, e.name);
    const pathId = prev?.pathId ?? catalog.childPathId(dirPathId, dir, e.name);
    if (prev && sameEntry(prev, e)) {
      // identical, and for a directory its whole subtree too (with any damage in it)
      if (ctx.carryFrom !== null && e.type === 'dir') catalog.carryDamage(ctx.carryFrom, seq, p);
      continue;
    }
    if (prev) {
      catalog.closeVersion(seq, prev.versionId);
      if (prev.type === 'dir' && e.type !== 'dir') catalog.closeSubtree(seq, lineage, p);
    }
    catalog.insertVersion(pathId, lineage, seq, e);
    if (e.type === 'dir' && e.tree) await importTree(ctx, p, pathId, e.tree);
  }
  for (const [name, prev] of prevChildren) {
    catalog.closeVersion(seq, prev.versionId);
    if (prev.type === 'dir') catalog.closeSubtree(seq, lineage, join(dir, name));
  }
}

export async function rebuildCatalog(
  repo: Repository,
  catalog: Catalog,
  onProgress?: (msg: string) => void,
  opts: SyncOptions = {},
): Promise<SyncReport> {
  // The rebuilt catalog follows the hosts the old one did (their lineages go with clearAll).
  const follow = [...catalog.followedHosts(), ...(opts.follow ?? [])];
  catalog.clearAll();
  clearSyncCursor(catalog);
  return syncCatalog(repo, catalog, onProgress, { ...opts, follow });
}
