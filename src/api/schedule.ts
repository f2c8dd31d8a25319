import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { configPath, loadConfig } from '../config/config.js';

export type InitSystem = 'systemd' | 'cron';

export interface ScheduleSpec {
  /** Times of day, "HH:MM", local time of the server. */
  times: string[];
  randomizedDelayMinutes: number;
  /** systemd: run a missed job at boot (the server was off at 03:00). */
  persistent: boolean;
  configFile: string;
  /** Absolute paths of node and of bin/snapfill, so the job does not depend on PATH. */
  nodePath: string;
  binPath: string;
  /** Unit / file base name. */
  name: string;
  /** cron only: append the job's output to this file; without it the output goes to syslog (`logger -t <name>`). */
  logFile?: string;
}

export interface ScheduleFiles {
  kind: InitSystem;
  files: { path: string; content: string }[];
}

/** systemd is the init system when /run/systemd/system exists (the check sd_booted() does). */
export interface ScheduleChoices {
  /** The config file the timer runs with (default: SNAPFILL_CONFIG, else /etc/snapfill/config.json). */
  configFile?: string;
  /** Times of day; default: the config's schedule.times. */
  times?: string[];
  /** Default: the config's schedule.randomized_delay_minutes. */
  randomizedDelayMinutes?: number;
  name: string;
  /** The snapfill executable the job runs (made absolute and symlink-free). */
  binPath: string;
  nodePath?: string;
}

/**
 * The schedule from the config file, with the caller's choices on top. The timer runs without
 * this shell's environment, so the config file alone must be complete: it is validated with an
 * empty environment (no SNAPFILL_REPO to lean on).
 */
export function scheduleSpecFromConfig(c: ScheduleChoices): ScheduleSpec {
  const cfg = loadConfig(path.resolve(configPath(c.configFile)), {}, {});
  return {
    times: c.times?.length ? c.times : cfg.schedule.times,
    randomizedDelayMinutes: c.randomizedDelayMinutes ?? cfg.schedule.randomizedDelayMinutes,
    persistent: cfg.schedule.persistent,
    configFile: fs.realpathSync(cfg.file),
    nodePath: c.nodePath ?? process.execPath,
    binPath: fs.realpathSync(c.binPath),
    name: c.name,
    logFile: cfg.schedule.logFile,
  };
}

export function detectInit(root = '/'): InitSystem {
  return fs.existsSync(path.join(root, 'run/systemd/system')) ? 'systemd' : 'cron';
}

export function onCalendar(time: string): string {
  return `*-*-* ${time}:00`;
}

function q(s: string): string {
  // systemd and sh both accept double-quoted words; our paths never hold quotes or $ (validated).
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `"${s.replace(/(["\\$`])/g, '\\$1')}"`;
}

export function renderSystemd(spec: ScheduleSpec): ScheduleFiles {
  const exec = `${q(spec.nodePath)} ${q(spec.binPath)} --config ${q(spec.configFile)} run`;
  const service = `# Written by "snapfill schedule install"; change the config file, then run it again.
[Unit]
Description=snapfill scheduled snapshot (${spec.configFile})
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
ExecStart=${exec}
# Low CPU and IO priority: production sites come first.
Nice=19
IOSchedulingClass=idle
CPUSchedulingPolicy=batch
# Exit code 4 means the previous run is still going; not a failure of this unit.
SuccessExitStatus=4
`;
  const timer = `# Written by "snapfill schedule install".
[Unit]
Description=snapfill scheduled snapshot timer

[Timer]
${spec.times.map((t) => `OnCalendar=${onCalendar(t)}`).join('\n')}
RandomizedDelaySec=${Math.round(spec.randomizedDelayMinutes * 60)}
Persistent=${spec.persistent ? 'true' : 'false'}
AccuracySec=1min

[Install]
WantedBy=timers.target
`;
  return {
    kind: 'systemd',
    files: [
      { path: `etc/systemd/system/${spec.name}.service`, content: service },
      { path: `etc/systemd/system/${spec.name}.timer`, content: timer },
    ],
  };
}

export function renderCron(spec: ScheduleSpec): ScheduleFiles {
  const delay = Math.round(spec.randomizedDelayMinutes * 60);
  // cron runs /bin/sh (often dash: no $RANDOM) and treats % specially, so shuf picks the delay.
  const sleep = delay > 0 ? `sleep $(shuf -i 0-${delay} -n 1); ` : '';
  // cron mails output to a MAILTO that shared hosts rarely have, so it was lost: it goes to
  // syslog (journald reads it too), as the systemd unit's goes to the journal, or to the
  // config's schedule.log_file.
  const log = spec.logFile ? `>> ${q(spec.logFile)} 2>&1` : `2>&1 | logger -t ${q(spec.name)}`;
  const cmd = `${sleep}ionice -c3 nice -n19 ${q(spec.nodePath)} ${q(spec.binPath)} --config ${q(spec.configFile)} run ${log}`;
  const lines = spec.times.map((t) => {
    const [h, m] = t.split(':').map(Number);
    return `${m} ${h} * * * root ${cmd}`;
  });
  const content = `# Written by "snapfill schedule install"; change the config file, then run it again.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
${lines.join('\n')}
`;
  return { kind: 'cron', files: [{ path: `etc/cron.d/${spec.name}`, content }] };
}

export function renderSchedule(kind: InitSystem, spec: ScheduleSpec): ScheduleFiles {
  for (const t of spec.times)
    if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(t)) throw new Error(`schedule time ${JSON.stringify(t)} is not "HH:MM" (24h)`);
  if (!spec.times.length) throw new Error('no schedule times given');
  if (!/^[A-Za-z0-9_.@-]+$/.test(spec.name))
    throw new Error(`unit name ${JSON.stringify(spec.name)} may only hold letters, digits, _ . @ -`);
  return kind === 'systemd' ? renderSystemd(spec) : renderCron(spec);
}

/** Checks every OnCalendar expression with `systemd-analyze calendar` when it is installed. */
export function validateCalendar(times: string[]): { checked: boolean; problems: string[] } {
  const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { checked: false, problems: [] };
  const problems: string[] = [];
  for (const t of times) {
    const r = spawnSync('systemd-analyze', ['calendar', onCalendar(t)], { encoding: 'utf8' });
    if (r.status !== 0) problems.push(`${onCalendar(t)}: ${(r.stderr || r.stdout).trim()}`);
  }
  return { checked: true, problems };
}

export interface InstallResult {
  kind: InitSystem;
  root: string;
  files: string[];
  calendar_checked: boolean;
  activated: boolean;
  commands: string[];
}

/**
 * Writes the files under `root` (atomically: temp + rename). Only when root is "/" does it
 * also tell systemd (daemon-reload, enable --now the timer); a test root is never activated.
 */
export function installSchedule(kind: InitSystem, spec: ScheduleSpec, opts: { root: string; activate: boolean }): InstallResult {
  const rendered = renderSchedule(kind, spec);
  const cal = kind === 'systemd' ? validateCalendar(spec.times) : { checked: false, problems: [] };
  if (cal.problems.length) throw new Error(`systemd rejects the schedule: ${cal.problems.join('; ')}`);
  const written: string[] = [];
  for (const f of rendered.files) {
    const full = path.join(opts.root, f.path);
    fs.mkdirSync(path.dirname(full), { recursive: true });
    const tmp = path.join(path.dirname(full), `.${path.basename(full)}.tmp`);
    fs.writeFileSync(tmp, f.content, { mode: 0o644 });
    fs.renameSync(tmp, full);
    written.push(full);
  }
  const result: InstallResult = { kind, root: opts.root, files: written, calendar_checked: cal.checked, activated: false, commands: [] };
  if (path.resolve(opts.root) === '/' && opts.activate && kind === 'systemd') {
    for (const args of [['daemon-reload'], ['enable', '--now', `${spec.name}.timer`]]) {
      result.commands.push(`systemctl ${args.join(' ')}`);
      const r = spawnSync('systemctl', args, { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`systemctl ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`);
    }
    result.activated = true;
  }
  return result;
}

export function removeSchedule(name: string, opts: { root: string; activate: boolean }): { removed: string[]; commands: string[] } {
  const out = { removed: [] as string[], commands: [] as string[] };
  const sysTimer = path.join(opts.root, `etc/systemd/system/${name}.timer`);
  if (path.resolve(opts.root) === '/' && opts.activate && fs.existsSync(sysTimer) && detectInit('/') === 'systemd') {
    out.commands.push(`systemctl disable --now ${name}.timer`);
    spawnSync('systemctl', ['disable', '--now', `${name}.timer`], { encoding: 'utf8' });
  }
  for (const rel of [`etc/systemd/system/${name}.timer`, `etc/systemd/system/${name}.service`, `etc/cron.d/${name}`]) {
    const full = path.join(opts.root, rel);
    if (fs.existsSync(full)) {
      fs.unlinkSync(full);
      out.removed.push(full);
    }
  }
  if (out.commands.length) {
    out.commands.push('systemctl daemon-reload');
    spawnSync('systemctl', ['daemon-reload']);
  }
  return out;
}

export function showSchedule(name: string, root: string): { files: { path: string; content: string }[]; next: string | null } {
  const files: { path: string; content: string }[] = [];
  for (const rel of [`etc/systemd/system/${name}.service`, `etc/systemd/system/${name}.timer`, `etc/cron.d/${name}`]) {
    const full = path.join(root, rel);
    if (fs.existsSync(full)) files.push({ path: full, content: fs.readFileSync(full, 'utf8') });
  }
  let next: string | null = null;
  if (path.resolve(root) === '/' && files.some((f) => f.path.endsWith('.timer'))) {
    const r = spawnSync('systemctl', ['list-timers', `${name}.timer`, '--no-pager'], { encoding: 'utf8' });
    if (r.status === 0) next = r.stdout.trim();
  }
  return { files, next };
}
