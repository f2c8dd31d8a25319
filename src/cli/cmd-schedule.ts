import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Command } from 'commander';
import { action, collect } from './action.js';
import { info, printJson } from './output.js';
import { configPath, loadConfig } from '../config/config.js';
import { detectInit, installSchedule, removeSchedule, renderSchedule, showSchedule, type InitSystem, type ScheduleSpec } from '../api/schedule.js';

function initOf(v: string | undefined, root: string): InitSystem {
  if (v === undefined || v === 'auto') return detectInit(root);
  if (v !== 'systemd' && v !== 'cron') throw new Error(`--init: expected systemd, cron or auto, got "${v}"`);
  return v;
}

function specFrom(g: { config?: string }, opts: { time: string[]; randomizedDelay?: string; name: string }): ScheduleSpec {
  // The timer runs without this shell's environment: the config file alone must be complete,
  // so it is validated with an empty environment (no SNAPFILL_REPO to lean on).
  const cfg = loadConfig(path.resolve(configPath(g.config)), {}, {});
  const file = fs.realpathSync(cfg.file);
  let delay = cfg.schedule.randomizedDelayMinutes;
  if (opts.randomizedDelay !== undefined) {
    delay = Number(opts.randomizedDelay);
    if (!(delay >= 0)) throw new Error(`--randomized-delay: expected minutes >= 0, got "${opts.randomizedDelay}"`);
  }
  return {
    times: opts.time.length ? opts.time : cfg.schedule.times, randomizedDelayMinutes: delay, persistent: cfg.schedule.persistent,
    configFile: file, nodePath: process.execPath, binPath: fs.realpathSync(process.argv[1]), name: opts.name,
  };
}

export function register(program: Command): void {
  const sched = program.command('schedule').description('install, remove or show the timer that runs "snapfill run" (systemd, or /etc/cron.d without systemd)');
  const common = (c: Command) => c
    .option('--root <dir>', 'write under this root instead of / (for tests and image builds; nothing is activated)', '/')
    .option('--name <name>', 'unit / cron file name', 'snapfill');
  common(sched.command('install'))
    .description('write the service + timer (or cron file) from the config file\'s schedule, and enable it')
    .option('--init <kind>', 'systemd, cron or auto (auto: systemd when /run/systemd/system exists)', 'auto')
    .option('--time <HH:MM>', 'a time of day to run (repeatable; default: the config\'s schedule.times, else 03:00 11:00 19:00)', collect, [])
    .option('--randomized-delay <minutes>', 'spread the start by up to this many minutes (default: config, else 60)')
    .option('--no-enable', 'write the files but do not run systemctl')
    .option('--print', 'print the files instead of writing them')
    .action(action(async (g, [opts]) => {
      const spec = specFrom(g as { config?: string }, opts);
      const kind = initOf(opts.init, opts.root);
      if (opts.print) {
        const r = renderSchedule(kind, spec);
        if (g.json) printJson(r);
        else for (const f of r.files) process.stdout.write(`# ${f.path}\n${f.content}\n`);
        return;
      }
      const r = installSchedule(kind, spec, { root: opts.root, activate: opts.enable });
      if (g.json) { printJson(r); return; }
      for (const f of r.files) info(g, `wrote ${f}`);
      if (r.calendar_checked) info(g, 'systemd-analyze accepted the calendar expressions');
      for (const c of r.commands) info(g, `ran ${c}`);
      if (r.kind === 'systemd' && !r.activated) info(g, `not activated; to start it: systemctl daemon-reload && systemctl enable --now ${opts.name}.timer`);
      info(g, `runs at ${spec.times.join(', ')} (+ up to ${spec.randomizedDelayMinutes} min random delay) with config ${spec.configFile}`);
    }));
  common(sched.command('remove'))
    .description('disable and delete the timer/service or cron file')
    .option('--no-enable', 'do not run systemctl')
    .action(action(async (g, [opts]) => {
      const r = removeSchedule(opts.name, { root: opts.root, activate: opts.enable });
      if (g.json) { printJson(r); return; }
      if (!r.removed.length) info(g, 'no schedule files found');
      for (const f of r.removed) info(g, `removed ${f}`);
    }));
  common(sched.command('show'))
    .description('print the installed schedule files (and the next run, under systemd)')
    .action(action(async (g, [opts]) => {
      const r = showSchedule(opts.name, opts.root);
      if (g.json) { printJson(r); return; }
      if (!r.files.length) { info(g, `no schedule installed under ${opts.root} (run "snapfill schedule install")`); return; }
      for (const f of r.files) process.stdout.write(`# ${f.path}\n${f.content}\n`);
      if (r.next) process.stdout.write(r.next + '\n');
    }));
}
