import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { MAX_BLOBS, MAX_BYTES, blobProbe, buildBlobFilter, filterMayHold, parseBlobFilter } from '../../src/pack/blobfilter.js';
import { indexKey, parseIndexKey } from '../../src/pack/keys.js';

/** Blob ids from labels (SHA-256, like real ones). */
const ids = (tag: string, n: number) => Array.from({ length: n }, (_, i) => createHash('sha256').update(`${tag}:${i}`).digest('hex'));
const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 8);

describe('blob filters in data pack index names (issue 15)', () => {
  it('never misses a blob of its pack, for every size it is made for', () => {
    for (const n of [1, 2, 10, 50, 100, MAX_BLOBS]) {
      const members = ids(`m${n}`, n);
      const f = parseBlobFilter(buildBlobFilter(KEY, members)!)!;
      expect(f).toBeDefined();
      for (const id of members) expect(filterMayHold(f, blobProbe(KEY, id))).toBe(true);
    }
  });

  it('rules out other blobs (about 2% false hits at the most, far fewer in small packs)', () => {
    const outsiders = ids('out', 20_000);
    const rate = (n: number) => {
      const f = parseBlobFilter(buildBlobFilter(KEY, ids(`r${n}`, n))!)!;
      return outsiders.filter((id) => filterMayHold(f, blobProbe(KEY, id))).length / outsiders.length;
    };
    expect(rate(MAX_BLOBS)).toBeLessThan(0.04);
    expect(rate(50)).toBeLessThan(0.01);
    expect(rate(5)).toBeLessThan(0.01);
  });

  it('is keyed: the same blobs give another filter under another key, and a probe under the wrong key is no test', () => {
    const members = ids('k', 40);
    expect(buildBlobFilter(KEY, members)).not.toBe(buildBlobFilter(OTHER_KEY, members));
    // The filter of a known file under an unknown key tells nothing: its probe under a guessed key mostly misses.
    const f = parseBlobFilter(buildBlobFilter(KEY, members)!)!;
    const hits = members.filter((id) => filterMayHold(f, blobProbe(OTHER_KEY, id))).length;
    expect(hits).toBeLessThan(members.length / 2);
  });

  it('has none for an empty or large pack; its name always fits one path component', () => {
    expect(buildBlobFilter(KEY, [])).toBeNull();
    expect(buildBlobFilter(KEY, ids('big', MAX_BLOBS + 1))).toBeNull();
    for (const n of [1, MAX_BLOBS]) {
      const text = buildBlobFilter(KEY, ids(`len${n}`, n))!;
      const pack = 'a'.repeat(64);
      const key = indexKey(pack, null, text);
      const name = key.slice('index/'.length);
      // 255 bytes a name, less the longest suffix the test S3 server adds (._S3rver_metadata.json).
      expect(name.length + 22).toBeLessThanOrEqual(255);
      expect(Buffer.from(text, 'base64url').length).toBeLessThanOrEqual(MAX_BYTES);
      expect(parseIndexKey(key)).toEqual({ id: pack, hostTag: null, filter: text });
    }
  });

  it('reads names of older layouts and refuses a filter it cannot read (the pack is then read like one without)', () => {
    const pack = 'b'.repeat(64);
    expect(parseIndexKey(`index/${pack}`)).toEqual({ id: pack, hostTag: null, filter: null });
    expect(parseIndexKey(`index/0123456789abcdef/${pack}`)).toEqual({ id: pack, hostTag: '0123456789abcdef', filter: null });
    for (const bad of [
      '',
      '!!',
      'AA',
      Buffer.from([0, 1, 2]).toString('base64url'),
      Buffer.from([9, 1, 2]).toString('base64url'),
      'A'.repeat(400),
    ])
      expect(parseBlobFilter(bad)).toBeUndefined();
  });
});
