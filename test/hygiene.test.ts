import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { BIN, IS_ROOT, cli, repoEnv, tmpDir, write } from './helpers.js';

/**
 * Repository hygiene (issue 11): what failed or killed processes leave behind must not stay
 * forever. Temp objects of a put that hit ENOSPC, temp objects and locks of SIGKILLed
 * processes, and an empty `--repo ''` that silently meant "the other repository".
 */

/** Every `.tmp-*` file below `dir` (relative paths). */
function temps(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.startsWith('.tmp-')) out.push(path.relative(dir, p));
    }
  };
  if (fs.existsSync(dir)) walk(dir);
  return out.sort();
}

/** A pid that certainly belonged to a process that is now dead (it ran and was reaped). */
async function deadPid(): Promise<number> {
  const p = spawn('true');
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

/** Sets a file's mtime `ms` into the past (a process killed that long ago). */
function age(file: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  fs.utimesSync(file, t, t);
}

const HOUR = 3600_000;

/** Env for a CLI whose every put pauses `ms` before its rename (test/support/slow-puts.mjs). */
function slowPuts(ms: number): Record<string, string> {
  const preload = `--import ${new URL('./support/slow-puts.mjs', import.meta.url).href}`;
  return { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${preload}`.trim(), SLOW_PUTS_MS: String(ms) };
}

describe.skipIf(!IS_ROOT)('ENOSPC: a failed put leaves no temp object', () => {
  let base: string;
  let mnt: string;
  let mounted = false;
  beforeAll(() => {
    base = tmpDir('snapfill-hygiene-enospc-');
    mnt = path.join(base, 'mnt');
    fs.mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=30m', 'tmpfs', mnt], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount tmpfs failed (needs root and util-linux mount): ${m.stderr}`);
    mounted = true;
  });
  afterAll(() => {
    if (mounted) spawnSync('umount', [mnt]);
  });

  it('a snapshot that fills the disk fails cleanly and leaves no .tmp- file; later runs are clean', () => {
    // The catalog lives off the small file system: only the repository runs out of room.
    const env = { ...repoEnv(base), SNAPFILL_REPO: path.join(mnt, 'repo'), SNAPFILL_CACHE: path.join(base, 'cache') };
    const src = path.join(base, 'src');
    for (let i = 0; i < 8; i++) write(path.join(src, `big${i}.bin`), randomBytes(5 * 1024 * 1024)); // 40 MiB, incompressible
    write(path.join(src, 'small.txt'), 'small');
    expect(cli(['init'], env).code).toBe(0);
    const r = cli(['--json', 'snapshot', src], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/ENOSPC|no space/i);
    const snaps = path.join(mnt, 'repo', 'snapshots');
    expect(fs.existsSync(snaps) ? fs.readdirSync(snaps) : []).toEqual([]);
    expect(temps(path.join(mnt, 'repo'))).toEqual([]);

    // Room again: prune frees what the failed run stored, a small snapshot succeeds, check is clean.
    for (let i = 0; i < 8; i++) fs.rmSync(path.join(src, `big${i}.bin`));
    const p = cli(['--json', 'prune'], env);
    expect(p.code, p.stderr).toBe(0);
    const s = cli(['--json', 'snapshot', src], env);
    expect(s.code, s.stderr).toBe(0);
    const c = cli(['--json', 'check'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(c.json.stale_temp_objects).toBe(0);
    expect(temps(path.join(mnt, 'repo'))).toEqual([]);
  });
});

describe('a SIGKILLed snapshot: its temp object and its lock do not stay forever', () => {
  let base: string;
  let env: Record<string, string>;
  let repo: string;
  let src: string;
  beforeAll(() => {
    base = tmpDir('snapfill-hygiene-kill-');
    env = repoEnv(base);
    repo = env.SNAPFILL_REPO;
    src = path.join(base, 'src');
    for (let i = 0; i < 5; i++) write(path.join(src, `f${i}.bin`), randomBytes(200_000));
    expect(cli(['init'], env).code).toBe(0);
  });

  it('check warns about stale temp objects (exit code unchanged); prune removes them; locks of dead local pids are removed', async () => {
    // A real snapshot, killed while a temp object is on disk (test/support/slow-puts.mjs holds
    // each put between writing the temp file and renaming it).
    const child = spawn(process.execPath, [BIN, 'snapshot', src], {
      env: { ...process.env, ...env, ...slowPuts(5000) },
      stdio: 'ignore',
    });
    const deadline = Date.now() + 60_000;
    while (!temps(path.join(repo, 'data')).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const left = temps(repo);
    expect(left.length, 'the killed snapshot left a temp object').toBeGreaterThan(0);
    expect(left.every((t) => t.includes(`.tmp-${child.pid}-`))).toBe(true);
    const locksDir = path.join(repo, 'locks');
    const lockFiles = fs.readdirSync(locksDir);
    expect(lockFiles).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(path.join(locksDir, lockFiles[0]), 'utf8')).pid).toBe(child.pid);

    // The kill happened an hour ago. Two more temp objects, named by a live process (this
    // one): one written two hours ago (may still be in use: kept), one 25 hours ago (stale
    // by age, the fallback for writers on other hosts sharing the directory: removed).
    for (const t of left) age(path.join(repo, t), HOUR);
    const liveRecent = path.join(repo, 'data', '00', `.tmp-${process.pid}-aaaaaaaaaaaa`);
    const liveOld = path.join(repo, 'data', '00', `.tmp-${process.pid}-bbbbbbbbbbbb`);
    write(liveRecent, 'x'.repeat(100));
    write(liveOld, 'y'.repeat(1000));
    age(liveRecent, 2 * HOUR);
    age(liveOld, 25 * HOUR);
    const staleBytes = left.reduce((n, t) => n + fs.statSync(path.join(repo, t)).size, 0) + 1000;

    const c = cli(['--json', 'check'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    expect(c.json.ok).toBe(true);
    expect(c.json.errors).toEqual([]);
    expect(c.json.stale_temp_objects).toBe(left.length + 1);
    expect(c.json.stale_temp_bytes).toBe(staleBytes);
    expect(c.stderr).toMatch(/warning: .*stale temporary object/);
    // check took a (shared) lock: the dead snapshot's lock on this host is gone.
    expect(fs.readdirSync(locksDir)).toEqual([]);

    const p = cli(['--json', 'prune'], env);
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.stale_temps_removed).toBe(left.length + 1);
    expect(p.json.stale_temp_bytes_removed).toBe(staleBytes);
    expect(temps(repo)).toEqual([path.relative(repo, liveRecent)]);
    const c2 = cli(['--json', 'check'], env);
    expect(c2.code, c2.stdout + c2.stderr).toBe(0);
    expect(c2.json.stale_temp_objects).toBe(0);
    // And the repository is whole: a snapshot now completes.
    expect(cli(['snapshot', src], env).code).toBe(0);
    fs.rmSync(liveRecent);
  });

  it('prune --dry-run reports stale temp objects and removes nothing', async () => {
    const t = path.join(repo, 'index', `.tmp-${await deadPid()}-cccccccccccc`);
    write(t, 'z'.repeat(10));
    age(t, HOUR);
    const p = cli(['--json', 'prune', '--dry-run'], env);
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.stale_temps_removed).toBe(1);
    expect(fs.existsSync(t)).toBe(true);
    expect(cli(['prune'], env).code).toBe(0);
    expect(fs.existsSync(t)).toBe(false);
  });
});

describe('locks of dead processes on this host are removed by the next lock taker', () => {
  it('removes them; a fresh lock of another host stays', async () => {
    const base = tmpDir('snapfill-hygiene-locks-');
    const env = repoEnv(base);
    const src = path.join(base, 'src');
    write(path.join(src, 'a.txt'), 'a');
    expect(cli(['init'], env).code).toBe(0);
    const locks = path.join(env.SNAPFILL_REPO, 'locks');
    fs.mkdirSync(locks, { recursive: true });
    const now = new Date().toISOString();
    // Exactly what src/repo/lock.ts writes: `locks/<id>` holding the LockInfo JSON.
    const put = (info: Record<string, unknown>) => fs.writeFileSync(path.join(locks, info.id as string), JSON.stringify(info));
    const dead: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = randomBytes(16).toString('hex');
      dead.push(id);
      put({
        id,
        exclusive: i === 0,
        host: os.hostname(),
        pid: await deadPid(),
        operation: i === 0 ? 'prune' : 'snapshot',
        created: now,
        refreshed: now,
      });
    }
    const other = randomBytes(16).toString('hex');
    put({ id: other, exclusive: false, host: `other-${os.hostname()}`, pid: 1, operation: 'snapshot', created: now, refreshed: now });
    const r = cli(['snapshot', src], env);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readdirSync(locks)).toEqual([other]);
    // The other host's live snapshot lock does not keep prune out (issue 15: lock-free prune)…
    expect(cli(['prune'], env).code).toBe(0);
    // …but another host's live prune does.
    const prune = randomBytes(16).toString('hex');
    put({
      id: prune,
      exclusive: false,
      kind: 'maintenance',
      host: `other-${os.hostname()}`,
      pid: 1,
      operation: 'prune',
      created: now,
      refreshed: now,
    });
    expect(cli(['prune'], env).code).toBe(4);
  });
});

describe('an empty --repo / --catalog is an error, not "use the other one"', () => {
  let base: string;
  let envRepo: string;
  let env: Record<string, string>;
  let src: string;
  beforeAll(() => {
    base = tmpDir('snapfill-hygiene-empty-');
    env = repoEnv(base);
    envRepo = env.SNAPFILL_REPO;
    src = path.join(base, 'src');
    write(path.join(src, 'a.txt'), 'a');
    expect(cli(['init'], env).code).toBe(0);
  });

  const snapshotsIn = (repo: string) => (fs.existsSync(path.join(repo, 'snapshots')) ? fs.readdirSync(path.join(repo, 'snapshots')) : []);

  it.each([[['--repo', '']], [['--repo=']], [['-r', '']], [['--catalog', '']]])(
    '%j snapshot: exit 1, one line naming the option, nothing written',
    (flags) => {
      const r = cli([...flags, 'snapshot', src], env);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(flags[0].startsWith('--catalog') ? /--catalog/ : /--repo/);
      expect(lines[0]).toMatch(/empty/);
      expect(snapshotsIn(envRepo)).toEqual([]);
    },
  );

  it("init --repo '' creates nothing (not the SNAPFILL_REPO location, not the default)", () => {
    const fresh = path.join(base, 'fresh');
    const r = cli(['init', '--repo', ''], { ...env, SNAPFILL_REPO: fresh });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--repo.*empty/);
    expect(fs.existsSync(fresh)).toBe(false);
  });

  it('--json: the error is one JSON object', () => {
    const r = cli(['--json', '--repo', '', 'snapshots'], env);
    expect(r.code).toBe(1);
    expect(r.json.error).toMatch(/--repo/);
  });

  it('an empty SNAPFILL_REPO counts as unset (VAR= cmd), and --repo still wins over it', () => {
    const before = snapshotsIn(envRepo).length;
    const r = cli(['--repo', envRepo, 'snapshot', src], { ...env, SNAPFILL_REPO: '' });
    expect(r.code, r.stderr).toBe(0);
    expect(snapshotsIn(envRepo)).toHaveLength(before + 1);
  });
});
