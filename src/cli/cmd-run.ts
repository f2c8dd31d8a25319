import type { Command } from 'commander';
import { action, positiveNumber } from './action.js';
import { EXIT, printJson } from './output.js';
import { configPath, loadConfig, reexecAtIdlePriority } from '../api/common.js';
import { runJob, summaryLine } from '../api/run.js';
import type { ThrottleSettings } from '../api/index.js';

export function register(program: Command): void {
  program
    .command('run')
    .description('the scheduled job: pre-hooks, snapshot of the configured sources, retention, prune when due, post-hooks')
    .option('--limit-read <MB/s>', 'cap reading from the source disks (MB/s, 10^6 bytes)', positiveNumber('--limit-read'))
    .option('--limit-upload <MB/s>', 'cap writing to the repository (MB/s)', positiveNumber('--limit-upload'))
    .option('--io-priority <class>', 'idle: run at idle IO priority and nice 19; normal: leave as is')
    .option('--max-load <n>', 'pause while the 1-minute load average is above n', positiveNumber('--max-load'))
    .addHelpText(
      'after',
      `
Reads the config file (--config, SNAPFILL_CONFIG, default /etc/snapfill/config.json); a
missing or invalid file stops the run before anything changes. Environment and flags
override the file.

Exit codes: 0 success, 3 snapshot saved but some paths or a post-hook failed,
1 failure (nothing saved, or a step failed), 4 another run is still going (nothing done).`,
    )
    .action(
      action(async (g, [opts]) => {
        if (opts.ioPriority && !['idle', 'normal'].includes(opts.ioPriority))
          throw new Error(`--io-priority: expected idle or normal, got "${opts.ioPriority}"`);
        const throttle: ThrottleSettings = {
          limitReadMBps: opts.limitRead,
          limitUploadMBps: opts.limitUpload,
          maxLoad: opts.maxLoad,
          ioPriority: opts.ioPriority,
        };
        const cfg = loadConfig(configPath(g.config), {
          repo: g.repo,
          catalog: g.catalog,
          s3Endpoint: g.s3Endpoint,
          s3Region: g.s3Region,
          s3PathStyle: g.s3PathStyle,
          throttle,
        });
        const say = (m: string) => {
          if (!g.quiet) process.stderr.write(m + '\n');
        };
        if (cfg.throttle.ioPriority === 'idle') {
          const code = await reexecAtIdlePriority(say);
          if (code !== null) return code;
        }
        const report = await runJob(cfg, { log: say });
        if (g.json) {
          process.stderr.write(summaryLine(report) + '\n');
          printJson(report);
        } else {
          process.stdout.write(summaryLine(report) + '\n');
          for (const e of report.errors.slice(0, 20)) process.stderr.write(`error: ${e.path ? e.path + ': ' : ''}${e.message}\n`);
        }
        return report.status === 'success' ? EXIT.OK : report.status === 'partial' ? EXIT.PARTIAL : EXIT.FAIL;
      }),
    );
}
