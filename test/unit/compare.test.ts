import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  compareEntry,
  hasForeignLinks,
  lstatExact,
  metadataFields,
  sameMtime,
  tooManyLinks,
  typeMatches,
  type CompareOptions,
  type Recorded,
} from '../../src/livefs/compare.js';
import { applyMeta } from '../../src/livefs/native.js';

/** Sets an entry's times to `ns` as a restore does (the native addon, to the nanosecond; never following a symlink). */
function setTimes(p: string, ns: bigint): void {
  const st = fs.lstatSync(p, { bigint: true });
  const dfd = fs.openSync(path.dirname(p), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const item = { name: path.basename(p), mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), mtimeNs: ns };
    expect(applyMeta(dfd, [{ ...item, ino: st.ino, dev: st.dev, recordedLinks: 1 }], false)).toEqual([0]);
  } finally {
    fs.closeSync(dfd);
  }
}

/** The one compare rule (src/livefs/compare.ts), on real files. */
describe('livefs/compare', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-compare-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const NS = 1_700_000_000_123_456_789n;
  /** A file as a restore leaves it: content, mode, recorded mtime (set as a restore sets it). */
  function file(name: string, content: string, mode = 0o644): { p: string; rec: Recorded } {
    const p = path.join(dir, name);
    fs.writeFileSync(p, content, { mode });
    fs.chmodSync(p, mode);
    setTimes(p, NS);
    const st = fs.lstatSync(p);
    return {
      p,
      rec: {
        type: 'file',
        mode,
        uid: st.uid,
        gid: st.gid,
        size: content.length,
        mtimeNs: NS,
        linkTarget: null,
        rdev: 0,
        fingerprint: 'f00d',
      },
    };
  }
  const opts = (over: Partial<CompareOptions> = {}): CompareOptions => ({
    content: 'stat',
    owner: true,
    readLink: () => {
      throw new Error('not a symlink');
    },
    fingerprint: () => 'f00d',
    ...over,
  });
  const at = (p: string) => lstatExact(p)!;

  it('an entry as restored is the same', () => {
    const { p, rec } = file('a', 'abc');
    expect(compareEntry(rec, at(p), opts())).toEqual({ kind: 'same' });
  });

  it('type: another kind of entry, with what it is now; a recorded hardlink is a regular file', () => {
    const { p, rec } = file('a', 'abc');
    expect(compareEntry({ ...rec, type: 'dir' }, at(p), opts())).toMatchObject({
      kind: 'type',
      live: 'file',
      reason: 'type: dir in the snapshot, file now',
    });
    expect(compareEntry({ ...rec, type: 'hardlink' }, at(p), opts())).toEqual({ kind: 'same' });
    expect(typeMatches(at(p), 'hardlink')).toBe(true);
    expect(typeMatches(at(dir), 'dir')).toBe(true);
  });

  it('size differs: content', () => {
    const { p, rec } = file('a', 'abc');
    expect(compareEntry({ ...rec, size: 4 }, at(p), opts())).toEqual({ kind: 'content', reason: 'size: 4 in the snapshot, 3 now' });
  });

  it('mtime: equal to the nanosecond (a restore sets times exactly); 1 ns off differs', () => {
    const { p, rec } = file('a', 'abc');
    const st = at(p);
    expect(st.mtimeNs).toBe(NS);
    expect(sameMtime(st, rec.mtimeNs)).toBe(true);
    expect(sameMtime(st, rec.mtimeNs + 1n)).toBe(false);
    expect(sameMtime(st, rec.mtimeNs - 1n)).toBe(false);
    expect(sameMtime(st, rec.mtimeNs + 1000n)).toBe(false);
    expect(compareEntry({ ...rec, mtimeNs: rec.mtimeNs + 1n }, st, opts())).toEqual({
      kind: 'content',
      reason: 'mtime differs (size equal; use --checksum to compare content)',
    });
  });

  it('mtime: any recorded time set as a restore sets it compares equal (the rule restore relies on)', () => {
    const { p } = file('a', 'abc');
    let seed = 12345;
    for (let i = 0; i < 300; i++) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const ns = 1_000_000_000_000_000_000n + BigInt(seed) * 987_654_321n + BigInt(i);
      setTimes(p, ns);
      expect(sameMtime(at(p), ns), `ns ${ns}`).toBe(true);
    }
  });

  it('content rules: stat, checksum (mtime becomes metadata), stat-then-checksum (fingerprint only when size and mtime match)', () => {
    const { p, rec } = file('a', 'abc');
    const moved = { ...rec, mtimeNs: rec.mtimeNs - 5n };
    let reads = 0;
    const fp = (v: string) => () => {
      reads++;
      return v;
    };
    expect(compareEntry(rec, at(p), opts({ content: 'checksum', fingerprint: fp('beef') }))).toEqual({
      kind: 'content',
      reason: 'content differs (xxh64 fingerprint)',
    });
    expect(compareEntry(moved, at(p), opts({ content: 'checksum', fingerprint: fp('f00d') }))).toEqual({
      kind: 'metadata',
      fields: ['mtime'],
    });
    expect(compareEntry(rec, at(p), opts({ content: 'stat-then-checksum', fingerprint: fp('beef') }))).toMatchObject({ kind: 'content' });
    reads = 0;
    expect(compareEntry(moved, at(p), opts({ content: 'stat-then-checksum', fingerprint: fp('f00d') }))).toMatchObject({ kind: 'content' });
    expect(compareEntry(rec, at(p), opts({ content: 'stat', fingerprint: fp('beef') }))).toEqual({ kind: 'same' });
    expect(reads).toBe(0);
    // No recorded fingerprint: judged by size and mtime whatever the rule.
    expect(compareEntry({ ...rec, fingerprint: null }, at(p), opts({ content: 'checksum', fingerprint: fp('beef') }))).toEqual({
      kind: 'same',
    });
  });

  it('mode and owner are metadata; owners only when asked; a symlink has no mode of its own', () => {
    const { p, rec } = file('a', 'abc', 0o600);
    expect(compareEntry({ ...rec, mode: 0o644 }, at(p), opts())).toEqual({ kind: 'metadata', fields: ['mode'] });
    expect(compareEntry({ ...rec, uid: rec.uid + 1 }, at(p), opts())).toEqual({ kind: 'metadata', fields: ['owner'] });
    expect(compareEntry({ ...rec, uid: rec.uid + 1 }, at(p), opts({ owner: false }))).toEqual({ kind: 'same' });
    expect(metadataFields({ ...rec, size: 99, mode: 0o644, mtimeNs: 1n }, at(p), true)).toEqual(['mtime', 'mode']);
    const l = path.join(dir, 'l');
    fs.symlinkSync('a', l);
    setTimes(l, NS);
    const srec: Recorded = { ...rec, type: 'symlink', mode: 0o644, size: 1, linkTarget: 'a' };
    expect(compareEntry(srec, at(l), opts({ readLink: () => fs.readlinkSync(l) }))).toEqual({ kind: 'same' });
  });

  it('symlink target and device number are content', () => {
    const { rec } = file('a', 'abc');
    const l = path.join(dir, 'l');
    fs.symlinkSync('a', l);
    setTimes(l, NS);
    const srec: Recorded = { ...rec, type: 'symlink', linkTarget: 'b' };
    expect(compareEntry(srec, at(l), opts({ readLink: () => fs.readlinkSync(l) }))).toEqual({
      kind: 'content',
      reason: 'symlink target differs',
    });
    const dev = lstatExact('/dev/null')!;
    const drec: Recorded = { ...rec, type: 'chardev', rdev: Number(dev.rdev) + 1, mode: Number(dev.mode) & 0o7777 };
    expect(compareEntry(drec, dev, opts())).toEqual({ kind: 'content', reason: 'device number differs' });
  });

  it("link count: more links than recorded is someone else's inode; directories never", () => {
    const { p } = file('a', 'abc');
    expect(hasForeignLinks(at(p), 1)).toBe(false);
    fs.linkSync(p, path.join(dir, 'b'));
    expect(hasForeignLinks(at(p), 1)).toBe(true);
    expect(hasForeignLinks(at(p), 2)).toBe(false);
    expect(hasForeignLinks(at(dir), 1)).toBe(false);
    expect(tooManyLinks(1, 0)).toBe(false);
    expect(tooManyLinks(3, 2)).toBe(true); // one more link to a group of two that already has two
  });
});
