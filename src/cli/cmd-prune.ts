import type { Command } from 'commander';
import { action, progressLog, withSession } from './action.js';
import { printJson } from './output.js';
import { pruneRepository } from '../api/index.js';
import { parseThreshold, printPruneReport } from './cmd-forget.js';

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
    .addHelpText(
      'after',
      `
Takes the exclusive repository lock: it waits for no one and fails at once (exit 4) while a
snapshot, restore or check runs. Safe to interrupt: run it again to finish.`,
    )
    .action(
      action(async (g, [opts]) => {
        const r = await withSession(g, {}, (s) =>
          pruneRepository(s, {
            repackThreshold: opts.repackThreshold,
            dryRun: opts.dryRun,
            onProgress: progressLog(g),
          }),
        );
        if (g.json) printJson(r);
        else printPruneReport(g, r);
      }),
    );
}
