import type { RepoContext } from '../catalog/context.js';
import type { SnapshotRow } from '../catalog/catalog.js';
import { syncCatalog } from '../catalog/sync.js';
import { thisHost } from '../util/host.js';
import { display } from '../util/rawpath.js';
import { OptionError, type OptionText } from '../util/errors.js';
import { applyPolicy, policyIsEmpty, type RetentionPolicy } from './policy.js';
import { prune, type PruneOptions, type PruneReport } from './prune.js';
import { ObjectRetainedError } from '../store/store.js';

export interface ForgetOptions {
  policy: RetentionPolicy;
  dryRun?: boolean;
  /** Only consider snapshots of this host (the others are left alone). */
  host?: string;
  onProgress?: (msg: string) => void;
}

export interface ForgetSnapshotLine {
  id: string;
  time: string;
  tags: string[];
  reasons: string[];
}

export interface ForgetGroup {
  host: string;
  paths: string[];
  keep: ForgetSnapshotLine[];
  remove: ForgetSnapshotLine[];
}

export interface ForgetReport {
  dry_run: boolean;
  groups: ForgetGroup[];
  kept: number;
  removed: string[];
  /** Snapshots the policy would remove but S3 Object Lock still protects. */
  retained: { id: string; until: string }[];
}

export class RetentionRefusedError extends OptionError {
  constructor(msg: string | OptionText) {
    super(msg);
    this.name = 'RetentionRefusedError';
  }
}

/** Snapshots of one host and one set of source paths: the unit a policy applies to. */
export function groupSnapshots(rows: SnapshotRow[]): SnapshotRow[][] {
  const groups = new Map<string, SnapshotRow[]>();
  for (const r of rows) {
    const key = JSON.stringify([r.host, [...r.paths].sort()]);
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  return [...groups.values()];
}

/** Decides every group first; refuses before deleting anything if a group would lose all its snapshots. */
export function planForget(rows: SnapshotRow[], policy: RetentionPolicy): ForgetGroup[] {
  if (policyIsEmpty(policy)) {
    throw new RetentionRefusedError('no keep rule given: refusing to forget (a policy that keeps nothing would remove every snapshot)');
  }
  const line = (x: { item: SnapshotRow; reasons: string[] }): ForgetSnapshotLine => ({
    id: x.item.id,
    time: x.item.time,
    tags: x.item.tags,
    reasons: x.reasons,
  });
  const out: ForgetGroup[] = [];
  for (const g of groupSnapshots(rows)) {
    const d = applyPolicy(g, policy);
    const group: ForgetGroup = { host: g[0].host, paths: g[0].paths.map(display), keep: d.keep.map(line), remove: d.remove.map(line) };
    if (!group.keep.length) {
      throw new RetentionRefusedError(
        (n) =>
          `refusing to remove all ${g.length} snapshots of host ${group.host}, paths ${group.paths.join(' ')}: ` +
          `the policy keeps none of them (add ${n('keepLast')} 1 or a time rule)`,
      );
    }
    out.push(group);
  }
  return out;
}

/**
 * Applies a retention policy. Deleting a snapshot removes its record from the repository,
 * then from the catalog; its data stays until `prune`. Holds the maintenance lock,
 * and re-syncs the catalog under it so the decision sees every snapshot (also those another
 * host added since the session opened).
 */
export async function forget(s: RepoContext, opts: ForgetOptions): Promise<ForgetReport> {
  const run = async (): Promise<ForgetReport> => {
    // Every host's records (issue 15: a routine sync reads only the followed hosts'): the policy
    // is applied across the fleet. A dry run reads them too (it writes only to the catalog).
    // With --host of a followed host (`run`'s retention of its own host) its records are enough.
    const followed = s.catalog.followedHosts().add(thisHost());
    s.lockCatalog('forget');
    await syncCatalog(s.repo, s.catalog, opts.onProgress, { allRecords: !opts.host || !followed.has(opts.host) });
    // Every host's snapshots, also those this catalog keeps as records only (issue 15).
    const rows = s.catalog.listAllSnapshots().filter((r) => !opts.host || r.host === opts.host);
    const groups = planForget(rows, opts.policy);
    const report: ForgetReport = { dry_run: Boolean(opts.dryRun), groups, kept: 0, removed: [], retained: [] };
    for (const g of groups) report.kept += g.keep.length;
    if (opts.dryRun) {
      for (const g of groups) report.removed.push(...g.remove.map((r) => r.id));
      return report;
    }
    for (const g of groups) {
      for (const r of g.remove) {
        // S3 Object Lock: a snapshot record under retention stays (and keeps its data alive).
        const until = await s.repo.snapshotRetainedUntil(r.id);
        if (until) {
          report.retained.push({ id: r.id, until: until.toISOString() });
          opts.onProgress?.(`snapshot ${r.id.slice(0, 8)} is under retention until ${until.toISOString()}: kept`);
          continue;
        }
        // Repository first: it is the truth. A crash between the two is repaired by the next sync.
        try {
          await s.repo.deleteSnapshot(r.id);
        } catch (e) {
          if (!(e instanceof ObjectRetainedError)) throw e;
          // Refused by the store for retention we could not read: kept, like the case above.
          const when = e.until?.toISOString() ?? 'unknown';
          report.retained.push({ id: r.id, until: when });
          opts.onProgress?.(`snapshot ${r.id.slice(0, 8)} is under object-lock retention (until ${when}): kept`);
          continue;
        }
        s.catalog.forgetSnapshot(r.id);
        report.removed.push(r.id);
        opts.onProgress?.(`removed snapshot ${r.id.slice(0, 8)} (${r.time})`);
      }
    }
    return report;
  };
  if (opts.dryRun) return run();
  s.lockCatalog('forget');
  // The maintenance lock: two forgets/prunes exclude each other; snapshots run on (issue 15).
  // Safe: a snapshot whose parent is forgotten meanwhile still has its data, because prune
  // only marks what no record references and deletes only what no record references later.
  return s.withRepoLock('forget', 'maintenance', run);
}

/**
 * Prune under the maintenance lock (excludes other prunes and forgets, never snapshots) and
 * the local catalog lock (see src/maintain/prune.ts). A dry run only reads: no lock.
 */
export async function pruneSession(s: RepoContext, opts: PruneOptions): Promise<PruneReport> {
  if (opts.dryRun) return prune(s.repo, s.catalog, opts);
  s.lockCatalog('prune');
  return s.withRepoLock('prune', 'maintenance', () => prune(s.repo, s.catalog, opts));
}
