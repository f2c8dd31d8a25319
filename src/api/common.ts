/**
 * The small helpers every front end needs (path display, the errors it names, the config's
 * place, the idle-priority re-exec), apart from the operations: a command imports these and
 * its own operation's module, so it loads only its own part of the program (issue 17: a
 * `restore` or `verify` started ~70 ms sooner when it stopped loading every other command).
 */
export { display, fromUser, normalizeAbs, basename, type RawPath } from '../util/rawpath.js';
export { OptionError, type OptionNamer } from '../util/errors.js';
export { LockBusyError } from '../util/pidlock.js';
export { RepoLockedError } from '../repo/lock.js';
export { configPath, loadConfig } from '../config/config.js';
export { throttleHooks, reexecAtIdlePriority, type ThrottleSettings } from '../util/throttle.js';
