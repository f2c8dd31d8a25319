import type { Command } from 'commander';
import { action, storeOpts } from './action.js';
import { info, printJson } from './output.js';
import { unlockRepository } from '../api/repository.js';

export function register(program: Command): void {
  program
    .command('unlock')
    .description('remove stale repository locks (left by processes that died); live locks are listed, never removed')
    .action(
      action(async (g) => {
        const { removed, live } = await unlockRepository(storeOpts(g));
        if (g.json) printJson({ removed, live });
        else {
          info(g, `${removed} stale lock${removed === 1 ? '' : 's'} removed`);
          for (const l of live)
            info(g, `live: ${l.operation} (${l.exclusive ? 'exclusive' : 'shared'}) host ${l.host} pid ${l.pid}, refreshed ${l.refreshed}`);
        }
      }),
    );
}
