import type { Command } from 'commander';
import picomatch from 'picomatch';
import { action, withSession } from './action.js';
import { EXIT, info, printJson } from './output.js';
import { display, fromUser, isUnder, normalizeAbs, type RawPath } from '../util/rawpath.js';
import { modeString, timeString } from './format.js';
import { pathHistories } from '../query/versions.js';
import type { VersionRow } from '../catalog/catalog.js';

/** "10k", "5M", "1.5G", "300" (bytes; k/M/G/T are powers of 1024). */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(s.trim());
  if (!m) throw new Error(`"${s}" is not a size (examples: 500, 10k, 5M, 1.5G)`);
  const pow = ' kmgt'.indexOf((m[2] || ' ').toLowerCase());
  return Math.round(Number(m[1]) * 1024 ** pow);
}

/** An ISO date/time, or an age before now: "30m", "12h", "7d", "2w". Returns nanoseconds since the epoch. */
export function parseTime(s: string, now = Date.now()): bigint {
  const rel = /^(\d+)\s*([smhdw])$/.exec(s.trim());
  let ms: number;
  if (rel) ms = now - Number(rel[1]) * { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 }[rel[2] as 's']!;
  else {
    ms = new Date(s).getTime();
    if (Number.isNaN(ms)) throw new Error(`"${s}" is not a time (examples: 2026-11-17, 2026-11-17T09:00:00Z, 7d, 12h)`);
  }
  return BigInt(Math.round(ms)) * 1_000_000n;
}

/** The literal directory before the first glob character: the subtree a glob can match in. */
function literalPrefix(glob: RawPath): RawPath {
  const i = glob.search(/[*?[\]{}]/);
  const head = i < 0 ? glob : glob.slice(0, i);
  const dir = head.slice(0, head.lastIndexOf('/'));
  return dir === '' ? '/' : normalizeAbs(dir);
}

export function register(program: Command): void {
  program.command('find')
    .description('find a path or glob across all snapshots: each distinct version, the snapshots holding it, and what changed')
    .argument('<pattern>', 'absolute path, or a glob (a glob without "/" matches file names)')
    .option('--account <name>', 'only under the account\'s home (<accounts-root>/<name>)')
    .option('--accounts-root <dir>', 'where accounts live', '/home')
    .option('--min-size <size>', 'only versions at least this big (e.g. 10k, 5M)')
    .option('--max-size <size>', 'only versions at most this big')
    .option('--newer <time>', 'only versions modified after this time (ISO date/time, or an age like 7d, 12h)')
    .option('--older <time>', 'only versions modified before this time')
    .option('--type <type>', 'only entries of this type: file, dir, symlink (hardlinks count as file)')
    .addHelpText('after', `
Examples:
  snapfill find /home/alice/public_html/wp-config.php      # every version, and how they differ
  snapfill find '*.eml' --account alice --newer 2026-11-17 --older 2026-11-18
  snapfill find '/home/*/public_html/*.php' --min-size 1M

Exit codes: 0 done; 3 done, but some snapshots lost or refused entries where the pattern could
match (a damaged directory listing, unsafe names: named on stderr); 1 failure.`)
    .action(action(async (g, [pattern, opts]) => {
      const raw = fromUser(pattern);
      const hasGlob = /[*?[\]{}]/.test(pattern);
      let match: (p: string) => boolean;
      const scope: { exact?: RawPath; under?: RawPath } = {};
      if (!raw.includes('/')) {
        const m = hasGlob ? picomatch(raw, { dot: true }) : (n: string) => n === raw;
        match = (p) => m(p.slice(p.lastIndexOf('/') + 1));
      } else if (!hasGlob) {
        const exact = normalizeAbs(raw.startsWith('/') ? raw : '/' + raw);
        match = (p) => p === exact;
        scope.exact = exact;
      } else {
        const abs = raw.startsWith('/') ? raw : '/' + raw;
        const m = picomatch(abs, { dot: true });
        match = (p) => m(p);
        scope.under = literalPrefix(abs);
      }
      if (opts.account) {
        if (!/^[A-Za-z0-9._-]+$/.test(opts.account)) throw new Error(`invalid account name "${opts.account}"`);
        const home = normalizeAbs(fromUser(`${opts.accountsRoot}/${opts.account}`));
        const inner = match;
        match = (p) => isUnder(p, home) && inner(p);
        if (scope.exact === undefined && (scope.under === undefined || isUnder(home, scope.under))) scope.under = home;
      }
      const minSize = opts.minSize !== undefined ? parseSize(opts.minSize) : null;
      const maxSize = opts.maxSize !== undefined ? parseSize(opts.maxSize) : null;
      const newer = opts.newer !== undefined ? parseTime(opts.newer) : null;
      const older = opts.older !== undefined ? parseTime(opts.older) : null;
      const types: Record<string, string[]> = { file: ['file', 'hardlink'], f: ['file', 'hardlink'], dir: ['dir'], d: ['dir'], symlink: ['symlink'], l: ['symlink'] };
      if (opts.type !== undefined && !types[opts.type]) throw new Error(`--type: "${opts.type}" is not one of file, dir, symlink`);
      const wanted = (v: VersionRow) =>
        (minSize === null || v.size >= minSize) && (maxSize === null || v.size <= maxSize) &&
        (newer === null || v.mtime > newer) && (older === null || v.mtime < older) &&
        (opts.type === undefined || types[opts.type].includes(v.type));

      const results: Record<string, unknown>[] = [];
      let paths = 0;
      const errors: { path: string; message: string; snapshots: string[] }[] = [];
      await withSession(g, { readOnly: true }, async (s) => {
        // Damage where the pattern could match (refused names, lost listings) hides versions: name it, once per path.
        const byKey = new Map<string, { path: string; message: string; snapshots: string[] }>();
        for (const d of s.catalog.damagedInAll(scope.exact ?? scope.under ?? '/')) {
          const key = d.path + '\0' + d.message;
          const e = byKey.get(key) ?? { path: display(d.path), message: d.message, snapshots: [] };
          e.snapshots.push(d.snapshot.id);
          byKey.set(key, e);
        }
        errors.push(...byKey.values());
        for (const h of pathHistories(s.catalog.findVersions(match, scope))) {
          const shown = h.versions.filter((x) => wanted(x.version));
          if (!shown.length) continue;
          paths++;
          if (!g.json) info(g, `${display(h.path)}  (${h.versions.length} version${h.versions.length === 1 ? '' : 's'})`);
          for (const { version: v, snapshots, changes } of shown) {
            const row = {
              path: display(h.path), type: v.type, size: v.size, mtime: timeString(v.mtime), mtime_ns: v.mtime.toString(),
              mode: v.mode & 0o7777, mode_string: modeString(v.type, v.mode), uid: v.uid, gid: v.gid, user: v.user, group: v.group,
              fingerprint: v.fp, target: v.target === null ? null : display(v.target),
              changes, snapshots: snapshots.map((x) => ({ id: x.id, time: x.time })),
            };
            if (g.json) { results.push(row); continue; }
            const first = snapshots[0];
            const last = snapshots[snapshots.length - 1];
            const span = snapshots.length === 1
              ? `${first.time.slice(0, 16).replace('T', ' ')} (${first.id.slice(0, 8)})`
              : `${first.time.slice(0, 16).replace('T', ' ')} .. ${last.time.slice(0, 16).replace('T', ' ')} (${snapshots.length} snapshots, ${first.id.slice(0, 8)}..${last.id.slice(0, 8)})`;
            const what = `${row.mode_string} ${v.user || v.uid}:${v.group || v.gid} ${v.size} bytes, mtime ${row.mtime}, fp ${v.fp ?? '-'}`;
            const diff = h.versions[0].version === v ? '' : `\n      changed: ${changes.length ? changes.join(', ') : 'ctime only'}`;
            const link = row.target === null ? '' : v.type === 'hardlink' ? ` (hardlink of ${row.target})` : ` -> ${row.target}`;
            info(g, `    ${span}\n      ${what}${link}${diff}`);
          }
        }
      });
      for (const e of errors) {
        process.stderr.write(`error: ${e.path}: ${e.message} (snapshot${e.snapshots.length === 1 ? '' : 's'} ${e.snapshots.map((x) => x.slice(0, 8)).join(', ')})\n`);
      }
      if (g.json) printJson({ matches: results, paths, errors });
      else if (!paths) info(g, 'no matches');
      return errors.length ? EXIT.PARTIAL : EXIT.OK;
    }));
}
