import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.js';
import { applyCredentials } from '../config/config.js';
import { openSession, type Session } from './session.js';
import { acquirePidLock, LockBusyError } from '../util/pidlock.js';
import type { PathError, SnapshotResult } from '../snapshot/snapshotter.js';
import { forget, pruneSession, type ForgetReport } from '../maintain/forget.js';
import type { PruneReport } from '../maintain/prune.js';
import { throttleHooks } from '../util/throttle.js';
import { hookFailed, runHook, type HookResult } from './hooks.js';
import { JsonLog, writePrometheusTextfile } from './monitor.js';
import { takeSnapshot } from './snapshot.js';

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

export interface RunJobOptions {
  log?: (msg: string) => void;
  now?: () => Date;
}

const LAST_PRUNE_KEY = 'run.last_prune';

/** One run's shared state: its report, its logs, and the environment every hook sees. */
class JobRun {
  readonly started = new Date();
  readonly host: string;
  readonly report: RunReport;
  readonly jlog: JsonLog;
  readonly say: (msg: string) => void;

  constructor(
    readonly cfg: Config,
    readonly opts: RunJobOptions,
  ) {
    this.say = opts.log ?? (() => {});
    this.jlog = new JsonLog(cfg.monitoring.jsonLog);
    this.host = cfg.host ?? os.hostname();
    this.report = {
      run_id: randomBytes(6).toString('hex'),
      status: 'failed',
      config: cfg.file,
      repository: cfg.repository,
      started: this.started.toISOString(),
      duration_s: 0,
      snapshot: null,
      forget: null,
      prune: null,
      prune_due: false,
      hooks: [],
      throttle: { read_wait_s: 0, upload_wait_s: 0, load_wait_s: 0 },
      errors: [],
    };
  }

  baseEnv(): Record<string, string> {
    return {
      SNAPFILL_RUN_ID: this.report.run_id,
      SNAPFILL_CONFIG: this.cfg.file,
      SNAPFILL_REPOSITORY: this.cfg.repository,
      SNAPFILL_HOST: this.host,
      SNAPFILL_SOURCES: this.cfg.sources.join(' '),
      SNAPFILL_STARTED: this.report.started,
    };
  }

  /** A step that failed: an error of the run (path ""), in the JSON log and on the progress log. */
  failStep(step: string, e: unknown): void {
    const msg = `${step}: ${(e as Error).message ?? String(e)}`;
    this.report.errors.push({ path: '', message: msg });
    this.jlog.write('error', msg, { run_id: this.report.run_id, step });
    this.say(`error: ${msg}`);
  }

  info(msg: string, fields: Record<string, unknown>): void {
    this.jlog.write('info', msg, { run_id: this.report.run_id, ...fields });
  }

  hookTimeoutMs(): number {
    return this.cfg.hooks.timeoutMinutes * 60_000;
  }
}

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
export async function runJob(cfg: Config, opts: RunJobOptions = {}): Promise<RunReport> {
  let release: () => void;
  try {
    release = acquirePidLock(cfg.lockFile, 'snapfill run');
  } catch (e) {
    if (e instanceof LockBusyError) throw new RunOverlapError(e);
    throw e;
  }
  const run = new JobRun(cfg, opts);
  run.info('run started', { config: cfg.file, repository: cfg.repository, sources: cfg.sources });
  let session: Session | null = null;
  try {
    applyCredentials(cfg);
    if (await preHooks(run)) {
      session = await openSession({
        config: cfg.file, // the run's own file, never another one found by default
        repo: cfg.repository,
        catalog: cfg.catalog,
        s3Endpoint: cfg.s3.endpoint,
        s3Region: cfg.s3.region,
        s3PathStyle: cfg.s3.pathStyle,
        onProgress: run.say,
      });
      await snapshotStep(run, session);
      if (run.report.snapshot) await retentionStep(run, session);
    }
  } catch (e) {
    run.failStep('run', e);
  } finally {
    try {
      await session?.close();
    } catch {
      /* closing must not hide the run's result */
    }
  }
  const report = run.report;
  const stepFailed = report.errors.some((e) => e.path === '' && !e.message.includes('continuing as configured'));
  report.status = !report.snapshot || stepFailed ? 'failed' : report.errors.length ? 'partial' : 'success';
  await postHooks(run);
  report.duration_s = (Date.now() - run.started.getTime()) / 1000;
  writeMetrics(run);
  run.jlog.write(report.status === 'failed' ? 'error' : 'info', 'run finished', {
    run_id: report.run_id,
    status: report.status,
    duration_s: report.duration_s,
    snapshot_id: report.snapshot?.snapshot_id ?? null,
    errors: report.errors.length,
  });
  release();
  return report;
}

/** Runs the pre-hooks; false when one failed and the config says to abort. */
async function preHooks(run: JobRun): Promise<boolean> {
  const { cfg, report } = run;
  for (const cmd of cfg.hooks.pre) {
    const r = await runHook('pre', cmd, { ...run.baseEnv(), SNAPFILL_PHASE: 'pre' }, run.hookTimeoutMs());
    report.hooks.push(r);
    run.jlog.write(hookFailed(r) ? 'error' : 'info', 'pre-hook finished', { run_id: report.run_id, ...r });
    if (!hookFailed(r)) continue;
    const msg = `pre-hook failed (${r.timed_out ? 'timed out' : `exit ${r.exit_code ?? r.signal}`}): ${cmd}`;
    if (cfg.hooks.onPreFailure === 'abort') {
      run.failStep('pre-hook', new Error(`${msg}; run aborted (set hooks.on_pre_failure to "continue" to go on anyway)`));
      return false;
    }
    report.errors.push({ path: '', message: `${msg}; continuing as configured` });
    run.say(`warning: ${msg}; continuing as configured`);
  }
  return true;
}

async function snapshotStep(run: JobRun, s: Session): Promise<void> {
  const { cfg, report } = run;
  const th = throttleHooks(cfg.throttle, (m) => {
    run.say(m);
    run.info(m, {});
  });
  try {
    const snap = await takeSnapshot(s, {
      lockName: 'snapfill run',
      onLog: run.say,
      paths: cfg.sources,
      excludes: cfg.excludes,
      tags: cfg.tags,
      host: cfg.host,
      oneFileSystem: cfg.oneFileSystem,
      onRead: th.onRead,
      onUpload: th.onUpload,
    });
    report.snapshot = snap;
    report.errors.push(...snap.errors);
    run.say(`snapshot ${snap.snapshot_id.slice(0, 8)} saved: ${snap.files_total} files, ${snap.bytes_added} bytes added`);
    run.info('snapshot saved', {
      snapshot_id: snap.snapshot_id,
      files_total: snap.files_total,
      bytes_read: snap.bytes_read,
      bytes_added: snap.bytes_added,
      errors: snap.errors.length,
    });
  } catch (e) {
    run.failStep('snapshot', e);
  } finally {
    report.throttle = th.stats();
  }
}

/** Retention over this host's snapshots, then prune when it is due (and retention ran). */
async function retentionStep(run: JobRun, s: Session): Promise<void> {
  const { cfg, report } = run;
  try {
    const f: ForgetReport = await forget(s, { policy: cfg.retention, host: run.host, onProgress: run.say });
    report.forget = { removed: f.removed, kept: f.kept };
    run.info('retention applied', { removed: f.removed.length, kept: f.kept });
  } catch (e) {
    run.failStep('forget', e);
  }
  const last = Date.parse(s.catalog.getMeta(LAST_PRUNE_KEY) ?? '') || 0;
  const now = (run.opts.now?.() ?? new Date()).getTime();
  report.prune_due = cfg.prune.enabled && now - last >= cfg.prune.everyHours * 3600_000;
  if (!report.prune_due || !report.forget) return;
  try {
    report.prune = await pruneSession(s, { repackThreshold: cfg.prune.repackThreshold, onProgress: run.say });
    s.catalog.setMeta(LAST_PRUNE_KEY, new Date(now).toISOString());
    run.info('prune finished', { bytes_freed: report.prune.bytes_freed });
  } catch (e) {
    run.failStep('prune', e);
  }
}

/** Post-hooks always run, told the outcome; a failed one makes a successful run partial. */
async function postHooks(run: JobRun): Promise<void> {
  const { cfg, report } = run;
  for (const cmd of cfg.hooks.post) {
    const env = {
      ...run.baseEnv(),
      SNAPFILL_PHASE: 'post',
      SNAPFILL_STATUS: report.status,
      SNAPFILL_SNAPSHOT_ID: report.snapshot?.snapshot_id ?? '',
      SNAPFILL_FILES_TOTAL: String(report.snapshot?.files_total ?? 0),
      SNAPFILL_BYTES_ADDED: String(report.snapshot?.bytes_added ?? 0),
      SNAPFILL_ERRORS: String(report.errors.length),
    };
    const r = await runHook('post', cmd, env, run.hookTimeoutMs());
    report.hooks.push(r);
    run.jlog.write(hookFailed(r) ? 'error' : 'info', 'post-hook finished', { run_id: report.run_id, ...r });
    if (hookFailed(r)) {
      report.errors.push({ path: '', message: `post-hook failed (exit ${r.exit_code ?? r.signal}): ${cmd}` });
      if (report.status === 'success') report.status = 'partial';
    }
  }
}

function writeMetrics(run: JobRun): void {
  const { cfg, report } = run;
  if (!cfg.monitoring.prometheusTextfile) return;
  try {
    writePrometheusTextfile(cfg.monitoring.prometheusTextfile, {
      success: report.status !== 'failed',
      started: run.started,
      durationS: report.duration_s,
      filesTotal: report.snapshot?.files_total ?? 0,
      filesNew: report.snapshot?.files_new ?? 0,
      filesChanged: report.snapshot?.files_changed ?? 0,
      bytesRead: report.snapshot?.bytes_read ?? 0,
      bytesAdded: report.snapshot?.bytes_added ?? 0,
      errors: report.errors.length,
      snapshotsRemoved: report.forget?.removed.length ?? 0,
      pruneBytesFreed: report.prune?.bytes_freed ?? 0,
    });
  } catch (e) {
    report.errors.push({ path: '', message: `cannot write ${cfg.monitoring.prometheusTextfile}: ${(e as Error).message}` });
  }
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
