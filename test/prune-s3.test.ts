import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { requireSystem, tmpDir, write } from './helpers.js';
import { startS3rver, s3rverBin, cliAsync, s3Env, type S3Server } from './support/s3server.js';

const skip = !requireSystem('s3rver', s3rverBin() !== null, 'npm ci installs it as a devDependency');

describe.skipIf(skip)('forget and prune on S3 (real s3rver)', () => {
  let base: string;
  let server: S3Server;
  beforeAll(async () => {
    base = tmpDir('snapfill-prune-s3-');
    server = await startS3rver(path.join(base, 's3rver'), ['bkt']);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('forgets and prunes an S3 repository; the kept snapshot checks and restores', async () => {
    const src = path.join(base, 'src');
    write(path.join(src, 'keep.bin'), randomBytes(50_000));
    write(path.join(src, 'old.bin'), randomBytes(300_000));
    const env = s3Env(server.url, 's3://bkt/plain', path.join(base, 'cache-plain'));
    expect((await cliAsync(['init'], env)).code).toBe(0);
    expect((await cliAsync(['snapshot', src, '--time', '2026-10-01T00:00:00Z', '-q'], env)).code).toBe(0);
    fs.rmSync(path.join(src, 'old.bin'));
    expect((await cliAsync(['snapshot', src, '--time', '2026-11-01T00:00:00Z', '-q'], env)).code).toBe(0);
    const f = await cliAsync(['--json', 'forget', '--keep-last', '1', '--prune'], env);
    expect(f.code, f.stderr).toBe(0);
    expect(f.json.removed).toHaveLength(1);
    expect(f.json.prune.bytes_freed).toBeGreaterThan(250_000);
    const c = await cliAsync(['--json', 'check', '--read-data'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    const target = path.join(base, 'out');
    const r = await cliAsync(['--json', 'restore', 'latest', '--target', target, '--mode', 'all'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'keep.bin'))).toEqual(fs.readFileSync(path.join(src, 'keep.bin')));
    expect(fs.existsSync(path.join(target, src, 'old.bin'))).toBe(false);
  });

  it('keeps snapshots and packs still under Object Lock retention', async () => {
    const src = path.join(base, 'src-locked');
    write(path.join(src, 'a.bin'), randomBytes(100_000));
    const env = s3Env(server.url, 's3://bkt/locked', path.join(base, 'cache-locked'));
    expect((await cliAsync(['init'], env)).code).toBe(0);
    expect((await cliAsync(['--object-lock-days', '30', 'snapshot', src, '--time', '2026-10-01T00:00:00Z', '-q'], env)).code).toBe(0);
    write(path.join(src, 'a.bin'), randomBytes(100_000));
    expect((await cliAsync(['--object-lock-days', '30', 'snapshot', src, '--time', '2026-11-01T00:00:00Z', '-q'], env)).code).toBe(0);
    const f = await cliAsync(['--json', 'forget', '--keep-last', '1'], env);
    expect(f.code, f.stderr).toBe(0);
    expect(f.json.removed).toEqual([]);
    expect(f.json.retained).toHaveLength(1);
    expect(new Date(f.json.retained[0].until).getTime()).toBeGreaterThan(Date.now() + 29 * 86400_000);
    expect((await cliAsync(['--json', 'snapshots'], env)).json.snapshots).toHaveLength(2);
    const p = await cliAsync(['--json', 'prune'], env);
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.snapshots).toBe(2);
    expect(p.json.packs_deleted + p.json.packs_repacked).toBe(0);
  });
});
