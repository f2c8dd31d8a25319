import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { BIN, cli, repoEnv, tmpDir, write } from './helpers.js';

function setup(extra: Record<string, unknown> = {}) {
  const base = tmpDir();
  const env = repoEnv(base);
  const src = path.join(base, 'src');
  write(path.join(src, 'site', 'index.php'), '<?php echo 1;');
  write(path.join(src, 'site', 'upload.bin'), Buffer.alloc(50_000, 7));
  expect(cli(['init'], env).code).toBe(0);
  const cfg = path.join(base, 'config.json');
  const conf = { repository: env.SNAPFILL_REPO, sources: [src], ...extra };
  write(cfg, JSON.stringify(conf, null, 2));
  const snapshots = () => cli(['--json', 'snapshots'], env).json.snapshots as any[];
  return { base, env, src, cfg, snapshots };
}

async function waitFor(file: string, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!fs.existsSync(file)) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${file}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readEnvFile(f: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readFileSync(f, 'utf8')
      .trim()
      .split('\n')
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

describe('snapfill run', () => {
  it('runs pre-hooks, snapshot, retention, prune when due, post-hooks; reports; writes monitoring output', () => {
    const base0 = tmpDir();
    const prom = path.join(base0, 'textfile', 'snapfill.prom');
    const log = path.join(base0, 'log', 'snapfill.jsonl');
    const t = setup({
      hooks: { pre: [`env | grep ^SNAPFILL_ > ${base0}/pre.env`], post: [`env | grep ^SNAPFILL_ > ${base0}/post.env`] },
      retention: { keep_last: 2 },
      monitoring: { prometheus_textfile: prom, json_log: log },
    });
    const r1 = cli(['--json', '--config', t.cfg, 'run'], t.env);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.stderr).toMatch(
      /^snapfill run success: snapshot [0-9a-f]{8} \(2 files, 2 new, 0 changed, \d+ B added\), 0 forgotten, 1 kept, pruned \d+ B, 0 errors/m,
    );
    const rep = r1.json;
    expect(rep.status).toBe('success');
    expect(rep.snapshot.files_total).toBe(2);
    expect(rep.prune_due).toBe(true);
    expect(rep.prune.snapshots).toBe(1);
    expect(rep.hooks.map((h: any) => [h.phase, h.exit_code])).toEqual([
      ['pre', 0],
      ['post', 0],
    ]);

    const pre = readEnvFile(`${base0}/pre.env`);
    expect(pre.SNAPFILL_PHASE).toBe('pre');
    expect(pre.SNAPFILL_RUN_ID).toBe(rep.run_id);
    expect(pre.SNAPFILL_SOURCES).toBe(t.src);
    expect(pre.SNAPFILL_STATUS).toBeUndefined();
    const post = readEnvFile(`${base0}/post.env`);
    expect(post).toMatchObject({
      SNAPFILL_PHASE: 'post',
      SNAPFILL_STATUS: 'success',
      SNAPFILL_SNAPSHOT_ID: rep.snapshot.snapshot_id,
      SNAPFILL_FILES_TOTAL: '2',
      SNAPFILL_ERRORS: '0',
    });

    const metrics = fs.readFileSync(prom, 'utf8');
    expect(metrics).toMatch(/^# TYPE snapfill_last_success_timestamp_seconds gauge$/m);
    expect(metrics).toMatch(/^snapfill_last_run_success 1$/m);
    expect(metrics).toMatch(/^snapfill_last_run_files_total 2$/m);
    expect(metrics).toMatch(/^snapfill_last_run_errors 0$/m);
    const lastSuccess = Number(/^snapfill_last_success_timestamp_seconds (\S+)$/m.exec(metrics)![1]);
    expect(lastSuccess).toBeGreaterThan(Date.now() / 1000 - 600);
    expect(fs.readdirSync(path.dirname(prom))).toEqual(['snapfill.prom']); // no temp file left behind
    const lines = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ level: 'info', msg: 'run started', run_id: rep.run_id });
    expect(lines.map((l) => l.msg)).toEqual([
      'run started',
      'pre-hook finished',
      'snapshot saved',
      'retention applied',
      'prune finished',
      'post-hook finished',
      'run finished',
    ]);

    // Second and third runs: retention keeps 2; prune is not due again within 24 h.
    write(path.join(t.src, 'site', 'new.txt'), 'new');
    const r2 = cli(['--json', '--config', t.cfg, 'run'], t.env);
    expect(r2.code).toBe(0);
    expect(r2.json.prune_due).toBe(false);
    expect(r2.json.prune).toBeNull();
    const r3 = cli(['--json', '--config', t.cfg, 'run'], t.env);
    expect(r3.json.forget.removed).toHaveLength(1);
    expect(t.snapshots().map((s) => s.id)).toEqual([r2.json.snapshot.snapshot_id, r3.json.snapshot.snapshot_id]);

    // A failed run keeps the last success time and reports failure.
    const cfg = JSON.parse(fs.readFileSync(t.cfg, 'utf8'));
    cfg.hooks.pre = ['exit 3'];
    write(t.cfg, JSON.stringify(cfg));
    expect(cli(['--config', t.cfg, 'run'], t.env).code).toBe(1);
    const after = fs.readFileSync(prom, 'utf8');
    expect(after).toMatch(/^snapfill_last_run_success 0$/m);
    expect(Number(/^snapfill_last_success_timestamp_seconds (\S+)$/m.exec(after)![1])).toBeGreaterThanOrEqual(lastSuccess);
  });

  it('aborts on a failed pre-hook, still runs post-hooks with the status', () => {
    const t = setup();
    const mark = path.join(t.base, 'post.txt');
    const cfg = {
      repository: t.env.SNAPFILL_REPO,
      sources: [t.src],
      hooks: { pre: ['echo dumping; exit 7'], post: [`echo "$SNAPFILL_STATUS [$SNAPFILL_SNAPSHOT_ID]" > ${mark}`] },
    };
    write(t.cfg, JSON.stringify(cfg));
    const r = cli(['--json', '--config', t.cfg, 'run'], t.env);
    expect(r.code).toBe(1);
    expect(r.json.status).toBe('failed');
    expect(r.json.snapshot).toBeNull();
    expect(r.json.errors[0].message).toMatch(
      /pre-hook failed \(exit 7\): echo dumping; exit 7; run aborted \(set hooks.on_pre_failure to "continue"/,
    );
    expect(r.stderr).toMatch(/dumping/); // hook output goes to stderr, stdout stays JSON
    expect(fs.readFileSync(mark, 'utf8')).toBe('failed []\n');
    expect(t.snapshots()).toHaveLength(0);

    // Configured to go on: the snapshot is taken, the run reports "partial" (exit 3).
    write(t.cfg, JSON.stringify({ ...cfg, hooks: { ...cfg.hooks, on_pre_failure: 'continue' } }));
    const c = cli(['--json', '--config', t.cfg, 'run'], t.env);
    expect(c.code).toBe(3);
    expect(c.json.status).toBe('partial');
    expect(c.json.snapshot.snapshot_id).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.readFileSync(mark, 'utf8')).toBe(`partial [${c.json.snapshot.snapshot_id}]\n`);
    expect(t.snapshots()).toHaveLength(1);

    // A hung hook is stopped by its timeout and counts as a failure.
    write(t.cfg, JSON.stringify({ ...cfg, hooks: { pre: ['sleep 60'], timeout_minutes: 0.01 } }));
    const h = cli(['--json', '--config', t.cfg, 'run'], t.env);
    expect(h.code).toBe(1);
    expect(h.json.hooks[0]).toMatchObject({ timed_out: true });
    expect(h.json.errors[0].message).toMatch(/pre-hook failed \(timed out\)/);
  });

  it('refuses to overlap: a second run exits at once with code 4 while the first is going', async () => {
    const t = setup();
    const started = path.join(t.base, 'started');
    const release = path.join(t.base, 'release');
    // The first run's pre-hook holds it open until the test says so (bounded: 60 s).
    write(
      t.cfg,
      JSON.stringify({
        repository: t.env.SNAPFILL_REPO,
        sources: [t.src],
        hooks: { pre: [`touch ${started}; i=0; while [ ! -e ${release} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done`] },
      }),
    );
    const first = spawn(process.execPath, [BIN, '--config', t.cfg, 'run'], {
      env: { ...process.env, ...t.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let firstOut = '';
    first.stdout.on('data', (d) => {
      firstOut += d;
    });
    first.stderr.on('data', (d) => {
      firstOut += d;
    });
    const firstDone = new Promise<number>((resolve) => first.on('close', (code) => resolve(code ?? -1)));
    await waitFor(started);
    const second = cli(['--json', '--config', t.cfg, 'run'], t.env);
    expect(second.code).toBe(4);
    expect(second.stderr).toMatch(/another snapfill run is still going \(pid \d+, lock .*run\.lock\); not starting a second one/);
    expect(second.json.error).toMatch(/another snapfill run is still going/);
    fs.writeFileSync(release, '');
    expect(await firstDone, firstOut).toBe(0);
    expect(t.snapshots()).toHaveLength(1);
    // The lock is gone with its process: the next run goes ahead.
    expect(cli(['--config', t.cfg, 'run'], t.env).code).toBe(0);
  });

  it('applies throttle settings from flags and reports the wait', () => {
    const t = setup();
    const prio = path.join(t.base, 'prio.txt');
    // The hook inherits the run's priorities: it records them.
    write(t.cfg, JSON.stringify({ repository: t.env.SNAPFILL_REPO, sources: [t.src], hooks: { pre: [`(nice; ionice -p $$) > ${prio}`] } }));
    write(path.join(t.src, 'big.bin'), Buffer.alloc(600_000, 1));
    const r = cli(['--json', '--config', t.cfg, 'run', '--limit-read', '0.5', '--io-priority', 'idle', '--max-load', '1000'], t.env);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(prio, 'utf8')).toBe('19\nidle\n');
    // ~650 kB at 0.5 MB/s: by the limiter's own accounting every byte read went through it and
    // was paid for by a wait or by elapsed time (a loaded machine pays with elapsed time, so
    // the wait alone is no measure: it can be 0 when the machine was slow enough by itself).
    expect(r.json.throttle.read_bytes).toBe(r.json.snapshot.bytes_read);
    expect(r.json.throttle.read_bytes).toBeGreaterThanOrEqual(600_000);
    expect(r.json.throttle.read_paced_s).toBeGreaterThanOrEqual(r.json.throttle.read_bytes / 500_000 - 0.001);
    expect(cli(['--config', t.cfg, 'run', '--io-priority', 'low'], t.env).stderr).toMatch(/--io-priority: expected idle or normal/);
  });
});

describe('snapfill run after another host pruned', () => {
  it("keeps this host's catalog able to restore (blob locations refilled after a repack elsewhere)", () => {
    const t = setup();
    const hostA = { ...t.env, SNAPFILL_CACHE: path.join(t.base, 'cache-a') };
    const hostB = t.env;
    write(path.join(t.src, 'site', 'a.bin'), Buffer.alloc(40_000, 1));
    write(path.join(t.src, 'site', 'b.bin'), Buffer.alloc(200_000, 2));
    expect(cli(['snapshot', t.src, '-q', '--time', '2026-10-01T00:00:00Z'], hostA).code).toBe(0);
    write(path.join(t.src, 'site', 'b.bin'), Buffer.alloc(200_000, 3));
    expect(cli(['snapshot', t.src, '-q', '--time', '2026-11-01T00:00:00Z'], hostA).code).toBe(0);
    expect(cli(['snapshots', '-q'], hostB).code).toBe(0); // B's catalog knows the old packs
    const p = cli(['--json', 'forget', '--keep-last', '1', '--prune'], hostA);
    expect(p.code, p.stderr).toBe(0);
    expect(p.json.prune.packs_repacked).toBeGreaterThan(0); // a.bin moved to a new pack
    // No prune on B: prune would repair B's catalog too; this checks the run's own repair.
    write(t.cfg, JSON.stringify({ repository: t.env.SNAPFILL_REPO, sources: [t.src], prune: { enabled: false } }));
    const r = cli(['--json', '--config', t.cfg, 'run'], hostB);
    expect(r.code, r.stderr).toBe(0);
    // (The catalog keeps every location of a blob, so the repack elsewhere needs no repair here.)
    const target = path.join(t.base, 'out');
    const res = cli(['--json', 'restore', r.json.snapshot.snapshot_id, '--target', target, '--mode', 'all'], hostB);
    expect(res.code, res.stdout.slice(0, 1000)).toBe(0);
    expect(fs.readFileSync(path.join(target, t.src, 'site', 'a.bin'))).toEqual(Buffer.alloc(40_000, 1));
  });
});
