import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.js';
import { applyCredentials } from '../config/config.js';
import { openSession, type Session } from './session.js';
import { acquirePidLock, LockBusyError } from '../util/pidlock.js';
import { Snapshotter, type PathError, type SnapshotResult } from '../snapshot/snapshotter.js';
import { syncCatalog } from '../catalog/sync.js';
import { forget, pruneSession, type ForgetReport } from '../maintain/forget.js';
import type { PruneReport } from '../maintain/prune.js';
import { throttleHooks } from '../util/throttle.js';
import { hookFailed, runHook, type HookResult } from './hooks.js';
import { JsonLog, writePrometheusTextfile } from './monitor.js';

export type RunStatus = 'success' | 'partial' | 'failed';

export interface RunReport {
  run_id: string;
  status: RunStatus;
  config: string;
  repository: string;
  started: string;
  duration_s: number;
  snapshot: SnapshotResult | null;
  forget: { removed: string[]; kept: number } | null;
  prune: PruneReport | null;
  prune_due: boolean;
  hooks: HookResult[];
  throttle: { read_wait_s: number; upload_wait_s: number; load_wait_s: number };
  /** Path errors of the snapshot, and failed steps (path ""). */
  errors: PathError[];
}

export class RunOverlapError extends LockBusyError {
  constructor(inner: LockBusyError) {
    super(inner.file, inner.pid, inner.what);
    this.message = `another snapfill run is still going (pid ${inner.pid}, lock ${inner.file}); not starting a second one`;
    this.name = 'RunOverlapError';
  }
}

const LAST_PRUNE_KEY = 'run.last_prune';

/**
 * The scheduled job: pre-hooks, a snapshot of the configured sources, retention, prune when
 * due, post-hooks, then monitoring output. A local lock file keeps a second run from starting
 * while one is going; it fails at once (RunOverlapError) instead of queueing.
 *
 * Safety choices: retention runs only after a new snapshot was committed (a broken backup
 * never shortens the history), and only over this host's snapshots (a shared repository's
 * other servers keep their own policy). Post-hooks always run, with SNAPFILL_STATUS, so a
 * cleanup hook (remove the database dump) runs after a failure too.
 */
export async function runJob(cfg: Config, opts: { log?: (msg: string) => void; now?: () => Date } = {}): Promise<RunReport> {
  let release: () => void;
  try {
    release = acquirePidLock(cfg.lockFile, 'snapfill run');
  } catch (e) {
    if (e instanceof LockBusyError) throw new RunOverlapError(e);
    throw e;
  }
  const say = opts.log ?? (() => {});
  const jlog = new JsonLog(cfg.monitoring.jsonLog);
  const started = new Date();
  const host = cfg.host ?? os.hostname();
  const report: RunReport = {
    run_id: randomBytes(6).toString('hex'), status: 'failed', config: cfg.file, repository: cfg.repository,
    started: started.toISOString(), duration_s: 0, snapshot: null, forget: null, prune: null, prune_due: false, hooks: [],
    throttle: { read_wait_s: 0, upload_wait_s: 0, load_wait_s: 0 }, errors: [],
  };
  const baseEnv = (): Record<string, string> => ({
    SNAPFILL_RUN_ID: report.run_id, SNAPFILL_CONFIG: cfg.file, SNAPFILL_REPOSITORY: cfg.repository, SNAPFILL_HOST: host,
    SNAPFILL_SOURCES: cfg.sources.join(' '), SNAPFILL_STARTED: report.started,
  });
  const failStep = (step: string, e: unknown) => {
    const msg = `${step}: ${(e as Error).message ?? String(e)}`;
    report.errors.push({ path: '', message: msg });
    jlog.write('error', msg, { run_id: report.run_id, step });
    say(`error: ${msg}`);
  };
  jlog.write('info', 'run started', { run_id: report.run_id, config: cfg.file, repository: cfg.repository, sources: cfg.sources });
  let session: Session | null = null;
  try {
    applyCredentials(cfg);
    // Pre-hooks: a failure aborts the run unless the config says to go on.
    let aborted = false;
    for (const cmd of cfg.hooks.pre) {
      const r = await runHook('pre', cmd, { ...baseEnv(), SNAPFILL_PHASE: 'pre' }, cfg.hooks.timeoutMinutes * 60_000);
      report.hooks.push(r);
      jlog.write(hookFailed(r) ? 'error' : 'info', 'pre-hook finished', { run_id: report.run_id, ...r });
      if (hookFailed(r)) {
        const msg = `pre-hook failed (${r.timed_out ? 'timed out' : `exit ${r.exit_code ?? r.signal}`}): ${cmd}`;
        if (cfg.hooks.onPreFailure === 'abort') {
          failStep('pre-hook', new Error(`${msg}; run aborted (set hooks.on_pre_failure to "continue" to go on anyway)`));
          aborted = true;
          break;
        }
        report.errors.push({ path: '', message: `${msg}; continuing as configured` });
        say(`warning: ${msg}; continuing as configured`);
      }
    }

    if (!aborted) {
      session = await openSession({
        repo: cfg.repository, catalog: cfg.catalog, s3Endpoint: cfg.s3.endpoint, s3Region: cfg.s3.region, s3PathStyle: cfg.s3.pathStyle,
        onProgress: say,
      });
      const s = session;
      const th = throttleHooks(cfg.throttle, (m) => { say(m); jlog.write('info', m, { run_id: report.run_id }); });
      try {
        s.lockCatalog('snapfill run');
        report.snapshot = await s.withRepoLock('snapshot', false, async () => {
          // Re-sync under the lock: a prune by another host between open and lock would
          // otherwise leave this catalog naming blobs that no longer exist.
          const sync = await syncCatalog(s.repo, s.catalog, say);
          // (The session's own sync at open may have been the one that saw the packs go.)
          if (sync.packs_removed + (s.syncReport?.packs_removed ?? 0) > 0) await refillBlobLocations(s, say);
          return new Snapshotter(s.repo, s.catalog, {
            paths: cfg.sources, excludes: cfg.excludes, tags: cfg.tags, host: cfg.host, oneFileSystem: cfg.oneFileSystem,
            onRead: th.onRead, onUpload: th.onUpload,
          }).run();
        });
        report.errors.push(...report.snapshot.errors);
        say(`snapshot ${report.snapshot.snapshot_id.slice(0, 8)} saved: ${report.snapshot.files_total} files, ${report.snapshot.bytes_added} bytes added`);
        jlog.write('info', 'snapshot saved', { run_id: report.run_id, snapshot_id: report.snapshot.snapshot_id, files_total: report.snapshot.files_total,
          bytes_read: report.snapshot.bytes_read, bytes_added: report.snapshot.bytes_added, errors: report.snapshot.errors.length });
      } catch (e) {
        failStep('snapshot', e);
      } finally {
        report.throttle = th.stats();
      }

      if (report.snapshot) {
        try {
          const f: ForgetReport = await forget(s, { policy: cfg.retention, host, onProgress: say });
          report.forget = { removed: f.removed, kept: f.kept };
          jlog.write('info', 'retention applied', { run_id: report.run_id, removed: f.removed.length, kept: f.kept });
        } catch (e) {
          failStep('forget', e);
        }
        const last = Date.parse(s.catalog.getMeta(LAST_PRUNE_KEY) ?? '') || 0;
        const now = (opts.now?.() ?? new Date()).getTime();
        report.prune_due = cfg.prune.enabled && now - last >= cfg.prune.everyHours * 3600_000;
        if (report.prune_due && report.forget) {
          try {
            report.prune = await pruneSession(s, { repackThreshold: cfg.prune.repackThreshold, onProgress: say });
            s.catalog.setMeta(LAST_PRUNE_KEY, new Date(now).toISOString());
            jlog.write('info', 'prune finished', { run_id: report.run_id, bytes_freed: report.prune.bytes_freed });
          } catch (e) {
            failStep('prune', e);
          }
        }
      }
    }
  } catch (e) {
    failStep('run', e);
  } finally {
    try { await session?.close(); } catch { /* closing must not hide the run's result */ }
  }

  const stepFailed = report.errors.some((e) => e.path === '' && !e.message.includes('continuing as configured'));
  report.status = !report.snapshot || stepFailed ? 'failed' : report.errors.length ? 'partial' : 'success';
  for (const cmd of cfg.hooks.post) {
    const env = {
      ...baseEnv(), SNAPFILL_PHASE: 'post', SNAPFILL_STATUS: report.status,
      SNAPFILL_SNAPSHOT_ID: report.snapshot?.snapshot_id ?? '', SNAPFILL_FILES_TOTAL: String(report.snapshot?.files_total ?? 0),
      SNAPFILL_BYTES_ADDED: String(report.snapshot?.bytes_added ?? 0), SNAPFILL_ERRORS: String(report.errors.length),
    };
    const r = await runHook('post', cmd, env, cfg.hooks.timeoutMinutes * 60_000);
    report.hooks.push(r);
    jlog.write(hookFailed(r) ? 'error' : 'info', 'post-hook finished', { run_id: report.run_id, ...r });
    if (hookFailed(r)) {
      report.errors.push({ path: '', message: `post-hook failed (exit ${r.exit_code ?? r.signal}): ${cmd}` });
      if (report.status === 'success') report.status = 'partial';
    }
  }
  report.duration_s = (Date.now() - started.getTime()) / 1000;
  if (cfg.monitoring.prometheusTextfile) {
    try {
      writePrometheusTextfile(cfg.monitoring.prometheusTextfile, {
        success: report.status !== 'failed', started, durationS: report.duration_s,
        filesTotal: report.snapshot?.files_total ?? 0, filesNew: report.snapshot?.files_new ?? 0, filesChanged: report.snapshot?.files_changed ?? 0,
        bytesRead: report.snapshot?.bytes_read ?? 0, bytesAdded: report.snapshot?.bytes_added ?? 0, errors: report.errors.length,
        snapshotsRemoved: report.forget?.removed.length ?? 0, pruneBytesFreed: report.prune?.bytes_freed ?? 0,
      });
    } catch (e) {
      report.errors.push({ path: '', message: `cannot write ${cfg.monitoring.prometheusTextfile}: ${(e as Error).message}` });
    }
  }
  jlog.write(report.status === 'failed' ? 'error' : 'info', 'run finished', {
    run_id: report.run_id, status: report.status, duration_s: report.duration_s, snapshot_id: report.snapshot?.snapshot_id ?? null, errors: report.errors.length,
  });
  release();
  return report;
}

/**
 * After packs vanished from the repository (a prune, maybe by another host), a blob's catalog
 * row may have pointed at a removed copy while another copy lives on in a pack the catalog
 * already knew; the sync adds only packs it lacks, so that row stays missing and a restore
 * would not find the blob. Re-adding every index fills exactly those rows (it never moves
 * rows that exist). One index read per pack, and only after packs were removed.
 */
async function refillBlobLocations(s: Session, say: (m: string) => void): Promise<void> {
  const before = s.catalog.countBlobs();
  for await (const id of s.repo.listPackIndexes()) s.catalog.addPackIndex(await s.repo.loadPackIndex(id));
  const filled = s.catalog.countBlobs() - before;
  if (filled) say(`catalog: ${filled} blob locations restored after packs were pruned elsewhere`);
}

/** The one-line summary a cron mail or journal shows. */
export function summaryLine(r: RunReport): string {
  const snap = r.snapshot
    ? `snapshot ${r.snapshot.snapshot_id.slice(0, 8)} (${r.snapshot.files_total} files, ${r.snapshot.files_new} new, ${r.snapshot.files_changed} changed, ${r.snapshot.bytes_added} B added)`
    : 'no snapshot';
  const ret = r.forget ? `, ${r.forget.removed.length} forgotten, ${r.forget.kept} kept` : '';
  const pr = r.prune ? `, pruned ${r.prune.bytes_freed} B` : r.prune_due ? ', prune failed' : '';
  return `snapfill run ${r.status}: ${snap}${ret}${pr}, ${r.errors.length} errors, ${r.duration_s.toFixed(1)}s`;
}
