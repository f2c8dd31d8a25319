import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { EXIT, info, printJson } from './output.js';
import { basename, display } from '../api/common.js';
import { listEntries, pickForPath } from '../api/browse.js';
import { entryJson, longLine } from './format.js';
import { addSnapshotFilters, snapshotQuery } from './snapshot-choice.js';

export function register(program: Command): void {
  addSnapshotFilters(
    program
      .command('ls')
      .description('list a directory of a snapshot (served from the catalog, never by loading the snapshot)')
      .argument('<snap>', 'snapshot id, id prefix, or "latest" (the newest snapshot holding the path)')
      .argument('[path]', 'directory or file inside the snapshot', '/'),
  )
    .option('-l, --long', 'long listing: mode, owner, size, mtime (with its time zone), like ls -l')
    // As in GNU ls, -h is --human-readable here; help is --help only.
    .helpOption('--help', 'display help for command')
    .option('-h, --human-readable', 'with -l: sizes as KiB, MiB, GiB')
    .option('-R, --recursive', 'list everything below the path')
    .addHelpText(
      'after',
      `
Exit codes: 0 listed; 3 listed, but the snapshot lost or refused entries at or below the path
(a damaged directory listing, unsafe names: named on stderr); 1 failure.`,
    )
    .action(
      action(async (g, [ref, p, opts]) => {
        return withSession(g, { readOnly: true }, async (s) => {
          const snap = await pickForPath(s, snapshotQuery(g, ref, opts), p);
          const l = listEntries(s, snap, p, { recursive: opts.recursive });
          const out: Record<string, unknown>[] = [];
          for (const v of l.entries) {
            const name = opts.recursive ? display(v.path) : display(basename(v.path));
            if (g.json) out.push(entryJson(v));
            else if (opts.long) info(g, longLine(v, name, opts.humanReadable));
            else info(g, name);
          }
          for (const e of l.damage) process.stderr.write(`error: ${e.path}: ${e.message}\n`);
          if (g.json) printJson({ snapshot_id: l.snapshot.id, path: display(l.path), entries: out, errors: l.damage });
          return l.damage.length ? EXIT.PARTIAL : EXIT.OK;
        });
      }),
    );
}
