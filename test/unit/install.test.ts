import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  installFile,
  installFileAsync,
  installFiles,
  placeFlags,
  installLink,
  installSpecial,
  modifiedAfter,
  tempNameFor,
  TempFile,
  TMP_PREFIX,
  type Placement,
} from '../../src/livefs/install.js';
import { SafeRoot, UnsafePathError } from '../../src/livefs/safepath.js';
import { SPARSE_BLOCK } from '../../src/livefs/sparse.js';

/** The one install primitive (src/livefs/install.ts), on real directories. */
const IS_ROOT = process.getuid?.() === 0;
const NS = 1_700_000_000_123_456_789n; // a snapshot-recorded time with sub-microsecond digits
const meta = (over: Partial<{ mode: number; uid: number; gid: number; mtimeNs: string }> = {}) => ({
  mode: 0o640,
  uid: process.getuid!(),
  gid: process.getgid!(),
  mtimeNs: NS.toString(),
  ...over,
});
const policy = { chown: IS_ROOT, umask: 0 };
const CREATE: Placement = { replace: false, fresh: false, keepNewerThanNs: null };
const REPLACE: Placement = { replace: true, fresh: false, keepNewerThanNs: null };

describe('livefs/install', () => {
  let dir: string;
  let dfd: number;
  let oldUmask: number;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-install-'));
    dfd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    oldUmask = process.umask(0); // as a restore runs: files are created with their final mode
  });
  afterEach(() => {
    process.umask(oldUmask);
    fs.closeSync(dfd);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const temps = () => fs.readdirSync(dir).filter((n) => n.startsWith(TMP_PREFIX));
  const put = (name: string, data: string, place: Placement, m = meta()) =>
    installFile(dfd, name, m, policy, place, (t) => t.write(Buffer.from(data)));

  it('writes content, mode and the recorded time to the nanosecond, and leaves no temp behind', () => {
    expect(put('a.txt', 'hello', CREATE)).toEqual({ installed: true });
    const st = fs.lstatSync(path.join(dir, 'a.txt'), { bigint: true });
    expect(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8')).toBe('hello');
    expect(Number(st.mode) & 0o7777).toBe(0o640);
    expect(st.mtimeNs).toBe(NS);
    expect(temps()).toEqual([]);
  });

  it('installs a batch for one directory in one call, each entry by its own placement', () => {
    fs.writeFileSync(path.join(dir, 'taken'), 'customer data');
    fs.writeFileSync(path.join(dir, 'old'), 'stale');
    const data = Buffer.from('AAABBBCCC');
    const res = installFiles(
      dfd,
      [
        { name: 'new', meta: meta(), place: CREATE, offset: 0, length: 3 },
        { name: 'taken', meta: meta(), place: CREATE, offset: 3, length: 3 },
        { name: 'old', meta: meta({ mode: 0o600 }), place: REPLACE, offset: 6, length: 3 },
        { name: 'a/b', meta: meta(), place: CREATE, offset: 0, length: 1 },
      ],
      data,
      policy,
    );
    expect(res).toEqual([
      { installed: true },
      { installed: false, reason: 'present', msg: 'appeared during the restore; left untouched' },
      { installed: true },
      { installed: false, reason: 'failed', msg: 'EINVAL: name' },
    ]);
    expect(['new', 'taken', 'old'].map((n) => fs.readFileSync(path.join(dir, n), 'utf8'))).toEqual(['AAA', 'customer data', 'CCC']);
    expect(fs.lstatSync(path.join(dir, 'old'), { bigint: true }).mtimeNs).toBe(NS);
    expect(temps()).toEqual([]);
  });

  it('reads content from a shared buffer as it is', () => {
    const sab = new SharedArrayBuffer(8);
    Buffer.from(sab).write('sharedOK');
    expect(installFiles(dfd, [{ name: 's', meta: meta(), place: CREATE, offset: 6, length: 2 }], new Uint8Array(sab), policy)).toEqual([
      { installed: true },
    ]);
    expect(fs.readFileSync(path.join(dir, 's'), 'utf8')).toBe('OK');
  });

  it('sets the owner, and set-id bits survive the chown that clears them (root only)', () => {
    if (!IS_ROOT) return;
    expect(put('suid', 'x', CREATE, meta({ uid: 12345, gid: 23456, mode: 0o4755 }))).toEqual({ installed: true });
    const st = fs.lstatSync(path.join(dir, 'suid'));
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([12345, 23456, 0o4755]);
  });

  it('no-clobber creation leaves an existing entry alone; replace renames over it', () => {
    fs.writeFileSync(path.join(dir, 'f'), 'customer data');
    expect(put('f', 'snapshot', CREATE)).toMatchObject({ installed: false, reason: 'present' });
    expect(fs.readFileSync(path.join(dir, 'f'), 'utf8')).toBe('customer data');
    expect(put('f', 'snapshot', REPLACE)).toEqual({ installed: true });
    expect(fs.readFileSync(path.join(dir, 'f'), 'utf8')).toBe('snapshot');
    expect(temps()).toEqual([]);
  });

  it('refuses to replace an entry modified after the snapshot, unless told to', () => {
    const f = path.join(dir, 'newer');
    fs.writeFileSync(f, 'edited later');
    const snapshotTime = fs.lstatSync(f, { bigint: true }).mtimeNs - 1_000_000_000n;
    expect(modifiedAfter(fs.lstatSync(f, { bigint: true }), snapshotTime)).toBe(true);
    expect(modifiedAfter(undefined, snapshotTime)).toBe(false);
    const guarded: Placement = { replace: true, fresh: false, keepNewerThanNs: snapshotTime };
    expect(put('newer', 'old', guarded)).toEqual({ installed: false, reason: 'newer', msg: 'modified after the snapshot' });
    expect(fs.readFileSync(f, 'utf8')).toBe('edited later');
    expect(temps()).toEqual([]);
    expect(put('newer', 'old', { ...guarded, keepNewerThanNs: null })).toEqual({ installed: true });
    expect(fs.readFileSync(f, 'utf8')).toBe('old');
  });

  it('never writes through a symlink: at the final name it is replaced or left, its target untouched', () => {
    const outside = path.join(dir, 'outside.txt');
    fs.writeFileSync(outside, 'not yours');
    fs.symlinkSync(outside, path.join(dir, 'link'));
    expect(put('link', 'snapshot', CREATE)).toMatchObject({ installed: false, reason: 'present' });
    expect(put('link', 'snapshot', REPLACE)).toEqual({ installed: true });
    expect(fs.lstatSync(path.join(dir, 'link')).isFile()).toBe(true);
    expect(fs.readFileSync(outside, 'utf8')).toBe('not yours');
  });

  it('a symlink planted at the temp name is removed (crash leftover) or refused, never followed', () => {
    const outside = path.join(dir, 'outside.txt');
    fs.writeFileSync(outside, 'not yours');
    fs.symlinkSync(outside, path.join(dir, tempNameFor('g')));
    // In a directory this run created ("fresh") nothing is cleared first: O_EXCL|O_NOFOLLOW refuses.
    expect(() => put('g', 'snapshot', { ...CREATE, fresh: true })).toThrow(/EEXIST/);
    // Nor in one whose listing showed no temp entry ("clean": this one was planted since).
    expect(() => put('g', 'snapshot', { ...CREATE, clean: true })).toThrow(/EEXIST/);
    expect(put('g', 'snapshot', CREATE)).toEqual({ installed: true });
    expect(fs.readFileSync(outside, 'utf8')).toBe('not yours');
    expect(temps()).toEqual([]);
  });

  it('a directory swapped for a symlink is refused by the safe-path layer', () => {
    fs.mkdirSync(path.join(dir, 'elsewhere'));
    fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'sub'));
    const root = new SafeRoot(dir);
    try {
      expect(() => root.dirFd('sub', true)).toThrow(UnsafePathError);
    } finally {
      root.close();
    }
  });

  it('writes all-zero blocks as holes, trailing hole included, byte for byte', () => {
    const data = Buffer.alloc(8 * SPARSE_BLOCK);
    data.write('head', 0);
    data.write('middle', 4 * SPARSE_BLOCK + 10);
    expect(
      installFile(dfd, 'sparse', meta(), policy, CREATE, (t) => {
        t.write(data.subarray(0, 5 * SPARSE_BLOCK));
        t.write(data.subarray(5 * SPARSE_BLOCK));
      }),
    ).toEqual({ installed: true });
    const f = path.join(dir, 'sparse');
    expect(fs.readFileSync(f).equals(data)).toBe(true);
    expect(fs.statSync(f).blocks * 512).toBeLessThan(data.length / 2);
  });

  it('a failed write leaves nothing: no temp, no final name', async () => {
    expect(() =>
      installFile(dfd, 'broken', meta(), policy, CREATE, () => {
        throw new Error('corrupt chunk');
      }),
    ).toThrow('corrupt chunk');
    await expect(
      installFileAsync(dfd, 'broken', meta(), policy, CREATE, async () => {
        throw new Error('store down');
      }),
    ).rejects.toThrow('store down');
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('installs symlinks and FIFOs with their metadata', () => {
    expect(installSpecial(dfd, 'sl', { type: 'symlink', linkTarget: 'target/x', rdev: 0 }, meta(), policy, CREATE)).toEqual({
      installed: true,
    });
    expect(fs.readlinkSync(path.join(dir, 'sl'))).toBe('target/x');
    expect(fs.lstatSync(path.join(dir, 'sl'), { bigint: true }).mtimeNs).toBe(NS);
    expect(installSpecial(dfd, 'pipe', { type: 'fifo', linkTarget: null, rdev: 0 }, meta({ mode: 0o600 }), policy, CREATE)).toEqual({
      installed: true,
    });
    const st = fs.lstatSync(path.join(dir, 'pipe'));
    expect([st.isFIFO(), st.mode & 0o7777]).toEqual([true, 0o600]);
    expect(temps()).toEqual([]);
  });

  it('links to the examined inode only; a swapped source is undone', () => {
    fs.writeFileSync(path.join(dir, 'first'), 'shared');
    const examined = fs.lstatSync(path.join(dir, 'first'), { bigint: true });
    expect(installLink({ dirFd: dfd, name: 'first', expect: examined }, dfd, 'second', CREATE)).toEqual({ installed: true });
    expect(fs.lstatSync(path.join(dir, 'second')).ino).toBe(Number(examined.ino));
    fs.rmSync(path.join(dir, 'first'));
    fs.writeFileSync(path.join(dir, 'first'), 'swapped in');
    expect(installLink({ dirFd: dfd, name: 'first', expect: examined }, dfd, 'third', CREATE)).toMatchObject({
      installed: false,
      reason: 'source-changed',
    });
    expect(fs.existsSync(path.join(dir, 'third'))).toBe(false);
    expect(temps()).toEqual([]);
  });

  it('temp names derive from the final name (a re-run finds the leftovers); long names are hashed', () => {
    expect(tempNameFor('index.php')).toBe(`${TMP_PREFIX}index.php`);
    const long = tempNameFor('n'.repeat(250));
    expect(long.length).toBeLessThan(100);
    expect(tempNameFor('n'.repeat(250))).toBe(long);
    const t = TempFile.create(dfd, 'x', 0o600, placeFlags(CREATE, policy));
    t.discard();
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
