import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { EXIT, info, printJson } from './output.js';
import { resolveSnapshot } from '../catalog/resolve.js';
import { basename, display, fromUser, normalizeAbs } from '../util/rawpath.js';
import { entryJson, longLine } from './format.js';

export function register(program: Command): void {
  program.command('ls')
    .description('list a directory of a snapshot (served from the catalog, never by loading the snapshot)')
    .argument('<snap>', 'snapshot id, id prefix, or "latest"')
    .argument('[path]', 'directory or file inside the snapshot', '/')
    .option('-l, --long', 'long listing: mode, owner, size, mtime, like ls -l')
    .option('-R, --recursive', 'list everything below the path')
    .addHelpText('after', `
Exit codes: 0 listed; 3 listed, but the snapshot lost or refused entries at or below the path
(a damaged directory listing, unsafe names: named on stderr); 1 failure.`)
    .action(action(async (g, [ref, p, opts]) => {
      const path = normalizeAbs(fromUser(p));
      return withSession(g, { readOnly: true }, async (s) => {
        const snap = resolveSnapshot(s.catalog, ref);
        const top = path === '/' ? undefined : s.catalog.entry(snap, path);
        // Refused entries and lost directory listings at or below the path (or hiding it).
        const damage = s.catalog.damagedUnder(snap, path);
        if (path !== '/' && !top) {
          const why = damage.length ? ` (${display(damage[0].path)}: ${damage[0].message})` : '';
          throw new Error(`${display(path)} is not in snapshot ${snap.id.slice(0, 8)}${why}`);
        }
        const rows = opts.recursive
          ? s.catalog.walk(snap, path)
          : top && top.type !== 'dir' ? [top] : s.catalog.listDir(snap, path);
        const out: Record<string, unknown>[] = [];
        for (const v of rows) {
          if (g.json) out.push(entryJson(v));
          else if (opts.long) info(g, longLine(v, opts.recursive ? display(v.path) : display(basename(v.path))));
          else info(g, opts.recursive ? display(v.path) : display(basename(v.path)));
        }
        const errors = damage.map((d) => ({ path: display(d.path), message: d.message }));
        for (const e of errors) process.stderr.write(`error: ${e.path}: ${e.message}\n`);
        if (g.json) printJson({ snapshot_id: snap.id, path: display(path), entries: out, errors });
        return errors.length ? EXIT.PARTIAL : EXIT.OK;
      });
    }));
}
