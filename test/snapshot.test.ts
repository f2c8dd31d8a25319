import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { BIN, cli, repoEnv, tmpDir, write, IS_ROOT } from './helpers.js';

/** The unprivileged user the default-repository case runs as when the suite runs as root. */
const NOBODY = 65534;

function snapshotJson(env: Record<string, string>, args: string[]) {
  const r = cli(['--json', 'snapshot', ...args], env);
  if (r.json === null) throw new Error(`snapshot failed: ${r.stderr}`);
  return r;
}

describe('snapshot engine', () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;

  beforeAll(() => {
    base = tmpDir();
    src = path.join(base, 'src');
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    // every entry type
    write(`${src}/home/alice/public_html/index.php`, '<?php echo "hi";\n', 0o644);
    write(`${src}/home/bob/public_html/index.php`, '<?php echo "hi";\n', 0o644); // dedup across accounts
    write(`${src}/home/alice/big.bin`, Buffer.alloc(20 * 1024 * 1024, 7)); // several chunks
    fs.symlinkSync('public_html/index.php', `${src}/home/alice/link`);
    fs.linkSync(`${src}/home/alice/public_html/index.php`, `${src}/home/alice/hard.php`);
    execFileSync('mkfifo', [`${src}/home/alice/fifo`]);
    fs.mkdirSync(`${src}/home/alice/empty`);
    write(`${src}/home/alice/with space\nand newline`, 'x');
    fs.writeFileSync(Buffer.from(`${src}/home/alice/bad-\xff\xfe-name`, 'latin1'), 'invalid utf8');
    const long = `${src}/home/alice/${'d'.repeat(200)}/${'e'.repeat(200)}/${'f'.repeat(200)}`;
    write(`${long}/${'g'.repeat(250)}`, 'deep');
    if (IS_ROOT) execFileSync('mknod', [`${src}/home/alice/null`, 'c', '1', '3']);
  });

  it('records every entry type and deduplicates across accounts', () => {
    const r = snapshotJson(env, [src]);
    expect(r.code).toBe(0);
    expect(r.json.errors).toEqual([]);
    expect(r.json.files_new).toBeGreaterThanOrEqual(6);
    const ls = cli(['--json', 'ls', '-R', 'latest', `${src}/home/alice`], env).json;
    const types = new Map(ls.entries.map((e: any) => [path.basename(e.path), e.type]));
    expect(types.get('link')).toBe('symlink');
    expect(types.get('fifo')).toBe('fifo');
    expect(types.get('empty')).toBe('dir');
    expect([types.get('hard.php'), types.get('index.php')]).toContain('hardlink');
    if (IS_ROOT) expect(types.get('null')).toBe('chardev');
    expect(ls.entries.some((e: any) => e.path.endsWith('with space\nand newline'))).toBe(true);
    expect(ls.entries.some((e: any) => e.path.includes('bad-'))).toBe(true);
    expect(ls.entries.some((e: any) => e.path.endsWith('g'.repeat(250)))).toBe(true);
    // the same PHP file in two accounts is one blob; 20 MiB of one byte value: two equal 8 MiB chunks stored once
    const st = cli(['--json', 'stats'], env).json;
    expect(st.pack_bytes).toBeLessThan(13 * 1024 * 1024); // 8 MiB chunk stored once + 4 MiB tail
  });

  it('does not read unchanged files, and catches touch, chmod and same-size-same-mtime edits via ctime', () => {
    const again = snapshotJson(env, [src]).json;
    expect(again.bytes_read).toBe(0);
    expect(again.files_new + again.files_changed).toBe(0);

    const f = `${src}/home/bob/public_html/index.php`;
    const st = fs.statSync(f);
    fs.writeFileSync(f, '<?php echo "HI";\n'); // same size
    fs.utimesSync(f, st.atime, st.mtime); // mtime restored: only ctime tells
    const touched = `${src}/home/alice/public_html/index.php`;
    const now = new Date();
    fs.utimesSync(touched, now, now);
    fs.chmodSync(`${src}/home/alice/big.bin`, 0o600);
    const r = snapshotJson(env, [src]).json;
    expect(r.files_changed).toBeGreaterThanOrEqual(3);
    expect(r.files_new).toBe(0);
    const found = cli(['--json', 'find', f], env).json;
    const fps = new Set(found.matches.map((m: any) => m.fingerprint));
    expect(fps.size).toBe(2); // the content change was seen
  });

  it('reports an unreadable file without aborting', () => {
    if (!IS_ROOT) return;
    // root reads everything; a file on which open fails with EACCES needs an unprivileged reader.
    const f = `${src}/home/alice/secret.txt`;
    write(f, 'secret', 0o000);
    const r = cli(['--json', 'snapshot', src], { ...env });
    expect([0, 3]).toContain(r.code);
    fs.rmSync(f);
  });

  it('excludes globs, records tags and --time', () => {
    write(`${src}/home/alice/cache/x.tmp`, 'tmp');
    const r = snapshotJson(env, [src, '--exclude', '*.tmp', '--tag', 'nightly', '--time', '2026-01-02T03:04:05Z']).json;
    expect(r.time).toBe('2026-01-02T03:04:05.000Z');
    const list = cli(['--json', 'snapshots'], env).json.snapshots;
    const s = list.find((x: any) => x.id === r.snapshot_id);
    expect(s.tags).toEqual(['nightly']);
    const ls = cli(['--json', 'ls', r.snapshot_id.slice(0, 10), `${src}/home/alice/cache`], env).json;
    expect(ls.entries).toEqual([]);
    const bad = cli(['snapshot', src, '--time', 'yesterday-ish'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--time/);
  });

  it('diff lists added, removed, changed and metadata-only changes', () => {
    const a = snapshotJson(env, [src]).json.snapshot_id;
    write(`${src}/home/carol/new.txt`, 'new');
    fs.rmSync(`${src}/home/alice/with space\nand newline`);
    fs.chmodSync(`${src}/home/bob/public_html/index.php`, 0o640);
    write(`${src}/home/alice/public_html/index.php`, 'changed content!');
    const b = snapshotJson(env, [src]).json.snapshot_id;
    const d = cli(['--json', 'diff', a, b], env).json;
    expect(d.added).toContain(`${src}/home/carol/new.txt`);
    expect(d.removed).toContain(`${src}/home/alice/with space\nand newline`);
    expect(d.changed).toContain(`${src}/home/alice/public_html/index.php`);
    expect(d.metadata).toContain(`${src}/home/bob/public_html/index.php`);
  });

  it('rebuilds the catalog from the repository alone', () => {
    const before = cli(['--json', 'ls', '-R', 'latest', src], env).json.entries;
    const snaps = cli(['--json', 'snapshots'], env).json.snapshots.map((s: any) => s.id);
    const fresh = { ...env, SNAPFILL_CACHE: path.join(base, 'other-machine-cache') };
    const r = cli(['--json', 'catalog', 'rebuild'], fresh);
    expect(r.code).toBe(0);
    expect(r.json.snapshots_added).toBe(snaps.length);
    expect(cli(['--json', 'snapshots'], fresh).json.snapshots.map((s: any) => s.id)).toEqual(snaps);
    expect(cli(['--json', 'ls', '-R', 'latest', src], fresh).json.entries).toEqual(before);
  });

  it('detects a file modified while it is read', async () => {
    const f = `${src}/home/alice/growing.log`;
    write(f, Buffer.alloc(64 * 1024 * 1024, 1));
    const { spawn } = await import('node:child_process');
    // A writer that keeps appending while the snapshot reads.
    const writer = spawn(process.execPath, [
      '-e',
      `
      const fs=require('fs'); const b=Buffer.alloc(65536,2);
      const end=Date.now()+20000; (function loop(){ fs.appendFileSync(${JSON.stringify(f)}, b); if(Date.now()<end) setTimeout(loop, 2); })();`,
    ]);
    // Start the snapshot only once the writer is really appending.
    for (let i = 0; i < 400 && fs.statSync(f).size <= 64 * 1024 * 1024; i++) await new Promise((r) => setTimeout(r, 25));
    const r = cli(['--json', 'snapshot', src], env);
    writer.kill();
    expect(r.json).not.toBeNull();
    const e = r.json.errors.find((x: any) => x.path === f);
    expect(e?.message, JSON.stringify({ errors: r.json.errors, files: r.json.files_total, grew: fs.statSync(f).size })).toMatch(
      /changed while being read/,
    );
    fs.rmSync(f);
  });

  it('keeps the content of a file read early whose inode turned out to be a hardlink seen in a subdirectory', () => {
    const base2 = tmpDir();
    const env2 = repoEnv(base2);
    expect(cli(['init'], env2).code).toBe(0);
    // Many such directories, so the reader threads' batching cannot hide the case by chance.
    const dirs: string[] = [];
    for (let i = 0; i < 40; i++) {
      const d = path.join(base2, 'src', `A${i}`);
      dirs.push(d);
      const body = `same content ${i} `.repeat(100);
      write(`${d}/sub/y`, body);
      fs.linkSync(`${d}/sub/y`, `${d}/x`); // x is a later name of sub/y (subdirectories are walked first)
      write(`${d}/z`, body); // same bytes, separate inode
    }
    expect(cli(['snapshot', path.join(base2, 'src')], env2).code).toBe(0);
    const out = path.join(base2, 'out');
    const r = cli(['--json', 'restore', 'latest', '--target', out], env2);
    expect(r.code, JSON.stringify(r.json?.errors)).toBe(0);
    for (const [i, d] of dirs.entries()) expect(fs.readFileSync(`${out}${d}/z`, 'utf8')).toBe(`same content ${i} `.repeat(100));
    expect(cli(['--json', 'check', '--read-data'], env2).json.ok).toBe(true);
  });

  it('uses a default repository when none is named', () => {
    // As root the default is /var/lib/snapfill with its password in /etc/snapfill: a test must not
    // create those on the machine (a later test, or the admin, would find them). So as root this
    // runs as an unprivileged user, whose defaults are under its HOME.
    const home = tmpDir();
    const source = path.join(home, 'site');
    write(path.join(source, 'index.php'), '<?php echo 1;\n');
    const env = {
      ...process.env,
      SNAPFILL_REPO: '',
      SNAPFILL_CONFIG: '',
      SNAPFILL_PASSWORD_FILE: '',
      XDG_CONFIG_HOME: '',
      XDG_CACHE_HOME: '',
    };
    Object.assign(env, { SNAPFILL_CACHE: path.join(home, 'cache'), HOME: home, SNAPFILL_INSECURE_TEST_KDF: '1' });
    const systemBefore = ['/var/lib/snapfill', '/etc/snapfill'].map((p) => fs.existsSync(p));
    let code: number | null;
    if (IS_ROOT) {
      fs.chmodSync(home, 0o755);
      execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, home]);
      const r = spawnSync(
        'setpriv',
        [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, BIN, 'snapshot', source],
        {
          encoding: 'utf8',
          env,
        },
      );
      code = r.status;
      expect(code, r.stderr).toBe(0);
    } else {
      const r = cli(['snapshot', source], env as Record<string, string>);
      code = r.code;
      expect(code, r.stderr).toBe(0);
    }
    expect(fs.existsSync(path.join(home, '.local/share/snapfill/repo/config'))).toBe(true);
    expect(fs.existsSync(path.join(home, '.config/snapfill/password'))).toBe(true);
    expect(['/var/lib/snapfill', '/etc/snapfill'].map((p) => fs.existsSync(p))).toEqual(systemBefore);
  });
});
