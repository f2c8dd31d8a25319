import type { Command } from 'commander';

export interface GlobalOpts {
  repo?: string;
  catalog?: string;
  /** The config file (run, schedule, forget). */
  config?: string;
  json?: boolean;
  quiet?: boolean;
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  objectLockDays?: number;
}

export function globals(cmd: Command): GlobalOpts {
  return cmd.optsWithGlobals<GlobalOpts>();
}

/** Exit codes: 0 ok, 1 failure, 3 finished but some paths had errors, 4 another run holds the lock. */
export const EXIT = { OK: 0, FAIL: 1, USAGE: 2, PARTIAL: 3, LOCKED: 4 } as const;

export function printJson(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
}

/** Human messages go to stderr when --json owns stdout. */
export function info(g: GlobalOpts, msg: string): void {
  if (g.quiet) return;
  (g.json ? process.stderr : process.stdout).write(msg + '\n');
}

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
