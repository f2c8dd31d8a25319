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
 * to our stderr (stdout belongs to --json). A hook that outlives its timeout gets SIGTERM
 * (its whole process group), then SIGKILL 10 s later, and counts as failed: a hung database dump must not block the
 * schedule forever.
 */
export function runHook(phase: 'pre' | 'post', command: string, env: Record<string, string>, timeoutMs: number): Promise<HookResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    // Own process group, so a timeout stops the hook's children too (a shell's `sleep` or
    // `mysqldump` would otherwise keep running and hold our pipes open).
    const child = spawn('/bin/sh', ['-c', command], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const killGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        child.kill(sig);
      }
    };
    child.stdout.on('data', (d: Buffer) => process.stderr.write(d));
    child.stderr.on('data', (d: Buffer) => process.stderr.write(d));
    let timedOut = false;
    let killer: NodeJS.Timeout | null = null;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup('SIGTERM');
      killer = setTimeout(() => killGroup('SIGKILL'), 10_000);
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
