// A snapshot stores its tree packs at 4 MiB at most (issue 17, peak RSS at a million files: the
// open tree pack stays in memory for most of the walk), and a snapshot whose trees span several
// such packs restores exactly. Through the CLI on a real local repository.
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { catalogOf, cli, describeTree, diffTrees, repoEnv, tmpDir } from './helpers.js';

describe('tree packs', () => {
  it('a snapshot whose trees pass 4 MiB stores them in several tree packs of at most 4 MiB, and restores exactly', () => {
    const base = tmpDir('snapfill-tree-packs-');
    const env = repoEnv(base);
    const src = path.join(base, 'src');
    // Symlinks with long random targets: trees that deflate does not shrink, made quickly
    // (400 directories of 40 links of 1000 hex characters: ~8 MiB of trees).
    for (let d = 0; d < 400; d++) {
      const dir = path.join(src, `d${d}`);
      fs.mkdirSync(dir, { recursive: true });
      for (let l = 0; l < 40; l++) fs.symlinkSync(randomBytes(500).toString('hex'), path.join(dir, `l${l}`));
    }
    expect(cli(['init'], env).code).toBe(0);
    const r = cli(['--json', 'snapshot', src], env);
    expect(r.code, r.stderr).toBe(0);
    const db = new Database(catalogOf(env), { readonly: true });
    const sizes = (db.prepare(`SELECT size FROM packs WHERE type='tree'`).pluck().all() as number[]).sort((a, b) => a - b);
    db.close();
    expect(sizes.length).toBeGreaterThanOrEqual(2);
    expect(sizes.at(-1)).toBeLessThanOrEqual(4 << 20);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(4 << 20);
    const out = path.join(base, 'out');
    const x = cli(['restore', r.json.snapshot_id, src, '--target', out], env);
    expect(x.code, x.stderr).toBe(0);
    expect(diffTrees(describeTree(src), describeTree(path.join(out, src)))).toEqual([]);
    expect(cli(['check', '--read-data'], env).code).toBe(0);
  });
});
