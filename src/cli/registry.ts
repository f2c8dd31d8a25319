import type { Command } from 'commander';
import { register as restore } from './cmd-restore.js';
import { register as check } from './cmd-check.js';
import { register as verify } from './cmd-verify.js';
import { register as mount } from './cmd-mount.js';
import { register as cat } from './cmd-cat.js';
import { register as dump } from './cmd-dump.js';
import { register as forget } from './cmd-forget.js';
import { register as prune } from './cmd-prune.js';
import { register as run } from './cmd-run.js';
import { register as schedule } from './cmd-schedule.js';
import { register as unlock } from './cmd-unlock.js';
import { register as config } from './cmd-config.js';
import { register as version } from './cmd-version.js';
import { register as completion } from './cmd-completion.js';
import { register as key } from './cmd-key.js';
import { register as copy } from './cmd-copy.js';
import { register as serve } from './cmd-serve.js';

/**
 * Commands added by other modules (restore, verify, check, forget, prune, run, schedule, mount, ...).
 * One import and one list entry per command file keeps parallel work on separate commands from colliding.
 */
export const extraCommands: ((program: Command) => void)[] = [
  restore,
  check,
  verify,
  mount,
  cat,
  dump,
  forget,
  prune,
  run,
  schedule,
  unlock,
  version,
  completion,
  config,
  serve,
  key,
  copy,
];
