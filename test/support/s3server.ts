import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT, BIN, TEST_PASSWORD, type CliResult } from '../helpers.js';

/** The credentials s3rver accepts; the SDK picks them up from the environment (its default chain). */
export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

export interface S3Server {
  host: string;
  port: number;
  url: string;
  dir: string;
  stop(): Promise<void>;
}

/** Where s3rver is, or null (then S3 tests skip with a printed reason). */
export function s3rverBin(): string | null {
  const p = path.join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js');
  return fs.existsSync(p) ? p : null;
}

/** Starts a real s3rver process on 127.0.0.1 on a free port, with the given buckets. */
export async function startS3rver(dir: string, buckets: string[]): Promise<S3Server> {
  const bin = s3rverBin();
  if (!bin) throw new Error('s3rver is not installed');
  fs.mkdirSync(dir, { recursive: true });
  // s3rver encrypts list continuation tokens with DES, which OpenSSL 3 only has in its legacy
  // provider: without this flag every listing longer than one page fails with a 500.
  const args = ['--openssl-legacy-provider', bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '--no-vhost-buckets'];
  for (const b of buckets) args.push('--configure-bucket', b);
  const child: ChildProcess = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${out}`)), 20_000);
    const onData = (c: Buffer) => {
      out += c.toString();
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}: ${out}`)));
  });
  // Keep draining its request log so the pipe never fills and blocks the server.
  child.stdout!.resume();
  child.stderr!.resume();
  const kill = () => {
    try {
      child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  };
  process.once('exit', kill);
  return {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Runs the real executable without blocking the event loop (the fault proxy lives in the test
 * process, so a synchronous spawn would stall every request it should forward).
 */
export function cliAsync(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('close', (code) => {
      let json: any = null;
      if (args.includes('--json')) {
        try {
          json = JSON.parse(stdout.trim().split('\n').pop() ?? '');
        } catch {
          json = null;
        }
      }
      resolve({ code: code ?? -1, stdout, stderr, json });
    });
  });
}

/** Environment for a CLI run against an S3 repository behind `endpoint`, with its own catalog cache. */
export function s3Env(endpoint: string, repo: string, cache: string, extra: Record<string, string> = {}): Record<string, string> {
  // Encrypted by default, as every test repository (test/helpers.ts repoEnv).
  const pw = `${cache}.password`;
  if (!fs.existsSync(pw)) {
    fs.mkdirSync(path.dirname(pw), { recursive: true });
    fs.writeFileSync(pw, TEST_PASSWORD + '\n', { mode: 0o600 });
  }
  return {
    ...S3_CREDENTIALS,
    SNAPFILL_PASSWORD_FILE: pw,
    SNAPFILL_INSECURE_TEST_KDF: '1',
    SNAPFILL_REPO: repo,
    SNAPFILL_CACHE: cache,
    SNAPFILL_S3_ENDPOINT: endpoint,
    // fast retries keep fault tests short; the policy itself is the same
    SNAPFILL_S3_RETRY_BASE_MS: '20',
    SNAPFILL_S3_RETRY_MAX_MS: '500',
    SNAPFILL_S3_RETRIES: '12',
    SNAPFILL_S3_TIMEOUT_MS: '5000',
    ...extra,
  };
}
