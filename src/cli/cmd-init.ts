import type { Command } from 'commander';
import { action, storeOpts } from './action.js';
import { info, printJson } from './output.js';
import { initRepository } from '../api/index.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('create a new, empty repository at --repo (a directory or s3://bucket/prefix)')
    .action(
      action(async (g) => {
        const repo = await initRepository(storeOpts(g));
        if (g.json) printJson({ repository: repo.store.location, id: repo.config.id });
        else info(g, `created snapfill repository ${repo.config.id.slice(0, 8)} at ${repo.store.location}`);
      }),
    );
}
