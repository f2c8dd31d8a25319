import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, IS_ROOT, cli, repoEnv, tmpDir, write } from './helpers.js';

const NOBODY = 65534;

/**
 * A repository and a source tree owned by root (dirs 0755, files 0644), one snapshot of it,
 * and a cache directory the unprivileged user may write: what a hosting admin hands a
 * support user who may look, but not change the backups.
 */
function setup() {
  const base = tmpDir();
  fs.chmodSync(base, 0o755);
  const repo = path.join(base, 'repo');
  const src = path.join(base, 'src');
  for (let i = 0; i < 40; i++) write(path.join(src, 'site', `page${i}.html`), `page ${i}\n`);
  const rootEnv = { ...repoEnv(base), SNAPFILL_REPO: repo, SNAPFILL_CACHE: path.join(base, 'rootcache') };
  expect(cli(['init'], rootEnv).code).toBe(0);
  expect(cli(['snapshot', src], rootEnv).code).toBe(0);
  spawnSync('chmod', ['-R', 'u=rwX,go=rX', repo, src]);
  const home = path.join(base, 'home');
  fs.mkdirSync(home);
  fs.chownSync(home, NOBODY, NOBODY);
  const asNobody = (args: string[]) =>
    spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...rootEnv, HOME: home, SNAPFILL_REPO: repo, SNAPFILL_CACHE: path.join(home, 'cache'), SNAPFILL_CONFIG: '' },
    });
  return { base, repo, src, home, asNobody };
}

const locks = (repo: string) => fs.readdirSync(path.join(repo, 'locks'));

// Switching to another user needs root; in CI the suite runs as root (.ci/run), so this never skips there.
describe.runIf(IS_ROOT || process.env.CI)('running without root on a repository the user can only read', () => {
  it('runs the read-only commands and says that no lock was taken', () => {
    const t = setup();
    const file = path.join(t.src, 'site', 'page1.html');
    const ok = (args: string[]) => {
      const r = t.asNobody(args);
      expect(r.status, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      return r;
    };
    expect(ok(['snapshots']).stdout).toMatch(/1 snapshots/);
    expect(ok(['ls', 'latest', path.join(t.src, 'site')]).stdout).toContain('page1.html');
    expect(ok(['find', 'page1.html']).stdout).toContain(file);
    expect(ok(['cat', 'latest', file]).stdout).toBe('page 1\n');
    expect(ok(['dump', 'latest', path.join(t.src, 'site')]).stdout.length).toBeGreaterThan(1024);
    expect(ok(['verify', 'latest']).stdout).toMatch(/the tree matches the snapshot/);
    const check = ok(['check', '--read-data']);
    expect(check.stderr).toMatch(/read-only for this user; no lock was taken/);
    const target = path.join(t.home, 'staging');
    const restore = ok(['restore', 'latest', '--target', target]);
    expect(restore.stderr).toMatch(/read-only for this user; no lock was taken/);
    expect(fs.readFileSync(path.join(target, file), 'utf8')).toBe('page 1\n');
    expect(locks(t.repo)).toEqual([]);
  });

  it('restoring in place: says up front what it cannot do, and groups the permission errors', () => {
    const t = setup();
    for (let i = 0; i < 40; i++) fs.rmSync(path.join(t.src, 'site', `page${i}.html`));
    const r = t.asNobody(['restore', 'latest']);
    expect(r.status, r.stderr).toBe(3);
    expect(r.stderr.match(/not root/g)).toHaveLength(1);
    expect(r.stderr).toMatch(/restoring as uid 65534, not root: restored files belong to this user .*other users' files/);
    expect(r.stderr).toMatch(/^error: 40 paths: permission denied \(EACCES\), first: \S+\/site\/page\d+\.html$/m);
    expect(r.stderr.split('\n').filter((l) => l.includes('EACCES'))).toHaveLength(1);
    const json = t.asNobody(['--json', 'restore', 'latest']);
    const res = JSON.parse(json.stdout.trim().split('\n').pop()!);
    expect(res.errors).toHaveLength(40); // --json keeps every error
    expect(res.error_groups).toEqual([
      expect.objectContaining({ code: 'EACCES', cause: 'permission denied', count: 40, first: expect.stringMatching(/page\d+\.html$/) }),
    ]);
  });
});
