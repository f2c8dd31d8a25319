import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { cli, repoEnv, tmpDir, write, IS_ROOT } from './helpers.js';

/** `verify`: the live tree against a snapshot, read-only, for each kind of difference. */
describe('verify', () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;

  beforeAll(() => {
    base = tmpDir();
    src = path.join(base, 'src');
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    for (let i = 0; i < 30; i++) write(`${src}/acct${i % 3}/d${i % 5}/f${i}.txt`, `content ${i}\n`.repeat(i + 1));
    write(`${src}/acct0/same-size.txt`, 'AAAA');
    fs.symlinkSync('d0/f0.txt', `${src}/acct0/link`);
    fs.mkdirSync(`${src}/acct1/gone-dir/sub`, { recursive: true });
    write(`${src}/acct1/gone-dir/sub/x`, 'x');
    expect(cli(['--json', 'snapshot', src], env).json.errors).toEqual([]);
  });

  it('an untouched tree verifies clean (exit 0), and so does a restored copy with --target', () => {
    const r = cli(['--json', 'verify', 'latest'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, missing: 0, changed: 0, metadata_mismatch: 0, extra: 0 });
    expect(r.json.checked).toBeGreaterThan(35);
    const target = path.join(base, 'restored');
    expect(cli(['restore', 'latest', '--target', target], env).code).toBe(0);
    const v = cli(['--json', 'verify', 'latest', '--target', target, '--checksum'], env);
    expect(v.json, JSON.stringify(v.json)).toMatchObject({ ok: true, missing: 0, changed: 0, metadata_mismatch: 0, extra: 0 });
  });

  it('reports missing, changed, metadata drift and extra entries, each with its path', () => {
    const target = path.join(base, 'work');
    expect(cli(['restore', 'latest', '--target', target], env).code).toBe(0);
    const t = (p: string) => path.join(target, src, p);
    fs.rmSync(t('acct0/d0/f0.txt'));
    fs.rmSync(t('acct1/gone-dir'), { recursive: true });
    fs.appendFileSync(t('acct2/d2/f2.txt'), 'more');
    fs.chmodSync(t('acct1/d1/f1.txt'), 0o600);
    write(t('acct2/new-file'), 'new');
    // Same size, same mtime, other bytes: only --checksum can see it.
    // (issue 17) mtimes compare to the nanosecond, and utimesSync takes a double: the times are
    // carried over exactly by `touch -r` (utimensat) through a reference file.
    execFileSync('touch', ['-r', t('acct0/same-size.txt'), `${target}/ref`]);
    fs.writeFileSync(t('acct0/same-size.txt'), 'BBBB');
    execFileSync('touch', ['-r', `${target}/ref`, t('acct0/same-size.txt')]);
    fs.rmSync(`${target}/ref`);
    if (IS_ROOT) fs.chownSync(t('acct0/d3/f3.txt'), 12345, 12345);

    const r = cli(['--json', 'verify', 'latest', '--target', target], env);
    expect(r.code).toBe(3);
    expect(r.json.ok).toBe(false);
    expect(r.json.missing_paths).toEqual([
      `${src}/acct0/d0/f0.txt`,
      `${src}/acct1/gone-dir`,
      `${src}/acct1/gone-dir/sub`,
      `${src}/acct1/gone-dir/sub/x`,
    ]);
    expect(r.json.missing).toBe(4);
    expect(r.json.changed_paths.map((c: any) => c.path)).toEqual([`${src}/acct2/d2/f2.txt`]);
    const meta = Object.fromEntries(r.json.metadata_mismatch_paths.map((m: any) => [m.path, m.fields]));
    expect(meta[`${src}/acct1/d1/f1.txt`]).toEqual(['mode']);
    if (IS_ROOT) expect(meta[`${src}/acct0/d3/f3.txt`]).toEqual(['owner']);
    expect(r.json.extra_paths).toEqual([`${src}/acct2/new-file`]);

    const c = cli(['--json', 'verify', 'latest', '--target', target, '--checksum'], env);
    expect(c.json.changed_paths.map((x: any) => x.path)).toEqual([`${src}/acct0/same-size.txt`, `${src}/acct2/d2/f2.txt`]);

    // Only one subtree, and the human report.
    const one = cli(['--json', 'verify', 'latest', `${src}/acct0/d0`, '--target', target], env);
    expect(one.json.missing_paths).toEqual([`${src}/acct0/d0/f0.txt`]);
    expect(one.json.extra).toBe(0);
    const h = cli(['verify', 'latest', '--target', target, '--show', '1'], env);
    expect(h.stdout).toContain('4 missing');
    expect(h.stdout).toContain('... and 3 more');
  });

  it('a path not in the snapshot is an error, not a silent pass', () => {
    const r = cli(['--json', 'verify', 'latest', '/no/such/path'], env);
    expect(r.code).not.toBe(0);
    expect(r.json.errors[0].message).toContain('not in snapshot');
  });
});
