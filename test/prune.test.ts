import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cli, describeTree, diffTrees, repoEnv, testPassword, tmpDir, write, TEST_INIT, snapshotRecordFiles } from './helpers.js';
import { LocalStore } from '../src/store/local.js';
import { Repository } from '../src/repo/repository.js';
import { RepoLock } from '../src/repo/lock.js';
import { PackWriter } from '../src/pack/packwriter.js';
import { packKey } from '../src/pack/format.js';

interface Kept {
  id: string;
  copy: string;
}

function snap(env: Record<string, string>, src: string, copies: string, time: string): Kept {
  const r = cli(['--json', 'snapshot', src, '--time', time], env);
  expect(r.code, r.stderr).toBe(0);
  const copy = path.join(copies, r.json.snapshot_id);
  execFileSync('cp', ['-a', src, copy]);
  return { id: r.json.snapshot_id, copy };
}

function restoresExactly(env: Record<string, string>, base: string, src: string, k: Kept): void {
  const target = path.join(base, 'restore-' + k.id.slice(0, 8) + '-' + randomBytes(3).toString('hex'));
  const r = cli(['--json', 'restore', k.id, '--target', target, '--mode', 'all'], env);
  expect(r.code, r.stdout.slice(0, 2000) + r.stderr).toBe(0);
  expect(r.json.errors).toEqual([]);
  const want = describeTree(k.copy);
  const got = describeTree(path.join(target, src));
  expect(diffTrees(withoutMtime(want), withoutMtime(got))).toEqual([]);
  // Node sets file times through a double: equal to within a couple of microseconds.
  for (const [p, v] of want) {
    const a = v.split(' '),
      b = got.get(p)!.split(' ');
    if (a[2] === 'f') expect(Math.abs(Number(BigInt(a[4]) - BigInt(b[4]))), `${p} mtime`).toBeLessThan(3000);
  }
}

function withoutMtime(t: Map<string, string>): Map<string, string> {
  return new Map(
    [...t].map(([k, v]) => {
      const f = v.split(' ');
      if (f[2] === 'f') f[4] = '-';
      return [k, f.join(' ')];
    }),
  );
}

function checkOk(env: Record<string, string>): void {
  const c = cli(['--json', 'check', '--read-data'], env);
  expect(c.code, c.stdout + c.stderr).toBe(0);
  expect(c.json.errors).toEqual([]);
}

/** A temp dir with a repository (created by `init` unless told not to), a source and a place for copies. */
function newRepo(init = true) {
  const base = tmpDir();
  // Grace 0 (issue 15): each prune marks and, no snapshot running, deletes in the same run.
  const env = { ...repoEnv(base), SNAPFILL_PRUNE_GRACE: '0s' };
  const src = path.join(base, 'src');
  const copies = path.join(base, 'copies');
  fs.mkdirSync(copies);
  if (init) expect(cli(['init'], env).code).toBe(0);
  return { base, env, src, copies };
}

describe('snapfill prune', () => {
  it('frees unused packs, repacks mostly-unused ones; every kept snapshot still checks and restores byte-identically', async () => {
    const { base, env, src, copies } = newRepo();
    write(path.join(src, 'a.bin'), randomBytes(40_000));
    write(path.join(src, 'b.bin'), randomBytes(200_000));
    write(path.join(src, 'c.bin'), randomBytes(200_000));
    write(path.join(src, 'dir', 'keep.txt'), 'kept all along');
    const s1 = snap(env, src, copies, '2026-09-01T03:00:00Z');
    write(path.join(src, 'b.bin'), randomBytes(150_000));
    const s2 = snap(env, src, copies, '2026-10-01T03:00:00Z');
    const cBytes = fs.readFileSync(path.join(src, 'c.bin'));
    fs.rmSync(path.join(src, 'c.bin'));
    write(path.join(src, 'dir', 'd.txt'), 'new in 3');
    const s3 = snap(env, src, copies, '2026-11-01T03:00:00Z');
    const s4 = snap(env, src, copies, '2026-11-02T03:00:00Z');

    const dry = cli(['--json', 'prune', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.json.bytes_freed).toBe(0); // everything is still in use

    const f = cli(['--json', 'forget', '--keep-last', '2'], env);
    expect(f.code, f.stderr).toBe(0);
    expect(f.json.removed.sort()).toEqual([s1.id, s2.id].sort());

    const pd = cli(['--json', 'prune', '--dry-run'], env).json;
    const p = cli(['--json', 'prune'], env);
    expect(p.code, p.stderr).toBe(0);
    const rep = p.json;
    console.log(`prune report: ${JSON.stringify(rep)}`);
    expect(rep.snapshots).toBe(2);
    // s1's data pack held a (used), b and c (unused): repacked. s2's held b' (used) and is kept.
    expect(rep.packs_repacked).toBeGreaterThanOrEqual(1);
    expect(rep.packs_written).toBeGreaterThanOrEqual(1);
    expect(rep.bytes_freed).toBeGreaterThan(350_000);
    // The dry run's estimate leaves out tar headers of the repacked blobs: close, not exact.
    expect(Math.abs(rep.bytes_freed - pd.bytes_freed)).toBeLessThan(pd.bytes_freed * 0.05);
    expect(rep.bytes_after).toBe(rep.bytes_before - rep.bytes_freed);
    checkOk(env);
    for (const k of [s3, s4]) restoresExactly(env, base, src, k);

    // A second prune finds nothing to do.
    expect(cli(['--json', 'prune'], env).json.bytes_freed).toBe(0);

    // Content whose blob was pruned comes back in a new snapshot: it must be stored again, not
    // deduplicated against the deleted copy.
    write(path.join(src, 'c.bin'), cBytes);
    const s5 = snap(env, src, copies, '2026-11-03T03:00:00Z');
    checkOk(env);
    restoresExactly(env, base, src, s5);

    // The same holds with a fresh catalog rebuilt from the repository alone.
    const env2 = { ...env, SNAPFILL_CACHE: path.join(base, 'cache2') };
    checkOk(env2);
    restoresExactly(env2, base, src, s3);
  });

  it('finishes an interrupted prune: orphan packs and duplicated blobs are cleaned up', async () => {
    const { base, env, src, copies } = newRepo();
    for (let i = 0; i < 4; i++) write(path.join(src, `f${i}.bin`), randomBytes(30_000));
    const s1 = snap(env, src, copies, '2026-11-01T03:00:00Z');

    // The states a crash can leave (see src/maintain/prune.ts): a new pack holding copies of
    // blobs that are still in their old pack (crash after repack wrote, before it deleted),
    // and a pack whose index was deleted but not the pack itself (crash between the two).
    const store = new LocalStore(env.SNAPFILL_REPO);
    const repo = await Repository.open(store, testPassword);
    const indexes = [];
    for await (const id of repo.listPackIndexes()) indexes.push(await repo.loadPackIndex(id));
    const dataIdx = indexes.find((i) => i.type === 'data')!;
    const packBytes = await repo.readPack(dataIdx.pack);
    const dup = new PackWriter('data');
    for (const b of dataIdx.blobs.slice(0, 2)) dup.add(b.id, packBytes.subarray(b.offset, b.offset + b.length));
    await repo.savePack(dup);
    const orphan = new PackWriter('data');
    const junk = randomBytes(5000);
    orphan.add(execFileSync('sha256sum', { input: junk }).toString().slice(0, 64), junk);
    const o = await orphan.finish();
    await store.put(packKey(o.id), o.bytes);

    const p = cli(['--json', 'prune', '--repack-threshold', '0.5'], env);
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.orphan_packs_deleted).toBe(1);
    // One of the two copies of each duplicated blob is dropped: the duplicate pack goes whole.
    expect(p.json.packs_deleted).toBe(1);
    expect(p.json.blobs_used).toBeGreaterThan(4);
    checkOk(env);
    restoresExactly(env, base, src, s1);
    const again = cli(['--json', 'prune'], env).json;
    expect([again.packs_deleted, again.packs_repacked, again.orphan_packs_deleted]).toEqual([0, 0, 0]);
  });

  it('runs while a snapshot holds its lock, not beside another prune, and refuses when a snapshot is damaged', async () => {
    const base = tmpDir();
    const env = { ...repoEnv(base), SNAPFILL_PRUNE_GRACE: '0s' };
    const src = path.join(base, 'src');
    write(path.join(src, 'x'), 'x');
    expect(cli(['init'], env).code).toBe(0);
    expect(cli(['snapshot', src, '-q'], env).code).toBe(0);
    const store = new LocalStore(env.SNAPFILL_REPO);
    // Issue 15: a snapshot's lock no longer stops prune; another prune's does.
    const lock = await RepoLock.acquire(store, 'snapshot', false);
    const ok = cli(['prune'], env);
    expect(ok.code, ok.stderr).toBe(0);
    await lock.release();
    const other = await RepoLock.acquire(store, 'prune', 'maintenance');
    const r = cli(['prune'], env);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/repository is locked: cannot prune while prune \(maintenance/);
    await other.release();

    // A snapshot whose record cannot be read: prune cannot know what it needs, so it deletes nothing.
    fs.writeFileSync([...snapshotRecordFiles(env.SNAPFILL_REPO).values()][0], '{"broken":');
    const before = fs.readdirSync(path.join(env.SNAPFILL_REPO, 'data'), { recursive: true }).length;
    const b = cli(['prune'], { ...env, SNAPFILL_CACHE: path.join(base, 'cache-other') });
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/nothing was deleted|damaged/);
    expect(fs.readdirSync(path.join(env.SNAPFILL_REPO, 'data'), { recursive: true }).length).toBe(before);
  });
});

describe('prune killed at random moments', () => {
  it('leaves a repository that checks and restores after every SIGKILL, and a re-run finishes', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('./helpers.js');
    // Small packs, so prune has many objects to delete and rewrite: many moments to die in.
    const { base, env, src, copies } = newRepo(false);
    fs.mkdirSync(env.SNAPFILL_REPO, { recursive: true });
    await Repository.init(new LocalStore(env.SNAPFILL_REPO), { packSize: 24 * 1024, ...TEST_INIT });
    const files = 48;
    for (let i = 0; i < files; i++) write(path.join(src, `d${i % 4}`, `f${i}.bin`), randomBytes(6000 + i * 200));
    snap(env, src, copies, '2026-11-01T03:00:00Z');
    for (let i = 0; i < files; i += 2) write(path.join(src, `d${i % 4}`, `f${i}.bin`), randomBytes(7000));
    snap(env, src, copies, '2026-11-01T11:00:00Z');
    for (let i = 0; i < files; i += 3) write(path.join(src, `d${i % 4}`, `f${i}.bin`), randomBytes(5000));
    const last = snap(env, src, copies, '2026-11-01T19:00:00Z');
    expect(cli(['forget', '--keep-last', '1', '-q'], env).code).toBe(0);

    let kills = 0;
    let finishes = 0;
    let latest = last;
    // At least 6 rounds; more while no kill has landed yet (a quiet machine prunes this fast).
    for (let round = 0; round < 6 || (kills === 0 && round < 30); round++) {
      const child = spawn(process.execPath, [BIN, 'prune', '--repack-threshold', '0.05', '-q'], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      // Kill at a random moment after prune took its lock (node start-up is too long and too
      // variable on a busy machine to aim with a plain delay from spawn).
      let exitCode: number | null | undefined;
      void exited.then((c) => {
        exitCode = c;
      });
      const locks = path.join(env.SNAPFILL_REPO, 'locks');
      while (exitCode === undefined && !(fs.existsSync(locks) && fs.readdirSync(locks).length)) await new Promise((r) => setTimeout(r, 2));
      const timer = setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 40)); // prune of this repo takes tens to hundreds of ms
      const code = await exited;
      clearTimeout(timer);
      checkOk(env);
      restoresExactly(env, base, src, latest);
      if (code !== 0) {
        kills++;
        continue;
      }
      // It finished: make new garbage so the next rounds have work to be killed in.
      finishes++;
      for (let i = round % 3; i < files; i += 3) write(path.join(src, `d${i % 4}`, `f${i}.bin`), randomBytes(5000 + round));
      latest = snap(env, src, copies, `2026-11-0${2 + (round % 7)}T03:00:00Z`);
      expect(cli(['forget', '--keep-last', '1', '-q'], env).code).toBe(0);
    }
    console.log(`prune: ${kills} runs killed at random moments, ${finishes} finished; check and restore passed after each`);
    expect(kills).toBeGreaterThan(0);
    const final = cli(['--json', 'prune', '--repack-threshold', '0.05'], env);
    expect(final.code, final.stderr).toBe(0);
    checkOk(env);
    restoresExactly(env, base, src, latest);
    const again = cli(['--json', 'prune', '--repack-threshold', '0.05'], env).json;
    expect([again.packs_deleted, again.packs_repacked, again.orphan_packs_deleted]).toEqual([0, 0, 0]);
  });
});
