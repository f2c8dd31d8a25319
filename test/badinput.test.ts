import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { BIN, cli, describeTree, diffTrees, IS_ROOT, repoEnv, requireSystem, tmpDir, write } from './helpers.js';

/** A command run without blocking the test's thread: its output, or the spawn error (a missing binary). */
function runAsync(cmd: string, args: string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string; error?: Error }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', (error) => resolve({ stdout, stderr, error }));
    child.on('close', () => resolve({ stdout, stderr }));
  });
}

/**
 * The bad input corpus: for each kind of awkward file-system content, the snapshot records
 * what it can and reports the rest, and a restore reproduces what was recorded (checked by
 * comparing the restored tree with the source, and with `verify --checksum --target`).
 */
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('bad input corpus', () => {
  let base: string;
  let env: Record<string, string>;

  beforeAll(() => {
    base = tmpDir();
    fs.chmodSync(base, 0o755); // a non-root child must be able to reach its repository below
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
  });

  function snapshot(paths: string[], extraEnv: Record<string, string> = {}): { code: number; json: any; stderr: string } {
    const r = cli(['--json', 'snapshot', ...paths], { ...env, ...extraEnv });
    if (!r.json?.snapshot_id) throw new Error(`snapshot failed (${r.code}): ${r.stderr}`);
    return r;
  }

  /**
   * Restores into a fresh target, then `verify --checksum` of that target must be clean, except
   * for `reported` paths (those the snapshot itself reported as not fully recorded).
   */
  function restoreAndVerify(id: string, reported = new Set<string>()): { target: string; restore: any } {
    const target = fs.mkdtempSync(path.join(base, 'target-'));
    const r = cli(['--json', 'restore', id, '--target', target], env);
    expect(r.json, `restore: ${r.stderr}`).toBeTruthy();
    const v = cli(['--json', 'verify', id, '--target', target, '--checksum'], env);
    expect(v.json, `verify: ${v.stderr}`).toBeTruthy();
    const keep = (xs: any[]) => xs.map((x) => (typeof x === 'string' ? x : x.path)).filter((p) => !reported.has(p));
    expect({
      missing: keep(v.json.missing_paths),
      changed: keep(v.json.changed_paths),
      meta: keep(v.json.metadata_mismatch_paths),
      extra: keep(v.json.extra_paths),
    }).toEqual({ missing: [], changed: [], meta: [], extra: [] });
    return { target, restore: r.json };
  }

  it('names with newlines, control characters and invalid UTF-8', () => {
    const src = path.join(base, 'names');
    write(`${src}/line\nbreak`, 'newline in the name');
    write(`${src}/tab\tand\rcr`, 'control chars');
    fs.writeFileSync(Buffer.from(`${src}/latin1-\xe9t\xe9`, 'latin1'), 'invalid utf-8 (latin1 bytes)');
    fs.mkdirSync(Buffer.from(`${src}/dir-\xff\xfe`, 'latin1'));
    fs.writeFileSync(Buffer.from(`${src}/dir-\xff\xfe/inner-\x80`, 'latin1'), 'below a non-UTF-8 directory');
    fs.symlinkSync(Buffer.from('latin1-\xe9t\xe9', 'latin1'), Buffer.from(`${src}/link-to-\xe9`, 'latin1'));
    const r = snapshot([src]);
    expect(r.code).toBe(0);
    expect(r.json.errors).toEqual([]);
    const { target, restore } = restoreAndVerify(r.json.snapshot_id);
    expect(restore.errors).toEqual([]);
    expect(diffTrees(describeTree(src), describeTree(path.join(target, src)))).toEqual([]);
  });

  it('times before 1970, at 0 and far ahead: read once, not reported as changed while read, restored exactly', () => {
    // The snapshot's readers check each file against the listing's stat (sent to them packed as
    // 64-bit integers): a time before 1970 must compare equal to the reader's own stat of it.
    const src = path.join(base, 'times');
    const times = [-1e9, -1, 0, 4102444800];
    times.forEach((t, i) => {
      write(`${src}/f${i}.txt`, `file ${i}\n`);
      execFileSync('touch', ['-h', '-d', `@${t}`, `${src}/f${i}.txt`]); // (fs.utimesSync takes a negative number as "now")
    });
    const r = snapshot([src]);
    expect(r.code).toBe(0);
    expect(r.json.errors).toEqual([]);
    const { target, restore } = restoreAndVerify(r.json.snapshot_id);
    expect(restore.errors).toEqual([]);
    times.forEach((t, i) => expect(fs.statSync(path.join(target, src, `f${i}.txt`)).mtimeMs).toBe(t * 1000));
    expect(diffTrees(describeTree(src), describeTree(path.join(target, src)))).toEqual([]);
  });

  it('a 2,000-level deep tree (a 4,000-byte path) and 4,000-byte paths of long names', () => {
    const src = path.join(base, 'deep');
    const deep = src + '/d'.repeat(2000);
    fs.mkdirSync(deep, { recursive: true });
    fs.writeFileSync(path.join(deep, 'bottom.txt'), 'at the bottom');
    let long = path.join(src, 'long');
    while (long.length + 256 < base.length + 4000) long += '/' + 'n'.repeat(250);
    fs.mkdirSync(long, { recursive: true });
    fs.writeFileSync(path.join(long, 'f'.repeat(200)), 'long path');
    expect(path.join(long, 'f'.repeat(200)).length).toBeGreaterThan(3900);
    // find and rm walk iteratively; recursive JS helpers (describeTree, fs.rmSync) would
    // overflow this test's own stack at 2,000 levels.
    const listing = () =>
      execFileSync('sh', ['-c', `cd "${src}" && find . -printf '%p %y %m %U %s %T@\\n' | sort`], { maxBuffer: 1 << 26 }).toString();
    const before = listing();
    const r = snapshot([src]);
    expect(r.json.errors).toEqual([]);
    expect(r.code).toBe(0);
    // Restore in place after "a script deleted it" (a target prefix would pass PATH_MAX).
    execFileSync('rm', ['-rf', src]);
    const rr = cli(['--json', 'restore', r.json.snapshot_id, src], env);
    expect(rr.json?.errors, rr.stderr).toEqual([]);
    expect(fs.readFileSync(path.join(deep, 'bottom.txt'), 'utf8')).toBe('at the bottom');
    // Same names, types, modes, owners, sizes, and mtimes (within the 2 µs utimes() keeps).
    const parse = (l: string) =>
      l
        .split('\n')
        .filter(Boolean)
        .map((x) => {
          const i = x.lastIndexOf(' ');
          return [x.slice(0, i), Number(x.slice(i + 1))] as const;
        });
    const [a, b] = [parse(before), parse(listing())];
    expect(b.map((x) => x[0])).toEqual(a.map((x) => x[0]));
    expect(a.filter((x, i) => Math.abs(x[1] - b[i][1]) > 2e-6).map((x) => x[0])).toEqual([]);
    const v = cli(['--json', 'verify', r.json.snapshot_id, src, '--checksum'], env);
    expect(v.json.ok, JSON.stringify(v.json).slice(0, 500)).toBe(true);
  });

  it('sparse files, and a sparse file over 4 GB, with sane memory', async () => {
    const src = path.join(base, 'sparse');
    fs.mkdirSync(src);
    const small = path.join(src, 'sparse-64m');
    fs.writeFileSync(small, '');
    fs.truncateSync(small, 64 * 1024 * 1024);
    const fd = fs.openSync(small, 'r+');
    fs.writeSync(fd, Buffer.from('data in the middle'), 0, 18, 33 * 1024 * 1024 + 7);
    fs.closeSync(fd);
    const huge = path.join(src, 'sparse-4g');
    const size = 4 * 1024 * 1024 * 1024 + 1024 * 1024; // just past 4 GiB: 32-bit sizes and offsets overflow
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, size);
    const hfd = fs.openSync(huge, 'r+');
    fs.writeSync(hfd, Buffer.from('tail beyond 4 GiB'), 0, 17, size - 100);
    fs.writeSync(hfd, Buffer.from('head'), 0, 4, 0);
    fs.closeSync(hfd);
    // Peak memory of the snapshot process, from GNU time when present. Run without blocking this
    // thread: reading 4 GiB can take over a minute on a loaded machine, and a test worker blocked
    // that long misses vitest's RPC deadline ("Timeout calling onTaskUpdate").
    const timed = await runAsync('/usr/bin/time', ['-f', 'maxrss_kb=%M', process.execPath, BIN, '--json', 'snapshot', src], env);
    let json: any;
    if (timed.error) {
      json = snapshot([src]).json;
    } else {
      json = JSON.parse(timed.stdout.trim().split('\n').pop()!);
      const rss = Number(/maxrss_kb=(\d+)/.exec(timed.stderr)?.[1] ?? 0);
      process.stdout.write(`sparse 4 GiB snapshot: peak RSS ${(rss / 1024).toFixed(0)} MiB\n`);
      expect(rss).toBeLessThan(1024 * 1024); // < 1 GiB: chunks stream, nothing holds the file
    }
    expect(json.errors).toEqual([]);
    expect(json.bytes_read).toBe(size + 64 * 1024 * 1024);
    expect(json.bytes_added).toBeLessThan(64 * 1024 * 1024); // zero chunks dedup to one blob
    const ls = cli(['--json', 'ls', json.snapshot_id, src], env).json.entries;
    expect(ls.find((e: any) => e.path.endsWith('sparse-4g')).size).toBe(size);
    // Restore only the 64 MiB one byte for byte (a restore writes the >4 GiB one in full, which
    // is slow on a shared disk); the big one is compared by size and mtime through verify.
    const target = fs.mkdtempSync(path.join(base, 'target-'));
    const rr = cli(['--json', 'restore', json.snapshot_id, small, '--target', target], env);
    expect(rr.json.errors).toEqual([]);
    expect(sha(fs.readFileSync(path.join(target, small)))).toBe(sha(fs.readFileSync(small)));
    const v = cli(['--json', 'verify', json.snapshot_id, src], env);
    expect(v.json.ok, JSON.stringify(v.json).slice(0, 400)).toBe(true);
    const vs = cli(['--json', 'verify', json.snapshot_id, small, '--checksum'], env);
    expect(vs.json.ok).toBe(true);
    fs.rmSync(huge);
  });

  it('FIFOs and device nodes are recorded and recreated, never read', () => {
    const src = path.join(base, 'special');
    fs.mkdirSync(src);
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    if (!IS_ROOT) {
      process.stdout.write('skipping device nodes: not root (mknod needs CAP_MKNOD)\n');
    } else {
      execFileSync('mknod', [path.join(src, 'null-like'), 'c', '1', '3']);
      execFileSync('mknod', [path.join(src, 'loop-like'), 'b', '7', '200']);
    }
    const r = snapshot([src]); // would hang on open() if the FIFO were read
    expect(r.json.errors).toEqual([]);
    const { target, restore } = restoreAndVerify(r.json.snapshot_id);
    expect(restore.errors).toEqual([]);
    expect(diffTrees(describeTree(src), describeTree(path.join(target, src)))).toEqual([]);
    expect(fs.lstatSync(path.join(target, src, 'fifo')).isFIFO()).toBe(true);
  });

  it('symlink loops are recorded as links, never followed', () => {
    const src = path.join(base, 'loops');
    fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
    fs.symlinkSync('b', path.join(src, 'a'));
    fs.symlinkSync('a', path.join(src, 'b'));
    fs.symlinkSync('.', path.join(src, 'dir', 'self'));
    fs.symlinkSync('..', path.join(src, 'dir', 'up'));
    fs.symlinkSync('/nonexistent/target', path.join(src, 'dangling'));
    const r = snapshot([src]);
    expect(r.json.errors).toEqual([]);
    expect(r.json.files_total).toBe(0);
    const { target, restore } = restoreAndVerify(r.json.snapshot_id);
    expect(restore.errors).toEqual([]);
    expect(diffTrees(describeTree(src), describeTree(path.join(target, src)))).toEqual([]);
  });

  it('a source path that is itself a symlink: the link and what it points to are both recorded', () => {
    const real = path.join(base, 'real-home');
    write(`${real}/alice/index.php`, '<?php // alice');
    const link = path.join(base, 'home-link');
    fs.symlinkSync(real, link);
    const r = snapshot([link]);
    expect(r.json.errors).toEqual([]);
    const ls = cli(['--json', 'ls', '-R', r.json.snapshot_id, base], env).json.entries.map((e: any) => `${e.path} ${e.type}`);
    expect(ls).toContain(`${link} symlink`);
    expect(ls).toContain(`${real}/alice/index.php file`);
    const { target } = restoreAndVerify(r.json.snapshot_id);
    expect(fs.readlinkSync(path.join(target, link))).toBe(real);
    expect(fs.readFileSync(path.join(target, real, 'alice/index.php'), 'utf8')).toBe('<?php // alice');
  });

  it('unreadable files and directories (snapshot as a non-root user): recorded as far as possible, reported', () => {
    if (!IS_ROOT) {
      process.stdout.write('skipping: needs root to create a non-root child process with setpriv\n');
      return;
    }
    if (!requireSystem('util-linux', () => !spawnSync('setpriv', ['--version']).error)) return; // setpriv
    const src = path.join(base, 'perms');
    write(`${src}/readable.txt`, 'anyone can read');
    write(`${src}/secret.txt`, 'root only', 0o600);
    write(`${src}/closed/inside.txt`, 'behind a closed directory');
    fs.chmodSync(`${src}/closed`, 0o700);
    fs.chownSync(`${src}/readable.txt`, 65534, 65534);
    // The repository and catalog are written by the non-root child.
    const penv = repoEnv(path.join(base, 'nobody'));
    fs.mkdirSync(path.join(base, 'nobody'), { mode: 0o777 });
    fs.chmodSync(path.join(base, 'nobody'), 0o777);
    const asNobody = (args: string[]) =>
      spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', process.execPath, BIN, ...args], {
        env: { ...process.env, ...penv, HOME: '/tmp' },
        encoding: 'utf8',
      });
    expect(asNobody(['init']).status).toBe(0);
    const s = asNobody(['--json', 'snapshot', src]);
    expect(s.status, s.stderr).toBe(3); // taken, with per-path errors
    const json = JSON.parse(s.stdout.trim().split('\n').pop()!);
    const errs = new Map(json.errors.map((e: any) => [e.path, e.message]));
    expect(String(errs.get(`${src}/secret.txt`))).toContain('EACCES');
    expect(String(errs.get(`${src}/closed`))).toContain('EACCES');
    expect(json.files_total).toBeGreaterThanOrEqual(2);
    // Restore (as root) reproduces what was recorded: the readable file byte for byte, and
    // no invented content for the unreadable one.
    const target = fs.mkdtempSync(path.join(base, 'target-'));
    const r = cli(['--json', 'restore', json.snapshot_id, '--target', target], penv);
    expect(fs.readFileSync(path.join(target, src, 'readable.txt'), 'utf8')).toBe('anyone can read');
    expect(fs.statSync(path.join(target, src, 'readable.txt')).uid).toBe(65534);
    expect(
      fs.existsSync(path.join(target, src, 'secret.txt')) ? fs.readFileSync(path.join(target, src, 'secret.txt'), 'utf8') : '',
    ).not.toBe('anything else');
    expect(r.json.errors.map((e: any) => e.path)).toContain(`${src}/secret.txt`);
    expect(fs.statSync(path.join(target, src, 'closed')).isDirectory()).toBe(true);
  });

  it('files that grow while being read and files that vanish during the walk', async () => {
    const src = path.join(base, 'moving');
    fs.mkdirSync(path.join(src, 'vanishing'), { recursive: true });
    const growing = path.join(src, 'growing.log');
    fs.writeFileSync(growing, Buffer.alloc(24 * 1024 * 1024, 'a'));
    for (let i = 0; i < 3000; i++) fs.writeFileSync(path.join(src, 'vanishing', `f${String(i).padStart(4, '0')}`), `v${i}`);
    // A writer appends to the log and a cleaner deletes files while the snapshot runs.
    const churn = spawn(
      process.execPath,
      [
        '-e',
        `
      const fs = require('fs');
      const dir = ${JSON.stringify(path.join(src, 'vanishing'))};
      let i = 2999;
      const t = setInterval(() => {
        fs.appendFileSync(${JSON.stringify(growing)}, 'more log data\\n'.repeat(100));
        for (let k = 0; k < 20 && i >= 0; k++, i--) { try { fs.unlinkSync(dir + '/f' + String(i).padStart(4, '0')); } catch {} }
      }, 2);
      setTimeout(() => { clearInterval(t); process.exit(0); }, 20000);
    `,
      ],
      { stdio: 'ignore' },
    );
    await new Promise((r) => setTimeout(r, 50));
    const s = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, '--json', 'snapshot', src], { env: { ...process.env, ...env } });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => {
        out += d;
      });
      p.stderr.on('data', (d) => {
        err += d;
      });
      p.on('exit', (code) => resolve({ code, out, err }));
    });
    churn.kill('SIGKILL');
    expect([0, 3], s.err).toContain(s.code);
    const json = JSON.parse(s.out.trim().split('\n').pop()!);
    // Every error names a path and says what happened (vanished / changed while read / ENOENT).
    for (const e of json.errors) {
      expect(e.path.startsWith(src)).toBe(true);
      expect(e.message).toMatch(/vanished|changed while being read|ENOENT/);
    }
    process.stdout.write(
      `moving input: ${json.errors.length} paths reported (${[...new Set(json.errors.map((e: any) => e.message.split(' ')[0]))].join(', ')})\n`,
    );
    // What was recorded restores as recorded: verify --checksum of a restored copy is clean,
    // except for paths the snapshot reported (a file gone between lstat and open is recorded
    // without content, and restore reports it rather than invent it).
    const reported = new Set<string>(json.errors.map((e: any) => e.path));
    const { restore } = restoreAndVerify(json.snapshot_id, reported);
    for (const e of restore.errors) expect(reported.has(e.path), `${e.path}: ${e.message}`).toBe(true);
  });
});
