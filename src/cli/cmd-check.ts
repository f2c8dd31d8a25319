import type { Command } from 'commander';
import { action, progressLog, withSession } from './action.js';
import { EXIT, humanBytes, info, printJson, type GlobalOpts } from './output.js';
import { check, parseSubset } from '../api/check.js';
import type { CheckResult } from '../api/index.js';

const SHOW = 20;

/** What was read, said even when it was nothing: a subset that read no pack must not look like a data check. */
function dataLine(result: CheckResult, subset: string | undefined): string {
  const what = subset ? `${result.packs_read} of ${result.packs_checked} packs (subset ${subset}, ` : `${result.packs_read} packs (`;
  return `; read ${what}${humanBytes(result.bytes_read)}), ${result.blobs_checked} blobs verified`;
}

function printCheck(g: GlobalOpts, result: CheckResult, read: { data: boolean; subset?: string }): void {
  if (!result.encrypted)
    info(g, `note: this repository (format ${result.format_version}) is NOT encrypted: anyone who can read the store reads the backups`);
  info(
    g,
    `${result.snapshots_checked} snapshots, ${result.trees_checked} trees, ${result.packs_checked} packs checked` +
      (read.data || read.subset ? dataLine(result, read.subset) : ''),
  );
  if (result.unindexed_packs.length)
    info(g, `${result.unindexed_packs.length} packs without index (left by an interrupted snapshot; prune removes them)`);
  for (const b of result.broken_packs) {
    process.stderr.write(
      `broken pack ${b.pack}: ${b.problem}; ${b.bad_blobs} bad blobs; affects ${b.snapshots.length} snapshots, ${b.paths.length} paths\n`,
    );
    for (const p of b.paths.slice(0, SHOW)) process.stderr.write(`  ${p.snapshot_id.slice(0, 8)} ${p.path}\n`);
    if (b.paths.length > SHOW) process.stderr.write(`  ... and ${b.paths.length - SHOW} more (use --json for all)\n`);
  }
  for (const e of result.errors.slice(0, SHOW)) process.stderr.write(`error: ${e.path}: ${e.message}\n`);
  if (result.errors.length > SHOW) process.stderr.write(`... and ${result.errors.length - SHOW} more errors (use --json for all)\n`);
  info(g, result.ok ? 'no errors found' : `${result.errors.length} errors found`);
}

export function register(program: Command): void {
  program
    .command('check')
    .description("check the repository: snapshots, trees, packs and indexes; with --read-data also every blob's content")
    .option('--read-data', "read every pack once and verify every blob's SHA-256")
    .option('--read-data-subset <subset>', 'read only part of the packs: "10%" (a window that moves every day) or "n/m" (part n of m)')
    .addHelpText(
      'after',
      `
Examples:
  snapfill check                          # structure only: fast, reads indexes and trees
  snapfill check --read-data              # everything, every byte
  snapfill check --read-data-subset 10%   # daily cron: the whole repository is read every 10 days

Exit codes: 0 no problems, 1 damage found or the check could not run, 4 locked by prune/forget.`,
    )
    .action(
      action(async (g, [opts]) => {
        // Parsed before the repository is opened: bad input fails first.
        const readDataSubset = opts.readDataSubset ? parseSubset(opts.readDataSubset) : undefined;
        // No automatic sync: a damaged snapshot must not stop the check from reporting it.
        const result = await withSession(g, { noSync: true, readOnly: true }, (s) =>
          check(s, { readData: opts.readData, readDataSubset, onProgress: progressLog(g) }),
        );
        if (g.json) printJson(result);
        else printCheck(g, result, { data: !!opts.readData, subset: opts.readData ? undefined : opts.readDataSubset });
        return result.ok ? EXIT.OK : EXIT.FAIL;
      }),
    );
}
