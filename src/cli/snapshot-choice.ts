import type { Command } from 'commander';
import { display } from '../api/common.js';
import type { ChosenSnapshot, SnapshotQuery, SnapshotRow } from '../api/index.js';
import { humanTime } from './format.js';
import type { GlobalOpts } from './output.js';

/** The flags that narrow `latest` (and id prefixes), shared by every command that takes a snapshot. */
export function addSnapshotFilters(cmd: Command): Command {
  return cmd
    .option('--host <name>', 'with "latest": only snapshots of this host')
    .option('--path <path>', 'with "latest": only snapshots whose source paths include this path')
    .option('--tag <tag>', 'with "latest": only snapshots carrying this tag')
    .addHelpText(
      'after',
      `
"latest" is the newest snapshot of the group (host + source paths) that holds the paths asked
for, narrowed by --host, --path and --tag; when several groups hold them, the newest of those,
and the choice is named on stderr.`,
    );
}

/** `1a2b3c4d of 2026-01-10 03:00:00 +01:00 (host web1, paths /home)`. */
export function describeSnapshot(r: SnapshotRow): string {
  return `${r.id.slice(0, 8)} of ${humanTime(r.time)} (host ${r.host}, paths ${r.paths.map(display).join(' ')})`;
}

/** When `latest` chose between groups: which one it took, and the others. Always said: it is a choice made for the user. */
function sayGroups(c: ChosenSnapshot): void {
  if (c.groups.length < 2) return;
  const held = c.paths.length ? c.paths.map(display).join(' ') : 'the snapshots';
  const others = c.groups.slice(1).map((gr) => `  ${describeSnapshot(gr.newest)}`);
  process.stderr.write(
    `note: latest: ${c.groups.length} groups of snapshots (host + source paths) hold ${held}; ` +
      `using the newest, ${describeSnapshot(c.snapshot)}. Also holding them:\n${others.join('\n')}\n` +
      `(choose with --host, --path or --tag, or give a snapshot id)\n`,
  );
}

/**
 * The snapshot a command names, with its filters. `announce` (restore: before it acts) prints
 * the snapshot used on stderr, never on the JSON stdout.
 */
export function snapshotQuery(
  g: GlobalOpts,
  ref: string,
  opts: { host?: string; path?: string; tag?: string },
  announce = false,
): SnapshotQuery {
  return {
    ref,
    host: opts.host,
    path: opts.path,
    tag: opts.tag,
    onChosen: (c) => {
      sayGroups(c);
      if (announce && !g.quiet) process.stderr.write(`using snapshot ${describeSnapshot(c.snapshot)}\n`);
    },
  };
}
