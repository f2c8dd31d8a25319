import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig, readConfigFile, applyCredentials, ConfigError, type Config } from '../src/config/config.js';
import { cli, repoEnv, tmpDir, write } from './helpers.js';

const dir = tmpDir();
let n = 0;
function cfgFile(content: unknown): string {
  const f = path.join(dir, `c${n++}.json`);
  write(f, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return f;
}
function problems(content: unknown): string[] {
  try {
    readConfigFile(cfgFile(content));
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  return [];
}

const FULL = {
  repository: 's3://backups/web1',
  s3: { endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1', path_style: true },
  credentials: { env_file: '/etc/snapfill/s3.env' },
  sources: ['/home', '/etc'],
  excludes: ['*.tmp', '/home/*/cache'],
  accounts_root: '/home',
  tags: ['scheduled'],
  retention: { keep_within: '7d', keep_weekly: 4, keep_monthly: 6 },
  prune: { every_hours: 24, repack_threshold: 0.3 },
  throttle: { limit_read_mbps: 50, limit_upload_mbps: 20, io_priority: 'idle', max_load: 8 },
  hooks: {
    pre: ['mysqldump --all-databases > /var/backups/db.sql'],
    post: ['rm -f /var/backups/db.sql'],
    on_pre_failure: 'abort',
    timeout_minutes: 30,
  },
  schedule: { times: ['02:30', '10:30', '18:30'], randomized_delay_minutes: 45 },
  monitoring: { prometheus_textfile: '/var/lib/node_exporter/textfile/snapfill.prom', json_log: 'stderr' },
};

describe('config file', () => {
  it('loads a full config into one Config object', () => {
    const c: Config = loadConfig(cfgFile(FULL), {}, {});
    expect(c.repository).toBe('s3://backups/web1');
    expect(c.s3).toEqual({ endpoint: 'http://127.0.0.1:9000', region: 'eu-west-1', pathStyle: true });
    expect(c.sources).toEqual(['/home', '/etc']);
    expect(c.retention).toEqual({
      withinMs: 7 * 86400_000,
      weekly: 4,
      monthly: 6,
      last: undefined,
      hourly: undefined,
      daily: undefined,
      yearly: undefined,
      tags: undefined,
    });
    expect(c.throttle).toEqual({ limitReadMBps: 50, limitUploadMBps: 20, ioPriority: 'idle', maxLoad: 8 });
    expect(c.hooks.onPreFailure).toBe('abort');
    expect(c.schedule.times).toEqual(['02:30', '10:30', '18:30']);
    expect(c.prune).toEqual({ enabled: true, everyHours: 24, repackThreshold: 0.3 });
  });

  it('fills safe defaults, and the default retention is 7 days + 4 weekly', () => {
    const c = loadConfig(cfgFile({ repository: '/srv/backup', sources: ['/home'] }), {}, {});
    expect(c.retention).toEqual({ withinMs: 7 * 86400_000, weekly: 4 });
    expect(c.accountsRoot).toBe('/home');
    expect(c.schedule.times).toEqual(['03:00', '11:00', '19:00']);
    expect(c.hooks).toEqual({ pre: [], post: [], onPreFailure: 'abort', timeoutMinutes: 60 });
  });

  it('names the key path and the expected type of each problem', () => {
    expect(problems({ repository: '/r', sources: ['/home'], retention: { keep_weekly: '4' } })).toEqual([
      'retention.keep_weekly: expected an integer >= 0, got the string "4"',
    ]);
    expect(problems({ repository: '/r', sources: ['home'] })).toEqual(['sources[0]: must be an absolute path, got "home"']);
    expect(problems({ repository: '/r', sources: ['/home'], throttle: { io_priority: 'low' } })).toEqual([
      'throttle.io_priority: expected one of "idle", "normal", got the string "low"',
    ]);
    expect(problems({ repository: '/r', sources: ['/home'], schedule: { times: ['3:00', '25:00'] } })).toEqual([
      'schedule.times[0]: expected a time of day "HH:MM" (24h), got "3:00"',
      'schedule.times[1]: expected a time of day "HH:MM" (24h), got "25:00"',
    ]);
    expect(problems({ repository: '/r', sources: ['/home'], retention: { keep_within: '7 days' } })[0]).toMatch(
      /^retention.keep_within: "7 days" is not a duration/,
    );
    expect(problems({ repository: 'backup', sources: ['/home'] })[0]).toMatch(/^repository: must be an absolute directory path or s3:/);
    expect(problems({ repository: '/r', sources: ['/home'], hooks: { pre: 'echo hi' } })).toEqual([
      'hooks.pre: expected an array, got the string "echo hi"',
    ]);
    expect(problems([1])).toEqual(['(top level): expected an object, got an array']);
  });

  it('treats unknown keys as errors (a typo must not silently disable a setting)', () => {
    expect(problems({ repository: '/r', sources: ['/home'], retension: { keep_last: 3 } })).toEqual([
      expect.stringMatching(/^retension: unknown key \(allowed here: repository, .*retention/),
    ]);
    expect(problems({ repository: '/r', sources: ['/home'], hooks: { pre_hooks: [] } })[0]).toMatch(
      /^hooks.pre_hooks: unknown key \(allowed here: pre, post, on_pre_failure, timeout_minutes\)/,
    );
  });

  it('requires sources and never widens a missing one to "everything"', () => {
    expect(problems({ repository: '/r' })).toEqual(['sources: required (the directories to snapshot, e.g. ["/home", "/etc"])']);
    expect(problems({ repository: '/r', sources: [] })).toEqual(['sources: must list at least one item']);
    expect(problems({ repository: '/r', sources: ['/home'], retention: {} })[0]).toMatch(
      /^retention: has no keep rule, which would keep nothing/,
    );
  });

  it('fails closed on a missing, unreadable or malformed file', () => {
    expect(() => readConfigFile(path.join(dir, 'absent.json'))).toThrow(
      /the config file does not exist: create it .* or pass --config FILE/,
    );
    expect(() => readConfigFile(cfgFile('{\n  "repository": "/r",\n  "sources": ["/home"],,\n}'))).toThrow(/not valid JSON at line 3/);
    expect(() => loadConfig(cfgFile({ sources: ['/home'] }), {}, {})).toThrow(/repository: required/);
  });

  it('lets the environment override the file, and flags override both', () => {
    const f = cfgFile({ repository: '/from-file', sources: ['/home'], throttle: { limit_read_mbps: 50, max_load: 4 } });
    expect(loadConfig(f, {}, { SNAPFILL_REPO: '/from-env' }).repository).toBe('/from-env');
    const c = loadConfig(f, { repo: '/from-flag', throttle: { limitReadMBps: 5 } }, { SNAPFILL_REPO: '/from-env' });
    expect(c.repository).toBe('/from-flag');
    expect(c.throttle).toEqual({ limitReadMBps: 5, maxLoad: 4, limitUploadMBps: undefined, ioPriority: undefined });
    expect(loadConfig(f, {}, { SNAPFILL_S3_REGION: 'x' }).s3.region).toBe('x');
  });

  it('reads the credentials env file without overriding the environment', () => {
    const envFile = path.join(dir, 's3.env');
    write(envFile, '# S3 keys\nAWS_ACCESS_KEY_ID=AKIA1\nexport AWS_SECRET_ACCESS_KEY="s3cr3t"\n');
    const c = loadConfig(cfgFile({ repository: '/r', sources: ['/home'], credentials: { env_file: envFile, profile: 'backup' } }), {}, {});
    const env: NodeJS.ProcessEnv = { AWS_ACCESS_KEY_ID: 'already-set' };
    applyCredentials(c, env);
    expect(env).toEqual({ AWS_ACCESS_KEY_ID: 'already-set', AWS_SECRET_ACCESS_KEY: 's3cr3t', AWS_PROFILE: 'backup' });
    const missing = loadConfig(
      cfgFile({ repository: '/r', sources: ['/home'], credentials: { env_file: path.join(dir, 'nope.env') } }),
      {},
      {},
    );
    expect(() => applyCredentials(missing, {})).toThrow(/credentials.env_file: .*nope.env cannot be read \(ENOENT\)/);
  });
});

describe('snapfill run with a bad config', () => {
  it('stops before anything changes and says what to fix', () => {
    const base = tmpDir();
    const env = repoEnv(base);
    write(path.join(base, 'src', 'f'), 'x');
    expect(cli(['init'], env).code).toBe(0);
    const listRepo = () => fs.readdirSync(path.join(base, 'repo'), { recursive: true }).sort();
    const before = listRepo();
    const missing = cli(['--config', path.join(base, 'nope.json'), 'run'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/config .*nope.json is invalid; fix these and run again:\n {2}- the config file does not exist/);
    const bad = cfgFile({ repository: path.join(base, 'repo'), sources: [path.join(base, 'src')], retention: { keep_daily: -1 } });
    const r = cli(['--config', bad, 'run'], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/retention.keep_daily: expected an integer >= 0, got number -1/);
    const jr = cli(['--json', '--config', bad, 'run'], env);
    expect(jr.json.error).toMatch(/retention.keep_daily/);
    fs.chmodSync(bad, 0o000);
    if (process.getuid?.() !== 0) expect(cli(['--config', bad, 'run'], env).stderr).toMatch(/not readable/);
    expect(listRepo()).toEqual(before);
  });
});
