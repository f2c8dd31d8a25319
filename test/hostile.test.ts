import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, repoEnv, tmpDir } from './helpers.js';
import type { Entry } from '../src/repo/tree.js';
import { craftSnapshot, entry, fileEntry } from './support/craft.js';

/** Every file below `dir`, for proving nothing was written outside the target. */
function listAll(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

/**
 * A damaged or malicious repository: tree blobs whose names hold `..`, `/`, absolute paths or
 * NUL bytes, a symlink followed by an entry below it, hardlinks pointing outside. A restore
 * must refuse those entries with a clear error and write nothing outside the target.
 */
describe('hostile repository content', () => {
  let base: string;
  const evil = Buffer.from('attacker bytes\n');
  const good = Buffer.from('honest file\n');

  beforeAll(() => {
    base = tmpDir();
  });

  async function scenario(name: string, children: Entry[], sub: Record<string, Entry[]> = {}) {
    const dir = path.join(base, name);
    const env = repoEnv(dir);
    expect(cli(['init'], env).code).toBe(0);
    await craftSnapshot(path.join(dir, 'repo'), [fileEntry('good.txt', good), ...children], { evil, good }, sub);
    const target = path.join(dir, 'target');
    const outside = path.join(dir, 'outside');
    fs.mkdirSync(outside, { recursive: true });
    const before = listAll(dir);
    const r = cli(['--json', 'restore', 'latest', '--target', target], env);
    return { r, target, outside, dir, before };
  }

  /** Nothing appeared anywhere in the scenario directory except below the target (and repo/cache). */
  function expectNothingOutside(s: { dir: string; before: string[] }): void {
    const after = listAll(s.dir).filter((p) => !p.startsWith('target') && !p.startsWith('repo') && !p.startsWith('cache'));
    expect(after).toEqual(s.before.filter((p) => !p.startsWith('repo') && !p.startsWith('cache')));
  }

  it('refuses names with "..", "/" (also absolute) and NUL bytes, restoring the honest files', async () => {
    const s = await scenario(
      'names',
      [
        fileEntry('..', evil),
        fileEntry('../../outside/escaped.txt', evil),
        fileEntry('/etc/evil-absolute', evil),
        fileEntry('nul\0byte', evil),
        fileEntry('.', evil),
        entry('sub', 'dir'),
      ],
      { sub: [fileEntry('..', evil), fileEntry('../../../outside/deep.txt', evil)] },
    );
    expect(s.r.code, s.r.stderr).not.toBe(0);
    const msgs = (s.r.json?.errors ?? []).map((e: any) => `${e.path}: ${e.message}`).join('\n') + s.r.stderr;
    expect(msgs).toMatch(/unsafe|refus/i);
    expect(listAll(s.outside)).toEqual([]);
    expectNothingOutside(s);
    expect(fs.readFileSync(path.join(s.target, 'data', 'good.txt'), 'utf8')).toBe(good.toString());
    // No attacker bytes anywhere under the target either.
    for (const f of listAll(s.target)) {
      const full = path.join(s.target, f);
      if (fs.lstatSync(full).isFile()) expect(fs.readFileSync(full).equals(evil)).toBe(false);
    }
  });

  it('never writes through a symlink the snapshot itself creates (symlink, then an entry below it)', async () => {
    const dir = path.join(base, 'symlink');
    const outsideAbs = path.join(dir, 'outside');
    const s = await scenario(
      'symlink',
      [
        entry('esc', 'symlink', { target: outsideAbs }),
        entry('esc', 'dir'), // the same name again, as a directory with content below it
        entry('rel', 'symlink', { target: '../../outside' }),
        entry('rel', 'dir'),
      ],
      { esc: [fileEntry('pwned.txt', evil)], rel: [fileEntry('pwned2.txt', evil)] },
    );
    expect(s.r.code).not.toBe(0);
    expect(listAll(s.outside)).toEqual([]);
    expectNothingOutside(s);
  });

  it('refuses hardlinks whose target leaves the snapshot tree', async () => {
    const s = await scenario('hardlink', [
      fileEntry('h1', evil, { type: 'hardlink', target: '/data/../../outside/x' }),
      fileEntry('h2', evil, { type: 'hardlink', target: '/etc/passwd' }),
    ]);
    expect(s.r.code).not.toBe(0);
    expect(listAll(s.outside)).toEqual([]);
    expectNothingOutside(s);
    expect(fs.readFileSync('/etc/passwd', 'utf8')).not.toContain('attacker');
  });
});
