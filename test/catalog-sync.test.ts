import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { cli, describeTree, diffTrees, repoEnv, tmpDir, write } from './helpers.js';

describe('catalog sync across hosts', () => {
  it('a prune by one host (repacking blobs into new packs) leaves another host able to restore', () => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    const env = repoEnv(base);
    const envA = { ...env, SNAPFILL_CACHE: path.join(base, 'cacheA') };
    const envB = { ...env, SNAPFILL_CACHE: path.join(base, 'cacheB') };
    expect(cli(['init'], env).code).toBe(0);
    for (let i = 0; i < 30; i++) write(`${src}/a/${i}.txt`, `keep ${i} `.repeat(200));
    write(`${src}/b`, randomBytes(400_000)); // mostly this pack: its removal makes prune repack the rest
    expect(cli(['snapshot', src], envA).code).toBe(0);
    write(`${src}/b`, randomBytes(400_000));
    expect(cli(['snapshot', src], envA).code).toBe(0);
    expect(cli(['snapshots'], envB).code).toBe(0); // B learns the packs as they are now
    const before = describeTree(src);
    const f = cli(['--json', 'forget', '--keep-last', '1', '--prune'], envA);
    expect(f.code, f.stderr).toBe(0);
    expect(JSON.stringify(f.json)).toMatch(/repack/);
    const target = path.join(base, 'out');
    const r = cli(['--json', 'restore', 'latest', '--target', target], envB);
    expect(r.code, r.stderr + JSON.stringify(r.json?.errors)).toBe(0);
    expect(diffTrees(before, describeTree(`${target}${src}`))).toEqual([]);
    expect(fs.existsSync(target)).toBe(true);
  });
});
