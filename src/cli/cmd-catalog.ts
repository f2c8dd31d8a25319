import type { Command } from 'commander';
import { action, progressLog, withSession } from './action.js';
import { EXIT, info, printJson } from './output.js';
import { catalogRebuild, catalogSync } from '../api/repository.js';
import type { SyncReport } from '../api/index.js';

/**
 * Damage met while importing (refused names, lost directory listings) is named on stderr and
 * makes the command exit 3: the catalog holds everything else, and restore, ls, find and dump
 * name the same paths whenever they touch them.
 */
function reportDamage(rep: SyncReport): number {
  for (const d of rep.damaged) process.stderr.write(`error: snapshot ${d.snapshot_id.slice(0, 8)}: ${d.path}: ${d.message}\n`);
  return rep.damaged.length ? EXIT.PARTIAL : EXIT.OK;
}

export function register(program: Command): void {
  const cat = program.command('catalog').description('manage the local SQLite catalog (an index rebuildable from the repository)');
  cat
    .command('rebuild')
    .description('rebuild the catalog from the repository alone (e.g. on a new machine)')
    .addHelpText(
      'after',
      `
Exit codes: 0 rebuilt; 3 rebuilt, but some snapshots have damaged or refused entries (listed on stderr:
unreadable tree blobs lose their directory's contents, unsafe names are refused); 1 failure.`,
    )
    .action(
      action(async (g) => {
        return withSession(g, { noSync: true }, async (s) => {
          const out = await catalogRebuild(s, progressLog(g));
          if (g.json) printJson(out);
          else
            info(
              g,
              `catalog rebuilt: ${out.snapshots_added} snapshots, ${out.packs_added} packs in ${out.duration_s.toFixed(1)}s (${out.catalog})`,
            );
          return reportDamage(out);
        });
      }),
    );
  cat
    .command('sync')
    .description('import what the repository has and the catalog lacks (done automatically by most commands)')
    .option('--all-packs', "also read other hosts' small data pack indexes, which a routine sync records by the filter in their names")
    .option('--full', 'list every pack index, not only those new since the last sync (what went is then seen by its absence)')
    .addHelpText(
      'after',
      `
Like a snapshot's own sync, other hosts' small data packs are recorded by the blob filter their
index names carry, and read only when a snapshot is about to store a blob one may hold; every
other command (restore, check, prune, ...) reads them first.

A sync lists only the data pack indexes stored since the last one, and learns what prune deleted
from its deletion records; it lists everything when the catalog is new, when its last sync is
13 days old or more (deletion records are kept 14), and with --full.`,
    )
    .action(
      action(async (g, [opts]) => {
        return withSession(g, { noSync: true }, async (s) => {
          const rep = await catalogSync(s, progressLog(g), { allPacks: !!opts.allPacks, full: !!opts.full });
          if (g.json) printJson(rep);
          else
            info(
              g,
              `catalog synced${rep.listing === 'full' ? ' (every index listed)' : ''}: +${rep.snapshots_added}/-${rep.snapshots_removed} snapshots, +${rep.packs_added}/-${rep.packs_removed} packs`,
            );
          return reportDamage(rep);
        });
      }),
    );
}
