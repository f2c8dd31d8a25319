import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, IS_ROOT, cli, testPasswordFile, tmpDir, write } from './helpers.js';

// The repositories here are encrypted like every test repository (test/helpers.ts repoEnv).
const PW = { SNAPFILL_PASSWORD_FILE: testPasswordFile(), SNAPFILL_INSECURE_TEST_KDF: '1' };

/** Two repositories, each with one snapshot of its own source, and a config file naming the first. */
function setup(extra: Record<string, unknown> = {}) {
  const base = tmpDir();
  const cache = path.join(base, 'cache');
  const repos = { file: path.join(base, 'repo-file'), env: path.join(base, 'repo-env'), flag: path.join(base, 'repo-flag') };
  const ids: Record<string, string> = {};
  for (const [k, repo] of Object.entries(repos)) {
    const src = path.join(base, `src-${k}`);
    write(path.join(src, 'f.txt'), k);
    expect(cli(['--repo', repo, 'init'], { ...PW, SNAPFILL_CACHE: cache }).code).toBe(0);
    ids[k] = cli(['--json', '--repo', repo, 'snapshot', src], { ...PW, SNAPFILL_CACHE: cache }).json.snapshot_id;
  }
  const cfg = path.join(base, 'config.json');
  write(cfg, JSON.stringify({ repository: repos.file, sources: [path.join(base, 'src-file')], ...extra }));
  // No SNAPFILL_REPO from the test's own environment: the file must be what names the repository.
  const env = { ...PW, SNAPFILL_CACHE: cache, SNAPFILL_REPO: '', SNAPFILL_CONFIG: '' };
  return { base, cache, repos, ids, cfg, env };
}

const listed = (r: { json: any; stderr: string }) => {
  expect(r.json?.snapshots, r.stderr).toBeDefined();
  return r.json.snapshots.map((s: any) => s.id);
};

describe('every command reads the config file (flags > env > file)', () => {
  it('takes the repository from --config or SNAPFILL_CONFIG, and lets env and flags override it', () => {
    const t = setup();
    expect(listed(cli(['--json', '--config', t.cfg, 'snapshots'], t.env))).toEqual([t.ids.file]);
    expect(listed(cli(['--json', 'snapshots'], { ...t.env, SNAPFILL_CONFIG: t.cfg }))).toEqual([t.ids.file]);
    expect(listed(cli(['--json', '--config', t.cfg, 'snapshots'], { ...t.env, SNAPFILL_REPO: t.repos.env }))).toEqual([t.ids.env]);
    const flag = cli(['--json', '--config', t.cfg, '--repo', t.repos.flag, 'snapshots'], { ...t.env, SNAPFILL_REPO: t.repos.env });
    expect(listed(flag)).toEqual([t.ids.flag]);
    // Read-only commands and the ones that write alike: ls, check, stats, unlock, snapshot.
    expect(cli(['--config', t.cfg, 'ls', 'latest', path.join(t.base, 'src-file')], t.env).stdout).toContain('f.txt');
    expect(cli(['--json', '--config', t.cfg, 'check'], t.env).json.snapshots_checked).toBe(1);
    expect(cli(['--json', '--config', t.cfg, 'stats'], t.env).json.snapshots).toBe(1);
    expect(cli(['--config', t.cfg, 'unlock'], t.env).code).toBe(0);
    const snap = cli(['--json', '--config', t.cfg, 'snapshot', path.join(t.base, 'src-file')], t.env);
    expect(snap.code, snap.stderr).toBe(0);
    expect(listed(cli(['--json', '--config', t.cfg, 'snapshots'], t.env))).toHaveLength(2);
  });

  it('takes the catalog location from the file too', () => {
    const t = setup();
    const catalog = path.join(t.base, 'from-config', 'catalog.db');
    write(t.cfg, JSON.stringify({ repository: t.repos.file, catalog, sources: ['/srv'] }));
    expect(cli(['--config', t.cfg, 'snapshots'], t.env).code).toBe(0);
    expect(fs.existsSync(catalog)).toBe(true);
  });

  it('fails closed, in one line, on a config file that is missing, unreadable or invalid', () => {
    const t = setup();
    const missing = cli(['--config', path.join(t.base, 'none.json'), 'snapshots'], t.env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^snapfill: config \S+none\.json \(from --config\): the config file does not exist/);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    const dir = cli(['snapshots'], { ...t.env, SNAPFILL_CONFIG: t.base }); // a directory: cannot be read as a file
    expect(dir.code).toBe(1);
    expect(dir.stderr).toMatch(/config \S+ \(from SNAPFILL_CONFIG\): the config file cannot be read \(EISDIR\)/);
    write(t.cfg, JSON.stringify({ repository: t.repos.file, sources: ['/srv'], retention: { keep_dayly: 7 } }));
    const typo = cli(['--config', t.cfg, 'ls', 'latest'], t.env);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/^snapfill: config \S+ \(from --config\): retention\.keep_dayly: unknown key/);
    expect(typo.stderr.trim().split('\n')).toHaveLength(1);
    write(t.cfg, '{"repository": ');
    expect(cli(['--config', t.cfg, 'check'], t.env).stderr).toMatch(/not valid JSON/);
  });

  it('says where it looked when no repository is found', () => {
    const t = setup();
    write(t.cfg, JSON.stringify({ repository: path.join(t.base, 'gone'), sources: ['/srv'] }));
    const r = cli(['--config', t.cfg, 'snapshots'], t.env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `no snapfill repository at ${path.join(t.base, 'gone')}: looked at --repo (not given), SNAPFILL_REPO (empty), config ${t.cfg} (from --config): "repository": ${path.join(t.base, 'gone')}`,
    );
    // Nothing named anywhere: the default location, looked at last. As root the default is
    // /var/lib/snapfill/repo (shared with this machine), so that case runs as nobody.
    const home = path.join(t.base, 'home');
    fs.mkdirSync(home, { mode: 0o777 });
    fs.chmodSync(t.base, 0o755);
    fs.chmodSync(home, 0o777);
    const env = { ...process.env, ...PW, HOME: home, SNAPFILL_CACHE: path.join(home, 'cache'), SNAPFILL_REPO: '', SNAPFILL_CONFIG: '' };
    const asUser = IS_ROOT ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'] : [];
    const n = spawnSync(asUser[0] ?? process.execPath, [...asUser.slice(1), ...(IS_ROOT ? [process.execPath] : []), BIN, 'snapshots'], {
      encoding: 'utf8',
      env,
    });
    expect(n.status, n.stderr).toBe(1);
    expect(n.stderr).toContain(
      `no repository configured: looked at --repo (not given), SNAPFILL_REPO (empty), config /etc/snapfill/config.json (does not exist; --config / SNAPFILL_CONFIG not given), the default location ${home}/.local/share/snapfill/repo`,
    );
  });
});

describe('snapfill config check / doctor', () => {
  function installed(extra: Record<string, unknown> = {}) {
    const t = setup({ monitoring: { prometheus_textfile: 'PROM' }, ...extra });
    const prom = path.join(t.base, 'snapfill.prom');
    write(t.cfg, fs.readFileSync(t.cfg, 'utf8').replace('PROM', prom));
    const root = path.join(t.base, 'root');
    expect(cli(['--config', t.cfg, 'schedule', 'install', '--root', root, '--init', 'cron'], t.env).code).toBe(0);
    return { ...t, prom, root };
  }

  it('reports config, repository, locks, last run, schedule and free space; exit 0 when all is well', () => {
    const t = installed();
    const run = cli(['--config', t.cfg, 'run'], t.env);
    expect(run.code, run.stderr).toBe(0);
    const r = cli(['--json', '--config', t.cfg, 'config', 'check', '--root', t.root], t.env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const by = Object.fromEntries(r.json.checks.map((c: any) => [c.name, c]));
    expect(Object.keys(by).sort()).toEqual(['config', 'last_run', 'locks', 'repository', 'schedule', 'space_cache', 'space_repository']);
    for (const c of r.json.checks) expect(c.status, `${c.name}: ${c.detail}`).toBe('ok');
    expect(by.last_run.data.age_s).toBeLessThan(600);
    expect(by.locks.detail).toBe('not locked');
    expect(by.space_repository.data.free_bytes).toBeGreaterThan(0);
    const human = cli(['--config', t.cfg, 'doctor', '--root', t.root], t.env);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^ok {4}schedule +cron entry \S+etc\/cron\.d\/snapfill installed$/m);
    expect(human.stdout).toMatch(/^ok {4}last_run +succeeded \d+ s ago/m);
    expect(human.stdout).toContain('all checks passed');
  });

  it('exits non-zero and says what is wrong: failed last run, no schedule, unreachable repository', () => {
    const t = installed();
    write(
      t.prom,
      'snapfill_last_run_timestamp_seconds 1700000000\nsnapfill_last_run_success 0\nsnapfill_last_success_timestamp_seconds 0\n',
    );
    write(t.cfg, fs.readFileSync(t.cfg, 'utf8').replace(t.repos.file, path.join(t.base, 'nowhere')));
    const r = cli(['--config', t.cfg, 'config', 'check', '--root', path.join(t.base, 'other-root')], t.env);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}repository +no snapfill repository at \S+nowhere/m);
    expect(r.stdout).toMatch(/^FAIL {2}last_run +the last run failed, [\d.]+ days ago/m);
    expect(r.stdout).toMatch(/^FAIL {2}schedule +no timer or cron entry installed/m);
    expect(r.stdout).toContain('3 checks failed');
    const bad = cli(['--json', 'doctor'], { ...t.env, SNAPFILL_CONFIG: path.join(t.base, 'none.json') });
    expect(bad.code).toBe(1);
    expect(bad.json.checks[0]).toMatchObject({ name: 'config', status: 'fail' });
  });
});

describe('the cron entry logs its output', () => {
  it('to syslog through logger -t snapfill, or to the file the config names', () => {
    const t = setup();
    const root = path.join(t.base, 'root');
    expect(cli(['--config', t.cfg, 'schedule', 'install', '--root', root, '--init', 'cron'], t.env).code).toBe(0);
    const lines = fs
      .readFileSync(path.join(root, 'etc/cron.d/snapfill'), 'utf8')
      .split('\n')
      .filter((l) => / root /.test(l));
    expect(lines).toHaveLength(3);
    for (const l of lines) expect(l).toMatch(/ run 2>&1 \| logger -t snapfill$/);
    const cmd = lines[0].slice(lines[0].indexOf(' root ') + 6);
    expect(spawnSync('sh', ['-n', '-c', cmd]).status).toBe(0);
    write(t.cfg, JSON.stringify({ repository: t.repos.file, sources: ['/srv'], schedule: { log_file: '/var/log/snapfill.log' } }));
    expect(cli(['--config', t.cfg, 'schedule', 'install', '--root', root, '--init', 'cron'], t.env).code).toBe(0);
    const cron = fs.readFileSync(path.join(root, 'etc/cron.d/snapfill'), 'utf8');
    expect(cron).toMatch(/ run >> \/var\/log\/snapfill\.log 2>&1\n/);
    expect(cron).not.toContain('logger');
    // The output really arrives: the logged pipeline, run by sh, hands the job's lines to logger.
    const fakeBin = path.join(t.base, 'bin');
    write(path.join(fakeBin, 'logger'), `#!/bin/sh\ncat > ${path.join(t.base, 'logged')}\n`, 0o755);
    const probe = spawnSync('sh', ['-c', `echo hello 2>&1 | logger -t snapfill`], {
      env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` },
    });
    expect(probe.status).toBe(0);
    expect(fs.readFileSync(path.join(t.base, 'logged'), 'utf8')).toBe('hello\n');
  });
});
