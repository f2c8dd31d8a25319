import { randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { blobIdOf } from '../../src/pack/blobid.js';
import { encodeForStore, openBlob, sealBlob } from '../../src/pack/codec.js';
import { SEAL_OVERHEAD, unseal } from '../../src/pack/crypto.js';
import {
  blobIdNative,
  CORRUPT,
  deflateInto,
  Known,
  NOT_AUTHENTIC,
  openBlobInto,
  sealBlobInto,
  TOO_SMALL,
} from '../../src/pack/nativecodec.js';

// The native codec (issue 17) must agree with codec.ts openBlob on every input: it is the same
// rule, one call per blob. Blobs are made by the real encoder and sealer.

const KEY = randomBytes(32);
const text = (n: number) => Buffer.from('<?php echo "hello"; ?>\n'.repeat(Math.ceil(n / 24)).slice(0, n));

function stored(plain: Buffer, key: Buffer | null): { stored: Buffer; id: Buffer } {
  const id = blobIdOf(plain);
  const enc = encodeForStore(plain);
  return { stored: key ? sealBlob(key, id, enc) : enc, id: Buffer.from(id, 'hex') };
}

function open(key: Buffer | null, s: Buffer, id: Buffer, cap = 1 << 20, known: Known = Known.Unknown) {
  const out = Buffer.alloc(cap);
  const res = new Int32Array(2);
  const n = openBlobInto(key, s, id, out, known, res);
  return { n, deflated: res[1], bytes: n >= 0 ? out.subarray(0, n) : null };
}

describe('native blob codec', () => {
  for (const key of [KEY, null]) {
    const label = key ? 'encrypted' : 'unsealed';
    it(`${label}: opens plain, deflated and empty blobs exactly as openBlob does`, () => {
      for (const plain of [Buffer.alloc(0), randomBytes(100), randomBytes(70_000), text(5000), text(300_000), Buffer.alloc(200_000)]) {
        const b = stored(plain, key);
        const got = open(key, b.stored, b.id);
        expect(got.n).toBe(plain.length);
        expect(got.bytes!.equals(plain)).toBe(true);
        expect(openBlob(b.stored, b.id.toString('hex'), key)!.equals(plain)).toBe(true);
        expect(got.deflated).toBe(encodeForStore(plain).length !== plain.length ? 1 : 0);
        // Known forms (a blob verified before) open the same.
        const again = open(key, b.stored, b.id, 1 << 20, got.deflated ? Known.Deflated : Known.Plain);
        expect(again.bytes!.equals(plain)).toBe(true);
      }
    });

    it(`${label}: a buffer too small says so (and never writes past it), then the blob opens in a bigger one`, () => {
      for (const plain of [text(100_000), randomBytes(100_000)]) {
        const b = stored(plain, key);
        const out = Buffer.alloc(4096 + 16, 0xee);
        const res = new Int32Array(2);
        expect(openBlobInto(key, b.stored, b.id, out.subarray(0, 4096), Known.Unknown, res)).toBe(TOO_SMALL);
        expect(out.subarray(4096).every((x) => x === 0xee)).toBe(true);
        expect(open(key, b.stored, b.id, 100_000).bytes!.equals(plain)).toBe(true);
      }
    });

    it(`${label}: every single-byte change, a wrong id, truncation and garbage are refused`, () => {
      const plain = text(3000);
      const b = stored(plain, key);
      for (let i = 0; i < b.stored.length; i += 7) {
        const bad = Buffer.from(b.stored);
        bad[i] ^= 0x40;
        const got = open(key, bad, b.id);
        // Sealed: any change fails authentication. Unsealed: the id is what proves the bytes, so a
        // change may only open when it decodes to the very same content (a padding bit of the
        // deflate stream's last byte); anything else is refused.
        if (key || !got.bytes) expect(got.n).toBeLessThan(0);
        else expect(got.bytes.equals(plain)).toBe(true);
      }
      const otherId = Buffer.from(blobIdOf(Buffer.from('other')), 'hex');
      expect(open(key, b.stored, otherId).n).toBe(key ? NOT_AUTHENTIC : CORRUPT);
      for (const cut of [0, 1, 27, 28, b.stored.length - 1]) expect(open(key, b.stored.subarray(0, cut), b.id).n).toBeLessThan(0);
      expect(open(key, randomBytes(5000), b.id).n).toBeLessThan(0);
    });
  }

  it('a deflate bomb stops at the buffer given: TOO_SMALL, never more memory', () => {
    const bomb = deflateRawSync(Buffer.alloc(64 << 20), { level: 9 });
    const id = Buffer.from(blobIdOf(Buffer.from('x')), 'hex');
    expect(open(null, bomb, id, 1 << 20).n).toBe(TOO_SMALL);
    // The right id and a buffer big enough: it opens (the limit is the caller's buffer).
    const real = Buffer.from(blobIdOf(Buffer.alloc(1 << 20)), 'hex');
    const small = deflateRawSync(Buffer.alloc(1 << 20));
    expect(open(null, small, real, 1 << 20).n).toBe(1 << 20);
  });

  it('the wrong key is refused; a malformed call throws', () => {
    const b = stored(text(1000), KEY);
    expect(open(randomBytes(32), b.stored, b.id).n).toBe(NOT_AUTHENTIC);
    expect(() => openBlobInto(Buffer.alloc(16), b.stored, b.id, Buffer.alloc(10), Known.Unknown, new Int32Array(2))).toThrow();
    expect(() => openBlobInto(KEY, b.stored, b.id.subarray(0, 31), Buffer.alloc(10), Known.Unknown, new Int32Array(2))).toThrow();
  });

  it('runs in many blobs in a row without growing (state reused per thread)', () => {
    const blobs = Array.from({ length: 2000 }, (_, i) => stored(text(1000 + i), KEY));
    const rss0 = process.memoryUsage().rss;
    for (let r = 0; r < 5; r++) for (const b of blobs) expect(open(KEY, b.stored, b.id, 8192).n).toBeGreaterThan(0);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(64 << 20);
  });

  it('the snapshot side: ids as blobIdOf, seals that open as crypto.ts seals do, deflate that any inflate reads', () => {
    for (const data of [Buffer.alloc(0), Buffer.from('a'), randomBytes(255), text(4096), randomBytes(1 << 20), text(3 << 20)]) {
      expect(blobIdNative(data)).toBe(blobIdOf(data));
      const id = blobIdOf(data);
      const enc = encodeForStore(data);
      if (enc !== data) expect(inflateRawSync(enc).equals(data)).toBe(true);
      const a = sealBlob(KEY, id, enc);
      const b = sealBlob(KEY, id, enc);
      expect(a.length).toBe(enc.length + SEAL_OVERHEAD);
      expect(a.subarray(0, 12).equals(b.subarray(0, 12))).toBe(false); // a fresh nonce each time
      expect(unseal(KEY, a, Buffer.from(id, 'hex'))!.equals(enc)).toBe(true);
      expect(unseal(KEY, a, Buffer.from(blobIdOf(Buffer.from('other')), 'hex'))).toBeNull(); // the id is bound
      expect(openBlob(a, id, KEY)!.equals(data)).toBe(true);
    }
    // Text shrinks; random bytes and short blobs stay plain; a malformed call throws.
    expect(encodeForStore(text(100_000)).length).toBeLessThan(10_000);
    const r = randomBytes(100_000);
    expect(encodeForStore(r)).toBe(r);
    expect(() => sealBlobInto(KEY, Buffer.alloc(12), Buffer.alloc(32), Buffer.alloc(10), Buffer.alloc(10))).toThrow();
    expect(() => deflateInto(text(1000), Buffer.alloc(100), 13)).toThrow();
    expect(deflateInto(randomBytes(1000), Buffer.alloc(100), 1)).toBe(TOO_SMALL);
  });
});
