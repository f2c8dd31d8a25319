import type { Command } from 'commander';
import { action, progressLog, withSession } from './action.js';
import { printJson } from './output.js';
import { pruneRepository } from '../api/maintain.js';
import { GRACE_HELP, graceFromEnv, graceOption, parseThreshold, printPruneReport } from './cmd-forget.js';

export function register(program: Command): void {
  program
    .command('prune')
    .description('free the space of data no snapshot uses: delete unused packs, repack mostly-unused ones')
    .option('-n, --dry-run', 'report what would be freed; change nothing')
    .option(
      '--repack-threshold <share>',
      'repack a pack when more than this share of it is unused (0..1 or %, default 0.25)',
      parseThreshold,
    )
    .option('--grace <duration>', GRACE_HELP.replace('with prune: ', ''), graceOption)
    .addHelpText(
      'after',
      `
Two phases, without stopping snapshots: each run MARKS the data no snapshot uses (after
copying the live part of mostly-unused packs elsewhere) and DELETES what an earlier run marked
once the grace period is over, unless a snapshot uses it again. Run it regularly (e.g. daily);
the space comes back one grace period after the data became unused. Only one prune or forget
runs at a time (exit 4 otherwise); snapshots, restores and checks run on. Safe to interrupt:
run it again to finish. SNAPFILL_PRUNE_GRACE sets the default grace.`,
    )
    .action(
      action(async (g, [opts]) => {
        const r = await withSession(g, {}, (s) =>
          pruneRepository(s, {
            repackThreshold: opts.repackThreshold,
            dryRun: opts.dryRun,
            graceMs: graceFromEnv(opts.grace),
            onProgress: progressLog(g),
          }),
        );
        if (g.json) printJson(r);
        else printPruneReport(g, r);
      }),
    );
}
