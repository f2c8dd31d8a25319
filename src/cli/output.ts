import type { Command } from 'commander';
import { quietExit, stdoutClosed } from './stdout.js';

export interface GlobalOpts {
  repo?: string;
  catalog?: string;
  /** The config file (every command reads it). */
  config?: string;
  json?: boolean;
  quiet?: boolean;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  objectLockDays?: number;
  passwordFile?: string;
  passwordCommand?: string;
}

export function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals<GlobalOpts>();
}

/** Exit codes: 0 ok, 1 failure, 3 finished but some paths had errors, 4 another run holds the lock. */
export const EXIT = { OK: 0, FAIL: 1, USAGE: 2, PARTIAL: 3, LOCKED: 4 } as const;

/** Stdout, unless its reader went away (`| head`): then the command ends quietly (stdout.ts). */
function toStdout(text: string): void {
  if (stdoutClosed()) quietExit();
  process.stdout.write(text);
}

export function printJson(obj: unknown): void {
  toStdout(JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
}

/** Human messages go to stderr when --json owns stdout. */
export function info(g: GlobalOpts, msg: string): void {
  if (g.quiet) return;
  if (g.json) process.stderr.write(msg + '\n');
  else toStdout(msg + '\n');
}

type RetryEvent = { what: string; attempt: number; attempts: number; delayMs: number; error: Error };

/** The short reason of a failed attempt, as an operator greps for it: the errno code, else the error's name. */
function retryReason(e: Error): string {
  const x = e as Error & { code?: string; cause?: { code?: string } };
  return x.code ?? x.cause?.code ?? (x.name && x.name !== 'Error' ? x.name : e.message.split('\n')[0]);
}

/** Seconds of a backoff as said aloud: "0.3 s", "4 s". */
function delayText(ms: number): string {
  return ms < 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/**
 * Retried store requests on stderr, unless --quiet: "s3: retry 3/10 in 4 s: ECONNREFUSED
 * (GET index/...)". A long run on a flaky link then says it is retrying instead of looking hung.
 */
export function retryPrinter(g: GlobalOpts): ((ev: RetryEvent) => void) | undefined {
  if (g.quiet) return undefined;
  return (ev) =>
    process.stderr.write(`s3: retry ${ev.attempt}/${ev.attempts - 1} in ${delayText(ev.delayMs)}: ${retryReason(ev.error)} (${ev.what})\n`);
}

/** Sizes as a person reads them, in binary units: "512 B", "4.0 KiB", "1.3 GiB". */
export function humanBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${u[i]}`;
}
