import { Command, InvalidArgumentError } from 'commander';
import { register as init } from './cmd-init.js';
import { register as snapshot } from './cmd-snapshot.js';
import { register as snapshots } from './cmd-snapshots.js';
import { register as ls } from './cmd-ls.js';
import { register as find } from './cmd-find.js';
import { register as diff } from './cmd-diff.js';
import { register as stats } from './cmd-stats.js';
import { register as catalog } from './cmd-catalog.js';
import { extraCommands } from './registry.js';
import { packageVersion } from './cmd-version.js';
import { endQuietlyOnEpipe } from './stdout.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('snapfill')
    .description('Incremental file-level backup and restore: snapshots 3x a day, restore only what is missing or differs.')
    .version(packageVersion(), '-V, --version', 'print the version (also: snapfill version)')
    .option('-r, --repo <url>', 'repository: a directory or s3://bucket/prefix (env SNAPFILL_REPO; default: a local repository)')
    .option('--catalog <file>', 'local catalog file (env SNAPFILL_CATALOG; default under SNAPFILL_CACHE)')
    .option('--json', 'print one JSON object on stdout at the end; progress goes to stderr')
    .option('-q, --quiet', 'no progress or informational output')
    .option('-c, --config <file>', 'config file; every command reads it (env SNAPFILL_CONFIG; default /etc/snapfill/config.json)')
    .option('--password-file <file>', 'file whose first line is the repository password (env SNAPFILL_PASSWORD_FILE)')
    .option('--password-command <cmd>', 'shell command that prints the repository password')
    .option('--s3-endpoint <url>', 'S3 endpoint for non-AWS servers (env SNAPFILL_S3_ENDPOINT)')
    .option('--s3-region <region>', 'S3 region (env SNAPFILL_S3_REGION)')
    .option('--s3-path-style', 'use path-style S3 URLs (env SNAPFILL_S3_PATH_STYLE=1)')
    .option('--object-lock-days <n>', 'S3: upload with Object Lock retention of N days (env SNAPFILL_OBJECT_LOCK_DAYS)', (v: string) => {
      if (!/^\d+$/.test(v)) throw new InvalidArgumentError('a whole number of days');
      return Number(v);
    })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText(
      'after',
      `
Quick start:
  snapfill snapshot /home                 # first run creates the default repository
  snapfill snapshots
  snapfill restore latest --mode missing  # put back only what is missing
`,
    );
  for (const reg of [init, snapshot, snapshots, ls, find, diff, stats, catalog, ...extraCommands]) reg(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // `snapfill ls -R ... | head`: every command ends quietly when its reader goes away.
  endQuietlyOnEpipe();
  await buildProgram().parseAsync(argv);
}
