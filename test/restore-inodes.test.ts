import { describe, it, expect, beforeEach } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { cli, repoEnv, tmpDir, write, IS_ROOT } from './helpers.js';
import type { Entry } from '../src/repo/tree.js';
import { blobIdOf } from '../src/pack/blobid.js';
import { craftSnapshot, entry } from './support/craft.js';

/**
 * Issue 11, holes 1, 2 and 7: what a restore may do to inodes it did not create. A customer
 * controls the live tree (hardlinks to files it does not own), another host of a shared
 * repository controls the snapshot (hardlink targets anywhere), and what the restore leaves
 * behind must match the snapshot (directory times, hardlink groups, sparse files).
 */

function snap(env: Record<string, string>, src: string): string {
  const r = cli(['--json', 'snapshot', src], env);
  if (!r.json?.snapshot_id) throw new Error(`snapshot failed: ${r.stderr}`);
  return r.json.snapshot_id;
}

function statOf(p: string) {
  const st = fs.lstatSync(p, { bigint: true });
  return { uid: st.uid, gid: st.gid, mode: st.mode, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, nlink: st.nlink, ino: st.ino };
}

const T0 = 1_700_000_000;

describe("a restore never changes an inode it cannot prove is the snapshot's", () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;
  let victim: string;
  const wp = () => path.join(src, 'home/cust/public_html/wp-config.php');

  beforeEach(() => {
    base = tmpDir();
    src = path.join(base, 'src');
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    write(wp(), '<?php define("DB_PASSWORD", "x");\n', 0o600);
    write(path.join(src, 'home/cust/public_html/index.php'), '<?php echo 1;\n', 0o644);
    fs.utimesSync(wp(), T0, T0);
    if (IS_ROOT) {
      for (const p of [
        wp(),
        path.join(src, 'home/cust/public_html/index.php'),
        path.join(src, 'home/cust/public_html'),
        path.join(src, 'home/cust'),
      ])
        fs.chownSync(p, 2001, 2001);
    }
    victim = path.join(base, 'victim/passwd');
    write(victim, 'root:x:0:0:root:/root:/bin/bash\n', 0o644);
    fs.utimesSync(victim, T0 - 5000, T0 - 5000);
    snap(env, src);
    // The customer replaces its file by a hardlink to a file it does not own.
    fs.rmSync(wp());
    fs.linkSync(victim, wp());
  });

  it('--mode metadata refuses a file with more links than the snapshot recorded, and names it', () => {
    const before = statOf(victim);
    const r = cli(['--json', 'restore', 'latest', src, '--mode', 'metadata'], env);
    expect(statOf(victim)).toEqual(before);
    expect(r.code, r.stderr).toBe(3);
    const err = (r.json.errors as { path: string; message: string }[]).find((e) => e.path === wp());
    expect(err?.message).toMatch(/link/);
  });

  it('--mode changed and all replace the name with a fresh copy and never chown, chmod or re-time the victim', () => {
    for (const mode of ['changed', 'all']) {
      if (fs.lstatSync(wp()).ino !== fs.lstatSync(victim).ino) {
        fs.rmSync(wp());
        fs.linkSync(victim, wp());
      }
      // Make the victim look like the snapshot's file in size and time: the cheap compare alone would keep it.
      const content = fs.readFileSync(victim);
      const before = statOf(victim);
      const r = cli(['--json', 'restore', 'latest', src, '--mode', mode], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.json.planned['replace (extra hard links)']?.count).toBe(1);
      const after = statOf(victim);
      expect({ uid: after.uid, gid: after.gid, mode: after.mode, mtimeNs: after.mtimeNs }).toEqual({
        uid: before.uid,
        gid: before.gid,
        mode: before.mode,
        mtimeNs: before.mtimeNs,
      });
      expect(fs.readFileSync(victim).equals(content)).toBe(true);
      expect(fs.lstatSync(wp()).ino).not.toBe(fs.lstatSync(victim).ino);
      expect(fs.readFileSync(wp(), 'utf8')).toContain('DB_PASSWORD');
      expect(fs.lstatSync(wp()).nlink).toBe(1);
    }
  });

  it("a hardlink to a file of the same size and mtime is still not the snapshot's file", () => {
    // The victim now matches the snapshot's size and mtime exactly: only the link count tells.
    const want = '<?php define("DB_PASSWORD", "x");\n';
    fs.writeFileSync(victim, 'y'.repeat(want.length));
    fs.utimesSync(victim, T0, T0);
    const before = statOf(victim);
    const r = cli(['--json', 'restore', 'latest', src, '--mode', 'changed'], env);
    expect(r.code, r.stderr).toBe(0);
    const after = statOf(victim);
    expect({ uid: after.uid, gid: after.gid, mode: after.mode, mtimeNs: after.mtimeNs }).toEqual({
      uid: before.uid,
      gid: before.gid,
      mode: before.mode,
      mtimeNs: before.mtimeNs,
    });
    expect(fs.readFileSync(wp(), 'utf8')).toBe(want);
  });
});

describe('the hardlink class: every kind of inode a customer can link in', () => {
  it('metadata mode never chowns, chmods or re-times a linked-in FIFO, symlink or file of another owner', () => {
    const base = tmpDir();
    const src = path.join(base, 'src');
    const env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    const kinds = ['file', 'fifo', 'symlink'] as const;
    const make = (p: string, kind: (typeof kinds)[number]) => {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      if (kind === 'file') fs.writeFileSync(p, 'data\n');
      else if (kind === 'fifo') execFileSync('mkfifo', [p]);
      else fs.symlinkSync('/etc/hostname', p);
    };
    for (const k of kinds) {
      make(path.join(src, `cust/${k}`), k);
      if (IS_ROOT) fs.lchownSync(path.join(src, `cust/${k}`), 2001, 2001);
      make(path.join(base, `victim/${k}`), k);
    }
    snap(env, src);
    const before = new Map<string, ReturnType<typeof statOf>>();
    for (const k of kinds) {
      fs.rmSync(path.join(src, `cust/${k}`));
      fs.linkSync(path.join(base, `victim/${k}`), path.join(src, `cust/${k}`));
      before.set(k, statOf(path.join(base, `victim/${k}`)));
    }
    // Owner and mode drift on the customer side too, so the repair has something to "fix".
    const r = cli(['--json', 'restore', 'latest', src, '--mode', 'metadata'], env);
    expect(r.code, r.stderr).toBe(3);
    for (const k of kinds) {
      const now = statOf(path.join(base, `victim/${k}`));
      expect({ uid: now.uid, gid: now.gid, mode: now.mode, mtimeNs: now.mtimeNs }, k).toEqual({
        uid: before.get(k)!.uid,
        gid: before.get(k)!.gid,
        mode: before.get(k)!.mode,
        mtimeNs: before.get(k)!.mtimeNs,
      });
      expect(JSON.stringify(r.json.errors), k).toContain(`cust/${k}`);
    }
  });
});

/** A snapshot of `source` (an absolute path) holding `children`, by another host, through the project's own writer. */
async function craftAt(repoDir: string, source: string, children: Entry[], files: Buffer[]): Promise<void> {
  await craftSnapshot(repoDir, children, Object.fromEntries(files.map((b, i) => [String(i), b])), {}, { source, host: 'other-host' });
}

describe('hardlink targets from a hostile snapshot', () => {
  it('in place, a hardlink entry whose target is outside the restored scope is refused, and metadata mode never reaches the target', async () => {
    const base = tmpDir();
    const env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    const secret = path.join(base, 'victim/secret');
    write(secret, 'root secret\n', 0o600);
    const before = statOf(secret);
    const data = path.join(base, 'data');
    fs.mkdirSync(data);
    const body = Buffer.from('root secret\n');
    await craftAt(
      path.join(base, 'repo'),
      data,
      [
        entry('ok.txt', 'file', { size: 3, content: [blobIdOf(Buffer.from('ok\n'))] }),
        entry('stolen', 'hardlink', {
          size: body.length,
          content: [blobIdOf(body)],
          target: secret,
          uid: 2001,
          gid: 2001,
          mode: 0o666,
          nlink: 2,
        }),
      ],
      [Buffer.from('ok\n'), body],
    );
    const r = cli(['--json', 'restore', 'latest', data, '--mode', 'all'], env);
    expect(r.code).toBe(3);
    expect(JSON.stringify(r.json.errors)).toMatch(/stolen.*(unsafe|outside|refus)/);
    // Never linked to the secret.
    const st = fs.lstatSync(path.join(data, 'stolen'), { throwIfNoEntry: false });
    if (st) expect(st.ino).not.toBe(fs.lstatSync(secret).ino);
    const m = cli(['--json', 'restore', 'latest', data, '--mode', 'metadata'], env);
    expect(m.code).not.toBe(1);
    expect(statOf(secret)).toEqual(before);
    expect(fs.readFileSync(path.join(data, 'ok.txt'), 'utf8')).toBe('ok\n');
  });

  it('a hardlink whose target is a snapshot entry that is not a file is refused', async () => {
    const base = tmpDir();
    const env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
    const data = path.join(base, 'data');
    const body = Buffer.from('x\n');
    await craftAt(
      path.join(base, 'repo'),
      data,
      [
        entry('d', 'dir', { tree: null }),
        entry('h', 'hardlink', { size: body.length, content: [blobIdOf(body)], target: path.join(data, 'd'), nlink: 2 }),
        entry('self', 'hardlink', { size: body.length, content: [blobIdOf(body)], target: path.join(data, 'self'), nlink: 2 }),
      ],
      [body],
    );
    const target = path.join(base, 'staging');
    const r = cli(['--json', 'restore', 'latest', '--target', target], env);
    expect(r.code).toBe(3);
    const msgs = JSON.stringify(r.json.errors);
    expect(msgs).toMatch(/\/h"/);
    expect(msgs).toMatch(/\/self"/);
  });
});

describe('what a restore leaves behind matches the snapshot', () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;

  beforeEach(() => {
    base = tmpDir();
    src = path.join(base, 'src');
    env = repoEnv(base);
    expect(cli(['init'], env).code).toBe(0);
  });

  it('in-place --mode changed and all restore the times of existing directories they wrote into; verify checks them', () => {
    write(path.join(src, 'site/a.php'), 'one\n');
    write(path.join(src, 'site/sub/b.php'), 'two\n');
    for (const p of ['site/a.php', 'site/sub/b.php', 'site/sub', 'site']) fs.utimesSync(path.join(src, p), T0, T0);
    snap(env, src);
    for (const mode of ['changed', 'all']) {
      fs.writeFileSync(path.join(src, 'site/sub/b.php'), 'TWO\n');
      fs.utimesSync(path.join(src, 'site/sub/b.php'), T0 - 100, T0 - 100);
      fs.utimesSync(path.join(src, 'site/sub'), T0, T0);
      const r = cli(['--json', 'restore', 'latest', src, '--mode', mode], env);
      expect(r.code, r.stderr).toBe(0);
      expect(fs.readFileSync(path.join(src, 'site/sub/b.php'), 'utf8')).toBe('two\n');
      expect(fs.statSync(path.join(src, 'site/sub')).mtimeMs).toBe(T0 * 1000);
    }
    const ok = cli(['--json', 'verify', 'latest', src], env);
    expect(ok.json.ok, ok.stdout).toBe(true);
    fs.utimesSync(path.join(src, 'site/sub'), T0 + 50, T0 + 50);
    const v = cli(['--json', 'verify', 'latest', src], env);
    expect(v.json.metadata_mismatch_paths).toEqual([{ path: path.join(src, 'site/sub'), fields: ['mtime'] }]);
  });

  it('missing re-links a deleted first name of a hardlink group to the surviving name; verify reports broken groups', () => {
    write(path.join(src, 'mail/a'), 'hello\n', 0o600);
    fs.linkSync(path.join(src, 'mail/a'), path.join(src, 'mail/b'));
    fs.linkSync(path.join(src, 'mail/a'), path.join(src, 'mail/c'));
    snap(env, src);
    // The first name (in walk order) is deleted; b survives; c is deleted too.
    fs.rmSync(path.join(src, 'mail/a'));
    fs.rmSync(path.join(src, 'mail/c'));
    const r = cli(['--json', 'restore', 'latest', src], env);
    expect(r.code, r.stderr).toBe(0);
    const ino = fs.lstatSync(path.join(src, 'mail/b')).ino;
    expect(fs.lstatSync(path.join(src, 'mail/a')).ino).toBe(ino);
    expect(fs.lstatSync(path.join(src, 'mail/c')).ino).toBe(ino);
    expect(fs.lstatSync(path.join(src, 'mail/b')).nlink).toBe(3);
    // (missing mode leaves directory times alone: only the deletions' mtime on mail/ remains)
    const after = cli(['--json', 'verify', 'latest', src], env).json;
    expect([after.missing, after.changed]).toEqual([0, 0]);
    // A broken group: same content, same times, but no longer one inode.
    fs.rmSync(path.join(src, 'mail/c'));
    execFileSync('cp', ['-p', path.join(src, 'mail/a'), path.join(src, 'mail/c')]); // keeps ns times, mode, owner
    const v = cli(['--json', 'verify', 'latest', src], env);
    expect(v.json.ok).toBe(false);
    expect(JSON.stringify(v.json.changed_paths)).toMatch(/mail\/c.*link/);
  });

  it('a sparse file comes back sparse', () => {
    const f = path.join(src, 'vm/disk.img');
    fs.mkdirSync(path.dirname(f), { recursive: true });
    const fd = fs.openSync(f, 'w');
    fs.writeSync(fd, Buffer.from('header'), 0, 6, 0);
    fs.writeSync(fd, Buffer.from('middle'), 0, 6, 40 * 1024 * 1024);
    fs.writeSync(fd, Buffer.from('trailer'), 0, 7, 100 * 1024 * 1024);
    fs.closeSync(fd);
    snap(env, src);
    for (const strategy of ['direct', 'planned']) {
      const target = path.join(base, `staging-${strategy}`);
      const r = cli(['--json', 'restore', 'latest', '--strategy', strategy, '--target', target], env);
      expect(r.code, r.stderr).toBe(0);
      const out = path.join(target, f);
      const st = fs.statSync(out);
      expect(st.size).toBe(fs.statSync(f).size);
      expect(st.blocks * 512).toBeLessThan(1024 * 1024);
      expect(fs.readFileSync(out).equals(fs.readFileSync(f))).toBe(true);
    }
  });
});
