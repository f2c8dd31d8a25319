import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createCipheriv, createHash } from 'node:crypto';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { BIN, catalogOf, cli, hasCmd, repoEnv, requireSystem, tmpDir, write } from './helpers.js';
import { openSession, type Session } from '../src/api/index.js';
import { FileContentReader } from '../src/query/filecontent.js';
import { DEFAULT_CHUNKER } from '../src/pack/chunker.js';

/**
 * Content-defined chunking end to end (issue 14): a big file snapshotted, then again after a
 * few bytes were inserted near its start, stores only the chunks around the insertion; every
 * read path (restore, cat, dump, ranged reads as mount does them, FUSE) returns the exact bytes.
 */

/** Deterministic pseudo-random bytes. */
function prng(label: string, n: number): Buffer {
  return createCipheriv('aes-256-ctr', createHash('sha256').update(label).digest(), Buffer.alloc(16)).update(Buffer.alloc(n));
}

/** Text that compresses like a database dump, with enough entropy for content-defined cuts. */
function dumpLike(n: number): Buffer {
  const r = prng('dump rows', n);
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const row = `(${i},'user${r[i % n]}${r[(i * 7) % n]}','${r.toString('hex', i % (n - 8), (i % (n - 8)) + 8)}',${r.readUInt16LE(i % (n - 2))}),`;
    parts.push(i % 2000 === 1999 ? row + '\nINSERT INTO `t` VALUES ' : row);
    len += row.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/**
 * Runs the CLI without blocking this worker's event loop (the big file makes each run take
 * seconds; a long synchronous stretch times out vitest's worker RPC). Returns stdout's bytes.
 */
async function run(env: Record<string, string>, args: string[]): Promise<Buffer> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (d: Buffer) => out.push(d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  if (code !== 0) throw new Error(`snapfill ${args.join(' ')} exited ${code}: ${err}`);
  return Buffer.concat(out);
}

const lastJson = (b: Buffer) => JSON.parse(b.toString().trim().split('\n').pop()!);

/** One regular file's data out of a tar stream (ustar, as snapfill dump writes it). */
function tarMember(tar: Buffer, name: string): Buffer | null {
  let pos = 0;
  let longName: string | null = null;
  while (pos + 512 <= tar.length) {
    const h = tar.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) return null;
    const field = (o: number, l: number) => h.toString('latin1', o, o + l).replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const prefix = field(345, 155);
    const full = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100));
    const data = tar.subarray(pos + 512, pos + 512 + size);
    longName = null;
    if (type === 'L') longName = data.toString('latin1').replace(/\0.*$/s, '');
    else if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) longName = m[1];
    } else if (full.replace(/^\.?\//, '') === name.replace(/^\//, '')) return Buffer.from(data);
    pos += 512 + Math.ceil(size / 512) * 512;
  }
  return null;
}

describe('content-defined chunking (version 2)', () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;
  let file: string;
  let v1: Buffer;
  let v2: Buffer;
  let first: { snapshot_id: string; bytes_added: number; blobs_added: number };
  let second: { snapshot_id: string; bytes_added: number; blobs_added: number };

  beforeAll(async () => {
    base = tmpDir('snapfill-cdc-');
    src = path.join(base, 'src');
    env = repoEnv(base);
    file = path.join(src, 'db', 'dump.sql');
    v1 = dumpLike(16 * 1024 * 1024);
    write(file, v1);
    write(path.join(src, 'small.txt'), 'small files stay one blob\n');
    expect(cli(['init'], env).code).toBe(0);
    first = lastJson(await run(env, ['--json', 'snapshot', src]));
    // A row inserted near the start shifts every later byte.
    v2 = Buffer.concat([v1.subarray(0, 5000), Buffer.from("(424242,'inserted row','0011223344556677',7),"), v1.subarray(5000)]);
    write(file, v2);
    second = lastJson(await run(env, ['--json', 'snapshot', src]));
  });

  it('records the chunker in the repository config', () => {
    const config = JSON.parse(fs.readFileSync(path.join(env.SNAPFILL_REPO, 'config'), 'utf8'));
    expect(config.version).toBe(2);
    expect(config.chunker).toEqual(DEFAULT_CHUNKER);
  });

  it('stores only the chunks near an insertion', () => {
    expect(first.bytes_added).toBeGreaterThan(1024 * 1024);
    // Fixed 8 MiB chunks would store all 16 MiB again (every chunk shifted). Here: the one or two
    // chunks around the insertion, plus the tree blobs of the changed directories.
    const trees = path.join(src, 'db').split('/').length; // one new tree per directory from / down to db/
    const dataAdded = second.blobs_added - trees;
    expect(dataAdded).toBeGreaterThanOrEqual(1);
    expect(dataAdded).toBeLessThanOrEqual(3);
    expect(second.bytes_added).toBeLessThan(2 * 1024 * 1024);
  });

  it('restores both versions byte for byte', async () => {
    for (const [snap, want] of [
      [first.snapshot_id, v1],
      [second.snapshot_id, v2],
    ] as const) {
      const target = path.join(base, `restore-${snap.slice(0, 8)}`);
      await run(env, ['restore', snap.slice(0, 8), '--target', target]);
      expect(fs.readFileSync(path.join(target, file)).equals(want)).toBe(true);
    }
  });

  it('cat and dump return the exact bytes', async () => {
    expect((await run(env, ['cat', 'latest', file])).equals(v2)).toBe(true);
    expect((await run(env, ['cat', first.snapshot_id.slice(0, 8), file])).equals(v1)).toBe(true);
    const tar = await run(env, ['dump', 'latest', path.join(src, 'db')]);
    expect(tarMember(tar, 'db/dump.sql')?.equals(v2)).toBe(true);
  });

  it('a rebuilt catalog gets the chunk sizes back from the trees', async () => {
    const cache = path.join(base, 'cache-rebuilt');
    const env2 = { ...env, SNAPFILL_CACHE: cache };
    await run(env2, ['catalog', 'rebuild']);
    expect((await run(env2, ['cat', 'latest', file])).equals(v2)).toBe(true);
  });

  describe('ranged reads (what mount does)', () => {
    let s: Session;
    beforeAll(async () => {
      s = await openSession({ repo: env.SNAPFILL_REPO, catalog: catalogOf(env), passwordFile: env.SNAPFILL_PASSWORD_FILE, readOnly: true });
    });
    afterAll(async () => await s?.close());

    it('reads any byte range across chunk boundaries', async () => {
      const snap = s.catalog.snapshotById(second.snapshot_id)!;
      const v = s.catalog.entry(snap, file)!;
      expect(v.chunkSizes?.length).toBe(v.content!.length);
      expect(v.content!.length).toBeGreaterThan(16); // content-defined: ~256 KiB chunks, not 8 MiB ones
      const reader = new FileContentReader(s.repo, s.catalog, 16 * 1024 * 1024);
      const pieces = reader.layout(v, file);
      const r = prng('offsets', 4096);
      for (let k = 0; k < 200; k++) {
        // Around chunk boundaries half of the time, anywhere otherwise.
        const p = pieces[r.readUInt16LE(k * 4) % pieces.length];
        const pos = k % 2 ? Math.max(0, p.start - (r[k * 4 + 2] << 4)) : r.readUInt32LE(k * 8) % v2.length;
        const len = 1 + ((r.readUInt32LE(k * 8 + 4) >>> 8) % (3 * 1024 * 1024));
        const out = Buffer.alloc(len);
        const n = await reader.readInto(pieces, pos, out, len);
        expect(n).toBe(Math.min(len, v2.length - pos));
        expect(out.subarray(0, n).equals(v2.subarray(pos, pos + n))).toBe(true);
      }
      const tail = Buffer.alloc(10);
      expect(await reader.readInto(pieces, v2.length, tail, 10)).toBe(0);
    });

    it('fails closed when the chunk sizes do not add up', () => {
      const snap = s.catalog.snapshotById(second.snapshot_id)!;
      const v = s.catalog.entry(snap, file)!;
      const reader = new FileContentReader(s.repo, s.catalog, 0);
      const bad = { ...v, chunkSizes: v.chunkSizes!.map((n, i) => (i === 0 ? n + 1 : n)) };
      expect(() => reader.layout(bad, 'dump.sql')).toThrow(/adding up/);
    });
  });

  const fuseOk = (() => {
    if (process.platform !== 'linux') return false;
    let loadError: string | null = null;
    try {
      createRequire(import.meta.url)('fuse-native');
    } catch (e) {
      loadError = (e as Error).message.split('\n')[0];
    }
    return (
      requireSystem('fuse3', () => fs.existsSync('/dev/fuse') && (hasCmd('fusermount') || hasCmd('fusermount3'))) &&
      requireSystem('libfuse2', !loadError?.includes('libfuse')) &&
      requireSystem('fuse-native', loadError === null)
    );
  })();

  describe.skipIf(!fuseOk)('mounted (FUSE)', () => {
    let mnt: string;
    let child: ChildProcess | null = null;
    const mounted = () =>
      fs
        .readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .some((l) => l.split(' ')[1] === mnt);

    beforeAll(async () => {
      mnt = path.join(base, 'mnt');
      fs.mkdirSync(mnt);
      let out = '';
      child = spawn(process.execPath, [BIN, 'mount', mnt], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const end = Date.now() + 20_000;
      while (!(mounted() && out.includes('Ctrl-C')) && child.exitCode === null) {
        if (Date.now() > end) throw new Error(`mount did not come up: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!mounted()) throw new Error(`mount failed: ${out}`);
    });

    afterAll(async () => {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child!.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (mounted()) spawnSync(hasCmd('fusermount') ? 'fusermount' : 'fusermount3', ['-uz', mnt]);
    });

    it('reads the chunked file whole and by ranges', () => {
      const p = path.join(mnt, 'latest', file);
      expect(fs.readFileSync(p).equals(v2)).toBe(true);
      const fd = fs.openSync(p, 'r');
      try {
        const r = prng('fuse offsets', 1024);
        for (let k = 0; k < 50; k++) {
          const pos = r.readUInt32LE(k * 8) % v2.length;
          const len = 1 + (r.readUInt32LE(k * 8 + 4) % (2 * 1024 * 1024));
          const out = Buffer.alloc(len);
          const n = fs.readSync(fd, out, 0, len, pos);
          expect(out.subarray(0, n).equals(v2.subarray(pos, pos + n))).toBe(true);
        }
      } finally {
        fs.closeSync(fd);
      }
    });
  });
});

describe('version-1 repositories keep fixed chunks', () => {
  it('cuts chunk_size chunks (readable by older releases) and reads them back, through cat and the mount', async () => {
    const base = tmpDir('snapfill-cdc-v1-');
    const src = path.join(base, 'src');
    const env = repoEnv(base);
    const file = path.join(src, 'dump.sql');
    const data = dumpLike(9 * 1024 * 1024);
    write(file, data);
    await run(env, ['init', '--format-version', '1']);
    const config = JSON.parse(fs.readFileSync(path.join(env.SNAPFILL_REPO, 'config'), 'utf8'));
    expect([config.version, config.chunker]).toEqual([1, undefined]);
    await run(env, ['snapshot', '-q', src]);
    const s = await openSession({
      repo: env.SNAPFILL_REPO,
      catalog: catalogOf(env),
      passwordFile: env.SNAPFILL_PASSWORD_FILE,
      readOnly: true,
    });
    try {
      const snap = s.catalog.listSnapshots()[0];
      const v = s.catalog.entry(snap, file)!;
      expect(v.content!.length).toBe(2); // 8 MiB + 1 MiB
      expect(v.chunkSizes).toBeUndefined();
    } finally {
      await s.close();
    }
    expect((await run(env, ['cat', 'latest', file])).equals(data)).toBe(true);

    // And through the mount (format 1 stays readable by every reader, issue 14).
    if (!requireSystem('fuse3', () => fs.existsSync('/dev/fuse') && (hasCmd('fusermount') || hasCmd('fusermount3')))) return;
    const mnt = path.join(base, 'mnt');
    fs.mkdirSync(mnt);
    const isMounted = () =>
      fs
        .readFileSync('/proc/self/mounts', 'utf8')
        .split('\n')
        .some((l) => l.split(' ')[1] === mnt);
    let out = '';
    const child = spawn(process.execPath, [BIN, 'mount', mnt], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      const end = Date.now() + 20_000;
      while (!(isMounted() && out.includes('Ctrl-C')) && child.exitCode === null) {
        if (Date.now() > end) throw new Error(`mount did not come up: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(fs.readFileSync(path.join(mnt, 'latest', file)).equals(data)).toBe(true);
    } finally {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      if (isMounted()) spawnSync(hasCmd('fusermount') ? 'fusermount' : 'fusermount3', ['-uz', mnt]);
    }
  }, 120_000);
});
