import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { extract } from 'tar-stream';
import { BIN, cli, repoEnv, tmpDir } from './helpers.js';
import { craftSnapshot, entry, fileEntry } from './support/craft.js';

/**
 * Issue 11 (A, B): entry names that are not a single path component (`a/b`, `../x`, NUL,
 * empty, `.`, `..`) come only from a damaged or crafted snapshot. The catalog import refuses
 * each with an error naming the directory and the quoted name, so restore, ls, find, catalog
 * rebuild, verify and dump all name them, exit 3, and never turn them into paths; dump never
 * writes such a member.
 */
const escapeTo = `snapfill-escaped-${process.pid}`;
const BAD: [name: string, shown: string][] = [
  ['a/b', '"a/b"'],
  [`../../../../../tmp/${escapeTo}`, `"../../../../../tmp/${escapeTo}"`],
  ['../pwned', '"../pwned"'],
  ['nul\0byte', '"nul\\x00byte"'],
  ['', '""'],
  ['.', '"."'],
  ['..', '".."'],
];

/** Runs `snapfill dump` into a file (binary stdout). */
function dumpTo(env: Record<string, string>, args: string[], file: string): { code: number; stderr: string } {
  const fd = fs.openSync(file, 'w');
  try {
    const r = spawnSync(process.execPath, [BIN, 'dump', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', fd, 'pipe'],
      encoding: 'utf8',
    });
    return { code: r.status ?? -1, stderr: r.stderr };
  } finally {
    fs.closeSync(fd);
  }
}

/** Every member of a tar archive as tar-stream parses it: name, type, link name. */
async function members(file: string): Promise<{ name: string; type: string; linkname: string | null }[]> {
  const out: { name: string; type: string; linkname: string | null }[] = [];
  const ex = extract();
  ex.on('entry', (h, stream, next) => {
    out.push({ name: h.name, type: h.type ?? 'file', linkname: h.linkname ?? null });
    stream.on('end', next);
    stream.resume();
  });
  const done = new Promise<void>((resolve, reject) => {
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(fs.readFileSync(file));
  await done;
  return out;
}

describe('unsafe entry names in a crafted snapshot', () => {
  let base: string;
  let env: Record<string, string>;
  const evil = Buffer.from('attacker bytes\n');
  const good = Buffer.from('honest file\n');
  const ok = Buffer.from('ok in sub\n');
  /** Where each refused entry must be named: its directory plus the quoted name. */
  const refused = [...BAD.map(([, shown]) => `/evilsrc/${shown}`), '/evilsrc/sub/".."'];

  beforeAll(async () => {
    base = tmpDir('snapfill-names-');
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    await craftSnapshot(
      path.join(base, 'repo'),
      [
        fileEntry('good.txt', good, { nlink: 2, ino: 7n }),
        ...BAD.map(([name]) => fileEntry(name, evil)),
        fileEntry('h2', good, { type: 'hardlink', target: '/evilsrc/good.txt', nlink: 2, ino: 7n }),
        fileEntry('hl', evil, { type: 'hardlink', target: '/etc/passwd', ino: 9n }),
        entry('sub', 'dir'),
      ],
      { evil, good, ok },
      { sub: [fileEntry('..', evil), fileEntry('ok.txt', ok)] },
      { source: 'evilsrc' },
    );
  });

  const named = (text: string) => refused.filter((p) => text.includes(p));

  it('restore refuses each one by name, restores the rest, writes nothing elsewhere, exits 3', () => {
    const target = path.join(base, 'target');
    const r = cli(['--json', 'restore', 'latest', '--target', target], env);
    expect(r.code, r.stderr).toBe(3);
    const errs = r.json.errors.map((e: any) => `${e.path}: ${e.message}`).join('\n');
    expect(named(errs)).toEqual(refused);
    expect(errs).toMatch(/unsafe entry name "a\/b" contains "\/"/);
    expect(fs.readFileSync(path.join(target, 'evilsrc', 'good.txt'), 'utf8')).toBe(good.toString());
    expect(fs.readFileSync(path.join(target, 'evilsrc', 'sub', 'ok.txt'), 'utf8')).toBe(ok.toString());
    // `a/b` was restored as directory a holding b before the fix (hl is refused by restore: its link target leaves the tree).
    expect(fs.readdirSync(path.join(target, 'evilsrc')).sort()).toEqual(['good.txt', 'h2', 'sub']);
    expect(fs.existsSync(path.join('/tmp', escapeTo))).toBe(false);
    expect(fs.existsSync(path.join(base, 'pwned'))).toBe(false);
  });

  it('ls names them on stderr and exits 3; they never show as other names (x, b)', () => {
    const r = cli(['ls', 'latest', '/evilsrc'], env);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout.trim().split('\n').sort()).toEqual(['good.txt', 'h2', 'hl', 'sub']);
    expect(named(r.stderr)).toEqual(refused);
    const j = cli(['--json', 'ls', '-R', 'latest', '/evilsrc'], env);
    expect(j.code).toBe(3);
    expect(j.json.entries.map((e: any) => e.path).sort()).toEqual([
      '/evilsrc',
      '/evilsrc/good.txt',
      '/evilsrc/h2',
      '/evilsrc/hl',
      '/evilsrc/sub',
      '/evilsrc/sub/ok.txt',
    ]);
    expect(j.json.errors.map((e: any) => e.path)).toEqual(expect.arrayContaining(refused));
    // A clean part of the snapshot lists with exit 0.
    expect(cli(['ls', 'latest', '/evilsrc/sub/ok.txt'], env).code).toBe(0);
  });

  it('find reports them instead of matching an escaped path', () => {
    const r = cli(['--json', 'find', escapeTo], env);
    expect(r.code, r.stderr).toBe(3);
    expect(r.json.matches).toEqual([]);
    expect(r.json.errors.map((e: any) => e.path)).toContain(`/evilsrc/"../../../../../tmp/${escapeTo}"`);
    expect(cli(['find', '/evilsrc/good.txt'], env).code).toBe(0);
  });

  it('catalog rebuild names them and exits 3; verify lists them as errors', () => {
    const r = cli(['catalog', 'rebuild'], env);
    expect(r.code, r.stderr).toBe(3);
    expect(named(r.stderr)).toEqual(refused);
    const v = cli(['--json', 'verify', 'latest', '--target', path.join(base, 'target')], env);
    expect(v.json.errors.map((e: any) => e.path)).toEqual(expect.arrayContaining(refused));
    expect(v.code).not.toBe(0);
  });

  it('dump writes only safe members, links only to members of the archive, and names what it left out', async () => {
    const archive = path.join(base, 'evil.tar');
    const r = dumpTo(env, ['latest', '/evilsrc'], archive);
    expect(r.code, r.stderr).toBe(3);
    expect(named(r.stderr)).toEqual(refused);
    const got = await members(archive);
    expect(got.map((m) => m.name)).toEqual([
      'evilsrc/',
      'evilsrc/good.txt',
      'evilsrc/h2',
      'evilsrc/hl',
      'evilsrc/sub/',
      'evilsrc/sub/ok.txt',
    ]);
    for (const m of got) {
      expect(m.name.split('/').filter((c, i, all) => c === '' && i < all.length - 1)).toEqual([]); // no empty component
      expect(m.name.split('/')).not.toContain('..');
      expect(m.name.startsWith('/')).toBe(false);
      expect(m.name).not.toContain('\0');
    }
    const seen = new Set<string>();
    for (const m of got) {
      if (m.type === 'link') expect(seen.has(m.linkname!), `${m.name} -> ${m.linkname}`).toBe(true);
      seen.add(m.name);
    }
    expect(got.find((m) => m.name === 'evilsrc/h2')).toMatchObject({ type: 'link', linkname: 'evilsrc/good.txt' });
    expect(got.find((m) => m.name === 'evilsrc/hl')).toMatchObject({ type: 'file' }); // its target is outside the archive
    const listing = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' }).trim().split('\n');
    expect(listing).toEqual(got.map((m) => m.name));
  });
});
