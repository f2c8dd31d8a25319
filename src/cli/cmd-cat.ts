import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { EXIT } from './output.js';
import { catFile } from '../api/browse.js';
import { endQuietlyOnEpipe } from './stdout.js';
import { addSnapshotFilters, snapshotQuery } from './snapshot-choice.js';

export function register(program: Command): void {
  addSnapshotFilters(
    program
      .command('cat')
      .description("write one file's content from a snapshot to stdout (symlinks inside the snapshot are followed)")
      .argument('<snap>', 'snapshot id, id prefix, or "latest" (the newest snapshot holding the file)')
      .argument('<file>', 'absolute path of the file as it was backed up'),
  )
    .addHelpText(
      'after',
      `
Examples:
  snapfill cat latest /home/alice/public_html/wp-config.php
  snapfill cat 3fa2c1 /home/alice/Maildir/cur/1700000000.M1P2.host:2,S > mail.eml`,
    )
    .action(
      action(async (g, [ref, file, opts]) => {
        endQuietlyOnEpipe();
        return withSession(g, { readOnly: true }, async (s) => {
          await catFile(s, snapshotQuery(g, ref, opts), file, process.stdout);
          return EXIT.OK;
        });
      }),
    );
}
