import type { Command } from 'commander';
import picomatch from 'picomatch';
import { action, withSession } from './action.js';
import { info, printJson } from './output.js';
import { display, fromUser, isUnder, normalizeAbs } from '../util/rawpath.js';
import { timeString } from './format.js';

export function register(program: Command): void {
  program.command('find')
    .description('find a path or glob across all snapshots, with each version\'s time and size')
    .argument('<pattern>', 'absolute path, or a glob (a glob without "/" matches file names)')
    .option('--account <name>', 'only under the account\'s home (<accounts-root>/<name>)')
    .option('--accounts-root <dir>', 'where accounts live', '/home')
    .action(action(async (g, [pattern, opts]) => {
      const raw = fromUser(pattern);
      const hasGlob = /[*?[\]{}]/.test(pattern);
      let match: (p: string) => boolean;
      if (!raw.includes('/')) {
        const m = hasGlob ? picomatch(raw, { dot: true }) : (n: string) => n === raw;
        match = (p) => m(p.slice(p.lastIndexOf('/') + 1));
      } else if (!hasGlob) {
        const exact = normalizeAbs(raw.startsWith('/') ? raw : '/' + raw);
        match = (p) => p === exact;
      } else {
        const m = picomatch(raw, { dot: true });
        match = (p) => m(p);
      }
      if (opts.account) {
        if (!/^[A-Za-z0-9._-]+$/.test(opts.account)) throw new Error(`invalid account name "${opts.account}"`);
        const home = normalizeAbs(fromUser(`${opts.accountsRoot}/${opts.account}`));
        const inner = match;
        match = (p) => isUnder(p, home) && inner(p);
      }
      const results: Record<string, unknown>[] = [];
      await withSession(g, { readOnly: true }, async (s) => {
        for (const hit of s.catalog.findVersions(match)) {
          const row = {
            path: display(hit.path), type: hit.version.type, size: hit.version.size, mtime: timeString(hit.version.mtime),
            fingerprint: hit.version.fp, snapshots: hit.snapshots.map((x) => ({ id: x.id, time: x.time })),
          };
          if (g.json) results.push(row);
          else {
            const snaps = hit.snapshots.map((x) => `${x.id.slice(0, 8)}@${x.time.slice(0, 16)}`);
            info(g, `${row.path}  ${row.type} ${row.size} bytes, mtime ${row.mtime}, fp ${row.fingerprint ?? '-'}\n    in ${snaps.length} snapshot(s): ${snaps.join(' ')}`);
          }
        }
      });
      if (g.json) printJson({ matches: results });
    }));
}
