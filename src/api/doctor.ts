import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { loadConfig, type Config } from '../config/config.js';
import { cacheDir } from '../config/location.js';
import { findConfigFile } from '../config/settings.js';
import { Repository } from '../repo/repository.js';
import { isStale, listLocks } from '../repo/lock.js';
import type { ObjectStore } from '../store/store.js';
import { readLastRun } from './monitor.js';
import { openSettingsStore, repoPassword, type OpenOptions } from './session.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

/** One finding of `config check`: `fail` makes the command exit non-zero, `warn` does not. */
export interface DoctorCheck {
  name: 'config' | 'repository' | 'locks' | 'last_run' | 'schedule' | 'space_repository' | 'space_cache';
  status: CheckStatus;
  detail: string;
  /** Numbers a script may want (ages in seconds, free bytes), when there are any. */
  data?: Record<string, unknown>;
}

export interface DoctorReport {
  ok: boolean;
  config: string | null;
  repository: string | null;
  checks: DoctorCheck[];
}

export interface DoctorOptions extends OpenOptions {
  /** Where the schedule files are looked for (default "/"; tests and image builds use another root). */
  scheduleRoot?: string;
  /** The unit / cron file name (default "snapfill"). */
  scheduleName?: string;
  now?: Date;
}

/** Free space below this is a failure: a snapshot or a catalog sync would stop half-way. */
const MIN_FREE_BYTES = 1024 ** 3;
const MIN_FREE_SHARE = 0.02;

/**
 * `snapfill config check` / `doctor`: validates the config file, reaches the repository with
 * the configured credentials, and reports locks, the last run, the schedule and free space.
 * Each check says what it found; a failure of one does not hide the others.
 */
export async function configCheck(o: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: DoctorCheck[] = [];
  const report: DoctorReport = { ok: false, config: null, repository: null, checks };
  const cfg = checkConfig(o, checks);
  report.config = cfg?.file ?? null;
  let store: ObjectStore | null = null;
  // An invalid file is already reported; reaching the repository through it would only say it again.
  if (!cfg && findConfigFile(o.config))
    checks.push({ name: 'repository', status: 'fail', detail: 'not checked: the config file cannot be used' });
  else
    try {
      const opened = await openSettingsStore(o);
      store = opened.store;
      report.repository = opened.settings.repository.location;
      const repo = await Repository.open(store, repoPassword(o, opened.settings));
      checks.push({ name: 'repository', status: 'ok', detail: `reached ${store.location} (repository ${repo.config.id.slice(0, 8)})` });
      checks.push(await checkLocks(store));
    } catch (e) {
      checks.push({ name: 'repository', status: 'fail', detail: (e as Error).message });
    } finally {
      await store?.close?.();
    }
  if (cfg) {
    checks.push(checkLastRun(cfg, o.now ?? new Date()));
    checks.push(checkSchedule(cfg, o.scheduleRoot ?? '/', o.scheduleName ?? 'snapfill'));
  }
  if (report.repository && !report.repository.startsWith('s3://')) checks.push(checkSpace('space_repository', report.repository));
  checks.push(checkSpace('space_cache', cacheDir()));
  report.ok = checks.every((c) => c.status !== 'fail');
  return report;
}

/** The config file, validated as `run` reads it; null (and a failed check) when it cannot be used. */
function checkConfig(o: DoctorOptions, checks: DoctorCheck[]): Config | null {
  const ref = findConfigFile(o.config);
  if (!ref) {
    checks.push({
      name: 'config',
      status: 'fail',
      detail: 'no config file: none at /etc/snapfill/config.json, and neither --config nor SNAPFILL_CONFIG names one',
    });
    return null;
  }
  try {
    const cfg = loadConfig(ref.file, { repo: o.repo, catalog: o.catalog });
    checks.push({ name: 'config', status: 'ok', detail: `${ref.file} is valid (sources: ${cfg.sources.join(' ')})` });
    return cfg;
  } catch (e) {
    checks.push({ name: 'config', status: 'fail', detail: (e as Error).message.replace(/\n\s*-\s*/g, ' - ') });
    return null;
  }
}

async function checkLocks(store: ObjectStore): Promise<DoctorCheck> {
  const locks = await listLocks(store);
  const live = locks.filter((l) => !isStale(l));
  const stale = locks.length - live.length;
  const held = live.map(
    (l) => `${l.operation} (${l.exclusive ? 'exclusive' : 'shared'}, host ${l.host}, pid ${l.pid}, since ${l.created})`,
  );
  const detail =
    (held.length ? `held: ${held.join('; ')}` : 'not locked') +
    (stale ? `; ${stale} stale locks of dead processes ("snapfill unlock" removes them)` : '');
  return { name: 'locks', status: stale ? 'warn' : 'ok', detail, data: { live: live.length, stale } };
}

/** The longest time between two scheduled starts (plus the random delay): older than that, a run was missed. */
function expectedGapS(cfg: Config): number {
  const mins = cfg.schedule.times.map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3))).sort((a, b) => a - b);
  const gaps = mins.map((m, i) => (i + 1 < mins.length ? mins[i + 1] - m : mins[0] + 1440 - m));
  return (Math.max(...gaps) + cfg.schedule.randomizedDelayMinutes) * 60;
}

function checkLastRun(cfg: Config, now: Date): DoctorCheck {
  let last;
  try {
    last = readLastRun(cfg.monitoring);
  } catch (e) {
    return { name: 'last_run', status: 'fail', detail: `monitoring file cannot be read: ${(e as Error).message}` };
  }
  if (!last) {
    const where = cfg.monitoring.prometheusTextfile ?? cfg.monitoring.jsonLog;
    return {
      name: 'last_run',
      status: 'warn',
      detail: where
        ? `no run recorded yet in ${where}`
        : 'unknown: set monitoring.prometheus_textfile or monitoring.json_log in the config to record runs',
    };
  }
  const age = Math.round((now.getTime() - last.ended.getTime()) / 1000);
  const limit = expectedGapS(cfg) + 3600;
  const data = { age_s: age, success: last.success, ended: last.ended.toISOString(), source: last.source };
  const when = `${formatAge(age)} ago (${last.ended.toISOString()})`;
  if (!last.success) return { name: 'last_run', status: 'fail', detail: `the last run failed, ${when}; see ${last.source}`, data };
  if (age > limit)
    return {
      name: 'last_run',
      status: 'fail',
      detail: `the last run ended ${when}: runs were missed (expected one every ${formatAge(limit)})`,
      data,
    };
  return { name: 'last_run', status: 'ok', detail: `succeeded ${when}`, data };
}

function formatAge(s: number): string {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} days`;
}

/** Is a systemd timer or a cron entry installed, running this config? Under systemd at "/", is the timer enabled? */
function checkSchedule(cfg: Config, root: string, name: string): DoctorCheck {
  const timer = path.join(root, `etc/systemd/system/${name}.timer`);
  const service = path.join(root, `etc/systemd/system/${name}.service`);
  const cron = path.join(root, `etc/cron.d/${name}`);
  const found = [service, cron].filter((f) => fs.existsSync(f));
  if (!found.length || (found[0] === service && !fs.existsSync(timer)))
    return { name: 'schedule', status: 'fail', detail: `no timer or cron entry installed under ${root} (run "snapfill schedule install")` };
  const file = found[0];
  const kind = file === service ? `systemd timer ${timer}` : `cron entry ${cron}`;
  const configFile = fs.existsSync(cfg.file) ? fs.realpathSync(cfg.file) : cfg.file;
  if (!fs.readFileSync(file, 'utf8').includes(`--config ${configFile}`))
    return { name: 'schedule', status: 'warn', detail: `${kind} is installed but runs another config file than ${configFile}` };
  if (file === service && path.resolve(root) === '/') {
    const r = spawnSync('systemctl', ['is-enabled', `${name}.timer`], { encoding: 'utf8' });
    if (!r.error && r.stdout.trim() !== 'enabled')
      return { name: 'schedule', status: 'fail', detail: `${kind} is installed but not enabled (${r.stdout.trim() || r.stderr.trim()})` };
  }
  return { name: 'schedule', status: 'ok', detail: `${kind} installed` };
}

/** Free space of the file system holding `dir` (or its nearest existing parent). */
function checkSpace(name: 'space_repository' | 'space_cache', dir: string): DoctorCheck {
  let at = path.resolve(dir);
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  try {
    const st = fs.statfsSync(at);
    const free = st.bavail * st.bsize;
    const total = st.blocks * st.bsize;
    const share = total ? free / total : 0;
    const data = { path: dir, free_bytes: free, total_bytes: total };
    const words = `${(free / 1024 ** 3).toFixed(1)} GiB free of ${(total / 1024 ** 3).toFixed(1)} GiB (${(share * 100).toFixed(0)}%) at ${dir}`;
    const low = free < MIN_FREE_BYTES || share < MIN_FREE_SHARE;
    return { name, status: low ? 'fail' : 'ok', detail: low ? `low space: ${words}` : words, data };
  } catch (e) {
    return { name, status: 'warn', detail: `free space at ${dir} unknown: ${(e as Error).message}` };
  }
}
