import { describe, expect, it } from 'vitest';
import { createCipheriv, createHash } from 'node:crypto';
import { Chunker, DEFAULT_CHUNKER, chunkBuffer, gearTable, validateChunker, type ChunkerParams } from '../../src/pack/chunker.js';

/** Deterministic pseudo-random bytes: AES-256-CTR keystream under a key named by `label`. */
function prng(label: string, n: number): Buffer {
  const key = createHash('sha256').update(label).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

const SMALL: ChunkerParams = { min: 2 * 1024, avg: 8 * 1024, max: 64 * 1024 };
const seedA = Buffer.alloc(32, 1);
const seedB = Buffer.alloc(32, 2);

/** Chunk lengths from cut offsets. */
function lengths(cuts: number[]): number[] {
  return cuts.map((c, i) => c - (i ? cuts[i - 1] : 0));
}

function chunkIds(data: Buffer, cuts: number[]): string[] {
  return cuts.map((c, i) =>
    createHash('sha256')
      .update(data.subarray(i ? cuts[i - 1] : 0, c))
      .digest('hex'),
  );
}

describe('FastCDC chunker', () => {
  const data = prng('chunker data', 4 * 1024 * 1024);

  it('cuts the same data the same way for the same seed, and covers it exactly', () => {
    const a = chunkBuffer(gearTable(seedA), SMALL, data);
    const b = chunkBuffer(gearTable(Buffer.from(seedA)), SMALL, data);
    expect(a).toEqual(b);
    expect(a[a.length - 1]).toBe(data.length);
    for (let i = 1; i < a.length; i++) expect(a[i]).toBeGreaterThan(a[i - 1]);
  });

  it('cuts differently under another seed (boundaries do not fingerprint content)', () => {
    const a = new Set(chunkBuffer(gearTable(seedA), SMALL, data));
    const b = chunkBuffer(gearTable(seedB), SMALL, data);
    const common = b.filter((c) => a.has(c) && c !== data.length).length;
    expect(common).toBeLessThan(b.length / 10);
    expect(gearTable(seedA)).not.toEqual(gearTable(seedB));
  });

  it('respects min and max, and centres chunk sizes near avg', () => {
    for (const p of [SMALL, { min: 4096, avg: 16384, max: 32768 }]) {
      const lens = lengths(chunkBuffer(gearTable(seedA), p, data));
      lens.slice(0, -1).forEach((l) => expect(l).toBeGreaterThanOrEqual(p.min));
      lens.forEach((l) => expect(l).toBeLessThanOrEqual(p.max));
      const mean = data.length / lens.length;
      expect(mean).toBeGreaterThan(p.avg * 0.7);
      expect(mean).toBeLessThan(p.avg * 1.6);
    }
  });

  it('with the default parameters: min <= chunk <= max, mean near avg', () => {
    const big = prng('chunker defaults', 48 * 1024 * 1024);
    const lens = lengths(chunkBuffer(gearTable(seedA), DEFAULT_CHUNKER, big));
    lens.slice(0, -1).forEach((l) => expect(l).toBeGreaterThanOrEqual(DEFAULT_CHUNKER.min));
    lens.forEach((l) => expect(l).toBeLessThanOrEqual(DEFAULT_CHUNKER.max));
    const mean = big.length / lens.length;
    expect(mean).toBeGreaterThan(0.8 * DEFAULT_CHUNKER.avg);
    expect(mean).toBeLessThan(1.6 * DEFAULT_CHUNKER.avg);
  });

  it('cuts data without content-defined boundaries (zeros) at max', () => {
    const zeros = Buffer.alloc(SMALL.max * 3 + 100);
    const lens = lengths(chunkBuffer(gearTable(seedA), SMALL, zeros));
    lens.forEach((l) => expect(l).toBeLessThanOrEqual(SMALL.max));
    lens.slice(0, -1).forEach((l) => expect(l).toBeGreaterThanOrEqual(SMALL.min));
  });

  it('gives the same cuts whatever the read sizes (state carries across pushes)', () => {
    const gear = gearTable(seedA);
    const whole = chunkBuffer(gear, SMALL, data);
    const rnd = prng('read sizes', 100000);
    for (const mode of ['tiny', 'random', 'big']) {
      const c = new Chunker(gear, SMALL);
      const cuts: number[] = [];
      let pos = 0;
      let k = 0;
      while (pos < data.length) {
        const r = rnd.readUInt32LE((k++ * 4) % (rnd.length - 4));
        const n = mode === 'tiny' ? 1 + (r % 7) : mode === 'random' ? r % 100000 : 1 + (r % (3 * SMALL.max));
        const piece = data.subarray(pos, Math.min(data.length, pos + n));
        for (const cut of c.push(piece)) cuts.push(pos + cut);
        pos += piece.length;
        if (mode === 'tiny' && pos > 300000) {
          // the rest in one go: a tiny-read run over 4 MiB is slow and proves nothing more
          for (const cut of c.push(data.subarray(pos))) cuts.push(pos + cut);
          pos = data.length;
        }
      }
      if (c.finish()) cuts.push(data.length);
      expect(cuts, mode).toEqual(whole);
    }
  });

  it('an insertion near the start changes only the chunks near it', () => {
    const gear = gearTable(seedA);
    const at = 10000;
    const edited = Buffer.concat([data.subarray(0, at), Buffer.from('INSERT INTO t VALUES (42);\n'.repeat(4)), data.subarray(at)]);
    const before = chunkIds(data, chunkBuffer(gear, SMALL, data));
    const after = chunkIds(edited, chunkBuffer(gear, SMALL, edited));
    const old = new Set(before);
    const fresh = after.filter((id) => !old.has(id));
    expect(before.length).toBeGreaterThan(300);
    expect(fresh.length).toBeGreaterThanOrEqual(1);
    expect(fresh.length).toBeLessThanOrEqual(2);
    // The same with a deletion in the middle.
    const cut = Buffer.concat([data.subarray(0, 2_000_000), data.subarray(2_000_100)]);
    const afterDel = chunkIds(cut, chunkBuffer(gear, SMALL, cut));
    expect(afterDel.filter((id) => !old.has(id)).length).toBeLessThanOrEqual(2);
  });

  it('finish() resets the state for the next file', () => {
    const gear = gearTable(seedA);
    const c = new Chunker(gear, SMALL);
    c.push(data.subarray(0, 12345));
    expect(c.pending).toBeGreaterThan(0);
    expect(c.finish()).toBe(true);
    expect(c.pending).toBe(0);
    expect(c.finish()).toBe(false);
    const again = [...c.push(data)];
    c.finish();
    expect([...again, data.length]).toEqual(chunkBuffer(gear, SMALL, data));
  });

  it('refuses bad parameters and short seeds with one clear message', () => {
    expect(() => gearTable(Buffer.alloc(8))).toThrow(/seed/);
    expect(validateChunker(DEFAULT_CHUNKER)).toEqual(DEFAULT_CHUNKER);
    expect(() => validateChunker({ ...DEFAULT_CHUNKER, avg: 1000000 })).toThrow(/power of two/);
    expect(() => validateChunker({ ...DEFAULT_CHUNKER, min: 16 * 1024 * 1024 })).toThrow(/min <= avg <= max/);
    expect(() => validateChunker({ ...DEFAULT_CHUNKER, max: 2 ** 32 })).toThrow(/64 MiB/);
    expect(() => validateChunker({ ...DEFAULT_CHUNKER, type: 'rabin' as 'fastcdc' })).toThrow(/unknown chunker/);
  });
});
