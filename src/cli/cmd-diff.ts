import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { info, printJson } from './output.js';
import { diff, pickForPath } from '../api/browse.js';
import { addSnapshotFilters, snapshotQuery } from './snapshot-choice.js';

export function register(program: Command): void {
  addSnapshotFilters(
    program
      .command('diff')
      .description('compare two snapshots: added, removed, changed content, metadata-only changes')
      .argument('<snap-a>', 'snapshot id, id prefix, or "latest"')
      .argument('<snap-b>', 'snapshot id, id prefix, or "latest"'),
  ).action(
    action(async (g, [a, b, opts]) => {
      await withSession(g, { readOnly: true }, async (s) => {
        const mark = { added: '+', removed: '-', changed: 'M', metadata: 'U' } as const;
        const d = diff(
          s,
          await pickForPath(s, snapshotQuery(g, a, opts), ''),
          await pickForPath(s, snapshotQuery(g, b, opts), ''),
          g.json ? undefined : (kind, p) => info(g, `${mark[kind]}  ${p}`),
        );
        const res = d.result;
        if (g.json) printJson({ snapshot_a: d.a.id, snapshot_b: d.b.id, ...res });
        else
          info(
            g,
            `\n${res.counts.added} added, ${res.counts.removed} removed, ${res.counts.changed} changed, ${res.counts.metadata} metadata-only`,
          );
      });
    }),
  );
}
