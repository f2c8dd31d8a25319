import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { OptionError } from '../util/errors.js';

/**
 * Where the repository password comes from, strongest first: --password-file,
 * SNAPFILL_PASSWORD_FILE, --password-command, the config file's "password_file", an
 * default password file (written when the first snapshot creates the default repository), an
 * interactive prompt on a terminal. Never a plain flag: a flag's value is visible to every
 * user in `ps` and lands in shell history.
 */
export interface PasswordOptions {
  passwordFile?: string;
  passwordCommand?: string;
}

/** Reads the password when called; `from` says where it comes from (a wrong password names it). */
export type PasswordGetter = (() => Promise<string>) & { readonly from?: string };

function getter(from: string, read: () => Promise<string>): PasswordGetter {
  return Object.assign(read, { from });
}

/** The first line of a password file, without its line end; empty is an error. */
export function readPasswordFile(file: string, from: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(`cannot read the password file ${file} (from ${from}): ${code ?? (e as Error).message}`, { cause: e });
  }
  const pw = text.split(/\r?\n/)[0];
  if (!pw) throw new Error(`the password file ${file} (from ${from}) is empty`);
  return pw;
}

function runPasswordCommand(cmd: string): string {
  let out: string;
  try {
    out = execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000 });
  } catch (e) {
    const st = (e as { status?: number }).status;
    throw new OptionError((n) => `${n('passwordCommand')} failed${st !== undefined && st !== null ? ` (exit ${st})` : ''}: ${cmd}`);
  }
  const pw = out.split(/\r?\n/)[0];
  if (!pw) throw new OptionError((n) => `${n('passwordCommand')} printed no password: ${cmd}`);
  return pw;
}

/** Reads a line from the terminal without echoing it. */
export function promptPassword(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let buf = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err: Error | null) => {
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(buf);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') buf = buf.slice(0, -1);
        else buf += ch;
      }
    };
    stdin.on('data', onData);
  });
}

function onTerminal(): boolean {
  return !!process.stdin.isTTY && !!process.stderr.isTTY;
}

/**
 * The password source the options, environment and config file name (undefined: none, and
 * not on a terminal). Nothing is read until the getter is called: a repository that is not
 * encrypted never asks.
 */
export function passwordSource(
  opts: PasswordOptions,
  configPasswordFile?: string,
  env: NodeJS.ProcessEnv = process.env,
): PasswordGetter | undefined {
  if (opts.passwordFile !== undefined) {
    const f = opts.passwordFile;
    return getter(`--password-file ${f}`, async () => readPasswordFile(f, '--password-file'));
  }
  if (env.SNAPFILL_PASSWORD_FILE) {
    const f = env.SNAPFILL_PASSWORD_FILE;
    return getter(`SNAPFILL_PASSWORD_FILE ${f}`, async () => readPasswordFile(f, 'SNAPFILL_PASSWORD_FILE'));
  }
  if (opts.passwordCommand !== undefined) {
    const c = opts.passwordCommand;
    return getter('--password-command', async () => runPasswordCommand(c));
  }
  if (configPasswordFile)
    return getter(`the config file's password_file ${configPasswordFile}`, async () =>
      readPasswordFile(configPasswordFile, 'the config file'),
    );
  const dflt = defaultPasswordFile(env);
  if (fs.existsSync(dflt))
    return getter(`the default password file ${dflt}`, async () => readPasswordFile(dflt, 'the default password file'));
  if (onTerminal()) return getter('the terminal', () => promptPassword('repository password: '));
  return undefined;
}

/**
 * A NEW password (init, key add, key passwd): from `--new-password-file` when given, else the
 * usual sources; at a terminal prompt it is asked twice.
 */
export async function newPassword(
  opts: PasswordOptions & { newPasswordFile?: string },
  configPasswordFile?: string,
): Promise<string | undefined> {
  if (opts.newPasswordFile !== undefined) return readPasswordFile(opts.newPasswordFile, '--new-password-file');
  const src = passwordSource(opts, configPasswordFile);
  if (!src) return undefined;
  if (opts.passwordFile === undefined && !process.env.SNAPFILL_PASSWORD_FILE && opts.passwordCommand === undefined && !configPasswordFile) {
    const a = await promptPassword('new repository password: ');
    const b = await promptPassword('repeat the password: ');
    if (a !== b) throw new Error('the passwords do not match');
    if (!a) throw new Error('the password is empty');
    return a;
  }
  return src();
}

/** Where the password of the default repository lives when snapfill generated it. */
export function defaultPasswordFile(env: NodeJS.ProcessEnv = process.env): string {
  if (typeof process.getuid === 'function' && process.getuid() === 0) return '/etc/snapfill/password';
  return path.join(env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config'), 'snapfill', 'password');
}

/**
 * The default repository's generated password: a random one written to the default password
 * file (0600, directory 0700), or the one already there. `created` says whether it is new.
 */
export function ensureDefaultPassword(env: NodeJS.ProcessEnv = process.env): { password: string; file: string; created: boolean } {
  const file = defaultPasswordFile(env);
  if (fs.existsSync(file)) return { password: readPasswordFile(file, 'the default password file'), file, created: false };
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const password = randomBytes(32).toString('base64url');
  // wx: never overwrite a password another process just wrote (it may already protect a repository).
  fs.writeFileSync(file, password + '\n', { mode: 0o600, flag: 'wx' });
  return { password, file, created: true };
}
