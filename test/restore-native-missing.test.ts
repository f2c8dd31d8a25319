import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, repoEnv, ROOT, tmpDir, write } from './helpers.js';
import { NATIVE_MISSING } from '../src/livefs/native.js';

/**
 * Issue 17: there is no slow fallback. With the native addon missing (the loaders pointed at an
 * empty build directory by a test-only variable), every command that touches the live tree
 * exits non-zero with one line that names the fix, and touches nothing.
 */
describe('without the native addon', () => {
  it('restore (every mode, dry run too), verify and snapshot say so in one line and exit non-zero', () => {
    const base = tmpDir('snapfill-nonative-');
    const env = repoEnv(path.join(base, 'r'));
    const src = path.join(base, 'src');
    write(`${src}/a.txt`, 'hello\n');
    expect(cli(['init'], env).code).toBe(0);
    expect(cli(['snapshot', src], env).code).toBe(0);
    const target = path.join(base, 'target');
    const missing = { ...env, SNAPFILL_TEST_NATIVE_DIR: path.join(base, 'no-build-here') };
    const commands = [
      ...['missing', 'changed', 'checksum', 'metadata', 'all'].map((m) => ['restore', 'latest', '--target', target, '--mode', m]),
      ['restore', 'latest', '--target', target, '--dry-run'],
      ['restore', 'latest'],
      ['verify', 'latest'],
      ['snapshot', src],
    ];
    for (const args of commands) {
      const r = cli(args, missing);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toBe(`snapfill: ${NATIVE_MISSING}\n`);
      expect(r.stdout, args.join(' ')).toBe('');
    }
    expect(fs.existsSync(target)).toBe(false);
    // Only the blob codec missing (a build of an older release): the restores say so too.
    const partial = path.join(base, 'partial-build');
    fs.mkdirSync(partial);
    for (const f of ['livefs.node', 'livefs_read.node']) fs.copyFileSync(path.join(ROOT, 'build', 'Release', f), path.join(partial, f));
    for (const args of commands.filter((a) => a[0] === 'restore')) {
      const r = cli(args, { ...env, SNAPFILL_TEST_NATIVE_DIR: partial });
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toBe(`snapfill: ${NATIVE_MISSING}\n`);
    }
    expect(fs.existsSync(target)).toBe(false);
    // With the addon, the same restore works.
    const ok = cli(['restore', 'latest', '--target', target], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target, src, 'a.txt'), 'utf8')).toBe('hello\n');
  }, 120_000);
});
