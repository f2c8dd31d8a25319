import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, cli, repoEnv, tmpDir, write } from './helpers.js';

function catBytes(env: Record<string, string>, args: string[]): { code: number; out: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, 'cat', ...args], { env: { ...process.env, ...env }, maxBuffer: 64 * 1024 * 1024 });
  return { code: r.status ?? -1, out: r.stdout, stderr: r.stderr.toString() };
}

describe('snapfill cat', () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;
  let first: string;

  beforeAll(() => {
    base = tmpDir('snapfill-cat-');
    src = path.join(base, 'src');
    env = repoEnv(base);
    write(`${src}/home/alice/Maildir/cur/1700000000.M1.host:2,S`, 'Subject: Tuesday\n\nv1\n');
    write(`${src}/home/alice/big.bin`, Buffer.concat([Buffer.alloc(8 * 1024 * 1024, 1), Buffer.from('tail')]));
    write(`${src}/home/alice/empty`, '');
    fs.symlinkSync('Maildir/cur/1700000000.M1.host:2,S', `${src}/home/alice/mail-link`);
    fs.symlinkSync('mail-link', `${src}/home/alice/link-to-link`);
    fs.symlinkSync('loop', `${src}/home/alice/loop`);
    fs.writeFileSync(Buffer.from(`${src}/home/alice/bad-\xff-name`, 'latin1'), 'raw name');
    expect(cli(['init'], env).code).toBe(0);
    first = cli(['--json', 'snapshot', src], env).json.snapshot_id;
    write(`${src}/home/alice/Maildir/cur/1700000000.M1.host:2,S`, 'Subject: Tuesday\n\nv2 edited\n');
    expect(cli(['snapshot', '-q', src], env).code).toBe(0);
  });

  it('writes the content of a file in the chosen snapshot', () => {
    const f = `${src}/home/alice/Maildir/cur/1700000000.M1.host:2,S`;
    expect(catBytes(env, ['latest', f]).out.toString()).toBe('Subject: Tuesday\n\nv2 edited\n');
    expect(catBytes(env, [first.slice(0, 8), f]).out.toString()).toBe('Subject: Tuesday\n\nv1\n');
  });

  it('streams multi-blob and empty files exactly', () => {
    const big = catBytes(env, ['latest', `${src}/home/alice/big.bin`]);
    expect(big.code).toBe(0);
    expect(big.out.equals(fs.readFileSync(`${src}/home/alice/big.bin`))).toBe(true);
    const empty = catBytes(env, ['latest', `${src}/home/alice/empty`]);
    expect([empty.code, empty.out.length]).toEqual([0, 0]);
  });

  it('follows symlinks inside the snapshot, and handles names that are not UTF-8', () => {
    expect(catBytes(env, ['latest', `${src}/home/alice/link-to-link`]).out.toString()).toContain('v2 edited');
    const loop = catBytes(env, ['latest', `${src}/home/alice/loop`]);
    expect(loop.code).toBe(1);
    expect(loop.stderr).toContain('too many levels of symbolic links');
    // a name with a byte that is not UTF-8 (node decodes argv as UTF-8, so it arrives as U+FFFD) is still found
    const raw = spawnSync(
      'sh',
      ['-c', `exec "$0" "$1" cat latest "$2$(printf '\\377')-name"`, process.execPath, BIN, `${src}/home/alice/bad-`],
      { env: { ...process.env, ...env } },
    );
    expect(raw.stdout.toString(), raw.stderr.toString()).toBe('raw name');
  });

  it('refuses directories and missing paths with a clear message and a non-zero exit', () => {
    const dir = catBytes(env, ['latest', `${src}/home/alice/Maildir`]);
    expect(dir.code).toBe(1);
    expect(dir.stderr).toContain('is a directory');
    const none = catBytes(env, ['latest', `${src}/home/alice/nope`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('is not in snapshot');
  });
});
