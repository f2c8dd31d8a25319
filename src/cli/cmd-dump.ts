import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { EXIT } from './output.js';
import { dumpSubtree } from '../api/browse.js';
import { endQuietlyOnEpipe } from './stdout.js';
import { addSnapshotFilters, snapshotQuery } from './snapshot-choice.js';

export function register(program: Command): void {
  addSnapshotFilters(
    program
      .command('dump')
      .description('write a snapshot subtree to stdout as a tar archive (owners, modes, mtimes, symlinks, hardlinks)')
      .argument('<snap>', 'snapshot id, id prefix, or "latest" (the newest snapshot holding the path)')
      .argument('<path>', 'absolute path of the subtree as it was backed up; names in the archive are relative to its parent'),
  )
    .addHelpText(
      'after',
      `
Examples:
  snapfill dump latest /home/alice > alice.tar          # members are alice/...
  snapfill dump latest /home/alice | tar -xpf - -C /tmp/staging --numeric-owner
  snapfill dump latest /home/alice | ssh other-host 'tar -xpf - -C /home'

Exit codes: 0 archive complete, 3 archive written but some entries were left out (listed on stderr), 1 failure.`,
    )
    .action(
      action(async (g, [ref, p, opts]) => {
        if (process.stdout.isTTY) throw new Error('refusing to write a tar archive to a terminal: redirect stdout to a file or pipe');
        endQuietlyOnEpipe();
        return withSession(g, { readOnly: true }, async (s) => {
          const r = await dumpSubtree(s, snapshotQuery(g, ref, opts), p, process.stdout);
          for (const e of r.errors) process.stderr.write(`snapfill dump: ${e.path}: ${e.message}\n`);
          // stdout is the archive: the summary (JSON with --json) goes to stderr.
          if (g.json) process.stderr.write(JSON.stringify(r) + '\n');
          else if (!g.quiet) process.stderr.write(`snapfill dump: ${r.entries} entries, ${r.files} files, ${r.bytes} bytes\n`);
          return r.errors.length ? EXIT.PARTIAL : EXIT.OK;
        });
      }),
    );
}
