import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, cli, tmpDir, write } from './helpers.js';

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

function setup(schedule?: Record<string, unknown>) {
  const base = tmpDir();
  const root = path.join(base, 'root');
  const cfg = path.join(base, 'config.json');
  write(cfg, JSON.stringify({ repository: '/srv/backup', sources: ['/home'], ...(schedule ? { schedule } : {}) }));
  return { base, root, cfg: fs.realpathSync(cfg) };
}

describe('snapfill schedule', () => {
  it('writes a systemd service + timer: 3x a day with a randomized delay by default', () => {
    const t = setup();
    const r = cli(['--json', '--config', t.cfg, 'schedule', 'install', '--root', t.root, '--init', 'systemd'], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.activated).toBe(false); // a test root is never activated
    expect(r.json.calendar_checked).toBe(hasSystemdAnalyze);
    if (!hasSystemdAnalyze) console.log('systemd-analyze not installed: calendar expressions not validated');
    const service = fs.readFileSync(path.join(t.root, 'etc/systemd/system/snapfill.service'), 'utf8');
    const timer = fs.readFileSync(path.join(t.root, 'etc/systemd/system/snapfill.timer'), 'utf8');
    expect(service).toContain('[Service]\nType=oneshot\n');
    expect(service).toContain(`ExecStart=${process.execPath} ${fs.realpathSync(BIN)} --config ${t.cfg} run\n`);
    expect(service).toContain('Nice=19\nIOSchedulingClass=idle\n');
    expect(service).toContain('SuccessExitStatus=4\n');
    expect(timer).toContain(
      '[Timer]\nOnCalendar=*-*-* 03:00:00\nOnCalendar=*-*-* 11:00:00\nOnCalendar=*-*-* 19:00:00\nRandomizedDelaySec=3600\nPersistent=true\n',
    );
    expect(timer).toContain('[Install]\nWantedBy=timers.target\n');
    if (hasSystemdAnalyze) {
      const v = spawnSync('systemd-analyze', ['verify', '--root', t.root, path.join(t.root, 'etc/systemd/system/snapfill.timer')], {
        encoding: 'utf8',
      });
      // verify may complain about the missing host units in a bare root; the timer syntax itself must not be the problem.
      expect(v.stderr).not.toMatch(/snapfill\.timer:\d+: /);
    }

    const show = cli(['schedule', 'show', '--root', t.root], {});
    expect(show.stdout).toContain('OnCalendar=*-*-* 11:00:00');
    const rm = cli(['--json', 'schedule', 'remove', '--root', t.root], {});
    expect(rm.json.removed.map((f: string) => path.basename(f)).sort()).toEqual(['snapfill.service', 'snapfill.timer']);
    expect(fs.readdirSync(path.join(t.root, 'etc/systemd/system'))).toEqual([]);
    expect(cli(['schedule', 'show', '--root', t.root], {}).stdout).toMatch(/no schedule installed/);
  });

  it('takes the times from the config, and --time over it', () => {
    const t = setup({ times: ['01:15', '13:45'], randomized_delay_minutes: 10, persistent: false });
    expect(cli(['--config', t.cfg, 'schedule', 'install', '--root', t.root, '--init', 'systemd'], {}).code).toBe(0);
    const timer = fs.readFileSync(path.join(t.root, 'etc/systemd/system/snapfill.timer'), 'utf8');
    expect(timer).toContain('OnCalendar=*-*-* 01:15:00\nOnCalendar=*-*-* 13:45:00\nRandomizedDelaySec=600\nPersistent=false\n');
    expect(
      cli(
        ['--config', t.cfg, 'schedule', 'install', '--root', t.root, '--init', 'systemd', '--time', '22:00', '--name', 'snapfill-web'],
        {},
      ).code,
    ).toBe(0);
    expect(fs.readFileSync(path.join(t.root, 'etc/systemd/system/snapfill-web.timer'), 'utf8')).toMatch(
      /^OnCalendar=\*-\*-\* 22:00:00\nRandomizedDelaySec/m,
    );
    const bad = cli(['--config', t.cfg, 'schedule', 'install', '--root', t.root, '--time', '7pm'], {});
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/schedule time "7pm" is not "HH:MM"/);
  });

  it('writes /etc/cron.d when systemd is absent', () => {
    const t = setup();
    // The temp root has no run/systemd/system, so auto-detection picks cron.
    const r = cli(['--json', '--config', t.cfg, 'schedule', 'install', '--root', t.root], {});
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.kind).toBe('cron');
    const cron = fs.readFileSync(path.join(t.root, 'etc/cron.d/snapfill'), 'utf8');
    // The job's output goes to syslog (issue 13, item 12): cron would otherwise drop it.
    const cmd = `sleep $(shuf -i 0-3600 -n 1); ionice -c3 nice -n19 ${process.execPath} ${fs.realpathSync(BIN)} --config ${t.cfg} run 2>&1 | logger -t snapfill`;
    expect(cron).toContain(`\n0 3 * * * root ${cmd}\n0 11 * * * root ${cmd}\n0 19 * * * root ${cmd}\n`);
    expect(cron).not.toMatch(/%/); // cron would turn % into a newline
    // The command line cron will run is valid sh.
    expect(spawnSync('sh', ['-n', '-c', cmd]).status).toBe(0);
  });

  it('refuses to install a schedule for a config that would fail', () => {
    const t = setup();
    write(t.cfg, JSON.stringify({ sources: ['/home'] })); // repository only in the shell's env: the timer would not have it
    const r = cli(['--config', t.cfg, 'schedule', 'install', '--root', t.root], { SNAPFILL_REPO: '/srv/backup' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/repository: required/);
    expect(fs.existsSync(t.root)).toBe(false);
    const missing = cli(['--config', path.join(t.base, 'none.json'), 'schedule', 'install', '--root', t.root], {});
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/none.json is invalid; fix these and run again:\n  - the config file does not exist/);
  });
});
