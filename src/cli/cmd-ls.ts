import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { EXIT, info, printJson } from './output.js';
import { resolveSnapshot } from '../index/resolve.js';
import { basename, display, fromUser, normalizeAbs } from '../util/rawpath.js';
import { entryJson, longLine } from './format.js';

export function register(program: Command): void {
  program.command('ls')
    .description('list a directory of a snapshot (served from the catalog, never by loading the snapshot)')
    .argument('<snap>', 'snapshot id, id prefix, or "latest"')
    .argument('[path]', 'directory or file inside the snapshot', '/')
    .option('-l, --long', 'long listing: mode, owner, size, mtime, like ls -l')
    .option('-R, --recursive', 'list everything below the path')
    .action(action(async (g, [ref, p, opts]) => {
      const path = normalizeAbs(fromUser(p));
      return withSession(g, { readOnly: true }, async (s) => {
        const snap = resolveSnapshot(s.catalog, ref);
        const top = path === '/' ? undefined : s.catalog.entry(snap, path);
        if (path !== '/' && !top) throw new Error(`${display(path)} is not in snapshot ${snap.id.slice(0, 8)}`);
        const rows = opts.recursive
          ? s.catalog.walk(snap, path)
          : top && top.type !== 'dir' ? [top] : s.catalog.listDir(snap, path);
        const out: Record<string, unknown>[] = [];
        for (const v of rows) {
          if (g.json) out.push(entryJson(v));
          else if (opts.long) info(g, longLine(v, opts.recursive ? display(v.path) : display(basename(v.path))));
          else info(g, opts.recursive ? display(v.path) : display(basename(v.path)));
        }
        if (g.json) printJson({ snapshot_id: snap.id, path: display(path), entries: out });
        return EXIT.OK;
      });
    }));
}
