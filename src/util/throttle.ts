import * as fs from 'node:fs';
import * as os from 'node:os';
import { spawn } from 'node:child_process';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A token bucket: `take(n)` resolves once `n` bytes fit under `bytesPerSec`. A request larger
 * than the bucket is allowed and puts the bucket into debt, so callers that move data in big
 * chunks (8 MiB reads, 16 MiB packs) still average exactly the configured rate. Concurrent
 * callers share the debt, so two parallel uploads together stay under the limit.
 *
 * The bucket starts empty (no burst at the start of a run) and holds up to one second of
 * tokens (as restic's limiter does): time the caller spends hashing, packing or descheduled
 * on a busy machine is credited, up to a second, so the long-run rate stays at the limit
 * instead of falling below it by every stall.
 */
export class TokenBucket {
  private tokens = 0;
  private last = Date.now();
  /** Total time spent waiting, for reports. */
  waitedMs = 0;
  /** Bytes let through (every `take`). */
  takenBytes = 0;
  /** Tokens earned by elapsed time (capped at the burst): the time the bucket credited, in bytes. */
  creditedBytes = 0;

  constructor(
    readonly bytesPerSec: number,
    readonly burstBytes = Math.max(64 * 1024, bytesPerSec),
  ) {
    if (!(bytesPerSec > 0)) throw new Error(`throttle rate must be positive, got ${bytesPerSec}`);
  }

  async take(n: number): Promise<void> {
    const now = Date.now();
    const earned = Math.max(0, Math.min(this.burstBytes - this.tokens, ((now - this.last) / 1000) * this.bytesPerSec));
    this.creditedBytes += earned;
    this.tokens += earned;
    this.last = now;
    this.tokens -= n;
    this.takenBytes += n;
    if (this.tokens >= 0) return;
    // The debt is paid by sleeping; the next take credits the slept time back as tokens.
    const waitMs = (-this.tokens / this.bytesPerSec) * 1000;
    this.waitedMs += waitMs;
    await sleep(waitMs);
  }
}

/** MB/s as the CLI and config speak it (10^6 bytes, like disk and network tools) to bytes/s. */
export function mbpsToBytes(mbps: number): number {
  return mbps * 1_000_000;
}

/**
 * Pauses while the 1-minute load average is above `maxLoad`, so a backup yields to a busy
 * production server. Checked at most every `checkEveryMs`, so the hot path stays cheap.
 */
export class LoadGate {
  private lastCheck = 0;
  waitedMs = 0;

  constructor(
    readonly maxLoad: number,
    private readonly log: (msg: string) => void,
    private readonly opts: { checkEveryMs?: number; pollMs?: number; loadavg?: () => number } = {},
  ) {
    if (!(maxLoad > 0)) throw new Error(`max load must be positive, got ${maxLoad}`);
  }

  private load(): number {
    return this.opts.loadavg ? this.opts.loadavg() : os.loadavg()[0];
  }

  async wait(): Promise<void> {
    const now = Date.now();
    if (now - this.lastCheck < (this.opts.checkEveryMs ?? 2000)) return;
    this.lastCheck = now;
    let load = this.load();
    if (load <= this.maxLoad) return;
    const started = Date.now();
    this.log(`load average ${load.toFixed(2)} is above --max-load ${this.maxLoad}: waiting`);
    while (load > this.maxLoad) {
      await sleep(this.opts.pollMs ?? 10_000);
      load = this.load();
    }
    const waited = Date.now() - started;
    this.waitedMs += waited;
    this.lastCheck = Date.now();
    this.log(`load average ${load.toFixed(2)} is back under ${this.maxLoad} after ${(waited / 1000).toFixed(0)}s: continuing`);
  }
}

export interface ThrottleSettings {
  /** Source read limit in MB/s (10^6 bytes). */
  limitReadMBps?: number;
  /** Repository write limit in MB/s. */
  limitUploadMBps?: number;
  maxLoad?: number;
  ioPriority?: 'idle' | 'normal';
}

/**
 * What a throttle did, by its own accounting (not the wall clock, which a loaded machine
 * stretches): the time it spent waiting, the bytes it let through, and `*_paced_s`, the time
 * those bytes were paid for (waits plus elapsed time credited as tokens). A limiter that works
 * has paced_s >= (bytes - burst) / rate, however busy the machine was.
 */
export interface ThrottleStats {
  read_wait_s: number;
  upload_wait_s: number;
  load_wait_s: number;
  read_bytes: number;
  upload_bytes: number;
  read_paced_s: number;
  upload_paced_s: number;
}

function pacedSeconds(b: TokenBucket): number {
  return b.waitedMs / 1000 + b.creditedBytes / b.bytesPerSec;
}

/** The two Snapshotter hooks built from throttle settings. */
export function throttleHooks(
  t: ThrottleSettings,
  log: (msg: string) => void,
): {
  onRead?: (bytes: number) => Promise<void>;
  onUpload?: (bytes: number) => Promise<void>;
  stats: () => ThrottleStats;
} {
  const read = t.limitReadMBps ? new TokenBucket(mbpsToBytes(t.limitReadMBps)) : null;
  const upload = t.limitUploadMBps ? new TokenBucket(mbpsToBytes(t.limitUploadMBps)) : null;
  const gate = t.maxLoad ? new LoadGate(t.maxLoad, log) : null;
  const onRead =
    read || gate
      ? async (n: number) => {
          if (gate) await gate.wait();
          if (read) await read.take(n);
        }
      : undefined;
  const onUpload =
    upload || gate
      ? async (n: number) => {
          if (gate) await gate.wait();
          if (upload) await upload.take(n);
        }
      : undefined;
  return {
    onRead,
    onUpload,
    stats: () => ({
      read_wait_s: (read?.waitedMs ?? 0) / 1000,
      upload_wait_s: (upload?.waitedMs ?? 0) / 1000,
      load_wait_s: (gate?.waitedMs ?? 0) / 1000,
      read_bytes: read?.takenBytes ?? 0,
      upload_bytes: upload?.takenBytes ?? 0,
      read_paced_s: read ? pacedSeconds(read) : 0,
      upload_paced_s: upload ? pacedSeconds(upload) : 0,
    }),
  };
}

export const IOPRIO_ENV = 'SNAPFILL_IO_PRIORITY_APPLIED';

/**
 * Runs this process at idle IO priority and nice 19.
 *
 * Why a re-exec: Linux sets IO priority (ioprio_set) and nice (setpriority) per thread. Node
 * cannot call ioprio_set without a native addon, and os.setPriority()/`ionice -p <pid>` only
 * change the main thread, not libuv's worker threads that already exist. Starting a fresh
 * process under `ionice -c3 nice -n19` makes every thread inherit both. The marker variable
 * stops the child from re-executing again. Returns the child's exit code, or null when the
 * caller should just go on in this process (already applied, or the tools are missing, in
 * which case it falls back to os.setPriority on the main thread and says so).
 */
export async function reexecAtIdlePriority(log: (msg: string) => void): Promise<number | null> {
  if (process.env[IOPRIO_ENV]) return null;
  if (!hasTool('ionice') || !hasTool('nice')) {
    try {
      os.setPriority(19);
    } catch {
      /* not permitted: keep going at normal priority */
    }
    log('ionice/nice not found: only the CPU priority of the main thread was lowered (IO priority unchanged)');
    return null;
  }
  const child = spawn('ionice', ['-c3', 'nice', '-n19', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, [IOPRIO_ENV]: '1' },
  });
  const forward = (sig: NodeJS.Signals) => () => {
    child.kill(sig);
  };
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((s) => [s, forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      for (const [s, h] of handlers) process.off(s, h);
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 1) : 1));
    });
  });
}

function hasTool(name: string): boolean {
  const dirs = (process.env.PATH ?? '/usr/bin:/bin').split(':');
  for (const d of dirs) {
    try {
      if (fs.statSync(`${d}/${name}`).isFile()) return true;
    } catch {
      /* not here */
    }
  }
  return false;
}
