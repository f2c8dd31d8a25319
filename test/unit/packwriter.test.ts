import { describe, expect, it } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { pack as tarPack, extract as tarExtract } from 'tar-stream';
import { PackWriter } from '../../src/pack/packwriter.js';
import { openBlob, sealBlob } from '../../src/pack/codec.js';
import { unseal, SEAL_OVERHEAD } from '../../src/pack/crypto.js';

/**
 * (issue 17) The pack writer lays the tar archive out itself, in one buffer. Its bytes must be
 * exactly what the tar-stream based writer produced for the same blobs (format versions 1 and
 * 2), and every recorded offset must point at the blob's stored bytes.
 */
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The previous writer's archive, built with tar-stream: segments of up to 1 MiB of back-to-back blobs. */
async function reference(blobs: { id: string; data: Buffer }[], version: number): Promise<Buffer> {
  const tar = tarPack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((r) => tar.on('end', () => r()));
  let seg: { id: string; data: Buffer }[] = [];
  let bytes = 0;
  let n = 0;
  const flush = () => {
    if (!seg.length) return;
    const body = Buffer.concat(seg.map((b) => b.data));
    const k = n++;
    const name = version >= 2 ? String(k).padStart(6, '0') : `${seg[0].id.slice(0, 40)}.${k}`;
    tar.entry({ name, size: body.length, mode: 0o644, mtime: new Date(0), type: 'file' }, body);
    seg = [];
    bytes = 0;
  };
  for (const b of blobs) {
    if (bytes + b.data.length > 1024 * 1024 && seg.length) flush();
    seg.push(b);
    bytes += b.data.length;
  }
  flush();
  tar.finalize();
  await ended;
  return Buffer.concat(chunks);
}

function sampleBlobs(): { id: string; data: Buffer }[] {
  const sizes = [0, 1, 511, 512, 513, 4096, 300_000, 700_000, 1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024, 17, 100];
  return sizes.map((s) => {
    const data = randomBytes(s);
    return { id: sha(data), data };
  });
}

describe('PackWriter', () => {
  for (const version of [1, 2]) {
    it(`writes the same bytes as the tar-stream writer (version ${version}, unencrypted)`, async () => {
      const blobs = sampleBlobs();
      const w = new PackWriter('data', { version });
      for (const b of blobs) w.add(b.id, b.data);
      w.add(blobs[3].id, blobs[3].data); // a duplicate is ignored
      expect(w.count).toBe(blobs.length);
      const { id, bytes, index } = await w.finish();
      const ref = await reference(blobs, version);
      expect(bytes.equals(ref)).toBe(true);
      expect(id).toBe(sha(ref));
      expect(index.size).toBe(ref.length);
      for (const [k, b] of blobs.entries()) {
        const loc = index.blobs[k];
        expect(loc.id).toBe(b.id);
        expect(bytes.subarray(loc.offset, loc.offset + loc.length).equals(b.data)).toBe(true);
      }
    });
  }

  it('reserve() does not change the bytes; a tar reader sees every segment', async () => {
    const blobs = sampleBlobs();
    const a = new PackWriter('data', { version: 2 });
    const b = new PackWriter('data', { version: 2 });
    b.reserve(16 << 20);
    for (const x of blobs) {
      a.add(x.id, x.data);
      b.add(x.id, x.data);
    }
    const ra = await a.finish();
    const rb = await b.finish();
    expect(ra.bytes.equals(rb.bytes)).toBe(true);
    const names: string[] = [];
    const ex = tarExtract();
    await new Promise<void>((resolve, reject) => {
      ex.on('entry', (h, s, next) => {
        names.push(h.name);
        s.on('end', next);
        s.resume();
      });
      ex.on('finish', resolve);
      ex.on('error', reject);
      ex.end(ra.bytes);
    });
    expect(names[0]).toBe('000000');
    expect(names.length).toBeGreaterThan(3);
  });

  it('seals each blob in place: the same layout as sealBlob, opened by openBlob with its id', async () => {
    const key = randomBytes(32);
    const blobs = sampleBlobs();
    const w = new PackWriter('data', { key, version: 2 });
    w.reserve(1 << 20);
    for (const b of blobs) w.add(b.id, b.data);
    const { bytes, index } = await w.finish();
    for (const [k, b] of blobs.entries()) {
      const loc = index.blobs[k];
      expect(loc.length).toBe(b.data.length + SEAL_OVERHEAD);
      const stored = bytes.subarray(loc.offset, loc.offset + loc.length);
      expect(openBlob(Buffer.from(stored), b.id, key)!.equals(b.data)).toBe(true);
      expect(unseal(key, stored, Buffer.from(b.id, 'hex'))!.equals(b.data)).toBe(true);
      // A blob under another id does not open.
      expect(unseal(key, stored, Buffer.from(blobs[(k + 1) % blobs.length].id, 'hex'))).toBeNull();
    }
    // Same framing as sealBlob (nonces differ): a sealed copy added as-is keeps its bytes.
    const pre = sealBlob(key, blobs[5].id, blobs[5].data);
    const w2 = new PackWriter('data', { key, version: 2 });
    w2.addSealed(blobs[5].id, pre);
    const r2 = await w2.finish();
    const loc = r2.index.blobs[0];
    expect(r2.bytes.subarray(loc.offset, loc.offset + loc.length).equals(pre)).toBe(true);
  });

  it('nonces are never repeated across many seals', async () => {
    const key = randomBytes(32);
    const w = new PackWriter('data', { key, version: 2 });
    const seen = new Set<string>();
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const d = Buffer.from(String(i));
      const id = sha(d);
      ids.push(id);
      w.add(id, d);
    }
    const { bytes, index } = await w.finish();
    for (const loc of index.blobs) seen.add(bytes.subarray(loc.offset, loc.offset + 12).toString('hex'));
    expect(seen.size).toBe(ids.length);
  });
});

describe('PackWriter.recycle', () => {
  it('a recycled buffer serves the next pack, whose bytes are as without it', async () => {
    const blobs = sampleBlobs();
    const fresh = new PackWriter('data', { version: 2 });
    for (const b of blobs) fresh.add(b.id, b.data);
    const want = Buffer.from((await fresh.finish()).bytes);
    const first = new PackWriter('data', { version: 2 });
    first.reserve(16 << 20);
    first.add(blobs[6].id, blobs[6].data);
    const r1 = await first.finish();
    first.recycle();
    const second = new PackWriter('data', { version: 2 });
    second.reserve(16 << 20); // more than these blobs: no growth, so the same memory
    for (const b of blobs) second.add(b.id, b.data);
    const r2 = await second.finish();
    expect(r2.bytes.buffer === r1.bytes.buffer).toBe(true); // the same memory, reused
    expect(r2.bytes.equals(want)).toBe(true);
  });
});
