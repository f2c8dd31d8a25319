import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, repoEnv, tmpDir, write } from './helpers.js';
import { parseSize, parseTime } from '../src/cli/cmd-find.js';

describe('snapfill find: versions across snapshots, filters', () => {
  let base: string;
  let home: string;
  let env: Record<string, string>;

  beforeAll(() => {
    base = tmpDir('snapfill-find-');
    home = path.join(base, 'src', 'home');
    env = repoEnv(base);
    const old = new Date('2026-01-10T00:00:00Z');
    write(`${home}/alice/public_html/wp-config.php`, 'v1', 0o644);
    write(`${home}/alice/big.log`, Buffer.alloc(64 * 1024, 1));
    write(`${home}/alice/old.txt`, 'old');
    fs.utimesSync(`${home}/alice/old.txt`, old, old);
    write(`${home}/bob/public_html/wp-config.php`, 'bob');
    expect(cli(['init'], env).code).toBe(0);
    expect(cli(['snapshot', '-q', path.join(base, 'src'), '--time', '2026-11-01T03:00:00Z'], env).code).toBe(0);
    expect(cli(['snapshot', '-q', path.join(base, 'src'), '--time', '2026-11-01T11:00:00Z'], env).code).toBe(0);
    write(`${home}/alice/public_html/wp-config.php`, 'v2 longer', 0o600);
    expect(cli(['snapshot', '-q', path.join(base, 'src'), '--time', '2026-11-01T19:00:00Z'], env).code).toBe(0);
  });

  it('lists each version of an exact path once, with its snapshots and what changed', () => {
    const r = cli(['--json', 'find', `${home}/alice/public_html/wp-config.php`], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.matches).toHaveLength(2);
    const [v1, v2] = r.json.matches;
    expect(v1.snapshots.map((s: any) => s.time)).toEqual(['2026-11-01T03:00:00.000Z', '2026-11-01T11:00:00.000Z']);
    expect(v1.changes).toEqual([]);
    expect(v2.snapshots).toHaveLength(1);
    expect(v2.changes).toEqual(expect.arrayContaining(['content', 'size 2 -> 9', 'mode 0644 -> 0600']));
    const human = cli(['find', `${home}/alice/public_html/wp-config.php`], env).stdout;
    expect(human).toContain('2 versions');
    expect(human).toContain('changed: content, size 2 -> 9');
  });

  it('filters by account, size, mtime and type', () => {
    const byName = cli(['--json', 'find', 'wp-config.php', '--account', 'bob', '--accounts-root', home], env).json;
    expect(byName.matches.map((m: any) => m.path)).toEqual([`${home}/bob/public_html/wp-config.php`]);
    const big = cli(['--json', 'find', `${home}/*/*`, '--min-size', '10k'], env).json;
    expect([...new Set(big.matches.map((m: any) => m.path))]).toEqual([`${home}/alice/big.log`]);
    const small = cli(
      ['--json', 'find', '*', '--account', 'alice', '--accounts-root', home, '--max-size', '5', '--type', 'file'],
      env,
    ).json;
    expect([...new Set(small.matches.map((m: any) => path.basename(m.path)))].sort()).toEqual(['old.txt', 'wp-config.php']);
    const old = cli(['--json', 'find', '*', '--older', '2026-02-01', '--type', 'f'], env).json;
    expect(old.matches.map((m: any) => path.basename(m.path))).toEqual(['old.txt']);
    const recent = cli(['--json', 'find', '*.txt', '--newer', '2026-02-01'], env).json;
    expect(recent.matches).toEqual([]);
    expect(cli(['find', 'x', '--min-size', 'lots'], env).code).toBe(1);
  });

  it('parses sizes and times', () => {
    expect(parseSize('10k')).toBe(10240);
    expect(parseSize('1.5M')).toBe(1572864);
    expect(parseSize('300')).toBe(300);
    expect(parseTime('7d', 1_000_000_000_000)).toBe(BigInt(1_000_000_000_000 - 7 * 86_400_000) * 1_000_000n);
    expect(parseTime('2026-11-17T00:00:00Z')).toBe(BigInt(Date.parse('2026-11-17T00:00:00Z')) * 1_000_000n);
    expect(() => parseTime('yesterday-ish')).toThrow(/not a time/);
  });
});
