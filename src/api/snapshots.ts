import type { Catalog, SnapshotRow } from '../catalog/catalog.js';
import { OptionError } from '../util/errors.js';
import { display, fromUser, isUnder, normalizeAbs, type RawPath } from '../util/rawpath.js';
import type { Session } from './session.js';
import { syncCatalog } from '../catalog/sync.js';
import { LockBusyError } from '../util/pidlock.js';

export interface SnapshotFilter {
  /** Only snapshots of this host. */
  host?: string;
  /** Only snapshots carrying this tag. */
  tag?: string;
  /** Only snapshots that include this source path (absolute; a leading `/` is added when missing). */
  path?: string;
}

/** What a command asks of `latest`: the filters, and the snapshot paths it is going to read. */
export interface SnapshotSelection extends SnapshotFilter {
  /** Raw absolute paths inside the snapshot; `latest` is the newest snapshot of a group holding them all. */
  paths?: RawPath[];
}

/** One group of snapshots (same host, same source paths) and its newest snapshot. */
export interface SnapshotGroup {
  host: string;
  paths: RawPath[];
  newest: SnapshotRow;
}

export interface ChosenSnapshot {
  snapshot: SnapshotRow;
  /** The reference as given (`latest`, an id or a prefix). */
  ref: string;
  /** With `latest`: the groups that held the asked-for paths, newest first, when more than one did. */
  groups: SnapshotGroup[];
  /** The asked-for paths, raw. */
  paths: RawPath[];
}

/** A snapshot named by reference, with the filters that narrow it and a hook told of the choice before the operation acts. */
export interface SnapshotQuery extends SnapshotFilter {
  ref: string;
  onChosen?: (c: ChosenSnapshot) => void;
}

/** A snapshot named by reference (resolved in the session's catalog), by a query, or already in hand. */
export type SnapshotRef = string | SnapshotQuery | SnapshotRow;

function filterPath(p: string): RawPath {
  return normalizeAbs(fromUser(p.startsWith('/') ? p : '/' + p));
}

function matches(r: SnapshotRow, f: SnapshotFilter): boolean {
  return (!f.host || r.host === f.host) && (!f.tag || r.tags.includes(f.tag)) && (!f.path || r.paths.includes(filterPath(f.path)));
}

/**
 * Committed snapshots of every host, oldest first, narrowed by host, tag and source path. Those
 * of hosts the catalog does not follow are `remote` rows (records only, issue 15): pass one to
 * pickSnapshot, which imports its trees before an operation reads them. Call readAllRecords
 * first: a routine sync does not read other hosts' records.
 */
export function listSnapshots(s: Session, filter: SnapshotFilter = {}): SnapshotRow[] {
  return s.catalog.listAllSnapshots().filter((r) => matches(r, filter));
}

/**
 * Brings the records of every host into the catalog (issue 15: a routine sync lists only the
 * followed hosts' records): for a command over every host (`snapshots`, `latest`, an id of
 * another host). Records not seen before are read once and kept as records (no trees). Once
 * per session; a read-only command whose catalog another process holds reads it as it is.
 */
export async function readAllRecords(s: Session): Promise<void> {
  if (s.allRecordsRead) return;
  try {
    await s.withCatalogLock('reading the snapshot records of every host', async () => {
      const rep = await syncCatalog(s.repo, s.catalog, s.note, { allRecords: true });
      for (const d of rep.damaged) s.note(`warning: snapshot ${d.snapshot_id.slice(0, 8)}: ${d.path}: ${d.message}`);
    });
  } catch (e) {
    if (!(s.readOnly && e instanceof LockBusyError)) throw e;
    s.note(`note: ${e.message}; other hosts' snapshots are listed as the catalog last saw them`);
  }
  s.allRecordsRead = true;
}

/**
 * Imports the trees of these hosts' snapshots, which the catalog so far held as records only
 * (issue 15: a host's catalog follows its own lineages; another host's are fetched when a
 * command asks for them). From now on the catalog follows these hosts.
 */
export async function importHosts(s: Session, hosts: Iterable<string>): Promise<void> {
  const want = [...new Set(hosts)].filter((h) => !s.catalog.followedHosts().has(h));
  if (!want.length) return;
  s.note(`catalog: importing the snapshots of host ${want.join(', ')} (first use on this machine)`);
  await s.withCatalogLock(`import of host ${want.join(', ')}`, async () => {
    const rep = await syncCatalog(s.repo, s.catalog, s.note, { follow: want });
    for (const d of rep.damaged) s.note(`warning: snapshot ${d.snapshot_id.slice(0, 8)}: ${d.path}: ${d.message}`);
  });
}

/** "with --host web1 --tag nightly", in the caller's spelling of the options ('' without filters). */
function filterText(f: SnapshotFilter): (n: (o: string) => string) => string {
  return (n) => {
    const parts = (['host', 'path', 'tag'] as const).filter((k) => f[k]).map((k) => `${n(k)} ${f[k]}`);
    return parts.length ? ` with ${parts.join(' ')}` : '';
  };
}

/** The newest snapshot of each group (snapshots come oldest first), newest group first. */
function groupHeads(snaps: SnapshotRow[]): SnapshotGroup[] {
  const heads = new Map<number, { at: number; g: SnapshotGroup }>();
  snaps.forEach((s, at) => heads.set(s.lineage, { at, g: { host: s.host, paths: s.paths, newest: s } }));
  return [...heads.values()].sort((a, b) => b.at - a.at).map((h) => h.g);
}

/**
 * The groups holding every asked-for path. A group whose source paths contain the path holds
 * it; only when no group does, one that recorded the path as the way down to its sources (an
 * ancestor directory) counts: `/home/alice` is held by a snapshot of `/home`, not by a later
 * one of `/home/alice/logs` that merely passes through it.
 */
function groupsHolding(groups: SnapshotGroup[], paths: RawPath[]): SnapshotGroup[] {
  const within = groups.filter((g) => paths.every((p) => g.paths.some((src) => isUnder(p, src))));
  if (within.length) return within;
  return groups.filter((g) => paths.every((p) => g.paths.some((src) => isUnder(p, src) || isUnder(src, p))));
}

/**
 * Resolves `latest`, a full id or a unique id prefix to a committed snapshot, narrowed by host,
 * tag and source path. `latest` is the newest snapshot of the group (host + source paths) that
 * holds the asked-for paths; when several groups hold them, the newest among those (the choice
 * names them all).
 */
export function chooseSnapshot(catalog: Catalog, ref: string, sel: SnapshotSelection = {}): ChosenSnapshot {
  return chooseAmong(catalog.listSnapshots(), ref, sel);
}

function chooseAmong(all: SnapshotRow[], ref: string, sel: SnapshotSelection): ChosenSnapshot {
  if (!all.length) throw new Error('the repository has no snapshots yet');
  const snaps = all.filter((r) => matches(r, sel));
  const paths = sel.paths ?? [];
  if (ref === 'latest') {
    const held = groupsHolding(groupHeads(snaps), paths);
    if (!held.length) {
      const filters = filterText(sel);
      throw new OptionError((n) =>
        paths.length
          ? `${paths.map(display).join(', ')}: not in snapshots${filters(n) || ' of any group (host + source paths)'}`
          : `no snapshot${filters(n)}`,
      );
    }
    return { snapshot: held[0].newest, ref, groups: held.length > 1 ? held : [], paths };
  }
  if (!/^[0-9a-f]{1,64}$/.test(ref)) throw new Error(`invalid snapshot reference "${ref}": use "latest", an id or an id prefix`);
  const hits = snaps.filter((s) => s.id.startsWith(ref));
  if (hits.length === 0) throw new OptionError((n) => `no snapshot matches "${ref}"${filterText(sel)(n)}`);
  if (hits.length > 1) throw new Error(`"${ref}" matches ${hits.length} snapshots; give more characters of the id`);
  return { snapshot: hits[0], ref, groups: [], paths };
}

/** `chooseSnapshot`, for callers that need only the snapshot. */
export function resolveSnapshot(catalog: Catalog, ref: string, sel: SnapshotSelection = {}): SnapshotRow {
  return chooseSnapshot(catalog, ref, sel).snapshot;
}

/**
 * The snapshot an operation works on. `paths` are the snapshot paths the operation will read:
 * `latest` then means the newest snapshot of a group holding them. A query's `onChosen` hears
 * of the choice before the operation acts on it.
 */
export function selectSnapshot(s: Session, ref: SnapshotRef, paths: RawPath[] = [], filter: SnapshotFilter = {}): SnapshotRow {
  if (typeof ref !== 'string' && 'seq' in ref) return ref;
  const q: SnapshotQuery = typeof ref === 'string' ? { ref } : ref;
  const chosen = chooseSnapshot(s.catalog, q.ref, selection(q, paths, filter));
  q.onChosen?.(chosen);
  return chosen.snapshot;
}

function selection(q: SnapshotQuery, paths: RawPath[], filter: SnapshotFilter): SnapshotSelection {
  return { host: q.host ?? filter.host, tag: q.tag ?? filter.tag, path: q.path ?? filter.path, paths };
}

/**
 * selectSnapshot over the snapshots of every host: the choice is the one a catalog holding
 * every host's trees would make. When it falls on a host this catalog does not follow (another
 * host's snapshot by id or `--host`, or a fresh machine restoring a lost one), that host's
 * trees are imported first (importHosts), so the operation reads a complete snapshot.
 */
export async function pickSnapshot(s: Session, ref: SnapshotRef, paths: RawPath[] = [], filter: SnapshotFilter = {}): Promise<SnapshotRow> {
  let chosen: ChosenSnapshot | null = null;
  let snap: SnapshotRow;
  if (typeof ref !== 'string' && 'seq' in ref) snap = ref;
  else {
    const q: SnapshotQuery = typeof ref === 'string' ? { ref } : ref;
    await readAllRecords(s); // the choice is among every host's snapshots
    chosen = chooseAmong(s.catalog.listAllSnapshots(), q.ref, selection(q, paths, filter));
    snap = chosen.snapshot;
  }
  if (snap.remote) {
    await importHosts(s, [snap.host]);
    const imported = s.catalog.snapshotById(snap.id);
    if (!imported) throw new Error(`snapshot ${snap.id.slice(0, 8)} of host ${snap.host} is no longer in the repository`);
    snap = imported;
    if (chosen) chosen = { ...chosen, snapshot: snap };
  }
  if (chosen && typeof ref !== 'string' && !('seq' in ref)) ref.onChosen?.(chosen);
  return snap;
}
