import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { humanBytes, info, printJson } from './output.js';
import { repoStats } from '../api/repository.js';

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
        if (st.latest) info(g, `latest snapshot ${st.latest.id.slice(0, 8)}: ${st.latest.files} files, ${humanBytes(st.latest.bytes)}`);
        info(
          g,
          `dedup: ${st.snapshots} snapshots hold ${humanBytes(st.logical_bytes)} of files, stored in ${humanBytes(st.stored_bytes)}` +
            ` (ratio ${formatRatio(st.dedup_ratio)})`,
        );
      }),
    );
}

/**
 * Two decimals, but never "0.00x": a repository of a few tiny files stores more (trees, pack
 * headers) than its files hold, and that ratio is shown with the digits that carry it.
 */
export function formatRatio(r: number | null): string {
  if (r === null) return 'n/a, nothing stored yet';
  if (r === 0) return '0x';
  return `${r >= 0.995 ? r.toFixed(2) : r.toPrecision(2)}x`;
}
