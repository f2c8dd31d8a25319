import { randomBytes, scryptSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { romixLane } from '../../src/pack/nativecodec.js';
import { scryptParallel } from '../../src/pack/scrypt.js';

// The key derivation with scrypt's lanes side by side (issue 17) must be scrypt itself: the RFC's
// vectors, and node:crypto's result for any parameters a key object may hold.

describe('scrypt with parallel lanes', () => {
  it('gives the test vectors of RFC 7914, section 12', async () => {
    const a = await scryptParallel(Buffer.alloc(0), Buffer.alloc(0), 64, { N: 16, r: 1, p: 1 });
    expect(a.toString('hex')).toBe(
      '77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906',
    );
    const b = await scryptParallel(Buffer.from('password'), Buffer.from('NaCl'), 64, { N: 1024, r: 8, p: 16 });
    expect(b.toString('hex')).toBe(
      'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640',
    );
  });

  it("agrees with node:crypto's scrypt for random passwords, salts and parameters", async () => {
    for (let i = 0; i < 24; i++) {
      const N = 2 ** (1 + (i % 12));
      const r = 1 + ((i * 7) % 9);
      const p = 1 + (i % 4);
      const password = randomBytes(i * 3);
      const salt = randomBytes(32);
      const ours = await scryptParallel(password, salt, 32, { N, r, p });
      expect(ours.equals(scryptSync(password, salt, 32, { N, r, p, maxmem: 1 << 30 })), `N=${N} r=${r} p=${p}`).toBe(true);
    }
  });

  it('a key object of the tuned size (N=2^16, r=8, p=2) derives the same key as node:crypto', async () => {
    const salt = randomBytes(32);
    const cost = { N: 1 << 16, r: 8, p: 2 };
    const ours = await scryptParallel(Buffer.from('correct horse'), salt, 32, cost);
    expect(ours.equals(scryptSync('correct horse', salt, 32, { ...cost, maxmem: 1 << 30 }))).toBe(true);
  });

  it('refuses a lane of the wrong size and parameters out of bounds, before allocating anything', () => {
    const lane = (r: number) => Buffer.alloc(128 * r);
    expect(() => romixLane(lane(8).subarray(1), 8, 1024)).toThrow(/romix\(/); // not 128 * r bytes
    expect(() => romixLane(lane(8), 8, 1000)).toThrow(/romix\(/); // N not a power of 2
    expect(() => romixLane(lane(8), 8, 1)).toThrow(/romix\(/);
    expect(() => romixLane(lane(8), 8, 2 ** 21)).toThrow(/romix\(/); // N above 2^20
    expect(() => romixLane(lane(33), 33, 1024)).toThrow(/romix\(/); // r above 32
    expect(() => romixLane(lane(32), 32, 2 ** 20)).toThrow(/romix\(/); // 4 GiB of scratch
    expect(() => romixLane(lane(8), 0, 1024)).toThrow(/romix\(/);
  });
});
