import type { Command } from 'commander';
import { action, collect, positiveNumber, progressLog, withSession } from './action.js';
import { EXIT, humanBytes, info, printJson, type GlobalOpts } from './output.js';
import { Progress, formatProgress } from './progress.js';
import { display, reexecAtIdlePriority, throttleHooks } from '../api/common.js';
import { takeSnapshot } from '../api/snapshot.js';
import type { SnapshotResult } from '../api/index.js';

type SnapshotProgress = Parameters<NonNullable<Parameters<typeof takeSnapshot>[1]['onProgress']>>[0];

/** Totals, percentage and ETA from the previous snapshot of the same sources (files: per-file cost dominates). */
function progressLine(p: SnapshotProgress, elapsedS: number): string {
  const counts = formatProgress({ files: p.files, totalFiles: p.expected?.files, bytes: p.bytesRead, bytesVerb: 'read', elapsedS });
  return `${counts}, ${humanBytes(p.bytesAdded)} new  ${display(p.current)}`;
}

function interruptedSnapshot(p: SnapshotProgress | null): string {
  const done = p ? `${p.files} files looked at, ${humanBytes(p.bytesRead)} read` : 'nothing done yet';
  return `${done}; no snapshot was saved (earlier snapshots are untouched). Run the same command again to take it.`;
}

function printSnapshot(g: GlobalOpts, result: SnapshotResult): void {
  info(g, `snapshot ${result.snapshot_id.slice(0, 8)} saved${result.parent ? ` (parent ${result.parent.slice(0, 8)})` : ''}`);
  info(
    g,
    `files: ${result.files_total} total, ${result.files_new} new, ${result.files_changed} changed, ${result.files_unchanged} unchanged; ${result.dirs} dirs`,
  );
  info(
    g,
    `read ${humanBytes(result.bytes_read)}, added ${humanBytes(result.bytes_added)} to the repository in ${result.duration_s.toFixed(1)}s`,
  );
  for (const e of result.errors.slice(0, 20)) process.stderr.write(`error: ${e.path}: ${e.message}\n`);
  if (result.errors.length > 20) process.stderr.write(`... and ${result.errors.length - 20} more errors (use --json for all)\n`);
}

export function register(program: Command): void {
  program
    .command('snapshot')
    .alias('backup')
    .description('take a snapshot of one or more paths; unchanged files are not read again')
    .argument('<path...>', 'source paths to snapshot')
    .option(
      '-e, --exclude <glob>',
      'exclude matching paths (repeatable); a glob with "/" matches the full path, otherwise the name',
      collect,
      [],
    )
    .option('-t, --tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--time <iso>', 'record this time instead of now (ISO 8601)')
    .option('--host <name>', "record this host name instead of the machine's")
    .option('-x, --one-file-system', 'do not cross file-system boundaries below a source path')
    .option('--limit-read <MB/s>', 'cap reading from the source disks (MB/s, 10^6 bytes)', positiveNumber('--limit-read'))
    .option('--limit-upload <MB/s>', 'cap writing to the repository (MB/s)', positiveNumber('--limit-upload'))
    .option('--io-priority <class>', 'idle: run at idle IO priority and nice 19 (re-executes under ionice/nice)')
    .option('--max-load <n>', 'pause while the 1-minute load average is above n', positiveNumber('--max-load'))
    .addHelpText(
      'after',
      `
Examples:
  snapfill snapshot /home /etc --exclude '*.tmp' --exclude '/home/*/cache'
  snapfill --json snapshot /home --tag nightly

Exit codes: 0 success, 3 snapshot taken but some paths could not be read (see errors), 1 failure.`,
    )
    .action(
      action(async (g, [paths, opts]) => {
        let time: Date | undefined;
        if (opts.time) {
          time = new Date(opts.time);
          if (Number.isNaN(time.getTime())) throw new Error(`--time: "${opts.time}" is not a valid ISO 8601 time`);
        }
        if (opts.ioPriority && !['idle', 'normal'].includes(opts.ioPriority))
          throw new Error(`--io-priority: expected idle or normal, got "${opts.ioPriority}"`);
        const say = (m: string) => {
          if (!g.quiet) process.stderr.write(m + '\n');
        };
        if (opts.ioPriority === 'idle') {
          const code = await reexecAtIdlePriority(say);
          if (code !== null) return code;
        }
        const throttle = throttleHooks({ limitReadMBps: opts.limitRead, limitUploadMBps: opts.limitUpload, maxLoad: opts.maxLoad }, say);
        const progress = new Progress({ quiet: g.quiet });
        let last: SnapshotProgress | null = null;
        progress.onInterrupt(() => interruptedSnapshot(last));
        // No sync at open: takeSnapshot syncs once, under the repository lock. The key is derived
        // in the background meanwhile (takeSnapshot awaits it before its first write).
        const result = await withSession(g, { create: true, noSync: true, deferUnlock: true }, (s) =>
          takeSnapshot(s, {
            onLog: progressLog(g),
            paths,
            excludes: opts.exclude,
            tags: opts.tag,
            time,
            host: opts.host,
            oneFileSystem: opts.oneFileSystem,
            onRead: throttle.onRead,
            onUpload: throttle.onUpload,
            onProgress: (p) => {
              last = p;
              progress.update((t) => progressLine(p, t));
            },
          }),
        ).finally(() => progress.done());
        if (g.json) printJson(result);
        else printSnapshot(g, result);
        return result.errors.length ? EXIT.PARTIAL : EXIT.OK;
      }),
    );
}
