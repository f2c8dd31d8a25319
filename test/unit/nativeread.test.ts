import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { IS_ROOT, tmpDir } from '../helpers.js';
import { FileBatch, NOT_REGULAR, raiseNofile } from '../../src/livefs/nativeread.js';

// The addon's batched whole-file read (native/read.c) on real directories, with hostile input.
const dirs: string[] = [];
const open: number[] = [];
function dir(): { p: string; fd: number } {
  const p = tmpDir('snapfill-nativeread-');
  dirs.push(p);
  const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  open.push(fd);
  return { p, fd };
}
afterAll(() => {
  for (const fd of open) fs.closeSync(fd);
  for (const p of dirs) fs.rmSync(p, { recursive: true, force: true });
}, 300_000); // 100k files to remove on a machine that may be busy
const raw = (p: string, name: string) => Buffer.concat([Buffer.from(p + '/'), Buffer.from(name, 'latin1')]);
const { ENOENT, EINVAL, ELOOP } = os.constants.errno;

// Every byte value but '/' and NUL ('.' alone is not a name), and names of 255 bytes.
const hostile: string[] = [];
for (let b = 1; b < 256; b++) if (b !== 0x2f && b !== 0x2e) hostile.push(String.fromCharCode(b));
hostile.push('.x', '..x', 'a'.repeat(255), Array.from({ length: 255 }, (_, i) => String.fromCharCode(0x80 + (i % 127))).join(''));

describe('native readFiles', () => {
  it('reads names of every byte but / and NUL, up to 255 bytes, with their stat', () => {
    const { p, fd } = dir();
    hostile.forEach((n, i) => fs.writeFileSync(raw(p, n), Buffer.from(`content ${i}`)));
    const b = new FileBatch();
    const caps = hostile.map((_, i) => `content ${i}`.length + 1);
    expect(b.read(fd, hostile, caps)).toBe(0);
    hostile.forEach((n, i) => {
      expect(b.errno(i)).toBe(0);
      expect(b.data(i).toString()).toBe(`content ${i}`);
      const st = fs.lstatSync(raw(p, n), { bigint: true });
      expect(b.ino(i)).toBe(st.ino);
      expect(b.dev(i)).toBe(st.dev);
      expect(b.size(i)).toBe(st.size);
      expect(b.mtimeNs(i)).toBe(st.mtimeNs);
      expect(b.ctimeNs(i)).toBe(st.ctimeNs);
      expect(b.mode(i)).toBe(Number(st.mode));
      expect(b.uid(i)).toBe(Number(st.uid));
      expect(b.nlink(i)).toBe(1);
    });
  });

  it('handles an empty batch and empty files', () => {
    const { p, fd } = dir();
    const b = new FileBatch();
    expect(b.read(fd, [], [])).toBe(0);
    expect(b.count).toBe(0);
    fs.writeFileSync(path.join(p, 'empty'), '');
    expect(b.read(fd, ['empty'], [1])).toBe(0);
    expect(b.length(0)).toBe(0);
    expect(b.errno(0)).toBe(0);
  });

  it('reads a batch of 100k entries', { timeout: 300_000 }, () => {
    const { p, fd } = dir();
    const names = Array.from({ length: 100_000 }, (_, i) => `f${i}`);
    for (const n of names) fs.writeFileSync(path.join(p, n), n);
    const b = new FileBatch();
    expect(
      b.read(
        fd,
        names,
        names.map((n) => n.length + 1),
      ),
    ).toBe(0);
    for (let i = 0; i < names.length; i += 997) expect(b.data(i).toString()).toBe(names[i]);
    expect(b.data(99_999).toString()).toBe('f99999');
  });

  it('gives ENOENT (and other errors) per entry, never a throw', () => {
    const { p, fd } = dir();
    fs.writeFileSync(path.join(p, 'a'), 'A');
    fs.writeFileSync(path.join(p, 'c'), 'C');
    fs.symlinkSync('a', path.join(p, 'link'));
    const b = new FileBatch();
    expect(b.read(fd, ['a', 'gone', 'c', '..', 'x/y', 'link'], [2, 2, 2, 2, 2, 2])).toBe(4);
    expect([b.errno(0), b.errno(1), b.errno(2), b.errno(3), b.errno(4)]).toEqual([0, ENOENT, 0, EINVAL, EINVAL]);
    expect(b.data(2).toString()).toBe('C');
    // A symlink is never followed: not a regular file, and its target is not read.
    expect(b.errno(5)).toBe(NOT_REGULAR);
    expect(b.length(5)).toBe(0);
    expect([ELOOP, NOT_REGULAR]).toContain(b.errno(5));
  });

  it('never opens a FIFO or a device', () => {
    const { p, fd } = dir();
    fs.writeFileSync(path.join(p, 'a'), 'A');
    // A FIFO with no writer: opening it for read without O_NONBLOCK would block this thread for good.
    const fifo = spawn('mkfifo', [path.join(p, 'fifo')]);
    return new Promise<void>((resolve, reject) => {
      fifo.on('exit', (code) => {
        try {
          expect(code).toBe(0);
          const names = ['fifo', 'a'];
          if (IS_ROOT) fs.symlinkSync('/dev/null', path.join(p, 'devlink'));
          const b = new FileBatch();
          expect(b.read(fd, names, [10, 10])).toBe(1);
          expect(b.errno(0)).toBe(NOT_REGULAR);
          expect(b.mode(0) & 0o170000).toBe(fs.constants.S_IFIFO);
          expect(b.data(1).toString()).toBe('A');
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      });
    });
  });

  it.skipIf(!IS_ROOT)('never opens a device node (root)', () => {
    const { p, fd } = dir();
    const rdev = fs.statSync('/dev/null').rdev;
    // mknod through the shell: node has no mknod.
    const r = spawn('mknod', [path.join(p, 'null'), 'c', String(Math.floor(rdev / 256)), String(rdev % 256)]);
    return new Promise<void>((resolve, reject) =>
      r.on('exit', () => {
        try {
          const b = new FileBatch();
          expect(b.read(fd, ['null'], [10])).toBe(1);
          expect(b.errno(0)).toBe(NOT_REGULAR);
          expect(b.mode(0) & 0o170000).toBe(fs.constants.S_IFCHR);
          resolve();
        } catch (e) {
          reject(e as Error);
        }
      }),
    );
  });

  it('shows a file that grows during the read: a full slot, and a stat after the read that moved', { timeout: 40_000 }, async () => {
    const { p, fd } = dir();
    const f = path.join(p, 'growing');
    fs.writeFileSync(f, 'start\n');
    // A writer appending as fast as it can while this thread reads the file again and again.
    const writer = spawn('sh', ['-c', `while :; do echo more >> '${f}'; done`], { stdio: 'ignore' });
    try {
      // Wait until the writer runs (a loaded machine may start it late).
      for (const t0 = Date.now(); fs.statSync(f).size < 100 && Date.now() - t0 < 10_000;) await new Promise((r) => setTimeout(r, 10));
      const b = new FileBatch();
      let moved = 0;
      let full = 0;
      for (const t0 = Date.now(); (moved === 0 || full === 0) && Date.now() - t0 < 15_000;) {
        const before = fs.statSync(f, { bigint: true });
        const cap = Number(before.size) + 1;
        expect(b.read(fd, ['growing'], [cap])).toBe(0);
        if (b.length(0) === cap) full++; // more bytes than the stat before promised
        if (b.mtimeNs(0) !== before.mtimeNs || b.size(0) !== before.size) moved++;
        await new Promise((r) => setTimeout(r, 1)); // let the writer run between the stat and the read
      }
      expect(moved).toBeGreaterThan(0);
      expect(full).toBeGreaterThan(0);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('refuses malformed calls with a throw (wrong types, slots out of range)', () => {
    const { fd } = dir();
    const b = new FileBatch() as unknown as { read: FileBatch['read'] };
    expect(() => b.read(fd, ['a'], [Number.NaN])).toThrow(/slots/);
  });

  it('raises the open-files limit to the hard limit', () => {
    expect(raiseNofile()).toBeGreaterThanOrEqual(1024);
  });
});
