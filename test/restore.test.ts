import { describe, it, expect, beforeEach } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn, execSync } from 'node:child_process';

function spawnSyncOk(cmd: string): void {
  execSync(cmd, { stdio: 'pipe', shell: '/bin/sh' });
}
import { BIN, cli, describeTree, diffTrees, repoEnv, requireSystem, tmpDir, write, IS_ROOT } from './helpers.js';

const DAY = 86400;

function snap(env: Record<string, string>, src: string): string {
  const r = cli(['--json', 'snapshot', src], env);
  if (!r.json?.snapshot_id) throw new Error(`snapshot failed: ${r.stderr}`);
  return r.json.snapshot_id;
}

function restore(env: Record<string, string>, args: string[]) {
  return cli(['--json', 'restore', ...args], env);
}

/** A small hosting tree: two accounts, files of various ages, owners and modes. */
function makeTree(src: string): void {
  const now = Date.now() / 1000;
  let i = 0;
  for (const acct of ['alice', 'bob']) {
    for (let d = 0; d < 4; d++) {
      for (let f = 0; f < 10; f++) {
        const p = `${src}/home/${acct}/public_html/dir${d}/file${f}.php`;
        write(p, `<?php // ${acct} ${d} ${f} ${'x'.repeat((i * 37) % 3000)}\n`, f % 3 === 0 ? 0o600 : 0o644);
        const age = (i % 20) * 3 * DAY; // 0..57 days
        fs.utimesSync(p, now - age, now - age);
        if (IS_ROOT) fs.chownSync(p, acct === 'alice' ? 1001 : 1002, acct === 'alice' ? 1001 : 1002);
        i++;
      }
    }
    fs.symlinkSync('public_html/dir0/file0.php', `${src}/home/${acct}/link.php`);
    fs.mkdirSync(`${src}/home/${acct}/empty-dir`, { mode: 0o750 });
    write(`${src}/home/${acct}/Maildir/cur/1.mail`, 'From: x\n\nhello\n', 0o600);
    fs.linkSync(`${src}/home/${acct}/Maildir/cur/1.mail`, `${src}/home/${acct}/Maildir/cur/1-hardlink.mail`);
    if (IS_ROOT) {
      for (const p of [`${src}/home/${acct}`, `${src}/home/${acct}/public_html`]) fs.chownSync(p, acct === 'alice' ? 1001 : 1002, 65534);
    }
    fs.chmodSync(`${src}/home/${acct}/public_html`, 0o750);
  }
}

function deleteOlderThan(root: string, days: number): string[] {
  const cutoff = Date.now() / 1000 - days * DAY;
  const gone: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.statSync(p).mtimeMs / 1000 < cutoff) {
        fs.rmSync(p);
        gone.push(p);
      }
    }
  };
  walk(root);
  return gone;
}

describe('restore', () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;

  beforeEach(() => {
    base = tmpDir();
    src = path.join(base, 'src');
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    makeTree(src);
  });

  it('story 1: puts back files deleted by a cleanup script, leaving newer data alone', () => {
    const before = describeTree(src);
    snap(env, src);
    const gone = deleteOlderThan(src, 7);
    expect(gone.length).toBeGreaterThan(20);
    // after the snapshot: new files and modified files
    write(`${src}/home/alice/public_html/new-upload.jpg`, 'new data');
    const modified = `${src}/home/bob/public_html/dir0/file1.php`;
    if (!gone.includes(modified)) write(modified, 'edited after the snapshot');
    const modifiedDesc = describeTree(src).get(modified.slice(src.length));

    const r = restore(env, ['latest']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.files_restored).toBe(gone.length);
    const after = describeTree(src);
    for (const p of gone) expect(after.get(p.slice(src.length)), p).toBe(before.get(p.slice(src.length)));
    expect(fs.readFileSync(`${src}/home/alice/public_html/new-upload.jpg`, 'utf8')).toBe('new data');
    if (modifiedDesc) expect(after.get(modified.slice(src.length))).toBe(modifiedDesc);
    // A second run has nothing left to do.
    const again = restore(env, ['latest']);
    expect(again.json.files_restored).toBe(0);
  });

  it('missing mode with a few names gone per directory: exactly those come back (hard links, names that are not UTF-8, --exclude), the rest are counted as present', () => {
    // Bytes that are not UTF-8 in names: one deleted, one kept.
    const dir0 = Buffer.from(`${src}/home/alice/public_html/dir0/`);
    const gonePlain = Buffer.concat([dir0, Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])]); // "caf\xe9.txt"
    const keptPlain = Buffer.concat([dir0, Buffer.from([0x6b, 0xff, 0xfe, 0x2e, 0x74, 0x78, 0x74])]);
    fs.writeFileSync(gonePlain, 'latin-1 name\n');
    fs.writeFileSync(keptPlain, 'kept\n');
    const before = describeTree(src);
    snap(env, src);
    const gone: string[] = [];
    for (const acct of ['alice', 'bob']) for (let d = 0; d < 4; d++) gone.push(`${src}/home/${acct}/public_html/dir${d}/file3.php`);
    gone.push(`${src}/home/alice/Maildir/cur/1-hardlink.mail`); // its other name stays: linked back to it
    for (const p of gone) fs.rmSync(p);
    fs.rmSync(gonePlain);
    const excluded = `${src}/home/bob/public_html/dir1/file3.php`;
    const r = restore(env, ['latest', '--exclude', excluded]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.files_restored).toBe(gone.length - 1 + 1); // the excluded one stays gone; the non-UTF-8 name comes back
    expect(fs.existsSync(excluded)).toBe(false);
    const after = describeTree(src);
    for (const p of gone.filter((g) => g !== excluded)) expect(after.get(p.slice(src.length)), p).toBe(before.get(p.slice(src.length)));
    expect(fs.readFileSync(gonePlain, 'utf8')).toBe('latin-1 name\n');
    expect(fs.readFileSync(keptPlain, 'utf8')).toBe('kept\n');
    const mail = `${src}/home/alice/Maildir/cur/`;
    expect(fs.statSync(mail + '1-hardlink.mail').ino).toBe(fs.statSync(mail + '1.mail').ino);
    // Everything else was there: counted as present, none rewritten.
    const files = [...before.keys()].filter((k) => before.get(k)!.includes(' f ')).length;
    expect(r.json.files_skipped).toBeGreaterThanOrEqual(files - gone.length - 1);
    const again = restore(env, ['latest', '--exclude', excluded]);
    expect(again.json.files_restored).toBe(0);
    expect(describeTree(src)).toEqual(after);
  });

  it('missing and changed mode clear a leftover temp entry (file or symlink) of an interrupted run where the listing shows one, never following it', () => {
    snap(env, src);
    const outside = path.join(base, 'outside.txt');
    fs.writeFileSync(outside, 'not yours\n');
    const dir = `${src}/home/alice/public_html/dir1`;
    for (const [mode, f] of [
      ['missing', 'file4.php'],
      ['changed', 'file5.php'],
    ]) {
      fs.rmSync(`${dir}/${f}`);
      // What a killed restore leaves: a half-written temp, and one a customer turned into a symlink.
      fs.writeFileSync(`${dir}/.snapfill-tmp.${f}`, 'half');
      fs.symlinkSync(outside, `${dir}/.snapfill-tmp.file6.php`);
      fs.rmSync(`${dir}/file6.php`);
      const r = restore(env, ['latest', '--mode', mode]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.files_restored).toBe(2);
      expect(fs.readFileSync(`${dir}/${f}`, 'utf8')).toMatch(/^<\?php/);
      expect(fs.readFileSync(`${dir}/file6.php`, 'utf8')).toMatch(/^<\?php/);
      expect(fs.readdirSync(dir).filter((n) => n.startsWith('.snapfill-tmp.'))).toEqual([]);
      expect(fs.readFileSync(outside, 'utf8')).toBe('not yours\n');
    }
  });

  it('story 2: metadata mode repairs chmod 000 / chown nobody without rewriting data', () => {
    const before = describeTree(src);
    snap(env, src);
    const inodes = new Map<string, number>();
    const damage = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (!e.isSymbolicLink()) inodes.set(p, fs.statSync(p).ino);
        if (IS_ROOT) fs.lchownSync(p, 65534, 65534);
        if (e.isDirectory()) walkThenChmod(p);
        else if (!e.isSymbolicLink()) fs.chmodSync(p, 0o000);
      }
    };
    const walkThenChmod = (p: string) => {
      damage(p);
      fs.chmodSync(p, 0o000);
    };
    damage(`${src}/home/alice`);
    const r = restore(env, ['latest', `${src}/home/alice`, '--mode', 'metadata']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.files_restored).toBe(0);
    expect(r.json.bytes_written).toBe(0);
    expect(r.json.metadata_fixed).toBeGreaterThan(40);
    const after = describeTree(src, { mtimeDirs: false });
    expect(diffTrees(before, after)).toEqual([]);
    for (const [p, ino] of inodes) expect(fs.statSync(p).ino, p).toBe(ino);
  });

  it('story 3: restores a deleted account in place and to a staging target', () => {
    const before = describeTree(`${src}/home/alice`);
    snap(env, src);
    fs.rmSync(`${src}/home/alice`, { recursive: true });
    const staging = path.join(base, 'staging');
    const s = restore(env, ['latest', '--account', 'alice', '--accounts-root', `${src}/home`, '--target', staging]);
    expect(s.code, s.stderr).toBe(0);
    expect(diffTrees(before, describeTree(`${staging}${src}/home/alice`))).toEqual([]);
    expect(fs.existsSync(`${src}/home/alice`)).toBe(false);
    const r = restore(env, ['latest', '--account', 'alice', '--accounts-root', `${src}/home`]);
    expect(r.code, r.stderr).toBe(0);
    expect(diffTrees(before, describeTree(`${src}/home/alice`))).toEqual([]);
    // hardlinks come back as hardlinks
    expect(fs.statSync(`${src}/home/alice/Maildir/cur/1.mail`).ino).toBe(fs.statSync(`${src}/home/alice/Maildir/cur/1-hardlink.mail`).ino);
    const bad = restore(env, ['latest', '--account', 'nobody-here', '--accounts-root', `${src}/home`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/not in snapshot/);
  });

  it('story 4: checksum mode repairs a flipped byte with the same size and mtime', () => {
    snap(env, src);
    const f = `${src}/home/bob/public_html/dir2/file5.php`;
    const good = fs.readFileSync(f);
    const st = fs.statSync(f);
    const bad = Buffer.from(good);
    bad[3] ^= 0x20;
    fs.writeFileSync(f, bad);
    fs.utimesSync(f, st.atime, st.mtime);
    const changed = restore(env, ['latest', '--mode', 'changed']);
    expect(changed.json.files_restored).toBe(0); // size and mtime match: changed mode cannot see it
    const r = restore(env, ['latest', '--mode', 'checksum']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.files_restored).toBe(1);
    expect(fs.readFileSync(f)).toEqual(good);
  });

  it('changed mode rewrites differing files but skips files modified after the snapshot', () => {
    snap(env, src);
    const older = `${src}/home/alice/public_html/dir1/file2.php`;
    write(older, 'corrupted, short');
    const past = new Date(Date.now() - 30 * DAY * 1000);
    fs.utimesSync(older, past, past);
    const newer = `${src}/home/alice/public_html/dir1/file3.php`;
    write(newer, 'customer edit after the backup');
    const dry = restore(env, ['latest', '--mode', 'changed', '--dry-run']);
    expect(dry.json.actions.find((a: any) => a.path === older).action).toMatch(/restore/);
    expect(dry.json.skipped_newer).toContain(newer);
    const r = restore(env, ['latest', '--mode', 'changed']);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(older, 'utf8')).toMatch(/<\?php/);
    expect(fs.readFileSync(newer, 'utf8')).toBe('customer edit after the backup');
    expect(r.json.skipped_newer).toContain(newer);
  });

  it('story 5: a restore killed with SIGKILL leaves no truncated file, and a re-run completes it', async () => {
    // Enough data that the kill lands mid-restore.
    for (let i = 0; i < 400; i++) write(`${src}/home/carol/mail/${i}.eml`, Buffer.alloc(20000 + i, i % 251));
    const before = describeTree(src);
    const id = snap(env, src);
    const target = path.join(base, 'killed');
    for (const delay of [60, 150, 300, 600]) {
      fs.rmSync(target, { recursive: true, force: true });
      const child = spawn(process.execPath, [BIN, 'restore', id, '--target', target, '--threads', '2'], {
        env: { ...process.env, ...env },
        stdio: 'ignore',
      });
      const exited = new Promise((r) => child.once('exit', r)); // attached now: the restore may finish before the kill
      await new Promise((r) => setTimeout(r, delay));
      child.kill('SIGKILL');
      await exited;
      // Whatever reached its final name is complete.
      const partial = fs.existsSync(`${target}${src}`) ? describeTree(`${target}${src}`) : new Map<string, string>();
      for (const [p, d] of partial) {
        if (path.basename(p).startsWith('.snapfill-tmp.')) continue;
        if (d.includes(' f ')) expect(d.split(' ').slice(2, 6).join(' ')).toBe(before.get(p)!.split(' ').slice(2, 6).join(' '));
      }
      const r = restore(env, [id, '--target', target]);
      expect(r.code, r.stderr).toBe(0);
      const after = describeTree(`${target}${src}`);
      expect([...after.keys()].filter((k) => path.basename(k).startsWith('.snapfill-tmp.'))).toEqual([]);
      expect(diffTrees(before, after)).toEqual([]);
    }
  });

  it('story 6: never follows a symlink a customer swapped into the target tree', () => {
    snap(env, src);
    const outside = path.join(base, 'etc');
    fs.mkdirSync(outside);
    write(`${outside}/passwd`, 'root:x:0:0');
    const html = `${src}/home/alice/public_html`;
    fs.rmSync(html, { recursive: true });
    fs.symlinkSync(outside, html); // the attack
    for (const mode of ['missing', 'changed', 'all', 'metadata']) {
      const r = restore(env, ['latest', '--mode', mode]);
      expect(r.code).not.toBe(0);
      expect(r.json.errors.some((e: any) => /symlink/.test(e.message))).toBe(true);
      expect(fs.readdirSync(outside)).toEqual(['passwd']);
      expect(fs.readFileSync(`${outside}/passwd`, 'utf8')).toBe('root:x:0:0');
      expect(fs.lstatSync(html).isSymbolicLink()).toBe(true);
    }
    // Other accounts are restored normally meanwhile.
    fs.rmSync(`${src}/home/bob/public_html/dir0/file4.php`);
    const r = restore(env, ['latest']);
    expect(fs.existsSync(`${src}/home/bob/public_html/dir0/file4.php`)).toBe(true);
    expect(r.code).toBe(3);
  });

  it('story 7: --delete needs a scope, refuses /, and deletes only inside the scope', () => {
    snap(env, src);
    write(`${src}/home/alice/public_html/malware.php`, 'evil');
    write(`${src}/home/bob/public_html/keep-me.txt`, 'not in scope');
    const noScope = restore(env, ['latest', '--delete']);
    expect(noScope.code).not.toBe(0);
    expect(noScope.stderr).toMatch(/scope/);
    const root = restore(env, ['latest', '/', '--delete']);
    expect(root.code).not.toBe(0);
    expect(root.stderr).toMatch(/root directory/);
    const dry = restore(env, ['latest', `${src}/home/alice`, '--delete', '--dry-run']);
    expect(dry.json.actions.filter((a: any) => a.action === 'delete').map((a: any) => a.path)).toEqual([
      `${src}/home/alice/public_html/malware.php`,
    ]);
    expect(fs.existsSync(`${src}/home/alice/public_html/malware.php`)).toBe(true);
    const r = restore(env, ['latest', `${src}/home/alice`, '--delete']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.deleted).toBe(1);
    expect(fs.existsSync(`${src}/home/alice/public_html/malware.php`)).toBe(false);
    expect(fs.existsSync(`${src}/home/bob/public_html/keep-me.txt`)).toBe(true);
  });

  it('the planned strategy (used for remote repositories: pack-ordered reads) restores identically', () => {
    const before = describeTree(src);
    snap(env, src);
    const target = path.join(base, 'planned');
    const r = cli(['--json', 'restore', 'latest', '--strategy', 'planned', '--target', target], env);
    expect(r.code, r.stderr).toBe(0);
    expect(diffTrees(before, describeTree(`${target}${src}`))).toEqual([]);
    fs.rmSync(`${src}/home/bob/public_html/dir3`, { recursive: true });
    const again = cli(['--json', 'restore', 'latest', '--strategy', 'planned', `${src}/home/bob`], env);
    expect(again.json.files_restored).toBe(10);
    expect(diffTrees(before, describeTree(src))).toEqual([]);
  });

  it('--owner-by-name maps a recreated account to its new uid/gid', () => {
    // Creating users and chown need root: in CI (run as root) its absence fails, elsewhere it skips.
    if (!requireSystem('root', IS_ROOT, 'run the tests as root: they create users and chown')) return;
    const user = `sft${process.pid % 100000}`;
    const sh = (cmd: string) => spawnSyncOk(cmd);
    sh(`groupadd -g 43001 ${user} && useradd -M -N -u 43001 -g 43001 ${user}`);
    try {
      const home = `${src}/home/${user}`;
      write(`${home}/site/index.html`, 'hello');
      for (const p of [home, `${home}/site`, `${home}/site/index.html`]) fs.chownSync(p, 43001, 43001);
      snap(env, src);
      fs.rmSync(home, { recursive: true });
      // The account is deleted and created again: new numbers, same names.
      sh(`userdel ${user}; groupdel ${user} 2>/dev/null; groupadd -g 43002 ${user} && useradd -M -N -u 43002 -g 43002 ${user}`);
      const plain = restore(env, ['latest', '--account', user, '--accounts-root', `${src}/home`, '--target', path.join(base, 'numeric')]);
      expect(plain.code, plain.stderr).toBe(0);
      expect(fs.statSync(`${base}/numeric${home}/site/index.html`).uid).toBe(43001);
      const r = restore(env, ['latest', '--account', user, '--accounts-root', `${src}/home`, '--owner-by-name']);
      expect(r.code, r.stderr).toBe(0);
      for (const p of [home, `${home}/site`, `${home}/site/index.html`]) {
        expect(fs.statSync(p).uid, p).toBe(43002);
        expect(fs.statSync(p).gid, p).toBe(43002);
      }
    } finally {
      spawnSyncOk(`userdel ${user} 2>/dev/null; groupdel ${user} 2>/dev/null; true`);
    }
  });

  it('include/exclude globs and dry-run JSON', () => {
    snap(env, src);
    const target = path.join(base, 't');
    const r = restore(env, ['latest', '--target', target, '--include', '*.mail', '--exclude', '*hardlink*']);
    expect(r.code, r.stderr).toBe(0);
    const got = [...describeTree(target).keys()].filter((k) => k.endsWith('.mail'));
    expect(got.map((k) => path.basename(k)).sort()).toEqual(['1.mail', '1.mail']);
    const dry = restore(env, ['latest', '--target', path.join(base, 'nowhere'), '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.json.dry_run).toBe(true);
    expect(dry.json.planned.restore.count).toBeGreaterThan(80);
    expect(fs.existsSync(path.join(base, 'nowhere'))).toBe(false);
    const bad = cli(['restore', 'latest', '--mode', 'everything'], env);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown --mode/);
  });
});
