import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { IS_ROOT, tmpDir } from '../helpers.js';
import {
  applyMeta,
  closeFd,
  DirScan,
  ESTALE,
  F_CLEAR,
  F_KEEP_NEWER,
  F_NOCLOBBER,
  fdMeta,
  installFiles,
  installSpecialAt,
  lstatAt,
  openTemp,
  placeTemp,
  readlinkAt,
  sealTemp,
  limitMallocArenas,
  linkAt,
  mkdirAt,
  native,
  mknodAt,
  openDirAt,
  symlinkAt,
  unlinkAt,
} from '../../src/livefs/native.js';

// The addon's calls on real directories, with hostile names and big batches.
const dirs: string[] = [];
const open: number[] = [];
function dir(): { p: string; fd: number } {
  const p = tmpDir('snapfill-native-');
  dirs.push(p);
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  open.push(fd);
  return { p, fd };
}
afterAll(() => {
  for (const fd of open) fs.closeSync(fd);
  for (const p of dirs) fs.rmSync(p, { recursive: true, force: true });
});
const raw = (p: string, name: string) => Buffer.concat([Buffer.from(p + '/'), Buffer.from(name, 'latin1')]);
function scanAll(fd: number): Map<string, number> {
  const s = new DirScan(4);
  expect(s.read(fd)).toBe(0);
  const m = new Map<string, number>();
  for (let i = 0; i < s.count; i++) m.set(s.name(i), i);
  return m;
}
const meta = {
  mode: 0o640,
  uid: process.getuid!(),
  gid: process.getgid!(),
  atimeNs: 1_600_000_000_123_456_789n,
  mtimeNs: 1_700_000_000_987_654_321n,
};

// Every byte value but '/' and NUL, in names of up to 255 bytes.
const hostile: string[] = [];
for (let b = 1; b < 256; b++) if (b !== 0x2f && b !== 0x2e) hostile.push(String.fromCharCode(b));
hostile.push(
  '.x',
  '..x',
  'a'.repeat(255),
  Array.from({ length: 255 }, (_, i) => String.fromCharCode(i % 254 === 0x2e ? 0x30 : (i % 254) + 1 === 0x2f ? 0x30 : (i % 254) + 1)).join(
    '',
  ),
);

describe('native livefs addon', () => {
  it('installs and scans names of every byte but / and NUL, up to 255 bytes', () => {
    const { p, fd } = dir();
    const items = hostile.map((name, i) => ({ ...meta, name, tmp: `.t${i}`, data: Buffer.from(name, 'latin1') }));
    const res = installFiles(fd, items, { chown: IS_ROOT, noClobber: true });
    expect(res.filter((r) => r.errno !== 0)).toEqual([]);
    const names = scanAll(fd);
    expect([...names.keys()].sort()).toEqual([...hostile].sort());
    for (const n of hostile) expect(fs.readFileSync(raw(p, n)).toString('latin1')).toBe(n);
    expect(installFiles(fd, [{ ...items[0], tmp: '.again' }], { chown: false, noClobber: true })[0]).toEqual({ errno: 17, step: 'rename' });
    expect(fs.existsSync(path.join(p, '.again'))).toBe(false);
  });

  it('refuses names that are not one component, per entry', () => {
    const { fd } = dir();
    const bad = ['', '.', '..', 'a/b', 'a\0b', 'x'.repeat(256)];
    const res = installFiles(
      fd,
      bad.map((name, i) => ({ ...meta, name, tmp: `.t${i}`, data: Buffer.alloc(1) })),
      { chown: false, noClobber: false },
    );
    expect(res.map((r) => r.errno)).toEqual(bad.map(() => 22));
    for (const n of bad) expect(openDirAt(fd, n)).toBe(-22);
    expect(scanAll(fd).size).toBe(0);
  });

  it('handles empty batches and empty directories', () => {
    const { fd } = dir();
    expect(installFiles(fd, [], { chown: false, noClobber: false })).toEqual([]);
    expect(applyMeta(fd, [], false)).toEqual([]);
    expect(scanAll(fd).size).toBe(0);
  });

  it('installs and scans a batch of 100k entries', () => {
    const { fd } = dir();
    const items = Array.from({ length: 100_000 }, (_, i) => ({ ...meta, name: `f${i}`, tmp: `.t${i}`, data: Buffer.alloc(0) }));
    expect(installFiles(fd, items, { chown: false, noClobber: false }).every((r) => r.errno === 0)).toBe(true);
    const s = new DirScan();
    expect(s.read(fd)).toBe(0);
    expect(s.count).toBe(100_000);
    const seen = new Set<string>();
    for (let i = 0; i < s.count; i++) seen.add(s.name(i));
    expect(seen.size).toBe(100_000);
  }, 60_000);

  it('round-trips times to the nanosecond and reports stat fields', () => {
    const { p, fd } = dir();
    installFiles(fd, [{ ...meta, name: 'f', tmp: '.t', data: Buffer.from('hello') }], { chown: false, noClobber: false });
    const st = fs.lstatSync(path.join(p, 'f'), { bigint: true });
    expect(st.mtimeNs).toBe(meta.mtimeNs);
    expect(st.atimeNs).toBe(meta.atimeNs);
    const s = new DirScan();
    s.read(fd);
    expect([s.name(0), s.mtimeNs(0), s.atimeNs(0), s.ctimeNs(0), s.ino(0), s.dev(0), s.size(0)]).toEqual([
      'f',
      st.mtimeNs,
      st.atimeNs,
      st.ctimeNs,
      st.ino,
      st.dev,
      5n,
    ]);
    expect([s.mode(0), s.uid(0), s.gid(0), s.nlink(0), s.errs[0]]).toEqual([0o100640, Number(st.uid), Number(st.gid), 1, 0]);
  });

  it('writes all-zero blocks as holes', () => {
    const { p, fd } = dir();
    const data = Buffer.alloc(4 << 20);
    data.write('head', 0);
    installFiles(fd, [{ ...meta, name: 'sparse', tmp: '.t', data }], { chown: false, noClobber: false });
    const st = fs.statSync(path.join(p, 'sparse'));
    expect(st.size).toBe(4 << 20);
    expect(st.blocks * 512).toBeLessThan(1 << 20);
    expect(fs.readFileSync(path.join(p, 'sparse')).equals(data)).toBe(true);
  });

  it('makes FIFOs, symlinks, hard links and directories; unlinks', () => {
    const { p, fd } = dir();
    expect(mknodAt(fd, 'fifo', fs.constants.S_IFIFO | 0o600, 0)).toBe(0);
    expect(symlinkAt('/etc/\xff', fd, 'link')).toBe(0);
    installFiles(fd, [{ ...meta, name: 'f', tmp: '.t', data: Buffer.from('x') }], { chown: false, noClobber: false });
    expect(linkAt(fd, 'f', fd, 'hard')).toBe(0);
    expect(linkAt(fd, 'f', fd, 'hard')).toBe(-17);
    expect(mkdirAt(fd, 'd', 0o700)).toBe(0);
    const s = new DirScan();
    s.read(fd);
    const type = new Map<string, number>();
    for (let i = 0; i < s.count; i++) type.set(s.name(i), s.mode(i) & 0o170000);
    expect(type.get('fifo')).toBe(fs.constants.S_IFIFO);
    expect(type.get('link')).toBe(fs.constants.S_IFLNK);
    expect(type.get('d')).toBe(fs.constants.S_IFDIR);
    expect(fs.readlinkSync(path.join(p, 'link'), { encoding: 'buffer' }).toString('latin1')).toBe('/etc/\xff');
    expect(fs.statSync(path.join(p, 'hard')).ino).toBe(fs.statSync(path.join(p, 'f')).ino);
    expect(unlinkAt(fd, 'd', true)).toBe(0);
    expect(unlinkAt(fd, 'fifo')).toBe(0);
    expect(unlinkAt(fd, 'fifo')).toBe(-2);
  });

  it.skipIf(!IS_ROOT)('makes devices and sets owners (root)', () => {
    const { p, fd } = dir();
    const rdev = (1 << 8) | 3; // /dev/null: major 1, minor 3
    expect(mknodAt(fd, 'null', fs.constants.S_IFCHR | 0o600, rdev)).toBe(0);
    expect(fs.lstatSync(path.join(p, 'null')).rdev).toBe(rdev);
    const st = fs.lstatSync(path.join(p, 'null'), { bigint: true });
    expect(
      applyMeta(
        fd,
        [{ name: 'null', mode: 0o640, uid: 1234, gid: 5678, mtimeNs: meta.mtimeNs, ino: st.ino, dev: st.dev, recordedLinks: 1 }],
        true,
      ),
    ).toEqual([0]);
    const after = fs.lstatSync(path.join(p, 'null'), { bigint: true });
    expect([after.uid, after.gid, after.mode & 0o7777n, after.mtimeNs]).toEqual([1234n, 5678n, 0o640n, meta.mtimeNs]);
  });

  it('applies only the metadata that differs from what the caller saw', () => {
    const { p, fd } = dir();
    const f = path.join(p, 'g');
    fs.writeFileSync(f, 'x');
    fs.chmodSync(f, 0o640);
    fs.utimesSync(f, 1_000_000, 1_000_000);
    const st = fs.lstatSync(f, { bigint: true });
    const item = {
      name: 'g',
      mode: 0o640,
      uid: Number(st.uid),
      gid: Number(st.gid),
      mtimeNs: st.mtimeNs,
      ino: st.ino,
      dev: st.dev,
      recordedLinks: 1,
    };
    const seen = { mode: st.mode, uid: st.uid, gid: st.gid, mtimeNs: st.mtimeNs };
    // Nothing differs: no call at all, so not even the ctime moves.
    execFileSync('sleep', ['0.02']);
    expect(applyMeta(fd, [{ ...item, seen }], true)).toEqual([0]);
    expect(fs.lstatSync(f, { bigint: true }).ctimeNs).toBe(st.ctimeNs);
    // Only the mode differs: the mode is set, the times are left as they are.
    expect(applyMeta(fd, [{ ...item, mode: 0o600, seen }], true)).toEqual([0]);
    const after = fs.lstatSync(f, { bigint: true });
    expect([Number(after.mode) & 0o7777, after.mtimeNs, after.atimeNs]).toEqual([0o600, st.mtimeNs, st.atimeNs]);
    // Only the mtime differs: set (atime = mtime), mode untouched.
    expect(applyMeta(fd, [{ ...item, mode: 0o600, mtimeNs: meta.mtimeNs, seen: { ...seen, mode: after.mode } }], true)).toEqual([0]);
    const last = fs.lstatSync(f, { bigint: true });
    expect([Number(last.mode) & 0o7777, last.mtimeNs, last.atimeNs]).toEqual([0o600, meta.mtimeNs, meta.mtimeNs]);
  });

  it('applies metadata only to the inode examined, never through a symlink', () => {
    const { p, fd } = dir();
    fs.writeFileSync(path.join(p, 'f'), 'x');
    fs.writeFileSync(path.join(p, 'outside'), 'y');
    fs.symlinkSync('outside', path.join(p, 'link'));
    const st = fs.lstatSync(path.join(p, 'f'), { bigint: true });
    const lst = fs.lstatSync(path.join(p, 'link'), { bigint: true });
    const item = {
      name: 'f',
      mode: 0o600,
      uid: meta.uid,
      gid: meta.gid,
      mtimeNs: meta.mtimeNs,
      ino: st.ino,
      dev: st.dev,
      recordedLinks: 1,
    };
    expect(applyMeta(fd, [item, { ...item, name: 'link', ino: lst.ino, dev: lst.dev }], false)).toEqual([0, 0]);
    expect(fs.lstatSync(path.join(p, 'link'), { bigint: true }).mtimeNs).toBe(meta.mtimeNs);
    expect(fs.statSync(path.join(p, 'outside')).mode & 0o777).toBe(0o644 & ~process.umask());
    // Swapped for another inode, or given a foreign hard link: untouched, ESTALE.
    fs.renameSync(path.join(p, 'outside'), path.join(p, 'f'));
    expect(applyMeta(fd, [{ ...item, mode: 0o777 }], false)).toEqual([ESTALE]);
    const now = fs.lstatSync(path.join(p, 'f'), { bigint: true });
    fs.linkSync(path.join(p, 'f'), path.join(p, 'f2'));
    expect(applyMeta(fd, [{ ...item, mode: 0o777, ino: now.ino }], false)).toEqual([ESTALE]);
    expect(fs.statSync(path.join(p, 'f')).mode & 0o777).not.toBe(0o777);
  });

  it('sets the mode of the pinned inode on a kernel without fchmodat2 too (through /proc/self/fd)', () => {
    const { p } = dir();
    const f = path.join(p, 'h');
    fs.writeFileSync(f, 'x');
    fs.chmodSync(f, 0o644);
    const st = fs.lstatSync(f, { bigint: true });
    // A child process: the addon reads the switch when it loads.
    const script = `
      import * as fs from 'node:fs';
      import { applyMeta } from ${JSON.stringify(path.resolve('dist/livefs/native.js'))};
      const fd = fs.openSync(${JSON.stringify(p)}, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      const item = { name: 'h', mode: 0o600, uid: ${st.uid}, gid: ${st.gid}, mtimeNs: ${st.mtimeNs}n, ino: ${st.ino}n, dev: ${st.dev}n, recordedLinks: 1 };
      process.stdout.write(JSON.stringify(applyMeta(fd, [item], false)));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, SNAPFILL_TEST_NO_FCHMODAT2: '1' },
    });
    expect(JSON.parse(out)).toEqual([0]);
    expect(fs.lstatSync(f).mode & 0o7777).toBe(0o600);
  });

  it('never clobbers where RENAME_NOREPLACE is missing either (a link, then the temp removed)', () => {
    for (const noReplace of ['', '1']) {
      const { p } = dir();
      fs.writeFileSync(path.join(p, 'taken'), 'the customer');
      const script = `
        import * as fs from 'node:fs';
        import { installFiles } from ${JSON.stringify(path.resolve('dist/livefs/native.js'))};
        const fd = fs.openSync(${JSON.stringify(p)}, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
        const m = { mode: 0o644, uid: 0, gid: 0, atimeNs: 1n, mtimeNs: 1n };
        const items = [{ ...m, name: 'new', tmp: '.t0', data: Buffer.from('ok') }, { ...m, name: 'taken', tmp: '.t1', data: Buffer.from('snapshot') }];
        process.stdout.write(JSON.stringify(installFiles(fd, items, { chown: false, noClobber: true })));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        encoding: 'utf8',
        env: { ...process.env, SNAPFILL_TEST_NO_RENAME_NOREPLACE: noReplace },
      });
      expect(JSON.parse(out), `no RENAME_NOREPLACE: ${noReplace}`).toEqual([
        { errno: 0, step: '' },
        { errno: 17, step: 'rename' },
      ]);
      expect(fs.readFileSync(path.join(p, 'new'), 'utf8')).toBe('ok');
      expect(fs.lstatSync(path.join(p, 'new')).nlink).toBe(1); // linked, then the temp name removed
      expect(fs.readFileSync(path.join(p, 'taken'), 'utf8')).toBe('the customer');
      expect(fs.readdirSync(p).sort()).toEqual(['new', 'taken']);
    }
  });

  it('refuses a symlink in place of a directory', () => {
    const { p, fd } = dir();
    fs.symlinkSync('/etc', path.join(p, 'd'));
    fs.writeFileSync(path.join(p, 'file'), '');
    expect([-40, -20]).toContain(openDirAt(fd, 'd')); // ELOOP or ENOTDIR: either way never followed
    expect(openDirAt(fd, 'file')).toBe(-20); // ENOTDIR
    expect(openDirAt(fd, 'none')).toBe(-2);
    fs.mkdirSync(path.join(p, 'real'));
    const sub = openDirAt(fd, 'real');
    expect(sub).toBeGreaterThan(2);
    closeFd(sub);
  });

  it.skipIf(!IS_ROOT)('reports ENOSPC on a full file system and leaves no half-written file', () => {
    const { p } = dir();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', p]);
    try {
      const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
      try {
        const data = Buffer.alloc(2 << 20, 1);
        const res = installFiles(
          fd,
          [
            { ...meta, name: 'small', tmp: '.t0', data: Buffer.from('ok') },
            { ...meta, name: 'big', tmp: '.t1', data },
          ],
          { chown: false, noClobber: false },
        );
        expect(res).toEqual([
          { errno: 0, step: '' },
          { errno: 28, step: 'write' },
        ]);
        expect(fs.readdirSync(p)).toEqual(['small']);
      } finally {
        fs.closeSync(fd);
      }
    } finally {
      execFileSync('umount', [p]);
    }
  });

  it('names-only scans skip fstatat but still give the type; statAt and readlinkAt work by name', () => {
    const { p, fd } = dir();
    fs.mkdirSync(path.join(p, 'd'));
    fs.writeFileSync(path.join(p, 'f'), 'x');
    fs.symlinkSync(Buffer.from('t\xff'.repeat(100), 'latin1') as unknown as string, path.join(p, 'l'));
    const s = new DirScan(2);
    expect(s.read(fd, true)).toBe(0);
    const types = new Map<string, number>();
    for (let i = 0; i < s.count; i++) types.set(s.name(i), s.mode(i));
    expect(types).toEqual(
      new Map([
        ['d', fs.constants.S_IFDIR],
        ['f', fs.constants.S_IFREG],
        ['l', fs.constants.S_IFLNK],
      ]),
    );
    const st = lstatAt(fd, 'l')!;
    expect(st.isSymbolicLink()).toBe(true);
    expect(st.ino).toBe(fs.lstatSync(path.join(p, 'l'), { bigint: true }).ino);
    expect(lstatAt(fd, 'none')).toBeUndefined();
    expect(readlinkAt(fd, 'l')).toBe('t\xff'.repeat(100));
  });

  it('streams a large file through openTemp/sealTemp, and places with no-clobber and keep-newer', () => {
    const { p, fd } = dir();
    const m = { mode: 0o640, uid: meta.uid, gid: meta.gid };
    const t = openTemp(fd, '.tmp.big', 0o640, 0);
    expect(t).toBeGreaterThan(2);
    fs.writeSync(t, Buffer.from('streamed'));
    expect(sealTemp(t, fd, '.tmp.big', 'big', -1, m, 0, meta.mtimeNs, 0n)).toEqual({ errno: 0, step: '' });
    expect(fs.readFileSync(path.join(p, 'big'), 'utf8')).toBe('streamed');
    expect(fs.lstatSync(path.join(p, 'big'), { bigint: true }).mtimeNs).toBe(meta.mtimeNs);
    // No clobber: the name is taken, the temp goes.
    fs.writeFileSync(path.join(p, '.tmp.x'), 'new');
    expect(placeTemp(fd, '.tmp.x', 'big', F_NOCLOBBER, 0n)).toEqual({ errno: 17, step: 'rename' });
    expect(fs.existsSync(path.join(p, '.tmp.x'))).toBe(false);
    // Keep newer: 'big' was modified after time 1, so it stays.
    fs.writeFileSync(path.join(p, '.tmp.x'), 'new');
    expect(placeTemp(fd, '.tmp.x', 'big', F_KEEP_NEWER, 1n)).toEqual({ errno: 17, step: 'newer' });
    expect(fs.readFileSync(path.join(p, 'big'), 'utf8')).toBe('streamed');
    // A leftover temp is cleared with F_CLEAR, refused (EEXIST, O_EXCL) without.
    fs.symlinkSync('/etc/passwd', path.join(p, '.tmp.y'));
    expect(openTemp(fd, '.tmp.y', 0o600, 0)).toBe(-17);
    const y = openTemp(fd, '.tmp.y', 0o600, F_CLEAR);
    expect(y).toBeGreaterThan(2);
    expect(sealTemp(y, fd, '.tmp.y', 'y', -1, m, 0, meta.mtimeNs, 0n).errno).toBe(0);
    expect(fs.lstatSync(path.join(p, 'y')).isFile()).toBe(true);
  });

  it('makes specials through their temp name with metadata, and sets the metadata of a directory fd to the ns', () => {
    const { p, fd } = dir();
    const m = { uid: meta.uid, gid: meta.gid };
    expect(installSpecialAt(fd, '.t1', 'sl', '../x', 0, { ...m, mode: 0o120777 }, 0, meta.mtimeNs, 0n)).toEqual({ errno: 0, step: '' });
    expect(installSpecialAt(fd, '.t2', 'fifo', '', 0, { ...m, mode: 0o010604 }, 0, meta.mtimeNs, 0n)).toEqual({ errno: 0, step: '' });
    expect(fs.readlinkSync(path.join(p, 'sl'))).toBe('../x');
    const f = fs.lstatSync(path.join(p, 'fifo'), { bigint: true });
    expect([f.isFIFO(), Number(f.mode) & 0o7777, f.mtimeNs]).toEqual([true, 0o604, meta.mtimeNs]);
    expect(fs.lstatSync(path.join(p, 'sl'), { bigint: true }).mtimeNs).toBe(meta.mtimeNs);
    expect(fs.readdirSync(p).sort()).toEqual(['fifo', 'sl']);
    fdMeta(fd, { ...m, mode: 0o711 }, 0, meta.mtimeNs);
    const d = fs.lstatSync(p, { bigint: true });
    expect([Number(d.mode) & 0o7777, d.mtimeNs]).toEqual([0o711, meta.mtimeNs]);
  });

  it('caps malloc arenas, and refuses a cap below one', () => {
    expect(() => limitMallocArenas()).not.toThrow();
    expect(native().limitArenas(2)).toBe(0);
    expect(() => native().limitArenas(0)).toThrow(/limitArenas/);
  });
});
