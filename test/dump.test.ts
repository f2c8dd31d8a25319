import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { BIN, cli, describeTree, diffTrees, IS_ROOT, repoEnv, requireSystem, tmpDir, write } from './helpers.js';

/** A tar member's mtime is whole seconds: compare file mtimes at that precision. */
function secMtimes(tree: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of tree) {
    const f = v.split(' ');
    if (f[2] === 'f') f[4] = String(BigInt(f[4]) / 1_000_000_000n);
    out.set(k, f.join(' '));
  }
  return out;
}

/** Runs `snapfill dump` into a file (the archive is binary: no utf8 decoding of stdout). */
function dumpTo(env: Record<string, string>, args: string[], file: string): { code: number; stderr: string } {
  const fd = fs.openSync(file, 'w');
  try {
    const r = spawnSync(process.execPath, [BIN, 'dump', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, 'pipe'],
      encoding: 'utf8',
    });
    return { code: r.status ?? -1, stderr: r.stderr };
  } finally {
    fs.closeSync(fd);
  }
}

const hasGnuTar = requireSystem('tar', () => spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout?.includes('GNU tar') ?? false);

describe.skipIf(!hasGnuTar)('snapfill dump (tar)', () => {
  let base: string;
  let home: string;
  let env: Record<string, string>;

  beforeAll(() => {
    base = tmpDir('snapfill-dump-');
    home = path.join(base, 'src', 'home');
    env = repoEnv(base);
    const a = `${home}/alice`;
    write(`${a}/public_html/index.php`, '<?php echo "hi";\n', 0o644);
    write(`${a}/public_html/.htaccess`, 'Deny from all\n', 0o444);
    write(`${a}/setuid-like`, '#!/bin/sh\n', 0o2755);
    write(`${a}/big.bin`, Buffer.alloc(9 * 1024 * 1024, 9)); // two blobs
    write(`${a}/empty-file`, '');
    fs.symlinkSync('public_html/index.php', `${a}/link`);
    fs.symlinkSync('/nonexistent/target', `${a}/dangling`);
    fs.linkSync(`${a}/public_html/index.php`, `${a}/hard.php`);
    fs.linkSync(`${a}/public_html/index.php`, `${a}/public_html-hard`); // sorts before public_html/ in path order
    fs.mkdirSync(`${a}/empty-dir`, { mode: 0o700 });
    execFileSync('mkfifo', [`${a}/fifo`]);
    const long = `${a}/${'d'.repeat(120)}/${'e'.repeat(120)}`;
    write(`${long}/${'f'.repeat(150)}.txt`, 'long name');
    write(`${a}/ünïcode name.txt`, 'utf8 name');
    write(`${home}/bob/x`, 'bob');
    if (IS_ROOT) {
      execFileSync('chown', ['-R', '-h', '1001:1002', a]);
      fs.lchownSync(`${a}/public_html/.htaccess`, 0, 33);
      fs.chmodSync(`${a}/setuid-like`, 0o2755); // chown clears setgid
    }
    expect(cli(['init'], env).code).toBe(0);
    expect(cli(['snapshot', '-q', path.join(base, 'src')], env).code).toBe(0);
  });

  it('writes an archive GNU tar lists and extracts into an identical tree', () => {
    const archive = path.join(base, 'alice.tar');
    const r = dumpTo(env, ['latest', `${home}/alice`], archive);
    expect(r.code, r.stderr).toBe(0);
    const listing = execFileSync('tar', ['-tvf', archive], { encoding: 'utf8' });
    expect(listing).toMatch(/^d.* alice\/$/m);
    expect(listing).toMatch(/ alice\/link -> public_html\/index.php$/m);
    expect(listing).toMatch(/ link to alice\//m);
    const out = path.join(base, 'extract');
    fs.mkdirSync(out);
    const args = ['-xpf', archive, '-C', out, ...(IS_ROOT ? ['--numeric-owner'] : [])];
    execFileSync('tar', args);
    const want = secMtimes(describeTree(`${home}/alice`));
    const got = secMtimes(describeTree(`${out}/alice`));
    if (IS_ROOT) expect(diffTrees(want, got)).toEqual([]);
    else {
      // without root, tar cannot give files away: compare all but the owner
      const noOwner = (m: Map<string, string>) => new Map([...m].map(([k, v]) => [k, v.replace(/ \d+:\d+ /, ' ')]));
      expect(diffTrees(noOwner(want), noOwner(got))).toEqual([]);
    }
    // hardlinks come back as one inode with three names
    expect(fs.statSync(`${out}/alice/hard.php`).ino).toBe(fs.statSync(`${out}/alice/public_html/index.php`).ino);
    expect(fs.statSync(`${out}/alice/public_html-hard`).nlink).toBe(3);
  });

  it('carries user and group names, and dumps a single file or the whole snapshot', () => {
    const archive = path.join(base, 'one.tar');
    expect(dumpTo(env, ['latest', `${home}/alice/public_html/index.php`], archive).code).toBe(0);
    const listing = execFileSync('tar', ['-tvf', archive], { encoding: 'utf8' });
    expect(listing.trim().split('\n')).toHaveLength(1);
    expect(listing).toMatch(/ index\.php$/m);
    if (IS_ROOT) {
      const numeric = execFileSync('tar', ['--numeric-owner', '-tvf', archive], { encoding: 'utf8' });
      expect(numeric).toContain('1001/1002');
    }
    const whole = path.join(base, 'all.tar');
    expect(dumpTo(env, ['latest', '/'], whole).code).toBe(0);
    const names = execFileSync('tar', ['-tf', whole], { encoding: 'utf8' }).split('\n');
    expect(names).toContain(`${home.slice(1)}/bob/x`);
  });

  it('fails clearly for a path that is not in the snapshot', () => {
    const r = dumpTo(env, ['latest', `${home}/carol`], path.join(base, 'none.tar'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not in snapshot');
  });
});
