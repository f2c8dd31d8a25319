import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { humanBytes, info, printJson } from './output.js';
import { repoStats } from '../api/index.js';

export function register(program: Command): void {
  program
    .command('stats')
    .description('repository size, dedup and catalog size')
    .action(
      action(async (g) => {
        const st = await withSession(g, { readOnly: true }, async (s) => repoStats(s));
        if (g.json) {
          printJson(st);
          return;
        }
        info(g, `snapshots: ${st.snapshots}`);
        info(g, `packs: ${st.packs} (${humanBytes(st.pack_bytes)}), blobs: ${st.blobs}`);
        info(
          g,
          `metadata: index ${humanBytes(st.index_bytes)}, snapshot records ${humanBytes(st.snapshot_bytes)}, local catalog ${humanBytes(st.catalog_bytes)}`,
        );
        if (st.latest) {
          info(
            g,
            `latest snapshot ${st.latest.id.slice(0, 8)}: ${st.latest.files} files, ${humanBytes(st.latest.bytes)} (dedup ratio ${(st.latest.bytes / Math.max(1, st.pack_bytes)).toFixed(2)}x)`,
          );
        }
      }),
    );
}
