import { describe, it, expect } from 'vitest';
import xxhash from 'xxhash-wasm';
import { DirDigest } from '../../src/livefs/dirdigest.js';

const FIELDS = 10;

/** Names of every length up to 255 bytes, with bytes 1-255 in them (raw names are latin1 strings). */
function names(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const len = 1 + ((i * 37) % 255);
    let s = '';
    for (let k = 0; k < len; k++) s += String.fromCharCode(1 + ((i + k * 7) % 255));
    return s;
  });
}

/** The digest's documented input, built independently: each name, a NUL, ten u64 LE fields (size 0 unless a file). */
function reference(ns: string[], stats: BigUint64Array, isFile: (i: number) => boolean): Buffer {
  const parts: Buffer[] = [];
  ns.forEach((name, i) => {
    const f = Buffer.alloc(FIELDS * 8);
    for (let k = 0; k < FIELDS; k++) f.writeBigUInt64LE(k === 3 && !isFile(i) ? 0n : stats[i * FIELDS + k], k * 8);
    parts.push(Buffer.from(name, 'latin1'), Buffer.from([0]), f);
  });
  return Buffer.concat(parts);
}

describe('DirDigest (issue 17: wide directories hashed as they go, in a fixed buffer)', () => {
  it('digests a directory of any width as one xxh64 over its documented input', async () => {
    const hasher = await xxhash();
    const d = new DirDigest();
    // 0 and 1 entries, one that fits the buffer, and ones that overflow it many times over.
    for (const n of [0, 1, 200, 1000, 20_000]) {
      const ns = names(n);
      const stats = new BigUint64Array(n * FIELDS);
      for (let i = 0; i < stats.length; i++) stats[i] = (BigInt(i) * 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
      const isFile = (i: number) => i % 3 !== 0;
      d.reset(hasher);
      ns.forEach((name, i) => d.addFields(name, stats, i, isFile(i)));
      const want = hasher
        .h64Raw(reference(ns, stats, isFile))
        .toString(16)
        .padStart(16, '0');
      expect(d.hex(), `${n} entries`).toBe(want);
    }
  });

  it('starts afresh after reset: a wide directory leaves nothing in the next one', async () => {
    const hasher = await xxhash();
    const d = new DirDigest();
    const stats = new BigUint64Array(5000 * FIELDS).fill(7n);
    d.reset(hasher);
    names(5000).forEach((name, i) => d.addFields(name, stats, i, true));
    d.hex();
    d.reset(hasher);
    d.addFields('a', stats, 0, true);
    const fresh = new DirDigest();
    fresh.reset(hasher);
    fresh.addFields('a', stats, 0, true);
    expect(d.hex()).toBe(fresh.hex());
  });
});
