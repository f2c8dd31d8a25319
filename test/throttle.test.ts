import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { TokenBucket, LoadGate, throttleHooks } from '../src/util/throttle.js';
import { ROOT, tmpDir, write, TEST_INIT } from './helpers.js';

// The snapshot test runs the built library (dist/, built by `npm test` first): the snapshotter
// may start worker threads, which need compiled JavaScript files.
const lib = async () => ({
  LocalStore: (await import(path.join(ROOT, 'dist/store/local.js'))).LocalStore,
  Repository: (await import(path.join(ROOT, 'dist/repo/repository.js'))).Repository,
  Catalog: (await import(path.join(ROOT, 'dist/catalog/catalog.js'))).Catalog,
  Snapshotter: (await import(path.join(ROOT, 'dist/snapshot/snapshotter.js'))).Snapshotter,
});

// Rates are reported here and asserted only loosely ("not faster than the limit allows");
// bench/throttle.mjs measures them against the configured limits. What is asserted is the
// bucket's own accounting: every byte let through was paid for by a wait or by elapsed time
// credited as tokens. A loaded machine only adds credited time, so it cannot fail these
// assertions (a wait of 0 is fine when the machine was slow enough to pace the reads itself).
const MB = 1_000_000;

describe('throttle', () => {
  it('a token bucket never lets more through than rate x time + burst', async () => {
    const b = new TokenBucket(2 * MB, 64 * 1024);
    const t0 = Date.now();
    for (let i = 0; i < 16; i++) await b.take(64 * 1024);
    const s = (Date.now() - t0) / 1000;
    const bytes = 16 * 64 * 1024;
    console.log(`token bucket: ${(bytes / s / MB).toFixed(2)} MB/s measured, 2 MB/s configured`);
    expect(s).toBeGreaterThanOrEqual((bytes - 64 * 1024) / (2 * MB) - 0.02);
    expect(b.takenBytes).toBe(bytes);
    // Paid for: the bucket starts empty, so waits plus credited time cover every byte (1 ms margin for rounding).
    expect(b.waitedMs / 1000 + b.creditedBytes / (2 * MB)).toBeGreaterThanOrEqual(bytes / (2 * MB) - 0.001);
    expect(b.creditedBytes).toBeLessThanOrEqual(s * 2 * MB + 64 * 1024);
  });

  it('concurrent takers share one limit, and a chunk larger than the bucket is allowed (debt)', async () => {
    const b = new TokenBucket(4 * MB, 64 * 1024);
    const t0 = Date.now();
    await Promise.all([b.take(1 * MB), b.take(1 * MB)]);
    const s = (Date.now() - t0) / 1000;
    console.log(`two parallel 1 MB takes at 4 MB/s: ${s.toFixed(3)} s`);
    expect(s).toBeGreaterThanOrEqual((2 * MB - 64 * 1024) / (4 * MB) - 0.02);
    expect(b.waitedMs).toBeGreaterThan(0);
  });

  it('pauses while the load average is above the limit, and says so', async () => {
    const loads = [9, 9, 9, 0.5];
    const logs: string[] = [];
    const g = new LoadGate(2, (m) => logs.push(m), { checkEveryMs: 0, pollMs: 10, loadavg: () => loads.shift() ?? 0.5 });
    await g.wait();
    expect(logs[0]).toBe('load average 9.00 is above --max-load 2: waiting');
    expect(logs[1]).toMatch(/^load average 0.50 is back under 2 after \d+s: continuing$/);
    expect(loads).toEqual([]);
    await g.wait(); // under the limit: returns at once, no log
    expect(logs).toHaveLength(2);
    expect(() => new LoadGate(0, () => {})).toThrow(/positive/);
  });

  it("limits a real snapshot's read and upload rates", async () => {
    const { LocalStore, Repository, Catalog, Snapshotter } = await lib();
    const base = tmpDir();
    const src = path.join(base, 'src');
    for (let i = 0; i < 8; i++) write(path.join(src, `f${i}.bin`), randomBytes(250_000));
    fs.mkdirSync(path.join(base, 'repo'));
    const run = async (limits: { limitReadMBps?: number; limitUploadMBps?: number }) => {
      const repo = await Repository.init(await freshStore(base, LocalStore), { packSize: 256 * 1024, ...TEST_INIT });
      const catalog = Catalog.open(path.join(base, `cat-${repo.config.id}.db`), repo.config.id);
      const th = throttleHooks(limits, () => {});
      const t0 = Date.now();
      const r = await new Snapshotter(repo, catalog, { paths: [src], onRead: th.onRead, onUpload: th.onUpload }).run();
      const s = (Date.now() - t0) / 1000;
      catalog.close();
      return { r, s, stats: th.stats() };
    };
    const read = await run({ limitReadMBps: 4 });
    console.log(`snapshot read: ${(read.r.bytes_read / read.s / MB).toFixed(2)} MB/s measured, 4 MB/s configured`);
    expect(read.r.bytes_read).toBe(2_000_000);
    expect(read.s).toBeGreaterThanOrEqual((2_000_000 - 400_000) / (4 * MB) - 0.02);
    // The throttle saw every byte read, and its accounting paced them at 4 MB/s (burst: 1 s of tokens).
    expect(read.stats.read_bytes).toBe(read.r.bytes_read);
    // The bucket starts empty, so every byte was paid for by a wait or credited elapsed time.
    expect(read.stats.read_paced_s).toBeGreaterThanOrEqual(read.r.bytes_read / (4 * MB) - 0.001);

    const up = await run({ limitUploadMBps: 4 });
    console.log(`snapshot upload: ${(up.r.bytes_added / up.s / MB).toFixed(2)} MB/s measured, 4 MB/s configured`);
    expect(up.s).toBeGreaterThanOrEqual((up.r.bytes_added - 400_000) / (4 * MB) - 0.02);
    expect(up.stats.upload_bytes).toBeGreaterThanOrEqual(up.r.bytes_added);
    expect(up.stats.upload_paced_s).toBeGreaterThanOrEqual(up.stats.upload_bytes / (4 * MB) - 0.001);
  });
});

let storeN = 0;
async function freshStore(base: string, LocalStore: any): Promise<unknown> {
  const dir = path.join(base, 'repo', `r${storeN++}`);
  fs.mkdirSync(dir, { recursive: true });
  return new LocalStore(dir);
}
