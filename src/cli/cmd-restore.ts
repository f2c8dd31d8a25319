import { Option, type Command } from 'commander';
import { action, checkThreads, collect, withSession } from './action.js';
import { EXIT, humanBytes, info, printJson, type GlobalOpts } from './output.js';
import { Progress, eta, rate } from './progress.js';
import { restoreSnapshot, type RestoreMode, type RestoreProgress, type RestoreResult } from '../api/index.js';

function progressLine(p: RestoreProgress, t: number): string {
  return p.phase === 'plan'
    ? `comparing: ${p.entries} entries checked (${rate(p.entries, t)}/s)`
    : `${p.phase}: ${p.files}/${p.plannedFiles} files, ${humanBytes(p.bytes)}/${humanBytes(p.plannedBytes)} (${rate(p.files, t)} files/s, ${rate(p.bytes / 1048576, t)} MB/s), ETA ${eta(p.bytes, p.plannedBytes, t)}`;
}

function printRestore(g: GlobalOpts, res: RestoreResult): void {
  const verb = res.dry_run ? 'would restore' : 'restored';
  info(g, `${res.dry_run ? 'plan for' : 'restore of'} snapshot ${res.snapshot_id.slice(0, 8)} (mode ${res.mode}) into ${res.target}:`);
  for (const [k, v] of Object.entries(res.planned).sort())
    info(g, `  ${k.padEnd(22)} ${String(v.count).padStart(9)}${v.bytes ? '  ' + humanBytes(v.bytes) : ''}`);
  info(
    g,
    `${verb} ${res.files_restored} files (${humanBytes(res.bytes_written)} written), ${res.dirs_created} dirs created, ${res.metadata_fixed} metadata fixed, ${res.files_skipped} skipped, ${res.deleted} deleted in ${res.duration_s.toFixed(1)}s`,
  );
  if (res.skipped_newer.length) {
    info(g, `${res.skipped_newer.length} files modified after the snapshot were left alone (use --overwrite-newer to replace them):`);
    for (const p of res.skipped_newer.slice(0, 10)) info(g, `  ${p}`);
  }
  for (const e of res.errors.slice(0, 50)) process.stderr.write(`error: ${e.path}: ${e.message}\n`);
  if (res.errors.length > 50) process.stderr.write(`... and ${res.errors.length - 50} more errors (use --json for all)\n`);
}

export function register(program: Command): void {
  program
    .command('restore')
    .description('put back from a snapshot only what is missing or differs (never touching newer data unless told)')
    .argument('<snap>', 'snapshot id, id prefix, or "latest"')
    .argument('[path...]', 'paths inside the snapshot to restore (default: all its source paths)')
    .option('--target <dir>', 'restore under this directory (staging) instead of in place')
    .option('--mode <mode>', 'missing | changed | checksum | metadata | all', 'missing')
    .option('-i, --include <glob>', 'restore only files matching (repeatable)', collect, [])
    .option('-e, --exclude <glob>', 'skip matching paths (repeatable)', collect, [])
    .option('--account <name>', "restore one account's tree (<accounts-root>/<name>)")
    .option('--accounts-root <dir>', 'where accounts live', '/home')
    .option('--owner-by-name', 'map user/group names to the ids they have now (account recreated with new uids)')
    .option('--overwrite-newer', 'in changed/checksum mode, also replace files modified after the snapshot')
    .option('--delete', 'remove entries absent from the snapshot, inside the selected scope only')
    .option('-n, --dry-run', 'print the plan (counts and bytes per action; with --json every path) and change nothing')
    .option('--threads <n>', 'worker threads (default: 2-4 by CPU count)', (v) => Number.parseInt(v, 10))
    .option('--host <name>', 'with "latest": the newest snapshot of this host')
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
        const res = await withSession(g, { readOnly: true }, (s) =>
          restoreSnapshot(s, {
            snapshot: ref,
            host: opts.host,
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
            onProgress: (p) => progress.update((t) => progressLine(p, t)),
          }),
        );
        progress.done();
        if (g.json) printJson(res);
        else printRestore(g, res);
        return res.errors.length ? EXIT.PARTIAL : EXIT.OK;
      }),
    );
}
