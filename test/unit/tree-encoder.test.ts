import { describe, it, expect } from 'vitest';
import { createHash } from 'node:crypto';
import { decodeTree, encodeTree, TreeEncoder, type Entry } from '../../src/repo/tree.js';

/** An entry of each kind, with names that JSON escapes or carries as two UTF-8 bytes. */
function entries(n: number): Entry[] {
  const kinds: Entry['type'][] = ['file', 'dir', 'symlink', 'hardlink', 'fifo', 'chardev'];
  return Array.from({ length: n }, (_, i) => {
    const type = kinds[i % kinds.length];
    let name = `n${(i * 7919) % n}`;
    // Every byte value but NUL and '/', spread over the names: quotes, backslashes, controls, 0x80-0xff.
    for (let k = 0; k < 1 + (i % 5); k++) {
      const b = 1 + ((i * 13 + k * 101) % 255);
      name += String.fromCharCode(b === 0x2f ? 0x2e : b);
    }
    return {
      name,
      type,
      mode: 0o644,
      uid: i,
      gid: i + 1,
      user: i % 2 ? 'u' : '',
      group: 'g"\\',
      size: type === 'file' ? i * 3 : 0,
      mtime: 1_700_000_000_123_456_789n + BigInt(i),
      ctime: 1_700_000_001_000_000_001n,
      ino: BigInt(i) + (1n << 40n),
      dev: 2049n,
      nlink: 1,
      rdev: type === 'chardev' ? 259 : 0,
      target: type === 'symlink' || type === 'hardlink' ? `t\u00e9${i}` : null,
      fp: type === 'file' ? 'a'.repeat(16) : null,
      content: type === 'file' ? ['b'.repeat(64), 'c'.repeat(64)] : null,
      ...(i % 4 === 0 && type === 'file' ? { chunkSizes: [1, 2] } : {}),
      tree: type === 'dir' ? 'd'.repeat(64) : null,
      flags: i % 9 === 0 ? 1 : 0,
    } satisfies Entry;
  });
}

/** The canonical bytes as they were defined: one JSON.stringify of the whole tree. */
function canonical(es: Entry[]): Buffer {
  const json = JSON.stringify({ v: 1, e: JSON.parse(encodeTree(es).toString('utf8')).e });
  return Buffer.from(json, 'utf8');
}

describe('TreeEncoder (issue 17: a directory kept as encoded rows until its tree is built)', () => {
  it('gives the canonical bytes of the sorted entries, for empty, small and wide directories', () => {
    for (const n of [0, 1, 2, 50, 20_000]) {
      const es = entries(n);
      const enc = new TreeEncoder();
      for (const e of es) enc.add(e);
      const got = enc.finish();
      const sorted = [...es].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      expect(got.equals(canonical(sorted)), `${n} entries`).toBe(true);
      expect(decodeTree(got)).toEqual(sorted.map((e) => ({ ...e })));
    }
  });

  it('keeps tree ids: the same entries give the bytes the encoder before it gave', () => {
    // sha256 of these 50 entries' tree from the previous encoder (one JSON.stringify of the
    // sorted tree, a84aaa3..db81bca): a change here would make every unchanged directory new.
    const enc = new TreeEncoder();
    for (const e of entries(50)) enc.add(e);
    expect(createHash('sha256').update(enc.finish()).digest('hex')).toBe(
      'd39bbcfbc15df793a6d1d40dda026678d104b61a7daced1bd17909790e603f4c',
    );
  });

  it('encodeTree keeps the order given (crafted trees in tests rely on it)', () => {
    const es = entries(10).reverse();
    expect(decodeTree(encodeTree(es)).map((e) => e.name)).toEqual(es.map((e) => e.name));
    expect(encodeTree([]).toString()).toBe('{"v":1,"e":[]}');
  });
});
