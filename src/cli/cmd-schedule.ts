import type { Command } from 'commander';
import { action, collect } from './action.js';
import { info, printJson } from './output.js';
import { detectInit, installSchedule, removeSchedule, renderSchedule, scheduleSpecFromConfig, showSchedule } from '../api/schedule.js';
import type { InitSystem, ScheduleSpec } from '../api/index.js';

function initOf(v: string | undefined, root: string): InitSystem {
  if (v === undefined || v === 'auto') return detectInit(root);
  if (v !== 'systemd' && v !== 'cron') throw new Error(`--init: expected systemd, cron or auto, got "${v}"`);
  return v;
}

function specFrom(g: { config?: string }, opts: { time: string[]; randomizedDelay?: string; name: string }): ScheduleSpec {
  let randomizedDelayMinutes: number | undefined;
  if (opts.randomizedDelay !== undefined) {
    randomizedDelayMinutes = Number(opts.randomizedDelay);
    if (!(randomizedDelayMinutes >= 0)) throw new Error(`--randomized-delay: expected minutes >= 0, got "${opts.randomizedDelay}"`);
  }
  // The job runs this very executable, by its absolute path.
  return scheduleSpecFromConfig({
    configFile: g.config,
    times: opts.time,
    randomizedDelayMinutes,
    name: opts.name,
    binPath: process.argv[1],
  });
}

export function register(program: Command): void {
  const sched = program
    .command('schedule')
    .description('install, remove or show the timer that runs "snapfill run" (systemd, or /etc/cron.d without systemd)');
  const common = (c: Command) =>
    c
      .option('--root <dir>', 'write under this root instead of / (for tests and image builds; nothing is activated)', '/')
      .option('--name <name>', 'unit / cron file name', 'snapfill');
  common(sched.command('install'))
    .description("write the service + timer (or cron file) from the config file's schedule, and enable it")
    .option('--init <kind>', 'systemd, cron or auto (auto: systemd when /run/systemd/system exists)', 'auto')
    .option(
      '--time <HH:MM>',
      "a time of day to run (repeatable; default: the config's schedule.times, else 03:00 11:00 19:00)",
      collect,
      [],
    )
    .option('--randomized-delay <minutes>', 'spread the start by up to this many minutes (default: config, else 60)')
    .option('--no-enable', 'write the files but do not run systemctl')
    .option('--print', 'print the files instead of writing them')
    .action(
      action(async (g, [opts]) => {
        const spec = specFrom(g, opts);
        const kind = initOf(opts.init, opts.root);
        if (opts.print) {
          const r = renderSchedule(kind, spec);
          if (g.json) printJson(r);
          else for (const f of r.files) process.stdout.write(`# ${f.path}\n${f.content}\n`);
          return;
        }
        const r = installSchedule(kind, spec, { root: opts.root, activate: opts.enable });
        if (g.json) {
          printJson(r);
          return;
        }
        for (const f of r.files) info(g, `wrote ${f}`);
        if (r.calendar_checked) info(g, 'systemd-analyze accepted the calendar expressions');
        for (const c of r.commands) info(g, `ran ${c}`);
        if (r.kind === 'systemd' && !r.activated)
          info(g, `not activated; to start it: systemctl daemon-reload && systemctl enable --now ${opts.name}.timer`);
        info(
          g,
          `runs at ${spec.times.join(', ')} (+ up to ${spec.randomizedDelayMinutes} min random delay) with config ${spec.configFile}`,
        );
      }),
    );
  common(sched.command('remove'))
    .description('disable and delete the timer/service or cron file')
    .option('--no-enable', 'do not run systemctl')
    .action(
      action(async (g, [opts]) => {
        const r = removeSchedule(opts.name, { root: opts.root, activate: opts.enable });
        if (g.json) {
          printJson(r);
          return;
        }
        if (!r.removed.length) info(g, 'no schedule files found');
        for (const f of r.removed) info(g, `removed ${f}`);
      }),
    );
  common(sched.command('show'))
    .description('print the installed schedule files (and the next run, under systemd)')
    .action(
      action(async (g, [opts]) => {
        const r = showSchedule(opts.name, opts.root);
        if (g.json) {
          printJson(r);
          return;
        }
        if (!r.files.length) {
          info(g, `no schedule installed under ${opts.root} (run "snapfill schedule install")`);
          return;
        }
        for (const f of r.files) process.stdout.write(`# ${f.path}\n${f.content}\n`);
        if (r.next) process.stdout.write(r.next + '\n');
      }),
    );
}
