import { Command, InvalidArgumentError } from 'commander';
import { COMMANDS, type CommandEntry } from './registry.js';
import { packageVersion } from './cmd-version.js';
import { endQuietlyOnEpipe } from './stdout.js';

/**
 * The program with the command `argv` names, or with every command when it names none it knows
 * (help, a typo, completion): a run loads only its own command's modules.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
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
  const named = argv ? commandNamed(program, argv) : undefined;
  const entries = named && !named.needsAll ? [named] : COMMANDS;
  for (const m of await Promise.all(entries.map((e) => e.load()))) m.register(program);
  return program;
}

/**
 * The command `argv` runs: its first word after the global options (skipping their values).
 * Undefined when that is unclear (an option this cannot place, `--`, no word, an unknown word):
 * then every command is loaded and commander decides, as before.
 */
function commandNamed(program: Command, argv: readonly string[]): CommandEntry | undefined {
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-')) return COMMANDS.find((c) => c.names.includes(a));
    if (a === '--' || a === '-') return undefined;
    if (a.startsWith('--') && a.includes('=')) continue;
    const opt = program.options.find((o) => o.long === a || o.short === a);
    if (!opt || opt.optional) return undefined;
    if (opt.required) i++;
  }
  return undefined;
}

export async function main(argv: string[]): Promise<void> {
  // `snapfill ls -R ... | head`: every command ends quietly when its reader goes away.
  endQuietlyOnEpipe();
  await (await buildProgram(argv)).parseAsync(argv);
}
