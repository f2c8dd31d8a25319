import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { EXIT, info, printJson, type GlobalOpts } from './output.js';
import { humanTime, modeString, timeString } from './format.js';
import { display } from '../api/common.js';
import { find, prepareFind } from '../api/find.js';
import type { FoundPath, FoundVersion } from '../api/index.js';

// The size and time parsers live in the library; re-exported for callers that knew them here.
export { parseSize, parseTime } from '../api/find.js';

function versionJson(p: FoundPath, x: FoundVersion): Record<string, unknown> {
  const v = x.version;
  return {
    path: display(p.path),
    type: v.type,
    size: v.size,
    mtime: timeString(v.mtime),
    mtime_ns: v.mtime.toString(),
    mode: v.mode & 0o7777,
    mode_string: modeString(v.type, v.mode),
    uid: v.uid,
    gid: v.gid,
    user: v.user,
    group: v.group,
    fingerprint: v.fp,
    target: v.target === null ? null : display(v.target),
    changes: x.changes,
    snapshots: x.snapshots.map((s) => ({ id: s.id, time: s.time })),
  };
}

/** Two lines per version: when (the snapshots holding it), what it was, and what changed. */
function versionText(x: FoundVersion): string {
  const { version: v, snapshots, changes } = x;
  const first = snapshots[0];
  const last = snapshots[snapshots.length - 1];
  const span =
    snapshots.length === 1
      ? `${humanTime(first.time)} (${first.id.slice(0, 8)})`
      : `${humanTime(first.time)} .. ${humanTime(last.time)} (${snapshots.length} snapshots, ${first.id.slice(0, 8)}..${last.id.slice(0, 8)})`;
  const what = `${modeString(v.type, v.mode)} ${v.user || v.uid}:${v.group || v.gid} ${v.size} bytes, mtime ${humanTime(v.mtime)}, fp ${v.fp ?? '-'}`;
  const diff = x.first ? '' : `\n      changed: ${changes.length ? changes.join(', ') : 'ctime only'}`;
  const target = v.target === null ? null : display(v.target);
  const link = target === null ? '' : v.type === 'hardlink' ? ` (hardlink of ${target})` : ` -> ${target}`;
  return `    ${span}\n      ${what}${link}${diff}`;
}

/** Prints each path as it comes (text) or collects the rows (JSON); returns how many paths matched. */
function printPaths(g: GlobalOpts, paths: Iterable<FoundPath>, rows: Record<string, unknown>[]): number {
  let n = 0;
  for (const p of paths) {
    n++;
    if (g.json) {
      for (const x of p.versions) rows.push(versionJson(p, x));
      continue;
    }
    info(g, `${display(p.path)}  (${p.versionCount} version${p.versionCount === 1 ? '' : 's'})`);
    for (const x of p.versions) info(g, versionText(x));
  }
  return n;
}

export function register(program: Command): void {
  program
    .command('find')
    .description('find a path or glob across all snapshots: each distinct version, the snapshots holding it, and what changed')
    .argument('<pattern>', 'absolute path, or a glob (a glob without "/" matches file names)')
    .option('--account <name>', "only under the account's home (<accounts-root>/<name>)")
    .option('--accounts-root <dir>', 'where accounts live', '/home')
    .option('--min-size <size>', 'only versions at least this big (e.g. 10k, 5M)')
    .option('--max-size <size>', 'only versions at most this big')
    .option('--newer <time>', 'only versions modified after this time (ISO date/time, or an age like 7d, 12h)')
    .option('--older <time>', 'only versions modified before this time')
    .option('--type <type>', 'only entries of this type: file, dir, symlink (hardlinks count as file)')
    .addHelpText(
      'after',
      `
Examples:
  snapfill find /home/alice/public_html/wp-config.php      # every version, and how they differ
  snapfill find '*.eml' --account alice --newer 2026-11-17 --older 2026-11-18
  snapfill find '/home/*/public_html/*.php' --min-size 1M

Exit codes: 0 done; 3 done, but some snapshots lost or refused entries where the pattern could
match (a damaged directory listing, unsafe names: named on stderr); 1 failure.`,
    )
    .action(
      action(async (g, [pattern, opts]) => {
        // Checked before the repository is opened: bad input fails first.
        const query = prepareFind({
          pattern,
          account: opts.account,
          accountsRoot: opts.accountsRoot,
          minSize: opts.minSize,
          maxSize: opts.maxSize,
          newer: opts.newer,
          older: opts.older,
          type: opts.type,
        });
        const rows: Record<string, unknown>[] = [];
        const { paths, errors } = await withSession(g, { readOnly: true }, async (s) => {
          const r = find(s, query);
          return { errors: r.damage, paths: printPaths(g, r.paths, rows) };
        });
        for (const e of errors) {
          process.stderr.write(
            `error: ${e.path}: ${e.message} (snapshot${e.snapshots.length === 1 ? '' : 's'} ${e.snapshots.map((x) => x.slice(0, 8)).join(', ')})\n`,
          );
        }
        if (g.json) printJson({ matches: rows, paths, errors });
        else if (!paths) info(g, 'no matches');
        return errors.length ? EXIT.PARTIAL : EXIT.OK;
      }),
    );
}
