import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { blobIdOf } from '../../src/pack/blobid.js';
import { encodeForStore, sealBlob } from '../../src/pack/codec.js';
import { packKey } from '../../src/pack/format.js';
import { CorruptChunkError, LocalPacks } from '../../src/restore/localpacks.js';
import type { ChunkRef } from '../../src/restore/protocol.js';

// The direct strategy's reads of local pack files (restore/localpacks.ts): read() into the
// codec's own buffer, readInto() straight into the caller's (the restore's batch buffer).

const KEY = randomBytes(32);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sf-localpacks-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const text = (n: number, seed: string) => Buffer.from(`<?php echo "${seed}"; ?>\n`.repeat(n).slice(0, n));

/** A pack file of sealed blobs (one per plain), and the chunk refs that point into it. */
function pack(plains: Buffer[]): ChunkRef[] {
  const id = randomBytes(32).toString('hex');
  const parts: Buffer[] = [];
  const refs: ChunkRef[] = [];
  let at = 0;
  for (const p of plains) {
    const blobId = blobIdOf(p);
    const s = sealBlob(KEY, blobId, encodeForStore(p));
    refs.push({ pack: id, offset: at, length: s.length, id: blobId });
    parts.push(s);
    at += s.length;
  }
  const file = path.join(dir, packKey(id));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, Buffer.concat(parts));
  return refs;
}

describe('LocalPacks', () => {
  const plains = [text(5000, 'a'), randomBytes(3000), Buffer.alloc(0), text(70_000, 'b')];
  const refs = pack(plains);

  it('readInto writes each blob straight into the destination, as read() returns it', () => {
    const lp = new LocalPacks(dir, KEY);
    const dest = Buffer.alloc(100_000, 0xee);
    let at = 0;
    for (const [i, c] of refs.entries()) {
      const n = lp.readInto(c, dest.subarray(at));
      expect(n).toBe(plains[i].length);
      expect(dest.subarray(at, at + n).equals(plains[i])).toBe(true);
      expect(lp.read(c).equals(plains[i])).toBe(true);
      at += n;
    }
    expect(dest.subarray(at).every((b) => b === 0xee)).toBe(true);
  });

  it('readInto answers -1 for a blob larger than the room, writing nothing past it; read() still opens it', () => {
    const lp = new LocalPacks(dir, KEY);
    const dest = Buffer.alloc(4096 + 16, 0xee);
    expect(lp.readInto(refs[0], dest.subarray(0, 4096))).toBe(-1);
    expect(dest.subarray(4096).every((b) => b === 0xee)).toBe(true);
    expect(lp.read(refs[0]).equals(plains[0])).toBe(true);
    // Read again (now cached as plain bytes): the same answers.
    expect(lp.readInto(refs[0], dest.subarray(0, 4096))).toBe(-1);
    expect(lp.readInto(refs[0], Buffer.alloc(5000))).toBe(5000); // exactly its size
  });

  it('a blob read a second time comes from the plain cache into the destination, and stays right', () => {
    const lp = new LocalPacks(dir, KEY);
    for (let round = 0; round < 3; round++) {
      const dest = Buffer.alloc(5000);
      expect(lp.readInto(refs[0], dest)).toBe(5000);
      expect(dest.equals(plains[0])).toBe(true);
      dest.fill(0); // the cache holds its own copy, not a view of the caller's buffer
    }
  });

  it('a blob that fails authentication is refused by both reads', () => {
    const bad = { ...refs[1], offset: refs[1].offset + 1, length: refs[1].length - 1 };
    const lp = new LocalPacks(dir, KEY);
    expect(() => lp.readInto(bad, Buffer.alloc(10_000))).toThrow(CorruptChunkError);
    expect(() => lp.read(bad)).toThrow(/fails authentication|is corrupt/);
  });
});
