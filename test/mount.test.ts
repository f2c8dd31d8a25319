import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { BIN, cli, describeTree, diffTrees, hasCmd, IS_ROOT, repoEnv, requireSystem, tmpDir, write } from './helpers.js';

/** Why fuse-native cannot be loaded (libfuse.so.2 missing, or the optional module not installed), or null. */
function fuseNativeError(): string | null {
  try {
    createRequire(import.meta.url)('fuse-native');
    return null;
  } catch (e) {
    return (e as Error).message.split('\n')[0];
  }
}

/**
 * Whether the mount tests can run: through requireSystem, so that in CI a missing piece fails,
 * naming the package (libfuse2 for fuse-native's libfuse.so.2, fuse3 for fusermount).
 */
function fuseAvailable(): boolean {
  if (process.platform !== 'linux') {
    console.log(`mount tests skipped: not Linux (${process.platform})`);
    return false;
  }
  const loadError = fuseNativeError();
  return (
    requireSystem(
      'fuse3',
      () => fs.existsSync('/dev/fuse') && (hasCmd('fusermount') || hasCmd('fusermount3')),
      'apt-get install fuse3; in a container also --device /dev/fuse --cap-add SYS_ADMIN',
    ) &&
    requireSystem(
      'libfuse2',
      !loadError?.includes('libfuse'),
      'apt-get install libfuse2 (libfuse2t64 on Debian 13 / Ubuntu 24.04): fuse-native needs libfuse.so.2',
    ) &&
    requireSystem('fuse-native', loadError === null, `npm ci installs the optional dependency: ${loadError}`)
  );
}

function isMounted(mnt: string): boolean {
  return fs
    .readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[1] === mnt);
}

async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** fuse-native carries times in milliseconds: compare file mtimes at that precision. */
function msMtimes(tree: Map<string, string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of tree) {
    const f = v.split(' ');
    if (f[2] === 'f') f[4] = String(BigInt(f[4]) / 1_000_000n);
    out.set(k, f.join(' '));
  }
  return out;
}

function run(cmd: string, args: string[]): { code: number; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { code: r.status ?? -1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** FUSE 3 systems only have fusermount3. */
const FUSERMOUNT = hasCmd('fusermount') ? 'fusermount' : 'fusermount3';

const fuseOk = fuseAvailable();

describe.skipIf(!fuseOk)('snapfill mount (FUSE)', () => {
  let base: string;
  let src: string;
  let home: string;
  let env: Record<string, string>;
  let mnt: string;
  let child: ChildProcess | null = null;
  let childOut = '';
  let snapLabels: string[] = [];

  const startMount = async () => {
    childOut = '';
    child = spawn(process.execPath, [BIN, 'mount', mnt, '--accounts-root', home], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => {
      childOut += d;
    });
    child.stderr!.on('data', (d) => {
      childOut += d;
    });
    await waitFor(() => (isMounted(mnt) && childOut.includes('Ctrl-C')) || child!.exitCode !== null, 'the mount');
    if (!isMounted(mnt)) throw new Error(`mount failed: ${childOut}`);
  };

  const stopMount = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (!child || child.exitCode !== null) return null;
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill(signal);
    const code = await exited;
    child = null;
    return code;
  };

  beforeAll(async () => {
    base = tmpDir('snapfill-mount-');
    src = path.join(base, 'src');
    home = path.join(src, 'home');
    env = repoEnv(base);
    mnt = path.join(base, 'mnt');
    fs.mkdirSync(mnt);
    write(`${home}/alice/public_html/index.php`, '<?php echo "v1";\n', 0o644);
    write(`${home}/alice/public_html/wp-config.php`, '<?php $pw = "secret";\n', 0o600);
    write(`${home}/alice/Maildir/cur/1700000000.M1.host:2,S`, 'Subject: hi\n\nbody\n', 0o600);
    write(`${home}/alice/big.bin`, Buffer.alloc(9 * 1024 * 1024 + 17, 3)); // two 8 MiB-chunk blobs
    fs.symlinkSync('public_html/index.php', `${home}/alice/link`);
    fs.linkSync(`${home}/alice/public_html/index.php`, `${home}/alice/hard.php`);
    fs.mkdirSync(`${home}/alice/empty`, { mode: 0o750 });
    write(`${home}/bob/notes.txt`, 'bob\n', 0o640);
    fs.writeFileSync(Buffer.from(`${home}/bob/bad-\xff-name`, 'latin1'), 'raw name');
    if (IS_ROOT) {
      for (const p of ['', '/public_html', '/public_html/index.php', '/public_html/wp-config.php', '/Maildir', '/big.bin']) {
        fs.lchownSync(`${home}/alice${p}`, 1001, 1002);
      }
      fs.lchownSync(`${home}/alice/link`, 1001, 1002);
    }
    expect(cli(['init'], env).code).toBe(0);
    expect(cli(['snapshot', '-q', src, '--time', '2026-11-01T03:00:00Z'], env).code).toBe(0);
    write(`${home}/bob/notes.txt`, 'bob v2\n', 0o640);
    expect(cli(['snapshot', '-q', src, '--time', '2026-11-02T03:00:00Z'], env).code).toBe(0);
    await startMount();
    snapLabels = fs.readdirSync(path.join(mnt, 'snapshots')).sort();
  });

  afterAll(async () => {
    await stopMount();
    if (isMounted(mnt)) run(FUSERMOUNT, ['-uz', mnt]);
  });

  it('shows the layout: snapshots, latest, accounts', () => {
    expect(fs.readdirSync(mnt).sort()).toEqual(['accounts', 'latest', 'snapshots']);
    expect(snapLabels).toHaveLength(2);
    expect(snapLabels[0]).toMatch(/^2026-11-01T030000Z_[0-9a-f]{8}$/);
    expect(fs.lstatSync(path.join(mnt, 'latest')).isDirectory()).toBe(true);
    expect(fs.readdirSync(path.join(mnt, 'latest'))).toEqual(fs.readdirSync(path.join(mnt, 'snapshots', snapLabels[1])));
    expect(fs.readdirSync(path.join(mnt, 'accounts')).sort()).toEqual(['alice', 'bob']);
    expect(fs.readdirSync(path.join(mnt, 'accounts', 'bob')).sort()).toEqual(['2026-11-01T030000Z', '2026-11-02T030000Z']);
    expect(fs.readdirSync(path.join(mnt, 'latest', home, 'alice')).sort()).toEqual([
      'Maildir',
      'big.bin',
      'empty',
      'hard.php',
      'link',
      'public_html',
    ]);
  });

  it('reads files of each snapshot, including multi-blob files', () => {
    expect(fs.readFileSync(path.join(mnt, 'accounts/bob/2026-11-01T030000Z/notes.txt'), 'utf8')).toBe('bob\n');
    expect(fs.readFileSync(path.join(mnt, 'accounts/bob/2026-11-02T030000Z/notes.txt'), 'utf8')).toBe('bob v2\n');
    const big = fs.readFileSync(path.join(mnt, 'latest', home, 'alice/big.bin'));
    expect(big.equals(fs.readFileSync(`${home}/alice/big.bin`))).toBe(true);
    // a read across the blob boundary
    const fd = fs.openSync(path.join(mnt, 'latest', home, 'alice/big.bin'), 'r');
    const buf = Buffer.alloc(100);
    expect(fs.readSync(fd, buf, 0, 100, 8 * 1024 * 1024 - 50)).toBe(100);
    fs.closeSync(fd);
    expect(buf.equals(Buffer.alloc(100, 3))).toBe(true);
  });

  it('finds names that are not valid UTF-8 (the kernel hands them over with U+FFFD)', () => {
    const dir = path.join(mnt, 'accounts/bob/2026-11-02T030000Z');
    const name = fs.readdirSync(dir).find((n) => n.startsWith('bad-'))!;
    expect(name).toBe('bad-\uFFFD-name');
    expect(fs.readFileSync(path.join(dir, name), 'utf8')).toBe('raw name');
  });

  it('stat shows the snapshot metadata; readlink works; hardlinks share an inode; writes are refused', () => {
    const a = path.join(mnt, 'accounts/alice/2026-11-02T030000Z');
    const srcSt = fs.lstatSync(`${home}/alice/public_html/wp-config.php`);
    const st = fs.lstatSync(`${a}/public_html/wp-config.php`);
    expect(st.mode).toBe(srcSt.mode);
    expect([st.uid, st.gid, st.size]).toEqual([srcSt.uid, srcSt.gid, srcSt.size]);
    expect(st.mtimeMs).toBe(Math.floor(srcSt.mtimeMs));
    expect(fs.readlinkSync(`${a}/link`)).toBe('public_html/index.php');
    const h1 = fs.statSync(`${a}/hard.php`);
    const h2 = fs.statSync(`${a}/public_html/index.php`);
    expect(h1.ino).toBe(h2.ino);
    expect(h1.nlink).toBe(2);
    expect(() => fs.writeFileSync(`${a}/bob.txt`, 'x')).toThrow(/EROFS|read-only/);
    expect(() => fs.writeFileSync(`${a}/public_html/index.php`, 'x')).toThrow(/EROFS|read-only|EACCES/);
  });

  it('cp -a of an account gives a byte- and metadata-identical copy (hardlinks kept)', () => {
    const out = path.join(base, 'cp-out');
    const r = run('cp', ['-a', path.join(mnt, 'accounts/alice/2026-11-02T030000Z'), out]);
    expect(r.code, r.out).toBe(0);
    expect(diffTrees(msMtimes(describeTree(`${home}/alice`)), msMtimes(describeTree(out)))).toEqual([]);
    const st = fs.statSync(out);
    expect(st.mode & 0o7777).toBe(fs.statSync(`${home}/alice`).mode & 0o7777);
  });

  it.skipIf(!requireSystem('rsync', () => hasCmd('rsync')))('rsync -aH and diff -r agree with the source', () => {
    const out = path.join(base, 'rsync-out');
    const r = run('rsync', ['-aH', path.join(mnt, 'latest', home, 'alice') + '/', out + '/']);
    expect(r.code, r.out).toBe(0);
    expect(diffTrees(msMtimes(describeTree(`${home}/alice`)), msMtimes(describeTree(out)))).toEqual([]);
    // (home/bob holds a name that is not UTF-8, which the mount can only show with U+FFFD)
    const d = run('diff', ['-r', path.join(mnt, 'latest', home, 'alice'), `${home}/alice`]);
    expect(d.code, d.out).toBe(0);
    // and it sees the difference between two snapshots
    const d2 = run('diff', [
      '-r',
      path.join(mnt, 'snapshots', snapLabels[0], home, 'bob'),
      path.join(mnt, 'snapshots', snapLabels[1], home, 'bob'),
    ]);
    expect(d2.code).toBe(1);
    expect(d2.out).toContain('bob v2');
  });

  it('unmounts on SIGTERM; a killed mount leaves a stale mount the next run explains', async () => {
    expect(await stopMount('SIGTERM')).toBe(0);
    expect(isMounted(mnt)).toBe(false);
    expect(childOut).toContain('unmounted');
    await startMount();
    expect(childOut).toContain(`${FUSERMOUNT} -u ${mnt}`);
    await stopMount('SIGKILL');
    expect(isMounted(mnt)).toBe(true); // the kernel keeps a dead mount
    const again = cli(['mount', mnt], env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain(`${FUSERMOUNT} -u ${mnt}`);
    expect(run(FUSERMOUNT, ['-u', mnt]).code).toBe(0);
    expect(isMounted(mnt)).toBe(false);
    // and SIGINT (Ctrl-C) unmounts too
    await startMount();
    expect(await stopMount('SIGINT')).toBe(0);
    expect(isMounted(mnt)).toBe(false);
  });
});
