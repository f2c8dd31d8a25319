import { Option, type Command } from 'commander';
import { action, storeOpts } from './action.js';
import { info, printJson } from './output.js';
import { initRepository } from '../api/session.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a new, empty, encrypted repository at --repo (a directory or s3://bucket/prefix)')
    .option('--insecure-no-encryption', 'store everything in the clear: anyone who can read the store reads the backups')
    // Test-only / migration: the old plaintext format 1 (every snapfill still reads and writes it).
    .addOption(new Option('--format-version <n>', 'repository format (1: legacy, tests only)').choices(['1', '2']).hideHelp())
    .addHelpText(
      'after',
      `
The password of the first key comes from --password-file, SNAPFILL_PASSWORD_FILE,
--password-command, the config file's "password_file", or a prompt on a terminal.
Without it the repository cannot be read: keep a copy somewhere else. More keys:
"snapfill key add".`,
    )
    .action(
      action(async (g, [opts]) => {
        const repo = await initRepository({
          ...storeOpts(g),
          insecureNoEncryption: !!opts.insecureNoEncryption,
          formatVersion: opts.formatVersion === '1' ? 1 : 2,
        });
        const how = repo.config.version < 2 ? 'format 1, not encrypted' : repo.encrypted ? 'encrypted' : 'NOT encrypted';
        if (g.json)
          printJson({
            repository: repo.store.location,
            id: repo.config.id,
            version: repo.config.version,
            encrypted: repo.encrypted,
            key: repo.keyId,
          });
        else info(g, `created snapfill repository ${repo.config.id.slice(0, 8)} at ${repo.store.location} (${how})`);
        if (!repo.encrypted && repo.config.version >= 2)
          process.stderr.write('snapfill: warning: this repository is NOT encrypted: anyone who can read the store reads every file\n');
      }),
    );
}
