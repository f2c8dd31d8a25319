import { Option, type Command } from 'commander';
import { action, checkThreads, collect, withSession } from './action.js';
import { EXIT, humanBytes, info, printJson, type GlobalOpts } from './output.js';
import { Progress, interruptedRestore, restoreProgressLine } from './progress.js';
import { planLines } from './format.js';
import { restoreSnapshot } from '../api/restore.js';
import type { RestoreMode, RestoreProgress, RestoreResult } from '../api/index.js';
import { addSnapshotFilters, snapshotQuery } from './snapshot-choice.js';

const SHOW_DELETES = 200;

function printRestore(g: GlobalOpts, res: RestoreResult): void {
  const verb = res.dry_run ? 'would restore' : 'restored';
  info(g, `${res.dry_run ? 'plan for' : 'restore of'} snapshot ${res.snapshot_id.slice(0, 8)} (mode ${res.mode}) into ${res.target}:`);
  for (const line of planLines(res.planned)) info(g, line);
  info(
    g,
    `${verb} ${res.files_restored} files (${humanBytes(res.bytes_written)} written), ${res.dirs_created} dirs created, ${res.metadata_fixed} metadata fixed, ${res.files_skipped} files skipped, ${res.deleted} deleted in ${res.duration_s.toFixed(1)}s`,
  );
  printDeletions(g, res);
  if (res.skipped_newer.length) {
    info(g, `${res.skipped_newer.length} files modified after the snapshot were left alone (use --overwrite-newer to replace them):`);
    for (const p of res.skipped_newer.slice(0, 10)) info(g, `  ${p}`);
  }
  printErrors(res);
}

const SHOW_EACH_ERROR = 10;

/** A few errors are listed one by one; more are counted by cause, one line each (--json keeps every error). */
function printErrors(res: RestoreResult): void {
  if (res.errors.length <= SHOW_EACH_ERROR) {
    for (const e of res.errors) process.stderr.write(`error: ${e.path}: ${e.message}\n`);
    return;
  }
  for (const grp of res.error_groups) {
    const cause = grp.code ? `${grp.cause} (${grp.code})` : grp.cause;
    process.stderr.write(`error: ${grp.count} ${grp.count === 1 ? 'path' : 'paths'}: ${cause}, first: ${grp.first}\n`);
  }
  process.stderr.write(`${res.errors.length} errors in all (use --json for every path)\n`);
}

/** A dry run names what --delete would remove (the --json result lists every action). */
function printDeletions(g: GlobalOpts, res: RestoreResult): void {
  const deletes = (res.actions ?? []).filter((a) => a.action === 'delete').map((a) => a.path);
  if (!deletes.length) return;
  info(g, `${res.dry_run ? 'would delete' : 'deleted'} ${deletes.length} entries absent from the snapshot:`);
  for (const p of deletes.slice(0, SHOW_DELETES)) info(g, `  ${p}`);
  if (deletes.length > SHOW_DELETES) info(g, `  ... and ${deletes.length - SHOW_DELETES} more (use --json for all)`);
}

export function register(program: Command): void {
  addSnapshotFilters(
    program
      .command('restore')
      .description('put back from a snapshot only what is missing or differs (never touching newer data unless told)')
      .argument('<snap>', 'snapshot id, id prefix, or "latest" (the newest snapshot holding the paths to restore)')
      .argument('[path...]', 'paths inside the snapshot to restore (default: all its source paths)'),
  )
    .option('--target <dir>', 'restore under this directory (staging) instead of in place')
    .option('--mode <mode>', 'missing | changed | checksum | metadata | all', 'missing')
    .option('-i, --include <glob>', 'restore only files matching (repeatable)', collect, [])
    .option('-e, --exclude <glob>', 'skip matching paths (repeatable)', collect, [])
    .option('--account <name>', "restore one account's tree (<accounts-root>/<name>)")
    .option('--accounts-root <dir>', 'where accounts live', '/home')
    .option('--owner-by-name', 'map user/group names to the ids they have now (account recreated with new uids)')
    .option('--overwrite-newer', 'in changed/checksum mode, also replace files modified after the snapshot')
    .option(
      '--delete',
      "remove entries absent from the snapshot, inside the selected scope only (never what the snapshot's own excludes left out)",
    )
    .option('-n, --dry-run', 'print the plan (counts and bytes per action; with --json every path) and change nothing')
    .option('--threads <n>', 'worker threads (default: 2-4 by CPU count)', (v) => Number.parseInt(v, 10))
    // Hidden: how content is read (default: direct for a local repository, planned for a remote one).
    .addOption(new Option('--strategy <strategy>', 'direct | planned').choices(['direct', 'planned']).hideHelp())
    .addHelpText(
      'after',
      `
Modes:
  missing   (default) restore entries that do not exist; existing ones are not touched at all
  changed   also rewrite files whose type, size or mtime differ; skips files modified after the snapshot
  checksum  like changed, and compares content fingerprints when size and mtime match (silent corruption)
  metadata  write no content: set mode, owner and mtime of existing entries back (permission-script repair)
  all       overwrite everything selected

Examples:
  snapfill restore latest --mode missing                       # after a cleanup script deleted old files
  snapfill restore latest /home/alice/public_html --mode metadata
  snapfill restore latest --account alice --target /srv/staging
  snapfill restore latest --account alice --owner-by-name      # account was deleted and recreated

Exit codes: 0 success, 3 finished but some paths failed (listed), 1 failure.`,
    )
    .action(
      action(async (g, [ref, paths, opts]) => {
        checkThreads(opts.threads);
        const progress = new Progress({ quiet: g.quiet });
        let last: RestoreProgress | null = null;
        progress.onInterrupt(() => interruptedRestore(last));
        const res = await withSession(g, { readOnly: true, deferUnlock: true }, (s) =>
          restoreSnapshot(s, {
            snapshot: snapshotQuery(g, ref, opts, true),
            paths,
            target: opts.target,
            mode: opts.mode as RestoreMode,
            include: opts.include,
            exclude: opts.exclude,
            account: opts.account,
            accountsRoot: opts.accountsRoot,
            ownerByName: opts.ownerByName,
            delete: opts.delete,
            dryRun: opts.dryRun,
            overwriteNewer: opts.overwriteNewer,
            threads: opts.threads,
            strategy: opts.strategy,
            onProgress: (p) => {
              last = p;
              progress.update((t) => restoreProgressLine(p, t));
            },
          }),
        ).finally(() => progress.done());
        if (g.json) printJson(res);
        else printRestore(g, res);
        return res.errors.length ? EXIT.PARTIAL : EXIT.OK;
      }),
    );
}
