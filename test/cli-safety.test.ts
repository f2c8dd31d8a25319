import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, repoEnv, tmpDir, write } from './helpers.js';

/**
 * Data safety through the real CLI (issue 13, items 1 and 2): a snapshot's own exclude rules
 * protect what they excluded from `restore --delete` and from `verify`'s "extra" list, and
 * `latest` means the newest snapshot of the group that holds the paths asked for.
 */
describe('excludes are remembered after the snapshot', () => {
  let base: string;
  let pub: string;
  let env: Record<string, string>;

  beforeAll(() => {
    base = tmpDir();
    pub = path.join(base, 'home/alice/public_html');
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    write(`${pub}/index.php`, '<?php echo 1;');
    write(`${pub}/a.tmp`, 'scratch');
    write(`${pub}/wp-content/b.tmp`, 'scratch');
    write(`${pub}/cache/page1.html`, 'cached');
    write(`${pub}/cache/page2.html`, 'cached');
    // A name glob and a path glob: the path glob matches the snapshot's path, not the target's.
    const r = cli(['--json', 'snapshot', pub, '--exclude', '*.tmp', '--exclude', `${pub}/cache`], env);
    expect(r.code, r.stderr).toBe(0);
  });

  it('restore --delete keeps what the snapshot excluded; the dry run lists the deletions in human output', () => {
    write(`${pub}/malware.php`, 'evil');
    write(`${pub}/wp-content/c.tmp`, 'scratch, written after the snapshot');

    const dry = cli(['restore', 'latest', pub, '--delete', '--dry-run'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`${pub}/malware.php`);
    expect(dry.stdout).not.toContain('.tmp');
    expect(dry.stdout).not.toContain(`${pub}/cache`);

    const r = cli(['--json', 'restore', 'latest', pub, '--delete'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.deleted).toBe(1);
    expect(fs.existsSync(`${pub}/malware.php`)).toBe(false);
    for (const kept of ['a.tmp', 'wp-content/b.tmp', 'wp-content/c.tmp', 'cache/page1.html', 'cache/page2.html'])
      expect(fs.existsSync(`${pub}/${kept}`), kept).toBe(true);
  });

  it('verify does not report excluded files as extra', () => {
    write(`${pub}/new.html`, 'new');
    const v = cli(['--json', 'verify', 'latest'], env);
    expect(v.code, v.stderr).toBe(3);
    expect(v.json.extra_paths).toEqual([`${pub}/new.html`]);
    fs.rmSync(`${pub}/new.html`);
    // Directory mtimes moved with the files written and removed: put them back, then all matches.
    expect(cli(['restore', 'latest', pub, '--mode', 'metadata'], env).code).toBe(0);
    const clean = cli(['--json', 'verify', 'latest'], env);
    expect(clean.code, JSON.stringify(clean.json)).toBe(0);
    expect(clean.json).toMatchObject({ ok: true, extra: 0 });
  });

  it('under --target the rules apply to the snapshot path, as when the snapshot was taken', () => {
    const target = path.join(base, 'staging');
    expect(cli(['restore', 'latest', '--target', target], env).code).toBe(0);
    const t = (p: string) => path.join(target, pub, p);
    write(t('x.tmp'), 'scratch');
    write(t('cache/page3.html'), 'cached');
    write(t('stray.html'), 'not in the snapshot');
    const v = cli(['--json', 'verify', 'latest', '--target', target], env);
    expect(v.json.extra_paths).toEqual([`${pub}/stray.html`]);
    const r = cli(['--json', 'restore', 'latest', pub, '--target', target, '--delete'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.deleted).toBe(1);
    expect(fs.existsSync(t('stray.html'))).toBe(false);
    expect(fs.existsSync(t('x.tmp'))).toBe(true);
    expect(fs.existsSync(t('cache/page3.html'))).toBe(true);
  });

  it('--delete above the source paths never removes what the snapshot did not look at', () => {
    // The snapshot holds /…/home/alice only as the way to public_html: logs was never read.
    write(path.join(base, 'home/alice/logs/access.log'), 'GET /\n');
    const r = cli(['--json', 'restore', 'latest', path.join(base, 'home/alice'), '--delete'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.deleted).toBe(0);
    expect(fs.existsSync(path.join(base, 'home/alice/logs/access.log'))).toBe(true);
    expect(cli(['--json', 'verify', 'latest', path.join(base, 'home/alice')], env).json.extra).toBe(0);
  });
});

describe('latest is the newest snapshot of the group that holds the paths', () => {
  let base: string;
  let home: string;
  let pub: string;
  let logs: string;
  let env: Record<string, string>;
  let whole: string; // the nightly snapshot of the whole home tree
  let handMade: string; // one later snapshot of the logs only

  beforeAll(() => {
    base = tmpDir();
    home = path.join(base, 'home');
    pub = `${home}/alice/public_html`;
    logs = `${home}/alice/logs`;
    // A fixed zone, so the time the restore prints can be checked with its offset.
    env = { ...repoEnv(base), TZ: 'Europe/Berlin' };
    expect(cli(['init'], env).code).toBe(0);
    write(`${pub}/index.php`, '<?php echo 1;');
    write(`${pub}/about.html`, 'about');
    write(`${logs}/access.log`, 'GET /\n');
    const a = ['--json', 'snapshot', home, '--host', 'web1', '--tag', 'nightly', '--time', '2026-01-10T02:00:00Z'];
    whole = cli(a, env).json.snapshot_id;
    write(`${logs}/access.log`, 'GET /\nGET /about.html\n');
    handMade = cli(['--json', 'snapshot', logs, '--host', 'web1', '--time', '2026-01-11T09:30:00Z'], env).json.snapshot_id;
    expect(whole).toMatch(/^[0-9a-f]{64}$/);
    expect(handMade).toMatch(/^[0-9a-f]{64}$/);
  });

  it('restore --account uses the group holding the account, and says which snapshot before acting', () => {
    fs.rmSync(`${pub}/index.php`);
    const r = cli(['--json', 'restore', 'latest', '--account', 'alice', '--accounts-root', home, '--dry-run'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.snapshot_id).toBe(whole);
    expect(r.json.files_restored).toBe(1);
    expect(r.json.snapshot).toMatchObject({ id: whole, host: 'web1', paths: [home] });
    // stderr, not the JSON stdout: id, time with its zone, host, paths.
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    const line = r.stderr.split('\n').find((l) => l.includes(whole.slice(0, 8)));
    expect(line, r.stderr).toBeDefined();
    expect(line).toContain('2026-01-10 03:00:00 +01:00');
    expect(line).toContain('web1');
    expect(line).toContain(home);
  });

  it('ls, cat and dump of a path only the older group holds use that group', () => {
    const ls = cli(['ls', 'latest', pub], env);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout.split('\n')).toContain('index.php');
    const cat = cli(['cat', 'latest', `${pub}/about.html`], env);
    expect(cat.code, cat.stderr).toBe(0);
    expect(cat.stdout).toBe('about');
    const dump = cli(['dump', 'latest', pub], env);
    expect(dump.code, dump.stderr).toBe(0);
    expect(dump.stdout).toContain('index.php');
  });

  it('when several groups hold the paths, the newest is used and the choice is named', () => {
    const r = cli(['--json', 'restore', 'latest', logs, '--dry-run'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.snapshot.id).toBe(handMade);
    expect(r.stderr).toMatch(/2 groups/);
    expect(r.stderr).toContain(home);
    // The hand-made snapshot's group alone holds nothing of public_html: never chosen for it.
    const v = cli(['--json', 'verify', 'latest', pub], env);
    expect(v.json.snapshot_id).toBe(whole);
  });

  it('--host, --path and --tag narrow latest on every command that takes a snapshot', () => {
    expect(cli(['--json', 'verify', 'latest', '--tag', 'nightly'], env).json.snapshot_id).toBe(whole);
    expect(cli(['--json', 'verify', 'latest', logs, '--path', home], env).json.snapshot_id).toBe(whole);
    expect(cli(['--json', 'restore', 'latest', logs, '--path', home, '--dry-run'], env).json.snapshot.id).toBe(whole);
    expect(cli(['--json', 'ls', 'latest', logs, '--tag', 'nightly'], env).json.snapshot_id).toBe(whole);
    expect(cli(['cat', 'latest', `${logs}/access.log`, '--path', home], env).stdout).toBe('GET /\n');
    expect(cli(['cat', 'latest', `${logs}/access.log`], env).stdout).toBe('GET /\nGET /about.html\n');
    expect(cli(['dump', 'latest', logs, '--tag', 'nightly'], env).code).toBe(0);
    const d = cli(['--json', 'diff', 'latest', 'latest', '--path', home], env);
    expect(d.code, d.stderr).toBe(0);
    expect([d.json.snapshot_a, d.json.snapshot_b]).toEqual([whole, whole]);
  });

  it('when no group holds the paths: one line naming the paths and the filters', () => {
    const r = cli(['ls', 'latest', pub, '--host', 'web2'], env);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(pub);
    expect(lines[0]).toContain('--host web2');
    const t = cli(['restore', 'latest', pub, '--tag', 'nightly', '--path', logs, '--dry-run'], env);
    expect(t.code).toBe(1);
    expect(t.stderr).toContain(pub);
    expect(t.stderr).toContain('--tag nightly');
  });
});
