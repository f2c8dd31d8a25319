import type { Command } from 'commander';
import { action, progressLog, storeOpts } from './action.js';
import { info, printJson } from './output.js';
import { copySnapshots } from '../api/copy.js';

export function register(program: Command): void {
  program
    .command('copy [snapshots...]')
    .description('copy snapshots (default: all) into another repository, keeping their time, host, paths and tags')
    .requiredOption('--to <repo>', 'the target repository (create it first with "snapfill init")')
    .option('--to-password-file <file>', "the target's password file (default: the same password sources as the source)")
    .option('--to-password-command <cmd>', "a command printing the target's password")
    .option('--host <name>', 'only snapshots of this host')
    .option('--tag <tag>', 'only snapshots with this tag')
    .addHelpText(
      'after',
      `
Moving a version-1 repository to version 2 (encrypted):
  snapfill --repo NEW init
  snapfill --repo OLD copy --to NEW
  then point --repo / SNAPFILL_REPO / "repository" at NEW; OLD can be removed once checked.
Blobs the target already has are not copied again; a snapshot already there is skipped.`,
    )
    .action(
      action(async (g, [ids, opts]) => {
        const r = await copySnapshots({
          ...storeOpts(g),
          to: opts.to,
          toPasswordFile: opts.toPasswordFile,
          toPasswordCommand: opts.toPasswordCommand,
          snapshots: ids,
          host: opts.host,
          tag: opts.tag,
          onProgress: progressLog(g),
        });
        if (g.json) printJson(r);
        else
          info(
            g,
            `${r.copied.length} snapshots copied, ${r.skipped.length} already there; ${r.blobs_copied} blobs (${r.bytes_copied} bytes) stored`,
          );
      }),
    );
}
