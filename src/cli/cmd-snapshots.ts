import type { Command } from 'commander';
import { action, withSession } from './action.js';
import { info, printJson } from './output.js';
import { display } from '../api/common.js';
import { listSnapshots, readAllRecords } from '../api/snapshots.js';
import { humanTime } from './format.js';

export function register(program: Command): void {
  program
    .command('snapshots')
    .description('list snapshots, oldest first')
    .option('--host <name>', 'only snapshots of this host')
    .option('--tag <tag>', 'only snapshots with this tag')
    .option('--path <path>', 'only snapshots that include this source path')
    .action(
      action(async (g, [opts]) => {
        let encrypted = true;
        let version = 2;
        const list = await withSession(g, { readOnly: true }, async (s) => {
          encrypted = s.repo.encrypted;
          version = s.repo.config.version;
          await readAllRecords(s);
          return listSnapshots(s, { host: opts.host, tag: opts.tag, path: opts.path });
        });
        // Said on stderr: stdout stays the list a script parses.
        if (!encrypted && !g.quiet)
          process.stderr.write(
            `note: this repository (format ${version}) is NOT encrypted: anyone who can read the store reads the backups\n`,
          );
        if (g.json) {
          printJson({
            encrypted,
            format_version: version,
            snapshots: list.map((r) => ({
              id: r.id,
              short_id: r.id.slice(0, 8),
              time: r.time,
              host: r.host,
              paths: r.paths.map(display),
              tags: r.tags,
              parent: r.parent,
              summary: r.record.summary ?? {},
            })),
          });
          return;
        }
        if (!list.length) {
          info(g, 'no snapshots');
          return;
        }
        info(g, `${'ID'.padEnd(10)}${'Time'.padEnd(28)}${'Host'.padEnd(16)}${'Tags'.padEnd(14)}Paths`);
        for (const r of list) {
          info(
            g,
            `${r.id.slice(0, 8).padEnd(10)}${humanTime(r.time).padEnd(28)}${r.host.slice(0, 15).padEnd(16)}${r.tags.join(',').slice(0, 13).padEnd(14)}${r.paths.map(display).join(' ')}`,
          );
        }
        info(g, `${list.length} snapshots`);
      }),
    );
}
