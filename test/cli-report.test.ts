import { describe, it, expect } from 'vitest';
import * as crypto from 'node:crypto';
import * as path from 'node:path';
import { cli, repoEnv, tmpDir, write } from './helpers.js';

function repoWith(files: Record<string, Buffer | string>) {
  const base = tmpDir();
  const env = repoEnv(base);
  const src = path.join(base, 'src');
  for (const [name, content] of Object.entries(files)) write(path.join(src, name), content);
  expect(cli(['init'], env).code).toBe(0);
  return { base, env, src };
}

describe('check --read-data-subset on a small repository', () => {
  it('reads at least one pack for every part, and says how many it read', () => {
    const t = repoWith({ 'a.bin': crypto.randomBytes(20_000) });
    expect(cli(['snapshot', t.src], t.env).code).toBe(0);
    write(path.join(t.src, 'b.bin'), crypto.randomBytes(20_000));
    expect(cli(['snapshot', t.src], t.env).code).toBe(0); // 2 snapshots: 2 data packs + 2 tree packs
    const all = cli(['--json', 'check', '--read-data'], t.env).json;
    expect(all.packs_checked).toBe(4);
    // 4 packs in 10 parts leave at least 6 parts without a pack of their own: none may read nothing.
    for (let part = 1; part <= 10; part++) {
      const r = cli(['--json', 'check', '--read-data-subset', `${part}/10`], t.env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.packs_read, `part ${part}/10`).toBeGreaterThanOrEqual(1);
      expect(r.json.packs_selected).toBe(r.json.packs_read);
    }
    const human = cli(['check', '--read-data-subset', '10%'], t.env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/; read [1-4] of 4 packs \(subset 10%, [\d.]+ KiB\), \d+ blobs verified/);
  });
});

describe('stats', () => {
  it('gives the dedup ratio over all snapshots: logical bytes of every snapshot / stored bytes', () => {
    const t = repoWith({ 'site/big.bin': crypto.randomBytes(1_000_000) });
    expect(cli(['snapshot', t.src], t.env).code).toBe(0);
    const one = cli(['--json', 'stats'], t.env).json;
    expect(one.logical_bytes).toBe(1_000_000);
    expect(one.stored_bytes).toBe(one.pack_bytes);
    expect(one.dedup_ratio).toBeGreaterThan(0.9);
    expect(one.dedup_ratio).toBeLessThan(1.01);
    expect(cli(['snapshot', t.src], t.env).code).toBe(0); // the same content again: stored once
    const two = cli(['--json', 'stats'], t.env).json;
    expect(two.logical_bytes).toBe(2_000_000);
    expect(two.dedup_ratio).toBeGreaterThan(1.8);
    const human = cli(['stats'], t.env);
    expect(human.stdout).toMatch(/dedup: 2 snapshots hold 1\.9 MiB of files, stored in [\d.]+ (KiB|MiB) \(ratio 1\.9\dx\)/);
  });

  it('never prints "0.00x" for a one-snapshot repository of tiny files', () => {
    const t = repoWith({ 'note.txt': 'hi\n' });
    expect(cli(['snapshot', t.src], t.env).code).toBe(0);
    const human = cli(['stats'], t.env);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).not.toMatch(/0\.00x/);
    // 3 bytes of file in a few KiB of packs (trees, headers): the ratio is small, and shown with its digits.
    expect(human.stdout).toMatch(/dedup: 1 snapshots hold 3 B of files, stored in [\d.]+ KiB \(ratio 0\.000?[1-9]\dx\)/);
  });
});
