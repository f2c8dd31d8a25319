/**
 * The questions the web console (`snapfill serve`, src/serve/) asks that no other command
 * asks in one call: an accounts overview, a paged directory, a subtree diff, the health
 * summary. Each is a read of the catalog (or the monitoring files); the console itself holds
 * no logic of its own.
 */
import * as fs from 'node:fs';
import type { SnapshotRow, VersionRow } from '../catalog/catalog.js';
import { diffSnapshots, type DiffResult } from '../query/diff.js';
import { findConfigFile, readConfigFor } from '../config/settings.js';
import { cacheDir } from '../config/location.js';
import { syncCatalog } from '../catalog/sync.js';
import { LockBusyError } from '../util/pidlock.js';
import { display, fromUser, isUnder, join, normalizeAbs, type RawPath } from '../util/rawpath.js';
import { readLastRun, type LastRun } from './monitor.js';
import type { Session } from './session.js';
import { listEntries } from './browse.js';
import { listSnapshots, selectSnapshot, type SnapshotRef } from './snapshots.js';

/** What the console reads from the config file when the command line does not say it. */
export interface ConsoleSettings {
  accountsRoot: string;
  monitoring: { prometheusTextfile?: string; jsonLog?: string };
  /** The config file read, or null when there is none. */
  configFile: string | null;
}

/** The config file's accounts root and monitoring files (flags > SNAPFILL_CONFIG > default file), as `restore` and `run` use them. */
export function consoleSettings(opts: { config?: string } = {}): ConsoleSettings {
  const ref = findConfigFile(opts.config);
  const file = ref ? readConfigFor(ref) : null;
  return {
    accountsRoot: file?.accounts_root ?? '/home',
    monitoring: { prometheusTextfile: file?.monitoring?.prometheus_textfile, jsonLog: file?.monitoring?.json_log },
    configFile: ref?.file ?? null,
  };
}

function snapshotPath(p: string): RawPath {
  return normalizeAbs(fromUser(p.startsWith('/') ? p : '/' + p));
}

interface Totals {
  files: number;
  dirs: number;
  bytes: number;
}

function subtreeTotals(s: Session, snap: SnapshotRow, root: RawPath): Totals {
  const t: Totals = { files: 0, dirs: 0, bytes: 0 };
  for (const v of s.catalog.walk(snap, root)) {
    if (v.type === 'dir') t.dirs++;
    else if (v.type === 'file' || v.type === 'hardlink') {
      t.files++;
      if (v.type === 'file') t.bytes += v.size;
    }
  }
  return t;
}

/** Snapshots (oldest first) that hold `p` (any entry at that path), each with its host and time. */
export function snapshotsHolding(s: Session, p: string, filter: { host?: string } = {}): SnapshotRow[] {
  const path = snapshotPath(p);
  return listSnapshots(s, filter).filter((r) => path === '/' || s.catalog.entry(r, path) !== undefined);
}

export interface AccountSummary {
  name: string;
  /** The account's home inside the snapshots. */
  home: string;
  /** The newest snapshot that holds the account. */
  snapshot: { id: string; time: string; host: string };
  /** False when the newest snapshot of its group no longer has it (account removed since). */
  present: boolean;
  files: number;
  dirs: number;
  bytes: number;
  /** Against the previous snapshot of the same group that held the account (null: the first one). */
  change: { previous: string; added: number; removed: number; changed: number; metadata: number; bytes: number; files: number } | null;
}

/**
 * Every account (a directory under the accounts root) in any snapshot, each with its size in
 * the newest snapshot holding it and what changed since the previous one. Accounts removed
 * since are listed too (present: false): restoring a deleted account is the common case.
 */
export function listAccounts(s: Session, o: { accountsRoot: string; host?: string }): { accountsRoot: string; accounts: AccountSummary[] } {
  const root = snapshotPath(o.accountsRoot);
  const snaps = listSnapshots(s, { host: o.host }).filter((r) => s.catalog.entry(r, root)?.type === 'dir');
  const newestOfLineage = new Map<number, SnapshotRow>();
  for (const r of snaps) newestOfLineage.set(r.lineage, r);
  const seen = new Map<string, AccountSummary>();
  for (let i = snaps.length - 1; i >= 0; i--) {
    const snap = snaps[i];
    for (const v of s.catalog.listDir(snap, root)) {
      if (v.type !== 'dir' || seen.has(v.name)) continue;
      const home = join(root, v.name);
      const totals = subtreeTotals(s, snap, home);
      let prev: SnapshotRow | undefined;
      for (let j = i - 1; j >= 0 && !prev; j--) if (snaps[j].lineage === snap.lineage && s.catalog.entry(snaps[j], home)) prev = snaps[j];
      let change: AccountSummary['change'] = null;
      if (prev) {
        const d = diffSnapshots(s.catalog, prev, snap, () => {}, home);
        const before = subtreeTotals(s, prev, home);
        change = { previous: prev.id, ...d.counts, bytes: totals.bytes - before.bytes, files: totals.files - before.files };
      }
      seen.set(v.name, {
        name: display(v.name),
        home: display(home),
        snapshot: { id: snap.id, time: snap.time, host: snap.host },
        present: newestOfLineage.get(snap.lineage) === snap,
        ...totals,
        change,
      });
    }
  }
  return { accountsRoot: display(root), accounts: [...seen.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
}

export interface ListingPage {
  snapshot: SnapshotRow;
  path: RawPath;
  /** The entry at `path` itself (null for "/"). */
  self: VersionRow | null;
  /** Entries in the directory (1 when `path` is not a directory). */
  total: number;
  offset: number;
  entries: VersionRow[];
  damage: { path: string; message: string }[];
}

/** One page of a directory of a snapshot, in name (byte) order, and its entry count. */
export function listPage(s: Session, ref: SnapshotRef, p: string, o: { offset?: number; limit?: number } = {}): ListingPage {
  const listing = listEntries(s, ref, p);
  const snap = listing.snapshot;
  const self = listing.path === '/' ? null : (s.catalog.entry(snap, listing.path) ?? null);
  const offset = Math.max(0, o.offset ?? 0);
  const limit = Math.max(1, Math.min(o.limit ?? 200, 5000));
  if (self && self.type !== 'dir') {
    return { snapshot: snap, path: listing.path, self, total: 1, offset: 0, entries: [self], damage: listing.damage };
  }
  const { total, rows } = s.catalog.listDirPage(snap, listing.path, offset, limit);
  return { snapshot: snap, path: listing.path, self, total, offset, entries: rows, damage: listing.damage };
}

export interface SubtreeDiff {
  a: SnapshotRow;
  b: SnapshotRow;
  path: string;
  counts: DiffResult['counts'];
  /** The first `limit` paths of each kind. */
  paths: Record<keyof DiffResult['counts'], string[]>;
}

/** What changed between two snapshots below one path (counts, and the first `limit` paths of each kind). */
export function diffSubtree(s: Session, a: SnapshotRef, b: SnapshotRef, p: string, limit = 500): SubtreeDiff {
  const root = snapshotPath(p);
  const sa = selectSnapshot(s, a, [root]);
  const sb = selectSnapshot(s, b, [root]);
  const paths: SubtreeDiff['paths'] = { added: [], removed: [], changed: [], metadata: [] };
  const res = diffSnapshots(
    s.catalog,
    sa,
    sb,
    (kind, path) => {
      if (paths[kind].length < limit) paths[kind].push(path);
    },
    root,
  );
  return { a: sa, b: sb, path: display(root), counts: res.counts, paths };
}

export interface HostHealth {
  host: string;
  snapshots: number;
  newest: { id: string; time: string; paths: string[]; summary: Record<string, number> };
  /** Seconds since the newest snapshot was taken. */
  ageS: number;
}

export interface HealthReport {
  hosts: HostHealth[];
  /** This machine's last scheduled run, from the monitoring files (null: not configured or not run yet). */
  lastRun: LastRun | null;
  /** A monitoring file that exists but cannot be read. */
  lastRunProblem: string | null;
  /** The error lines of the JSON log's last run (newest last, at most 50). */
  errors: { time: string; msg: string }[];
}

/** Per host, the newest snapshot and its age; the last scheduled run and its errors (what the Prometheus textfile exports). */
export function health(s: Session, monitoring: ConsoleSettings['monitoring'], now = Date.now()): HealthReport {
  const byHost = new Map<string, HostHealth>();
  for (const r of listSnapshots(s)) {
    const h = byHost.get(r.host);
    const newest = { id: r.id, time: r.time, paths: r.paths.map(display), summary: (r.record?.summary ?? {}) as Record<string, number> };
    const ageS = Math.max(0, Math.round((now - Date.parse(r.time)) / 1000));
    if (!h) byHost.set(r.host, { host: r.host, snapshots: 1, newest, ageS });
    else {
      h.snapshots++;
      if (r.time >= h.newest.time) Object.assign(h, { newest, ageS });
    }
  }
  let lastRun: LastRun | null = null;
  let lastRunProblem: string | null = null;
  try {
    lastRun = readLastRun(monitoring);
  } catch (e) {
    lastRunProblem = (e as Error).message;
  }
  return {
    hosts: [...byHost.values()].sort((a, b) => (a.host < b.host ? -1 : 1)),
    lastRun,
    lastRunProblem,
    errors: lastRunErrors(monitoring.jsonLog),
  };
}

const LOG_TAIL = 1 << 20;

/** The error lines of the last run in the JSON log (read from its last MiB). */
function lastRunErrors(file: string | undefined): { time: string; msg: string }[] {
  if (!file || file === 'stderr') return [];
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, LOG_TAIL));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  let runId: string | null = null;
  const lines: { run_id?: string; level?: string; time?: string; msg?: string }[] = [];
  for (const line of text.split('\n')) {
    try {
      const o = JSON.parse(line);
      if (o && typeof o === 'object') lines.push(o);
      if (o?.msg === 'run started' && typeof o.run_id === 'string') runId = o.run_id;
    } catch {
      /* a torn line (a cut at the start of the tail, or a killed writer) */
    }
  }
  return lines
    .filter((o) => o.level === 'error' && (runId === null || o.run_id === runId))
    .slice(-50)
    .map((o) => ({ time: String(o.time ?? ''), msg: String(o.msg ?? '') }));
}

/** True when `p` (a snapshot path as typed) lies at or below `root`. */
export function pathIsUnder(p: string, root: string): boolean {
  return isUnder(snapshotPath(p), snapshotPath(root));
}

/** Where the console keeps its token: the cache directory every command uses (SNAPFILL_CACHE, else per user). */
export function consoleStateDir(): string {
  return cacheDir();
}

/**
 * Brings a long-lived session's catalog up to date with the repository (snapshots taken or
 * forgotten since it was opened). False when another process holds the catalog (a run writing
 * it): the session then reads it as it is, as a read-only command does.
 */
export async function refreshCatalog(s: Session): Promise<boolean> {
  try {
    s.lockCatalog('the catalog');
  } catch (e) {
    if (e instanceof LockBusyError) return false;
    throw e;
  }
  try {
    // The console lists every host's snapshots: their records too (issue 15).
    await syncCatalog(s.repo, s.catalog, undefined, { allRecords: true });
    return true;
  } finally {
    s.unlockCatalog();
  }
}
