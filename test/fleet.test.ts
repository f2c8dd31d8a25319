// The fleet simulation of issue 15 at test size: 4 hosts (own host names, caches and trees,
// half of the content shared) snapshot concurrently in rounds into one real s3rver while a
// pruner runs `forget --prune` in a loop; random hosts and the pruner are SIGKILLed partway.
// Afterwards, and after one more prune once the grace period passed, `check --read-data` must
// pass and every kept snapshot, restored on a fresh machine (its host's trees imported on
// demand), must equal the tree it was taken of, byte for byte.
// The bench itself (bench/fleet.mjs) does the work, so the bench cannot rot either.
import { describe, it, expect } from 'vitest';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { ROOT, tmpDir } from './helpers.js';
import { s3rverBin } from './support/s3server.js';

/** Runs the bench without blocking the test worker (a synchronous spawn starves vitest's RPC). */
function runBench(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.join(ROOT, 'bench', 'fleet.mjs'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('a fleet in one bucket (issue 15)', () => {
  it('4 hosts snapshot while a pruner prunes, with SIGKILLs: no lock failures, check passes, every kept snapshot restores identically', async () => {
    expect(s3rverBin(), 's3rver is not installed (npm ci)').not.toBeNull();
    const dir = tmpDir('snapfill-fleet-');
    const r = await runBench([
      '--hosts',
      '4',
      '--rounds',
      '3',
      '--files',
      '12',
      '--grace',
      '2s',
      '--kill',
      '--no-freeze',
      '--json',
      '--dir',
      dir,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    const [res] = out.results;
    const why = `${r.stdout}\n${r.stderr}`;
    expect(res.snapshots, why).toBe(12);
    expect(res.snapshots_lock_failed + res.snapshots_lock_waited, why).toBe(0);
    expect(res.snapshots_failed_other, why).toBe(0);
    expect(res.prunes_locked, why).toBe(0);
    expect(res.prunes_failed_other, why).toBe(0);
    expect(res.check_read_data, why).toBe('pass');
    expect(res.restore_failures, why).toEqual([]);
    expect(res.kept_snapshots, why).toBeGreaterThan(0);
    expect(res.restored_identical, why).toBe(res.kept_snapshots);
    // The checks above ran after a prune past the grace period (its delete phase): what it
    // deleted was garbage, and shared content is never stored more often afterwards.
    expect(res.errors, why).toEqual([]);
    expect(res.settled_copies, why).toBeLessThanOrEqual(res.shared_copies + 1e-9);
  }, 900_000);
});
