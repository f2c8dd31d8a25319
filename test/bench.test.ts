// Runs the benchmark generator and runner at a tiny size so bench/ cannot silently rot.
// No timing is asserted (speed is what bench/ measures, not what tests check): only that
// every scenario produced a checked result or a stated reason to skip, and that the table
// and the results file are written.
import { describe, expect, it, onTestFinished } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { ROOT, requireSystem, tmpDir } from './helpers.js';

/** The Debian packages of the peers bench/run.mjs compares against. */
const PEER_PACKAGES: Record<string, string> = { restic: 'restic', borg: 'borgbackup', rsync: 'rsync', tar: 'tar' };

const RUNNER = path.join(ROOT, 'bench', 'run.mjs');
const GENERATOR = path.join(ROOT, 'bench', 'gen-dataset.mjs');

/** Runs a node script without blocking the event loop (vitest's worker must keep answering its RPC). */
function runNode(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

interface ToolCell {
  median?: number | null;
  ok?: boolean;
  skipped?: string;
  wrong?: string[];
}
interface Row {
  fs: string;
  scenario: string;
  title: string;
  tools: Record<string, ToolCell>;
}

describe('bench', () => {
  it('generates the same dataset from the same seed', () => {
    const base = tmpDir('snapfill-bench-gen-');
    onTestFinished(() => fs.rmSync(base, { recursive: true, force: true }));
    const describeGen = (out: string) => {
      const r = spawnSync(process.execPath, [GENERATOR, '--out', out, '--files', '200', '--seed', '7', '--no-create-users', '--json'], {
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout);
      const files: string[] = [];
      const walk = (d: string) => {
        for (const n of fs.readdirSync(d).sort()) {
          const f = path.join(d, n);
          const st = fs.lstatSync(f);
          if (st.isDirectory()) walk(f);
          else
            files.push(
              `${path.relative(out, f)} ${st.size} ${(st.mode & 0o7777).toString(8)} ${st.isSymbolicLink() ? fs.readlinkSync(f) : ''}`,
            );
        }
      };
      walk(out);
      return { s, files };
    };
    const a = describeGen(path.join(base, 'a'));
    const b = describeGen(path.join(base, 'b'));
    expect(a.files).toEqual(b.files);
    expect(a.s.files).toBeGreaterThan(150);
    expect(a.s.symlinks).toBeGreaterThan(0);
    expect(a.s.hardlinks).toBeGreaterThan(0);
    // WordPress core is byte-identical across accounts.
    const core = (acct: string) => fs.readFileSync(path.join(base, 'a', 'home', acct, 'public_html', 'index.php'));
    expect(core('sfb00001').equals(core('sfb00002'))).toBe(true);
  });

  it('runs every scenario at a tiny size and checks the results', async () => {
    const base = tmpDir('snapfill-bench-run-');
    onTestFinished(() => fs.rmSync(base, { recursive: true, force: true }));
    const fastDir = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/snapfill-bench-test-') : path.join(base, 'fast');
    onTestFinished(() => fs.rmSync(fastDir, { recursive: true, force: true })); // exit hooks do not run in vitest's forks
    const md = path.join(base, 'BENCHMARKS.md');
    fs.writeFileSync(md, '# Benchmarks\n\nhand-written text stays\n');
    const r = await runNode([
      RUNNER,
      '--profile',
      'tiny',
      '--runs',
      '2', // the second run takes the tools in reverse order: both orders check out
      '--fs',
      'tmpfs',
      '--tmpfs-dir',
      fastDir,
      '--no-install',
      '--no-create-users',
      '--results-dir',
      path.join(base, 'results'),
      '--markdown',
      md,
    ]);
    expect(r.status, r.stderr.slice(-3000) + r.stdout.slice(-2000)).toBe(0);
    expect(r.stdout).toContain('| scenario | snapfill |');

    const files = fs.readdirSync(path.join(base, 'results'));
    expect(files).toHaveLength(1);
    const res = JSON.parse(fs.readFileSync(path.join(base, 'results', files[0]), 'utf8'));
    const rows: Row[] = res.summary.rows;
    const scenarios = [
      'full_snapshot',
      'nochange_snapshot',
      'churn_snapshot',
      'repo_size',
      'full_restore',
      'restore_missing_7d',
      'restore_missing_10pct',
      'metadata_repair',
      'intact_missing',
      'intact_metadata',
      'account_restore',
    ];
    expect(rows.map((x) => x.scenario)).toEqual(scenarios);
    for (const row of rows) {
      for (const [tool, c] of Object.entries(row.tools)) {
        if (c.skipped) {
          // A peer that is not installed is a missing system package: in CI that fails, naming it.
          if (/is not installed/.test(c.skipped)) requireSystem(PEER_PACKAGES[tool] ?? tool, false);
          else console.log(`bench test: ${row.scenario} / ${tool} not run: ${c.skipped}`);
          continue;
        }
        expect(c.ok, `${row.scenario} / ${tool}: ${c.wrong?.join('; ')}`).toBe(true);
        expect(typeof c.median).toBe('number');
      }
      expect(row.tools.snapfill?.median ?? row.tools.snapfill?.skipped, `${row.scenario}: snapfill has no result`).toBeTruthy();
    }
    expect(res.catalog_growth?.after_first?.metadata_bytes).toBeGreaterThan(0);
    expect(res.datasets.tmpfs.files).toBeGreaterThan(200);

    const text = fs.readFileSync(md, 'utf8');
    expect(text).toContain('hand-written text stays');
    expect(text).toContain('<!-- bench:tiny:begin -->');
    expect(text).toContain('| full restore to an empty target |');
  });
  it('--source: a real tree (copied with owners, modes, times, links) in place of the generated one', async () => {
    const base = tmpDir('snapfill-bench-source-');
    onTestFinished(() => fs.rmSync(base, { recursive: true, force: true }));
    const md = path.join(base, 'BENCHMARKS.md');
    fs.writeFileSync(md, '# Benchmarks\n');
    const sources = [path.join(ROOT, 'docs'), path.join(ROOT, 'native')];
    const r = await runNode([
      RUNNER,
      '--source',
      sources.join(','),
      '--runs',
      '1',
      '--fs',
      'disk',
      '--disk-dir',
      path.join(base, 'work'),
      '--tools',
      'snapfill,tar,rsync',
      '--scenarios',
      'full_snapshot,full_restore,restore_missing_10pct,metadata_repair',
      '--no-install',
      '--results-dir',
      path.join(base, 'results'),
      '--markdown',
      md,
    ]);
    // 3: some tool's result failed its check. snapfill's rows are checked one by one below; a
    // peer's may fail on its own, which the table shows as wrong (on a loaded CI machine rsync -aH
    // once restored a directory of docs/ with its copy time, not the recorded mtime).
    expect([0, 3], r.stderr.slice(-3000) + r.stdout.slice(-2000)).toContain(r.status);
    const res = JSON.parse(fs.readFileSync(path.join(base, 'results', fs.readdirSync(path.join(base, 'results'))[0]), 'utf8'));
    const files = sources.reduce(
      (n, d) => n + fs.readdirSync(d, { recursive: true }).filter((f) => fs.lstatSync(path.join(d, String(f))).isFile()).length,
      0,
    );
    expect(res.datasets.disk.files).toBe(files);
    expect(res.datasets.disk.accounts).toBe(2);
    for (const row of res.summary.rows as Row[]) {
      const c = row.tools.snapfill;
      expect(c?.ok, `${row.scenario}: ${c?.wrong?.join('; ') ?? c?.skipped}`).toBe(true);
    }
    expect(fs.readFileSync(md, 'utf8')).toContain('<!-- bench:source:begin -->');
  });
});
