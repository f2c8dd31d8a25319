import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, execFileSync } from 'node:child_process';
import { BIN, catalogOf, cli, describeTree, diffTrees, repoEnv, tmpDir, write, snapshotRecordFiles } from './helpers.js';
import { openSession } from '../src/api/session.js';
import { checkSession } from '../src/check/check.js';
import { openObjectSync } from './support/craft.js';

/**
 * Crash safety: a real snapfill process is SIGKILLed at random moments of an operation, at
 * least KILLS times per operation. After each kill: `check` passes, earlier snapshots restore
 * byte-identically, and a re-run of the interrupted operation completes.
 *
 * Kills are spread over the operation's measured duration. test/support/slow-puts.mjs (preloaded
 * into the CLI) pauses between writing each object and renaming it into place, so kills
 * land between any two repository writes (pack, index, snapshot record, lock) and also leave
 * temp files behind. The random schedule is seeded; the seed is printed to reproduce a failure.
 */
const KILLS = Number(process.env.SNAPFILL_CRASH_KILLS ?? 20);
const SEED = Number(process.env.SNAPFILL_CRASH_SEED ?? Date.now() % 100000);
const SLOW_PUTS = `--import ${new URL('./support/slow-puts.mjs', import.meta.url).href}`;
const PUT_DELAY = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${SLOW_PUTS}`.trim(), SLOW_PUTS_MS: '25' };

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs the CLI and SIGKILLs it after `afterMs` (if still running). Resolves with how it ended. */
function runAndKill(
  args: string[],
  env: Record<string, string>,
  afterMs: number,
): Promise<{ killed: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), afterMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', code, stderr });
    });
  });
}

async function timed(args: string[], env: Record<string, string>): Promise<number> {
  const t0 = Date.now();
  const r = await runAndKill(args, env, 600_000);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return Date.now() - t0;
}

/**
 * Differences between two describeTree maps, with file mtimes equal within 2 µs: restore sets
 * times through futimes(), whose double seconds cannot carry every nanosecond.
 */
function treeDiff(a: Map<string, string>, b: Map<string, string>): string[] {
  const mt = / f (\d+) (\d+) /;
  const strip = (m: Map<string, string>) => new Map([...m].map(([k, v]) => [k, v.replace(mt, ' f $1 _ ')]));
  const out = diffTrees(strip(a), strip(b));
  for (const [k, v] of a) {
    const x = mt.exec(v);
    const y = mt.exec(b.get(k) ?? '');
    if (x && y && (BigInt(x[2]) - BigInt(y[2]) > 2000n || BigInt(y[2]) - BigInt(x[2]) > 2000n)) out.push(`${k}: mtime ${x[2]} != ${y[2]}`);
  }
  return out;
}

/** Only type, size and content: what "byte-identical" means, without metadata. */
function bytesOf(dir: string): Map<string, string> {
  const m = describeTree(dir);
  for (const [k, v] of m) m.set(k, v.replace(/^\S+ \S+ /, '').replace(/^f (\d+) (\d+) /, 'f $1 '));
  return m;
}

function ok(r: { code: number; stderr: string; stdout: string }, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}: ${r.stderr}${r.stdout}`);
}

// 20 kills of whole CLI runs: minutes on a loaded 2-core machine, so more than the global 120 s per test.
describe('crash safety under SIGKILL', { timeout: 360_000 }, () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;
  const rnd = prng(SEED);
  /** A copy of the source tree as it was when each snapshot was taken. */
  const refs = new Map<string, string>();
  let n = 0;

  beforeAll(() => {
    base = tmpDir();
    process.stdout.write(`crash tests: ${KILLS} kills per operation, seed ${SEED} (SNAPFILL_CRASH_SEED to reproduce)\n`);
    src = path.join(base, 'src');
    env = repoEnv(base);
    process.env.SNAPFILL_CACHE = env.SNAPFILL_CACHE; // the in-process check finds the same catalog
    ok(cli(['init'], env), 'init');
    for (let i = 0; i < 40; i++) write(`${src}/acct${i % 4}/dir${i % 7}/f${i}.txt`, `file ${i}\n`.repeat(50 + i));
    write(`${src}/acct0/big.bin`, Buffer.alloc(3 * 1024 * 1024, 1));
    takeSnapshot();
  });

  /** Keeps a copy of the source tree as snapshot `id` recorded it (call before the next change). */
  function remember(id: string): void {
    if (refs.has(id)) return;
    const ref = path.join(base, 'refs', id);
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    execFileSync('cp', ['-a', src, ref]);
    refs.set(id, ref);
  }

  function takeSnapshot(): string {
    const r = cli(['--json', 'snapshot', src], env);
    ok(r, 'snapshot');
    remember(r.json.snapshot_id);
    return r.json.snapshot_id;
  }

  /** Changes the source so the next snapshot has new data, new dirs and a removed file. */
  function mutate(): void {
    n++;
    write(`${src}/acct${n % 4}/new${n}/n.txt`, `new ${n} `.repeat(1000 + n));
    write(`${src}/acct${(n + 1) % 4}/dir0/changed.txt`, `changed at ${n}\n`);
    const victim = `${src}/acct${n % 4}/dir${n % 7}/f${n % 40}.txt`;
    fs.rmSync(victim, { force: true });
  }

  /** Snapshots as the CLI lists them (through the catalog), oldest first. */
  function listedSnapshots(): string[] {
    const r = cli(['--json', 'snapshots'], env);
    ok(r, 'snapshots');
    return r.json.snapshots.map((s: any) => s.id);
  }

  /** Snapshots in the repository (the source of truth), oldest first; no process needed. */
  function repoSnapshots(): string[] {
    return (
      [...snapshotRecordFiles(env.SNAPFILL_REPO)]
        // Records are sealed (format v2): opened with the test repository's key, as a reader would.
        .map(([id, file]) => ({
          id,
          time: JSON.parse(openObjectSync(env.SNAPFILL_REPO, fs.readFileSync(file)).toString()).time as string,
        }))
        .sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : a.id < b.id ? -1 : 1))
        .map((x) => x.id)
    );
  }

  /**
   * `snapfill check` through the library, in this process (what the CLI command runs, minus a
   * process start: this runs after every kill). The CLI command itself runs at each test's end.
   */
  async function expectCheckPasses(context: string, readData = false): Promise<void> {
    const s = await openSession({
      repo: env.SNAPFILL_REPO,
      catalog: catalogOf(env),
      passwordFile: env.SNAPFILL_PASSWORD_FILE,
      noSync: true,
    });
    try {
      const r = await checkSession(s, { readData });
      expect(JSON.stringify(r.errors).slice(0, 1500), `check after ${context}`).toBe('[]');
      expect(r.ok).toBe(true);
    } finally {
      await s.close();
    }
  }

  function expectCliCheckPasses(): void {
    const r = cli(['--json', 'check', '--read-data'], env);
    expect(JSON.stringify(r.json?.errors ?? r.stderr).slice(0, 1500)).toBe('[]');
    expect(r.code).toBe(0);
  }

  /** Restores a snapshot into a fresh directory and compares it with the tree it was taken from. */
  function expectRestoresIdentically(id: string, context: string): void {
    const target = path.join(base, 'restore', `${id.slice(0, 12)}-${n}-${Math.floor(rnd() * 1e9)}`);
    const r = cli(['--json', 'restore', id, '--target', target], env);
    expect(r.code, `restore ${id.slice(0, 8)} after ${context}: ${r.stderr}`).toBe(0);
    expect(
      treeDiff(describeTree(refs.get(id)!), describeTree(path.join(target, src))).join('\n'),
      `restore ${id.slice(0, 8)} after ${context}`,
    ).toBe('');
    fs.rmSync(target, { recursive: true, force: true });
  }

  it(`snapshot: ${KILLS} kills`, async () => {
    mutate();
    const duration = await timed(['snapshot', src], { ...env, ...PUT_DELAY });
    remember(repoSnapshots().at(-1)!);
    let killed = 0;
    for (let i = 0; i < KILLS; i++) {
      mutate();
      const before = repoSnapshots();
      const at = Math.floor(rnd() * duration);
      const r = await runAndKill(['snapshot', src], { ...env, ...PUT_DELAY }, at);
      if (r.killed) killed++;
      const ctx = `snapshot killed at ${at} ms (kill ${i + 1})`;
      await expectCheckPasses(ctx);
      const after = i % 5 === 0 ? listedSnapshots() : repoSnapshots();
      // Earlier snapshots are all still there; at most the interrupted one was added.
      expect(after.slice(0, before.length).sort()).toEqual([...before].sort());
      expect(after.length - before.length).toBeLessThanOrEqual(1);
      // A snapshot whose record landed before the kill is complete, and of the current tree.
      for (const id of after) if (!before.includes(id)) remember(id);
      if (i % 2 === 0) expectRestoresIdentically(before.at(-1)!, ctx);
      if (i % 5 === 4) expectRestoresIdentically(before[0], ctx);
      takeSnapshot(); // the re-run completes
    }
    expectCliCheckPasses();
    expect(killed).toBeGreaterThanOrEqual(Math.floor(KILLS / 2));
  });

  it(`catalog rebuild: ${KILLS} kills`, async () => {
    const snapsBefore = listedSnapshots();
    const lsBefore = cli(['--json', 'ls', '-R', 'latest', src], env).json.entries;
    const duration = await timed(['catalog', 'rebuild'], env);
    let killed = 0;
    for (let i = 0; i < KILLS; i++) {
      const at = Math.floor(rnd() * duration);
      const r = await runAndKill(['catalog', 'rebuild'], env, at);
      if (r.killed) killed++;
      const ctx = `catalog rebuild killed at ${at} ms (kill ${i + 1})`;
      // The next command repairs the catalog from the repository: same snapshots, same entries.
      expect(listedSnapshots(), ctx).toEqual(snapsBefore);
      if (i % 2 === 0) expect(cli(['--json', 'ls', '-R', 'latest', src], env).json.entries, ctx).toEqual(lsBefore);
      else await expectCheckPasses(ctx);
      if (i % 4 === 0) expectRestoresIdentically(snapsBefore[Math.floor(rnd() * snapsBefore.length)], ctx);
      ok(cli(['catalog', 'rebuild'], env), `re-run after ${ctx}`);
    }
    expect(listedSnapshots()).toEqual(snapsBefore);
    expect(killed).toBeGreaterThanOrEqual(Math.floor(KILLS / 2));
  });

  it(`restore: ${KILLS} kills, and a re-run into the same directory completes byte-identically`, async () => {
    const id = repoSnapshots().at(-1)!;
    const target = path.join(base, 'crash-restore');
    const duration = await timed(['restore', id, '--target', target], env);
    fs.rmSync(target, { recursive: true, force: true });
    let killed = 0;
    for (let i = 0; i < KILLS; i++) {
      const at = Math.floor(rnd() * duration);
      const r = await runAndKill(['restore', id, '--target', target], env, at);
      if (r.killed) killed++;
      const ctx = `restore killed at ${at} ms (kill ${i + 1})`;
      if (i % 4 === 0) await expectCheckPasses(ctx);
      // Default mode "missing": what a killed run left behind (half-written files, temp entries,
      // directories still at their provisional mode) must not survive the re-run.
      const again = cli(['--json', 'restore', id, '--target', target], env);
      expect(again.code, `${ctx}: ${again.stderr}`).toBe(0);
      expect(diffTrees(bytesOf(refs.get(id)!), bytesOf(path.join(target, src))).join('\n'), `${ctx}: content`).toBe('');
      const drift = treeDiff(describeTree(refs.get(id)!), describeTree(path.join(target, src)));
      expect(drift.join('\n'), `${ctx}: metadata`).toBe('');
      fs.rmSync(target, { recursive: true, force: true });
    }
    expect(killed).toBeGreaterThanOrEqual(Math.floor(KILLS / 2));
  });

  it(`forget --prune: ${KILLS} kills`, async () => {
    // Grace 0 (issue 15): each run marks AND deletes, so kills also land in the delete phase.
    const policy = ['forget', '--keep-last', '2', '--prune', '--grace', '0s', '--repack-threshold', '0.01'];
    mutate();
    takeSnapshot();
    const duration = await timed(policy, { ...env, ...PUT_DELAY });
    let killed = 0;
    for (let i = 0; i < KILLS; i++) {
      mutate();
      takeSnapshot();
      const before = repoSnapshots();
      const at = Math.floor(rnd() * duration);
      const r = await runAndKill(policy, { ...env, ...PUT_DELAY }, at);
      if (r.killed) killed++;
      const ctx = `forget --prune killed at ${at} ms (kill ${i + 1})`;
      // --read-data: every blob of every snapshot still present is intact.
      await expectCheckPasses(ctx, true);
      const after = repoSnapshots();
      // The two newest are kept whatever happens; every snapshot still present must be whole.
      expect(after.slice(-2), ctx).toEqual(before.slice(-2));
      for (const id of after) expect(before).toContain(id);
      expectRestoresIdentically(after[Math.floor(rnd() * after.length)], ctx);
      ok(cli(policy, env), `re-run after ${ctx}`);
      expect(i % 5 === 0 ? listedSnapshots() : repoSnapshots()).toEqual(before.slice(-2));
    }
    expectCliCheckPasses();
    expect(killed).toBeGreaterThanOrEqual(Math.floor(KILLS / 2));
  });
});
