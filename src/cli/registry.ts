import type { Command } from 'commander';

/** A command file: it adds its command (and subcommands) to the program. */
export interface CommandModule {
  register(program: Command): void;
}

export interface CommandEntry {
  /** The command's name and aliases, as typed. */
  names: readonly string[];
  load: () => Promise<CommandModule>;
  /** It reads the other commands' definitions (completion): every command is loaded with it. */
  needsAll?: boolean;
}

/**
 * Every command, in the order `--help` lists them, loaded on demand: a run loads the one file
 * it names and what that imports (issue 17: ~70 ms less start-up for a restore or a verify than
 * loading every command). One entry per command file keeps parallel work on separate commands
 * from colliding.
 */
export const COMMANDS: readonly CommandEntry[] = [
  { names: ['init'], load: () => import('./cmd-init.js') },
  { names: ['snapshot', 'backup'], load: () => import('./cmd-snapshot.js') },
  { names: ['snapshots'], load: () => import('./cmd-snapshots.js') },
  { names: ['ls'], load: () => import('./cmd-ls.js') },
  { names: ['find'], load: () => import('./cmd-find.js') },
  { names: ['diff'], load: () => import('./cmd-diff.js') },
  { names: ['stats'], load: () => import('./cmd-stats.js') },
  { names: ['catalog'], load: () => import('./cmd-catalog.js') },
  { names: ['restore'], load: () => import('./cmd-restore.js') },
  { names: ['check'], load: () => import('./cmd-check.js') },
  { names: ['verify'], load: () => import('./cmd-verify.js') },
  { names: ['mount'], load: () => import('./cmd-mount.js') },
  { names: ['cat'], load: () => import('./cmd-cat.js') },
  { names: ['dump'], load: () => import('./cmd-dump.js') },
  { names: ['forget'], load: () => import('./cmd-forget.js') },
  { names: ['prune'], load: () => import('./cmd-prune.js') },
  { names: ['run'], load: () => import('./cmd-run.js') },
  { names: ['schedule'], load: () => import('./cmd-schedule.js') },
  { names: ['unlock'], load: () => import('./cmd-unlock.js') },
  { names: ['version'], load: () => import('./cmd-version.js') },
  { names: ['completion'], load: () => import('./cmd-completion.js'), needsAll: true },
  { names: ['config', 'doctor'], load: () => import('./cmd-config.js') },
  { names: ['serve'], load: () => import('./cmd-serve.js') },
  { names: ['key'], load: () => import('./cmd-key.js') },
  { names: ['copy'], load: () => import('./cmd-copy.js') },
];
