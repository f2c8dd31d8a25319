import type { Command } from 'commander';
import { globals, printJson, retryPrinter, EXIT, type GlobalOpts } from './output.js';
import { withSession as withApiSession } from '../api/session.js';
import { LockBusyError, OptionError, RepoLockedError } from '../api/common.js';
import type { OpenOptions, Session } from '../api/index.js';

export function storeOpts(g: GlobalOpts): OpenOptions {
  return {
    config: g.config,
    repo: g.repo,
    catalog: g.catalog,
    s3Endpoint: g.s3Endpoint,
    s3Region: g.s3Region,
    s3PathStyle: g.s3PathStyle,
    objectLockDays: g.objectLockDays,
    passwordFile: g.passwordFile,
    passwordCommand: g.passwordCommand,
    onRetry: retryPrinter(g),
  };
}

/** Progress for stderr, unless --quiet. */
export function progressLog(g: GlobalOpts): ((msg: string) => void) | undefined {
  return g.quiet ? undefined : (m) => process.stderr.write(m + '\n');
}

export async function withSession<T>(g: GlobalOpts, extra: Partial<OpenOptions>, fn: (s: Session) => Promise<T>): Promise<T> {
  return withApiSession({ ...storeOpts(g), ...extra, onProgress: progressLog(g) }, fn);
}

/** The library names options as a program passes them (`accountsRoot`); the CLI prints the flag (`--accounts-root`). */
export function flagName(option: string): string {
  return '--' + option.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** An error's message as the CLI says it: options the library named become flags. */
export function cliMessage(e: unknown): string {
  return e instanceof OptionError ? e.messageFor(flagName) : (e as Error).message;
}

/**
 * Wraps a command's action: any thrown error becomes one clear line on stderr (and a JSON
 * object with --json) and a non-zero exit code. The action returns its exit code.
 */
export function action(fn: (g: GlobalOpts, args: any[], cmd: Command) => Promise<number | void>) {
  return async (...args: any[]) => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    try {
      rejectEmptyGlobals(g);
      const code = (await fn(g, args.slice(0, -1), cmd)) ?? EXIT.OK;
      process.exitCode = code;
    } catch (e) {
      const err = e as Error;
      const message = cliMessage(e);
      // Exit 4: another process holds a lock (a run still going, a prune): not a failure of this one.
      const code = e instanceof LockBusyError || e instanceof RepoLockedError ? EXIT.LOCKED : EXIT.FAIL;
      if (g.json) printJson({ error: message, errors: [{ path: '', message }] });
      process.stderr.write(`snapfill: ${message}\n`);
      if (process.env.SNAPFILL_DEBUG && err.stack) process.stderr.write(err.stack + '\n');
      process.exitCode = code;
    }
  };
}

/**
 * `--repo "$UNSET_VAR"` must fail before anything runs, naming the option, instead of falling
 * back to SNAPFILL_REPO or the default repository (and creating it on a first snapshot).
 */
function rejectEmptyGlobals(g: GlobalOpts): void {
  const given: [string, string | undefined, string][] = [
    ['--repo', g.repo, 'a directory or s3://bucket/prefix'],
    ['--catalog', g.catalog, 'a file'],
    ['--config', g.config, 'a file'],
    ['--password-file', g.passwordFile, 'a file'],
  ];
  for (const [flag, value, what] of given) {
    if (value !== undefined && !value.trim()) throw new Error(`${flag} is empty: give ${what}, or leave the option out`);
  }
}

export function collect(value: string, prev: string[] = []): string[] {
  return [...prev, value];
}

/** A commander parser for options that take a positive number (MB/s, load average). */
export function positiveNumber(flag: string) {
  return (v: string) => {
    const n = Number(v);
    if (!(n > 0)) throw new Error(`${flag}: expected a positive number, got "${v}"`);
    return n;
  };
}

/** Worker thread counts: a whole number 1..64. */
export function checkThreads(threads: number | undefined): void {
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > 64)) {
    throw new Error('--threads must be an integer between 1 and 64');
  }
}
