import type { Command } from 'commander';
import { action, collect, positiveNumber, progressLog, withSession } from './action.js';
import { EXIT, humanBytes, info, printJson, type GlobalOpts } from './output.js';
import { Progress, rate } from './progress.js';
import { display, reexecAtIdlePriority, takeSnapshot, throttleHooks, type SnapshotResult } from '../api/index.js';

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
        // No sync at open: takeSnapshot syncs once, under the repository lock.
        const result = await withSession(g, { create: true, noSync: true }, (s) =>
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
            onProgress: (p) =>
              progress.update(
                (t) =>
                  `${p.files} files, ${humanBytes(p.bytesRead)} read (${rate(p.bytesRead / 1048576, t)} MB/s), ${humanBytes(p.bytesAdded)} new  ${display(p.current)}`,
              ),
          }),
        );
        progress.done();
        if (g.json) printJson(result);
        else printSnapshot(g, result);
        return result.errors.length ? EXIT.PARTIAL : EXIT.OK;
      }),
    );
}
