import type { Command } from 'commander';
import { register as check } from './cmd-check.js';
import { register as verify } from './cmd-verify.js';

/**
 * Commands added by other modules (restore, verify, check, forget, prune, run, schedule, mount, ...).
 * One import and one list entry per command file keeps parallel work on separate commands from colliding.
 */
export const extraCommands: ((program: Command) => void)[] = [check, verify];
