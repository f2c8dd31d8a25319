import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, cli, repoEnv, requireSystem, tmpDir, write } from './helpers.js';

/**
 * Fail closed: a repository that cannot be opened stops every command before it changes
 * anything, with a message that says what to fix; conflicting operations are kept apart by
 * locks and a dead process's lock is cleared. (The config-file part is tested with src/config.)
 */
function listing(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

const COMMANDS: string[][] = [
  ['snapshot', '__SRC__'],
  ['restore', 'latest', '--target', '__TARGET__'],
  ['verify', 'latest'],
  ['check', '--read-data'],
  ['forget', '--keep-last', '1', '--prune'],
  ['prune'],
  ['snapshots'],
  ['catalog', 'rebuild'],
];

describe('fail closed', () => {
  let base: string;
  let src: string;

  beforeAll(() => {
    base = tmpDir();
    src = path.join(base, 'src');
    write(`${src}/a.txt`, 'a');
  });

  function runAll(env: Record<string, string>, expectMsg: RegExp, context: string): void {
    for (const args of COMMANDS) {
      const a = args.map((x) => x.replace('__SRC__', src).replace('__TARGET__', path.join(base, 'target')));
      const r = cli(['--json', ...a], env);
      expect(r.code, `${context}: ${a.join(' ')}: ${r.stderr}`).not.toBe(0);
      expect(r.stderr, `${context}: ${a.join(' ')}`).toMatch(expectMsg);
      expect(r.json?.errors?.length, `${context}: ${a.join(' ')} prints one JSON error object`).toBeGreaterThan(0);
    }
    expect(fs.existsSync(path.join(base, 'target'))).toBe(false);
  }

  it('a repository path that does not exist: every command stops and says to run init; nothing is created', () => {
    const env = { ...repoEnv(path.join(base, 'none')) };
    runAll(env, /no snapfill repository at .*snapfill init/, 'missing repository');
    expect(fs.existsSync(path.join(base, 'none', 'repo'))).toBe(false);
  });

  it('a damaged repository config (invalid JSON, wrong format, newer version): stops, changes nothing', () => {
    const cases: [string, string, RegExp][] = [
      ['badjson', '{ this is not json', /not valid JSON/],
      ['notours', JSON.stringify({ format: 'something-else', id: 'x' }), /does not hold a snapfill repository/],
      [
        'newer',
        JSON.stringify({ format: 'snapfill', version: 99, id: 'x', chunk_size: 1, pack_size: 1 }),
        /newer than this snapfill supports/,
      ],
    ];
    for (const [name, config, msg] of cases) {
      const dir = path.join(base, name);
      const env = repoEnv(dir);
      expect(cli(['init'], env).code).toBe(0);
      expect(cli(['snapshot', src], env).code).toBe(0);
      fs.writeFileSync(path.join(dir, 'repo', 'config'), config);
      const before = listing(path.join(dir, 'repo'));
      runAll(env, msg, name);
      expect(listing(path.join(dir, 'repo')), name).toEqual(before);
    }
  });

  it('a repository the user cannot read (non-root) stops with the OS error', () => {
    if (process.getuid?.() !== 0) {
      process.stdout.write('skipping: needs root to run a child as nobody\n');
      return;
    }
    const dir = path.join(base, 'noperm');
    const env = repoEnv(dir);
    expect(cli(['init'], env).code).toBe(0);
    fs.chmodSync(path.join(dir, 'repo'), 0o700);
    fs.chmodSync(base, 0o755);
    fs.chmodSync(dir, 0o755);
    const n = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, BIN, 'snapshot', src], {
      env: { ...process.env, ...env, SNAPFILL_CACHE: fs.mkdtempSync(path.join(os.tmpdir(), 'nb-')) },
      encoding: 'utf8',
    });
    if (!requireSystem('util-linux', !n.error)) return; // setpriv
    expect(n.status).not.toBe(0);
    expect(n.stderr).toMatch(/EACCES|permission denied/i);
  });

  it("prune beside a snapshot runs, beside another prune exits 4 (locked); a dead holder's lock is cleared", async () => {
    const dir = path.join(base, 'locks');
    const env = repoEnv(dir);
    expect(cli(['init'], env).code).toBe(0);
    expect(cli(['snapshot', src], env).code).toBe(0);
    // A live process holding the locks (sleep stands in for a running snapfill).
    const holder = spawn('sleep', ['600']);
    const lockOf = (id: string, kind: 'shared' | 'maintenance', operation: string) => ({
      id,
      exclusive: false,
      kind,
      host: os.hostname(),
      pid: holder.pid,
      operation,
      created: new Date().toISOString(),
      refreshed: new Date().toISOString(),
    });
    const put = (l: { id: string }) => fs.writeFileSync(path.join(dir, 'repo', 'locks', l.id), JSON.stringify(l));
    fs.mkdirSync(path.join(dir, 'repo', 'locks'), { recursive: true });
    try {
      // Issue 15: prune is lock-free beside snapshots. A snapshot's shared lock is only a marker
      // prune reads (it keeps what that snapshot may be using), never a reason to stop.
      put(lockOf('a'.repeat(32), 'shared', 'snapshot'));
      const p = cli(['prune'], env);
      expect(p.code, p.stderr).toBe(0);
      // Two prunes (or prune and forget) exclude each other: the second exits 4, says who holds it.
      put(lockOf('b'.repeat(32), 'maintenance', 'prune'));
      const p2 = cli(['prune'], env);
      expect(p2.code, p2.stderr).toBe(4);
      expect(p2.stderr).toMatch(/locked.*prune/);
      const f = cli(['forget', '--keep-last', '1'], env);
      expect(f.code, f.stderr).toBe(4);
      // Shared with maintenance is fine: check still runs.
      expect(cli(['check'], env).code).toBe(0);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.once('exit', r));
    }
    // The holder died without releasing: its locks are stale at once on this host.
    const after = cli(['--json', 'prune'], env);
    expect(after.code, after.stderr).toBe(0);
  });
});
