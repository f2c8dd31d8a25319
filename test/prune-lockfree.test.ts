import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { BIN, cli, describeTree, diffTrees, repoEnv, tmpDir, write, type CliResult } from './helpers.js';

/**
 * The interleavings of the lock-free two-phase prune (issue 15, docs/FORMAT.md "Garbage and
 * the two-phase prune"), through the real CLI on a real local repository. A snapshot or prune
 * is held at one repository write by test/support/hold-puts.mjs while the other side runs.
 */
const HOOK = pathToFileURL(path.join(__dirname, 'support', 'hold-puts.mjs')).href;

interface Held {
  done: Promise<CliResult>;
  release(): void;
  kill(): void;
}

/** Starts the CLI held at the nth write matching `match`; resolves once it is held there. */
async function startHeld(args: string[], env: Record<string, string>, match: string, nth = 1, unlink = false): Promise<Held> {
  const dir = tmpDir('snapfill-hold-');
  const signal = path.join(dir, 'held');
  const release = path.join(dir, 'go');
  const child = spawn(process.execPath, [BIN, ...args], {
    env: {
      ...process.env,
      ...env,
      NODE_OPTIONS: `--import ${HOOK}`,
      HOLD_MATCH: match,
      HOLD_NTH: String(nth),
      HOLD_SIGNAL: signal,
      HOLD_RELEASE: release,
      HOLD_UNLINK: unlink ? '1' : '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c) => (stdout += c));
  child.stderr.on('data', (c) => (stderr += c));
  const done = new Promise<CliResult>((resolve) =>
    child.on('close', (code) => {
      let json = null;
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {
        /* not json */
      }
      resolve({ code: code ?? -1, stdout, stderr, json } as CliResult);
    }),
  );
  const t0 = Date.now();
  while (!fs.existsSync(signal)) {
    if (child.exitCode !== null) throw new Error(`exited before the hold: ${stderr}`);
    if (Date.now() - t0 > 120_000) throw new Error(`never reached the hold: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { done, release: () => fs.writeFileSync(release, ''), kill: () => child.kill('SIGKILL') };
}

/**
 * A repository where blob X is referenced by no snapshot any more (its snapshot was forgotten),
 * and a second source holding X again plus new content.
 */
function setup() {
  const base = tmpDir('snapfill-lockfree-');
  const env = repoEnv(base);
  expect(cli(['init'], env).code).toBe(0);
  const src1 = path.join(base, 'src1');
  const src2 = path.join(base, 'src2');
  const x = randomBytes(120_000);
  write(path.join(src1, 'x.bin'), x);
  write(path.join(src1, 'k.txt'), 'kept');
  expect(cli(['snapshot', src1, '-q', '--time', '2026-11-01T00:00:00Z'], env).code).toBe(0);
  fs.rmSync(path.join(src1, 'x.bin'));
  expect(cli(['snapshot', src1, '-q', '--time', '2026-11-02T00:00:00Z'], env).code).toBe(0);
  const f = cli(['--json', 'forget', '--keep-last', '1'], env);
  expect(f.code, f.stderr).toBe(0);
  expect(f.json.removed).toHaveLength(1);
  write(path.join(src2, 'x.bin'), x);
  write(path.join(src2, 'y.bin'), randomBytes(60_000));
  // Packs written within the clock slack (src/repo/clock.ts STORE_TIME_SLACK_MS) before a running
  // snapshot's marker count as possibly its own and are never marked: let the setup's packs age past it.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
  return { base, env, src1, src2, x };
}

function checkAndRestore(env: Record<string, string>, base: string, snapshotId: string, src: string): void {
  const c = cli(['--json', 'check', '--read-data'], env);
  expect(c.code, c.stdout + c.stderr).toBe(0);
  const target = path.join(base, 'restore-' + randomBytes(3).toString('hex'));
  const r = cli(['--json', 'restore', snapshotId, '--target', target, '--mode', 'all'], env);
  expect(r.code, r.stderr).toBe(0);
  for (const n of fs.readdirSync(src)) expect(fs.readFileSync(path.join(target, src, n)), n).toEqual(fs.readFileSync(path.join(src, n)));
}

/**
 * The pruner runs as another machine would: its own catalog (one catalog has one writer per
 * machine, so a snapshot and a prune sharing one would wait for each other's catalog lock).
 */
const pruner = (env: Record<string, string>) => ({ ...env, SNAPFILL_CACHE: env.SNAPFILL_CACHE + '-pruner' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

const prune = (env: Record<string, string>, grace: string, machine = '-pruner') =>
  cli(['--json', 'prune', '--grace', grace], { ...env, SNAPFILL_CACHE: env.SNAPFILL_CACHE + machine });

describe('lock-free prune: interleavings with snapshots', () => {
  it('mark DURING a snapshot that reuses the marked data: kept while it runs, copied by it, then deleted', async () => {
    const { base, env, src2 } = setup();
    // Held at its last index write: every dedup decision (x.bin reused) is made.
    const s = await startHeld(['--json', 'snapshot', src2], env, '/index/', 2);
    const p1 = prune(env, '0s');
    expect(p1.code, p1.stderr).toBe(0); // no lock stops prune
    expect(p1.json.packs_marked).toBeGreaterThanOrEqual(1);
    // The snapshot's marker is older than the mark: nothing is deleted while it runs.
    expect(p1.json.packs_deleted).toBe(0);
    expect(p1.json.packs_waiting).toBeGreaterThanOrEqual(1);
    s.release();
    const r = await s.done;
    expect(r.code, r.stderr).toBe(0);
    // The snapshot copied x.bin out of the marked pack before writing its record, so the
    // marked pack is unreferenced and goes (not unmarked).
    const p2 = prune(env, '0s');
    expect(p2.code, p2.stderr).toBe(0);
    expect(p2.json.packs_deleted).toBeGreaterThanOrEqual(1);
    expect(p2.json.packs_unmarked).toBe(0);
    checkAndRestore(env, base, r.json.snapshot_id, src2);
  });

  it('snapshot starting AFTER the mark stores the data again; a prune deleting mid-snapshot cannot hurt it', async () => {
    const { base, env, src2, x } = setup();
    // Phase 1 only: a 3 s grace is not over when its own delete phase looks. (A record keeps
    // the grace it was marked with; a later prune waits at least that long too.)
    const m = prune(env, '3s');
    const markedAt = Date.now();
    expect(m.code, m.stderr).toBe(0);
    expect(m.json.packs_marked).toBeGreaterThanOrEqual(1);
    expect(m.json.packs_deleted).toBe(0);
    // Clearly after the mark (beyond the clock slack), as a snapshot of the next round would be.
    await sleep(2500);
    const s = await startHeld(['--json', 'snapshot', src2], env, '/index/', 2);
    await sleep(markedAt + 4000 - Date.now());
    // Second prune while the snapshot is mid-way: the mark predates the snapshot's marker, so the
    // snapshot saw it and did not reuse the marked pack: the pack may go now.
    const d = prune(env, '0s');
    expect(d.code, d.stderr).toBe(0);
    expect(d.json.packs_deleted).toBeGreaterThanOrEqual(1);
    s.release();
    const r = await s.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.bytes_added).toBeGreaterThanOrEqual(x.length); // x.bin stored again, not deduplicated
    checkAndRestore(env, base, r.json.snapshot_id, src2);
  });

  it('a marked pack referenced again (a record reuses it) is unmarked, not deleted', async () => {
    const { base, env, src2 } = setup();
    // The snapshot reuses x.bin (no mark yet) and is held AFTER its last check, right at its
    // record: a prune marks the pack then, so the record references a marked pack the snapshot
    // did not copy. Its marker keeps the pack while it runs; the next prune, deriving the
    // references again, finds the record and unmarks the pack.
    const s = await startHeld(['--json', 'snapshot', src2], env, '/snapshots/', 1);
    const m = prune(env, '3s');
    const markedAt = Date.now();
    expect(m.json.packs_marked).toBeGreaterThanOrEqual(1);
    s.release();
    const r = await s.done;
    expect(r.code, r.stderr).toBe(0);
    await sleep(markedAt + 4000 - Date.now());
    const d = prune(env, '0s');
    expect(d.code, d.stderr).toBe(0);
    expect(d.json.packs_unmarked).toBeGreaterThanOrEqual(1);
    checkAndRestore(env, base, r.json.snapshot_id, src2);
  });

  it('two prunes exclude each other; snapshot and forget run beside a prune', async () => {
    const { base, env, src1, src2 } = setup();
    const p = await startHeld(['--json', 'prune', '--grace', '0s'], pruner(env), '/garbage/', 1);
    const second = prune(env, '0s', '-pruner2'); // another machine
    expect(second.code).toBe(4);
    expect(second.stderr).toMatch(/cannot prune while prune \(maintenance/);
    const s = cli(['--json', 'snapshot', src2], env);
    expect(s.code, s.stderr).toBe(0);
    p.release();
    expect((await p.done).code).toBe(0);
    // forget beside a running (held) snapshot
    const h = await startHeld(['--json', 'snapshot', src1], env, '/index/', 1);
    const f = cli(['--json', 'forget', '--keep-last', '1'], pruner(env));
    expect(f.code, f.stderr).toBe(0);
    h.release();
    expect((await h.done).code).toBe(0);
    expect(prune(env, '0s').code).toBe(0);
    checkAndRestore(env, base, s.json.snapshot_id, src2);
  });

  it('crash of prune between mark and delete, and in the delete phase: the next prune finishes, nothing referenced is lost', async () => {
    const { base, env, src2 } = setup();
    // Killed right before its garbage record lands (after the repack's new packs).
    const k1 = await startHeld(['--json', 'prune', '--grace', '0s'], pruner(env), '/garbage/', 1);
    k1.kill();
    await k1.done;
    // Killed in the delete phase, after a pack's index was deleted and before the pack.
    const k2 = await startHeld(['--json', 'prune', '--grace', '0s'], pruner(env), '/data/', 1, true);
    k2.kill();
    await k2.done;
    const s = cli(['--json', 'snapshot', src2], env);
    expect(s.code, s.stderr).toBe(0);
    const p = prune(env, '0s');
    expect(p.code, p.stderr).toBe(0);
    // Converges: within two more runs there is nothing left to mark or delete.
    let again = prune(env, '0s').json;
    if (again.packs_marked + again.packs_deleted) again = prune(env, '0s').json;
    expect([again.packs_marked, again.packs_deleted, again.orphan_packs_deleted]).toEqual([0, 0, 0]);
    checkAndRestore(env, base, s.json.snapshot_id, src2);
  });

  it('crash of prune after its deletion record, before the first delete: check passes with a warning, the next prune deletes', async () => {
    const { base, env, src2 } = setup();
    const s = cli(['--json', 'snapshot', src2], env);
    expect(s.code, s.stderr).toBe(0);
    // Killed at the first pack index it deletes: the record naming the packs has landed, no pack has gone.
    const k = await startHeld(['--json', 'prune', '--grace', '0s'], pruner(env), '/index/', 1, true);
    k.kill();
    await k.done;
    expect(fs.readdirSync(path.join(env.SNAPFILL_REPO, 'deleted'))).toHaveLength(1);
    // Both catalogs: the pruner's (updated by prune before the deletes) and the snapshot host's (synced by check).
    for (const e of [pruner(env), env]) {
      const c = cli(['--json', 'check'], e);
      expect(c.code, c.stdout + c.stderr).toBe(0);
      expect(c.stderr).toMatch(/warning: \d+ packs? named by a deletion record (is|are) still in the repository \(an interrupted prune\)/);
    }
    const p = prune(env, '0s');
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.packs_deleted).toBeGreaterThanOrEqual(1);
    const c = cli(['--json', 'check'], env);
    expect(c.stderr).not.toMatch(/deletion record/);
    checkAndRestore(env, base, s.json.snapshot_id, src2);
  });

  it('mark DURING a snapshot that reuses a TREE of the marked pack: it copies the tree into a new tree pack below its host tag', async () => {
    // Tree pack indexes lie below their host's tag (issue 15): the copy the snapshot makes
    // before its record must go there too, or its host's next sync would not list it.
    const base = tmpDir('snapfill-lockfree-tree-');
    const env = { ...repoEnv(base), SNAPFILL_HOST: 'host-t' };
    expect(cli(['init'], env).code).toBe(0);
    const src = path.join(base, 'src');
    const parked = path.join(base, 'parked');
    write(path.join(src, 'top.txt'), 'top\n');
    write(path.join(src, 'sub', 'a.txt'), 'a\n');
    write(path.join(src, 'sub', 'b.txt'), 'b\n');
    expect(cli(['snapshot', src, '-q', '--time', '2026-11-01T00:00:00Z'], env).code).toBe(0);
    // The second snapshot lacks sub/: once the first is forgotten, sub's tree is used by nothing.
    fs.renameSync(path.join(src, 'sub'), parked);
    expect(cli(['snapshot', src, '-q', '--time', '2026-11-02T00:00:00Z'], env).code).toBe(0);
    expect(cli(['--json', 'forget', '--keep-last', '1'], env).json.removed).toHaveLength(1);
    fs.renameSync(parked, path.join(src, 'sub')); // sub's own listing (its tree blob) is unchanged
    // The host tag's folder (the timed data indexes' folder `t` aside).
    const indexDirs = () =>
      fs.readdirSync(path.join(env.SNAPFILL_REPO, 'index'), { withFileTypes: true }).filter((d) => d.isDirectory() && d.name !== 't');
    expect(indexDirs()).toHaveLength(1);
    const tagDir = path.join(env.SNAPFILL_REPO, 'index', indexDirs()[0].name);
    const treeIndexesBefore = fs.readdirSync(tagDir).length;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2500);
    // Held at its first index write (its tree pack: no data is new): sub's tree was reused.
    const s = await startHeld(['--json', 'snapshot', src], env, '/index/', 1);
    const p1 = prune(env, '0s');
    expect(p1.code, p1.stderr).toBe(0);
    expect(p1.json.packs_marked).toBeGreaterThanOrEqual(1);
    expect(p1.json.packs_deleted).toBe(0); // the snapshot's marker is older than the mark
    s.release();
    const r = await s.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/copied them to new packs/);
    // Its own tree pack and the copy, both below the host's tag; still the only tag.
    expect(indexDirs().map((d) => d.name)).toEqual([path.basename(tagDir)]);
    expect(fs.readdirSync(tagDir).length).toBeGreaterThanOrEqual(treeIndexesBefore + 2);
    const p2 = prune(env, '0s');
    expect(p2.code, p2.stderr).toBe(0);
    expect(p2.json.packs_deleted).toBeGreaterThanOrEqual(1);
    expect(p2.json.packs_unmarked).toBe(0);
    // The host's routine sync lists the copy (below its tag) and drops the deleted pack.
    const sync = cli(['--json', 'catalog', 'sync'], env);
    expect(sync.code, sync.stderr).toBe(0);
    const c = cli(['--json', 'check', '--read-data'], env);
    expect(c.code, c.stdout + c.stderr).toBe(0);
    for (const cache of ['', '-fresh']) {
      const target = path.join(base, 'restore' + cache);
      const rr = cli(['--json', 'restore', r.json.snapshot_id, '--target', target], { ...env, SNAPFILL_CACHE: env.SNAPFILL_CACHE + cache });
      expect(rr.code, rr.stderr).toBe(0);
      expect(diffTrees(describeTree(src), describeTree(path.join(target, src)))).toEqual([]);
    }
  });

  it('refuses a nonsense grace', () => {
    const base = tmpDir();
    const env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    for (const g of ['-1h', 'soon', '5', '400d']) {
      const r = cli(['prune', '--grace', g], env);
      expect(r.code, g).not.toBe(0);
      expect(r.stderr).toMatch(/--grace/);
    }
  });
});
