import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { info, printJson } from './output.js';
import { resolveSnapshot } from '../catalog/resolve.js';
import { diffSnapshots } from '../query/diff.js';

export function register(program: Command): void {
  program.command('diff')
    .description('compare two snapshots: added, removed, changed content, metadata-only changes')
    .argument('<snap-a>').argument('<snap-b>')
    .action(action(async (g, [a, b]) => {
      await withSession(g, { readOnly: true }, async (s) => {
        const sa = resolveSnapshot(s.catalog, a);
        const sb = resolveSnapshot(s.catalog, b);
        const mark = { added: '+', removed: '-', changed: 'M', metadata: 'U' } as const;
        const res = diffSnapshots(s.catalog, sa, sb, g.json ? undefined : (kind, p) => info(g, `${mark[kind]}  ${p}`));
        if (g.json) printJson({ snapshot_a: sa.id, snapshot_b: sb.id, ...res });
        else info(g, `\n${res.counts.added} added, ${res.counts.removed} removed, ${res.counts.changed} changed, ${res.counts.metadata} metadata-only`);
      });
    }));
}
