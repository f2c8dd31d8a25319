import type { Command } from 'commander';
import { action, checkThreads, withSession } from './action.js';
import { EXIT, info, printJson, type GlobalOpts } from './output.js';
import { verify } from '../api/verify.js';
import type { VerifyResult } from '../api/index.js';
import { addSnapshotFilters, snapshotQuery } from './snapshot-choice.js';

const SHOW = 10;

function printVerify(g: GlobalOpts, result: VerifyResult, show: number): void {
  info(
    g,
    `verified ${result.checked} entries of snapshot ${result.snapshot_id.slice(0, 8)}: ${result.missing} missing, ` +
      `${result.changed} changed, ${result.metadata_mismatch} metadata mismatches, ${result.extra} extra`,
  );
  const list = (title: string, items: string[]) => {
    if (!items.length) return;
    info(g, `${title}:`);
    for (const x of items.slice(0, show)) info(g, `  ${x}`);
    if (items.length > show) info(g, `  ... and ${items.length - show} more (use --json for all)`);
  };
  list('missing', result.missing_paths);
  list(
    'changed',
    result.changed_paths.map((c) => `${c.path}  (${c.reason})`),
  );
  list(
    'metadata mismatch',
    result.metadata_mismatch_paths.map((m) => `${m.path}  (${m.fields.join(', ')})`),
  );
  list('extra (not in the snapshot)', result.extra_paths);
  for (const e of result.errors.slice(0, show)) process.stderr.write(`error: ${e.path}: ${e.message}\n`);
  if (result.ok) info(g, 'the tree matches the snapshot');
}

export function register(program: Command): void {
  addSnapshotFilters(
    program
      .command('verify')
      .description('compare the live files with a snapshot: missing, changed, metadata drift, extra entries (read-only)')
      .argument('<snap>', 'snapshot id, id prefix, or "latest" (the newest snapshot holding the paths)')
      .argument('[path...]', "only these paths (as recorded in the snapshot); default: the snapshot's source paths"),
  )
    .option('--target <dir>', 'compare the tree restored under DIR (DIR + original path) instead of the original location')
    .option('--checksum', 'read files of equal size and compare their content fingerprint (xxh64) instead of trusting mtime')
    .option('--threads <n>', 'worker threads (default: 2-4 by CPU count, as restore)', (v) => Number.parseInt(v, 10))
    .option('--show <n>', 'how many paths of each kind the human report lists', String(SHOW))
    .addHelpText(
      'after',
      `
Examples:
  snapfill verify latest                          # is the live tree what the last snapshot recorded?
  snapfill verify latest /home/alice --checksum   # also compare content of one account
  snapfill --json verify 1a2b3c4d --target /mnt/restore

Exit codes: 0 the tree matches the snapshot, 3 differences found (see the lists), 1 failure.`,
    )
    .action(
      action(async (g, [ref, paths, opts]) => {
        const show = Math.max(0, Number(opts.show) || 0);
        checkThreads(opts.threads);
        const result = await withSession(g, { readOnly: true, deferUnlock: true }, (s) =>
          verify(s, {
            snapshot: snapshotQuery(g, ref, opts),
            paths,
            target: opts.target,
            checksum: !!opts.checksum,
            threads: opts.threads,
          }),
        );
        if (g.json) printJson(result);
        else printVerify(g, result, show);
        if (result.errors.length && !(result.missing + result.changed + result.metadata_mismatch + result.extra)) return EXIT.FAIL;
        return result.ok ? EXIT.OK : EXIT.PARTIAL;
      }),
    );
}
