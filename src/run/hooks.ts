import { spawn } from 'node:child_process';

export interface HookResult {
  phase: 'pre' | 'post';
  command: string;
  exit_code: number | null;
  signal: string | null;
  duration_s: number;
  timed_out: boolean;
}

/**
 * Runs one hook through /bin/sh with the run's variables in its environment. Its output goes
 * to our stderr (stdout belongs to --json). A hook that outlives its timeout gets SIGTERM,
 * then SIGKILL 10 s later, and counts as failed: a hung database dump must not block the
 * schedule forever.
 */
export function runHook(phase: 'pre' | 'post', command: string, env: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => process.stderr.write(d));
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    let timedOut = false;
    let killer: NodeJS.Timeout | null = null;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    }, timeoutMs);
    const done = (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timer);
      if (killer) clearTimeout(killer);
      resolve({ phase, command, exit_code: code, signal, duration_s: (Date.now() - started) / 1000, timed_out: timedOut });
    };
    child.on('error', () => done(127, null));
    child.on('close', done);
  });
}

export function hookFailed(r: HookResult): boolean {
  return r.exit_code !== 0 || r.timed_out;
}
