import type { Command } from 'commander';
import { action, storeOpts } from './action.js';
import { info, printJson } from './output.js';
import { openStore } from '../store/open.js';
import { resolveRepoLocation } from '../config/location.js';
import { Repository } from '../repo/repository.js';
import { isStale, listLocks, removeStaleLocks } from '../repo/lock.js';

export function register(program: Command): void {
  program.command('unlock')
    .description('remove stale repository locks (left by processes that died); live locks are listed, never removed')
    .action(action(async (g) => {
      const opts = storeOpts(g);
      const store = await openStore(resolveRepoLocation(opts.repo).location, opts);
      try {
        await Repository.open(store); // fail clearly when there is no repository here
        const removed = await removeStaleLocks(store);
        const live = (await listLocks(store)).filter((l) => !isStale(l));
        if (g.json) printJson({ removed, live });
        else {
          info(g, `${removed} stale lock${removed === 1 ? '' : 's'} removed`);
          for (const l of live) info(g, `live: ${l.operation} (${l.exclusive ? 'exclusive' : 'shared'}) host ${l.host} pid ${l.pid}, refreshed ${l.refreshed}`);
        }
      } finally {
        await store.close?.();
      }
    }));
}
