import type { Command } from 'commander';
import { action, storeOpts } from './action.js';
import { EXIT, printJson, type GlobalOpts } from './output.js';
import { configCheck } from '../api/doctor.js';
import type { DoctorReport } from '../api/index.js';

const LABEL = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;

function printReport(g: GlobalOpts, r: DoctorReport): void {
  for (const c of r.checks) process.stdout.write(`${LABEL[c.status]}  ${c.name.padEnd(16)} ${c.detail}\n`);
  if (!g.quiet)
    process.stdout.write(r.ok ? 'all checks passed\n' : `${r.checks.filter((c) => c.status === 'fail').length} checks failed\n`);
}

function addCheck(cmd: Command): Command {
  return cmd
    .option('--root <dir>', 'look for the schedule files under this root instead of / (image builds, tests)', '/')
    .option('--name <name>', 'unit / cron file name of the schedule', 'snapfill')
    .addHelpText(
      'after',
      `
Validates the config file (--config, SNAPFILL_CONFIG, default /etc/snapfill/config.json),
reaches the repository with the configured credentials, and reports its locks, the last
run's status and age (from monitoring.prometheus_textfile or monitoring.json_log), whether
the systemd timer or cron entry is installed, and free space at the repository and cache.

Exit codes: 0 nothing wrong (warnings allowed), 1 something is wrong.`,
    )
    .action(
      action(async (g, [opts]) => {
        const r = await configCheck({ ...storeOpts(g), scheduleRoot: opts.root, scheduleName: opts.name });
        if (g.json) printJson(r);
        else printReport(g, r);
        return r.ok ? EXIT.OK : EXIT.FAIL;
      }),
    );
}

export function register(program: Command): void {
  const config = program.command('config').description('the config file: check it and everything it points at');
  addCheck(config.command('check').description('validate the config and check repository, locks, last run, schedule and free space'));
  addCheck(program.command('doctor').description('the same as "config check"'));
}
