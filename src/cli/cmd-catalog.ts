import type { Command } from 'commander';
import { action, storeOpts } from './action.js';
import { info, printJson } from './output.js';
import { openSession } from '../session.js';
import { rebuildCatalog, syncCatalog } from '../index/sync.js';

export function register(program: Command): void {
  const cat = program.command('catalog').description('manage the local SQLite catalog (an index rebuildable from the repository)');
  cat.command('rebuild')
    .description('rebuild the catalog from the repository alone (e.g. on a new machine)')
    .action(action(async (g) => {
      const log = g.quiet ? undefined : (m: string) => process.stderr.write(m + '\n');
      const s = await openSession({ ...storeOpts(g), noSync: true, onProgress: log });
      try {
        s.lockCatalog('catalog rebuild');
        const started = Date.now();
        const rep = await rebuildCatalog(s.repo, s.catalog, log);
        const out = { ...rep, duration_s: (Date.now() - started) / 1000, catalog: s.catalog.file };
        if (g.json) printJson(out);
        else info(g, `catalog rebuilt: ${rep.snapshots_added} snapshots, ${rep.packs_added} packs in ${out.duration_s.toFixed(1)}s (${s.catalog.file})`);
      } finally {
        await s.close();
      }
    }));
  cat.command('sync')
    .description('import what the repository has and the catalog lacks (done automatically by most commands)')
    .action(action(async (g) => {
      const s = await openSession({ ...storeOpts(g), noSync: true });
      try {
        s.lockCatalog('catalog sync');
        const rep = await syncCatalog(s.repo, s.catalog);
        if (g.json) printJson(rep);
        else info(g, `catalog synced: +${rep.snapshots_added}/-${rep.snapshots_removed} snapshots, +${rep.packs_added}/-${rep.packs_removed} packs`);
      } finally {
        await s.close();
      }
    }));
}
