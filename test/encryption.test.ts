import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import {
  BIN,
  IS_ROOT,
  catalogOf,
  cli,
  describeTree,
  diffTrees,
  repoEnv,
  requireSystem,
  tmpDir,
  write,
  TEST_PASSWORD,
  snapshotRecordFiles,
  indexFiles,
} from './helpers.js';
import { startS3rver, s3rverBin, cliAsync, s3Env, type S3Server } from './support/s3server.js';
import { openObjectSync } from './support/craft.js';

/**
 * Format version 2, encryption (issue 14): nothing readable in the store, one clear line for a
 * wrong password with nothing written, tampering named by check and refused by restore, key
 * management, the explicit unencrypted mode, version-1 repositories still readable, and
 * `copy` as the migration from version 1.
 */
const SECRET = 'DB_PASSWORD=planted-' + randomBytes(8).toString('hex');
/** The unprivileged user the as-an-admin-without-root cases run as. */
const NOBODY = 65534;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Every file under `dir` (relative name -> bytes). */
function files(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, p), fs.readFileSync(p));
  }
  return out;
}

/** The files of `dir` holding `needle` (bytes), or whose names hold it. */
function grepR(dir: string, needle: Buffer | string): string[] {
  const n = typeof needle === 'string' ? Buffer.from(needle) : needle;
  return [...files(dir)].filter(([name, b]) => b.includes(n) || name.includes(n.toString('latin1'))).map(([name]) => name);
}

function flipByte(file: string, at: number): void {
  const b = fs.readFileSync(file);
  b[at] ^= 0x40;
  fs.writeFileSync(file, b);
}

function makeSource(base: string): string {
  const src = path.join(base, 'src');
  write(`${src}/site/wp-config.php`, `<?php\ndefine('x', 1);\n${SECRET}\n`);
  write(`${src}/site/index.html`, '<html>hello</html>\n'.repeat(50));
  write(`${src}/site/upload.bin`, randomBytes(200_000));
  return src;
}

describe('encrypted repositories (format 2)', () => {
  let base: string;
  let env: Record<string, string>;
  let src: string;
  let repo: string;
  let snap: string;

  beforeAll(() => {
    base = tmpDir('snapfill-enc-');
    env = repoEnv(path.join(base, 'main'));
    repo = env.SNAPFILL_REPO;
    src = makeSource(base);
    const init = cli(['--json', 'init'], env);
    expect(init.code, init.stderr).toBe(0);
    expect(init.json.encrypted).toBe(true);
    expect(init.json.version).toBe(2);
    const r = cli(['--json', 'snapshot', src], env);
    expect(r.code, r.stderr).toBe(0);
    snap = r.json.snapshot_id;
  });

  it('stores nothing readable: no planted secret, no file name, no blob id, no tar name with an id', () => {
    expect(JSON.parse(fs.readFileSync(path.join(repo, 'config'), 'utf8'))).toMatchObject({ version: 2, encryption: 'aes-256-gcm' });
    expect(grepR(repo, SECRET)).toEqual([]);
    expect(grepR(repo, 'wp-config')).toEqual([]);
    const content = fs.readFileSync(`${src}/site/wp-config.php`);
    const id = sha(content);
    expect(grepR(repo, id)).toEqual([]);
    expect(grepR(repo, Buffer.from(id, 'hex'))).toEqual([]);
    expect(grepR(repo, id.slice(0, 40))).toEqual([]);
    // The round trip still works.
    const out = path.join(base, 'out1');
    const r = cli(['restore', 'latest', '--target', out], env);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(`${out}${src}/site/wp-config.php`, 'utf8')).toContain(SECRET);
    const chk = cli(['--json', 'check', '--read-data'], env);
    expect(chk.code, chk.stderr).toBe(0);
    expect(chk.json.encrypted).toBe(true);
  });

  it('a wrong password: one clear line, exit non-zero, nothing written', () => {
    const bad = path.join(base, 'wrong-pw');
    fs.writeFileSync(bad, 'not the password\n');
    const before = files(repo);
    const cacheBefore = files(env.SNAPFILL_CACHE);
    // verify walks the tree while the key is derived (it needs it only to prove the password): still one line.
    for (const args of [
      ['snapshot', src],
      ['snapshots'],
      ['restore', 'latest', '--target', path.join(base, 'nope')],
      ['check'],
      ['verify', 'latest'],
    ]) {
      const r = cli(args, { ...env, SNAPFILL_PASSWORD_FILE: bad });
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/wrong password/);
    }
    expect(fs.existsSync(path.join(base, 'nope'))).toBe(false);
    expect([...files(repo).keys()].sort()).toEqual([...before.keys()].sort());
    expect([...files(env.SNAPFILL_CACHE).keys()].sort()).toEqual([...cacheBefore.keys()].sort());
    // A missing password file is one line too.
    const r = cli(['snapshots'], { ...env, SNAPFILL_PASSWORD_FILE: path.join(base, 'missing') });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot read the password file/);
    // A wrong password names where it came from, so an admin knows which file to fix.
    const named = cli(['snapshots'], { ...env, SNAPFILL_PASSWORD_FILE: bad });
    expect(named.stderr).toContain(`password from SNAPFILL_PASSWORD_FILE ${bad}`);
    // No password source at all (no terminal here): says how to give one.
    const none = noPasswordAtAll();
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/encrypted and no password was given.*--password-file/);
  });

  it('an in-place repair with a wrong password: the walk starts (or its threads load) while the key is derived, yet nothing is written, locked or journaled', () => {
    // A key of real cost (no test KDF), so the workers reach their first write long before the
    // key is known: the write gate (livefs/writegate.ts) is what holds them, not the order of events.
    const slow = path.join(base, 'slow-kdf');
    const { SNAPFILL_INSECURE_TEST_KDF: _cheap, ...e } = repoEnv(slow);
    const tree = path.join(slow, 'home');
    for (let d = 0; d < 6; d++)
      for (let f = 0; f < 40; f++) write(`${tree}/acct${d}/public_html/f${f}.php`, `<?php // ${d}/${f}\n`.repeat(f + 1));
    expect(cli(['init'], e).code).toBe(0);
    const r0 = cli(['snapshot', tree], e);
    expect(r0.code, r0.stderr).toBe(0);
    const intact = describeTree(tree);
    // Damage of every kind a repair puts back: deleted files, a deleted directory, modes, times.
    for (let f = 0; f < 40; f += 3) fs.rmSync(`${tree}/acct1/public_html/f${f}.php`);
    fs.rmSync(`${tree}/acct2`, { recursive: true });
    for (let f = 0; f < 40; f++) fs.chmodSync(`${tree}/acct3/public_html/f${f}.php`, 0o777);
    for (let f = 0; f < 40; f++) fs.utimesSync(`${tree}/acct4/public_html/f${f}.php`, 1e9, 1e9);
    const damaged = describeTree(tree, { mtimeDirs: true });
    const repoBefore = [...files(e.SNAPFILL_REPO).keys()].sort();
    const cacheBefore = [...files(e.SNAPFILL_CACHE).keys()].sort();
    const bad = path.join(slow, 'wrong-pw');
    fs.writeFileSync(bad, 'not the password\n');
    // One worker: a core stays free, so the key is derived while the walk runs (api/restore.ts).
    // A worker per core: the threads load meanwhile and only their walk waits for the key; they
    // must end with the run that never starts them (the command exits, it does not hang).
    for (const threads of ['1', String(os.availableParallelism())])
      for (const mode of ['missing', 'metadata', 'all']) {
        const r = cli(['restore', 'latest', tree, '--mode', mode, '--threads', threads], { ...e, SNAPFILL_PASSWORD_FILE: bad });
        expect(r.code, mode).not.toBe(0);
        expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
        expect(r.stderr).toMatch(/wrong password/);
        expect(diffTrees(describeTree(tree, { mtimeDirs: true }), damaged), `${mode}, ${threads} threads`).toEqual([]);
      }
    expect([...files(e.SNAPFILL_REPO).keys()].sort()).toEqual(repoBefore); // no lock object either
    expect([...files(e.SNAPFILL_CACHE).keys()].sort()).toEqual(cacheBefore); // no journal, no plan left
    // The right password: the same repair runs, its workers reading packs with the key the gate hands over.
    const ok = cli(['restore', 'latest', tree, '--mode', 'all', '--threads', '1'], e);
    expect(ok.code, ok.stderr).toBe(0);
    expect(diffTrees(describeTree(tree), intact)).toEqual([]);
  });

  it('a host tag remembered by the catalog is proven by the key before the catalog or the tree changes', () => {
    // The catalog remembers its host's tag so that restore and verify list while the key is
    // derived (issue 17). A wrong one (a catalog of another repository's key, or edited) must
    // not drop the snapshots its listing missed, nor let a restore write: fail closed, one line.
    const b = path.join(base, 'tags');
    const e = repoEnv(b);
    const tree = path.join(b, 'home');
    for (let f = 0; f < 20; f++) write(`${tree}/a/f${f}.txt`, `file ${f}\n`);
    expect(cli(['init'], e).code).toBe(0);
    expect(cli(['snapshot', tree], e).code).toBe(0);
    expect(cli(['snapshots'], e).code).toBe(0);
    const cat = catalogOf(e);
    const db = new Database(cat);
    const tags = JSON.parse((db.prepare(`SELECT value FROM meta WHERE key='host_tags'`).get() as { value: string }).value);
    expect(Object.values(tags)).toHaveLength(1);
    db.prepare(`UPDATE meta SET value=? WHERE key='host_tags'`).run(
      JSON.stringify(Object.fromEntries(Object.keys(tags).map((h) => [h, '0123456789abcdef']))),
    );
    db.close();
    fs.rmSync(`${tree}/a/f3.txt`);
    for (const args of [
      ['restore', 'latest', tree],
      ['verify', 'latest'],
    ]) {
      const r = cli(args, e);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).toMatch(/tag for host .* does not match this repository's key: rebuild it/);
    }
    expect(fs.existsSync(`${tree}/a/f3.txt`)).toBe(false);
    // The rebuild puts the right tag back; the snapshot was never dropped from the catalog meanwhile.
    expect(cli(['catalog', 'rebuild'], e).code).toBe(0);
    const r = cli(['restore', 'latest', tree], e);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(`${tree}/a/f3.txt`, 'utf8')).toBe('file 3\n');
  });

  /**
   * `snapshots` with no password source at all. As root the default password file is
   * /etc/snapfill/password, which a machine set up by the README already has (CI's does), and
   * the test must not touch it: so a user without one runs it, on a copy of the repository's
   * plaintext config and key objects (all a command reads before asking for the password).
   */
  function noPasswordAtAll(): { code: number | null; stderr: string } {
    const { SNAPFILL_PASSWORD_FILE: _pw, ...noPw } = env;
    const shared = path.join(base, 'no-pw');
    const home = path.join(shared, 'home');
    const copy = path.join(shared, 'repo');
    fs.mkdirSync(home, { recursive: true });
    fs.cpSync(path.join(repo, 'config'), path.join(copy, 'config'));
    fs.cpSync(path.join(repo, 'keys'), path.join(copy, 'keys'), { recursive: true });
    const runEnv = { ...process.env, ...noPw, SNAPFILL_PASSWORD_FILE: '', SNAPFILL_CONFIG: '', HOME: home, XDG_CONFIG_HOME: '' };
    runEnv.SNAPFILL_REPO = copy;
    runEnv.SNAPFILL_CACHE = path.join(home, 'cache');
    if (!IS_ROOT) {
      const r = cli(['snapshots'], runEnv as Record<string, string>);
      return { code: r.code, stderr: r.stderr };
    }
    fs.chmodSync(base, 0o755);
    spawnSync('chmod', ['-R', 'a+rX', shared]);
    fs.chownSync(home, NOBODY, NOBODY);
    const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, BIN, 'snapshots'], {
      encoding: 'utf8',
      env: runEnv,
    });
    return { code: r.status, stderr: r.stderr };
  }

  /** A private copy of the repository (and its catalog cache) to damage. */
  function damaged(name: string): { env: Record<string, string>; repo: string } {
    const dir = path.join(base, name);
    fs.cpSync(path.join(base, 'main'), dir, { recursive: true });
    return { env: repoEnv(dir), repo: path.join(dir, 'repo') };
  }

  it('a tampered pack index is named by check', () => {
    const d = damaged('t-index');
    const [, file] = [...indexFiles(d.repo)][0];
    flipByte(file, Math.floor(fs.statSync(file).size / 2));
    const r = cli(['--json', 'check'], d.env);
    expect(r.code).toBe(1);
    expect(
      r.json.errors.some((e: any) => e.path === path.relative(d.repo, file) && /authentication/.test(e.message)),
      JSON.stringify(r.json.errors),
    ).toBe(true);
  });

  it('a tampered snapshot record is named by check', () => {
    const d = damaged('t-snap');
    flipByte(snapshotRecordFiles(d.repo).get(snap)!, 40);
    const r = cli(['--json', 'check'], d.env);
    expect(r.code).toBe(1);
    expect(r.json.errors.some((e: any) => e.path.includes(snap))).toBe(true);
  });

  it('a tampered key object is named by check, and a password it alone held no longer opens', () => {
    const d = damaged('t-key');
    const add = path.join(base, 'pw-second');
    fs.writeFileSync(add, 'second password\n');
    expect(cli(['key', 'add', '--new-password-file', add], d.env).code).toBe(0);
    const ids = fs.readdirSync(path.join(d.repo, 'keys'));
    const second = ids.find((id) =>
      cli(['key', 'list'], { ...d.env, SNAPFILL_PASSWORD_FILE: add }).stdout.includes(`* ${id.slice(0, 8)}`),
    )!;
    flipByte(path.join(d.repo, 'keys', second), 30);
    const chk = cli(['--json', 'check'], d.env);
    expect(chk.code).toBe(1);
    expect(chk.json.errors.some((e: any) => e.path === `keys/${second}`)).toBe(true);
    const r = cli(['snapshots'], { ...d.env, SNAPFILL_PASSWORD_FILE: add });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/damaged/);
  });

  it('a tampered content blob: check --read-data names the pack, restore refuses the file and names it', () => {
    const d = damaged('t-pack');
    // The pack of upload.bin: find it through the (decrypted) indexes.
    const id = sha(fs.readFileSync(`${src}/site/upload.bin`));
    let hit: { pack: string; offset: number; length: number } | null = null;
    for (const [p, file] of indexFiles(d.repo)) {
      const idx = JSON.parse(openObjectSync(d.repo, fs.readFileSync(file)).toString('utf8'));
      const b = idx.blobs.find((x: any) => x.id === id);
      if (b) hit = { pack: p, offset: b.offset, length: b.length };
    }
    expect(hit).not.toBeNull();
    flipByte(path.join(d.repo, 'data', hit!.pack.slice(0, 2), hit!.pack), hit!.offset + 100);
    const chk = cli(['--json', 'check', '--read-data'], d.env);
    expect(chk.code).toBe(1);
    expect(chk.json.broken_packs.map((b: any) => b.pack)).toContain(hit!.pack);
    const out = path.join(base, 'out-tampered');
    const r = cli(['restore', 'latest', '--target', out], d.env);
    expect(r.code).not.toBe(0);
    expect(r.stderr + r.stdout).toContain('upload.bin');
    expect(fs.existsSync(`${out}${src}/site/upload.bin`)).toBe(false);
    expect(fs.readFileSync(`${out}${src}/site/wp-config.php`, 'utf8')).toContain(SECRET);
  });

  it('key list / add / remove / passwd', () => {
    const d = damaged('keys');
    const second = path.join(base, 'pw2');
    const third = path.join(base, 'pw3');
    fs.writeFileSync(second, 'two two two\n');
    fs.writeFileSync(third, 'three three\n');
    const list0 = cli(['--json', 'key', 'list'], d.env);
    expect(list0.code, list0.stderr).toBe(0);
    expect(list0.json.keys).toHaveLength(1);
    const first = list0.json.keys[0].id;
    expect(list0.json.keys[0].current).toBe(true);
    // The last key and the key in use are refused.
    const last = cli(['key', 'remove', first.slice(0, 8)], d.env);
    expect(last.code).not.toBe(0);
    expect(last.stderr).toMatch(/the one your password opens|last key/);
    const add = cli(['--json', 'key', 'add', '--new-password-file', second], d.env);
    expect(add.code, add.stderr).toBe(0);
    const asSecond = { ...d.env, SNAPFILL_PASSWORD_FILE: second };
    expect(cli(['snapshots'], asSecond).code).toBe(0);
    const l2 = cli(['--json', 'key', 'list'], asSecond).json.keys;
    expect(l2.find((k: any) => k.current).id).toBe(add.json.added);
    // The second password removes the first key; the first password then no longer opens.
    expect(cli(['key', 'remove', first.slice(0, 10)], asSecond).code).toBe(0);
    expect(cli(['snapshots'], d.env).stderr).toMatch(/wrong password/);
    // passwd replaces the key in use.
    const pw = cli(['--json', 'key', 'passwd', '--new-password-file', third], asSecond);
    expect(pw.code, pw.stderr).toBe(0);
    expect(cli(['snapshots'], asSecond).code).not.toBe(0);
    const asThird = { ...d.env, SNAPFILL_PASSWORD_FILE: third };
    expect(cli(['snapshots'], asThird).code).toBe(0);
    expect(cli(['--json', 'key', 'list'], asThird).json.keys).toHaveLength(1);
    const out = path.join(base, 'out-keys');
    expect(cli(['restore', 'latest', '--target', out], asThird).code).toBe(0);
    expect(fs.readFileSync(`${out}${src}/site/wp-config.php`, 'utf8')).toContain(SECRET);
  });

  it('the password comes from --password-file, --password-command and the config file too; never a plain flag', () => {
    const { SNAPFILL_PASSWORD_FILE: pwFile, ...rest } = env;
    const noEnv = { ...rest, SNAPFILL_PASSWORD_FILE: '', HOME: path.join(base, 'home-x'), XDG_CONFIG_HOME: '' };
    expect(cli(['--password-file', pwFile, 'snapshots'], noEnv).code).toBe(0);
    expect(cli(['--password-command', `cat '${pwFile}'`, 'snapshots'], noEnv).code).toBe(0);
    const cfg = path.join(base, 'config.json');
    fs.writeFileSync(cfg, JSON.stringify({ repository: repo, sources: [src], password_file: pwFile }));
    expect(cli(['--config', cfg, 'snapshots'], noEnv).code).toBe(0);
    expect(cli(['--password', TEST_PASSWORD, 'snapshots'], noEnv).code).not.toBe(0);
  });
});

describe('unencrypted and version-1 repositories', () => {
  let base: string;
  let src: string;

  beforeAll(() => {
    base = tmpDir('snapfill-enc2-');
    src = makeSource(base);
  });

  it('init needs a password, or the explicit --insecure-no-encryption; the latter is reported', () => {
    const env = repoEnv(path.join(base, 'plain'));
    const noPw = { ...env, SNAPFILL_PASSWORD_FILE: '', HOME: path.join(base, 'home'), XDG_CONFIG_HOME: '' };
    const refused = cli(['init'], noPw);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.existsSync(path.join(env.SNAPFILL_REPO, 'config'))).toBe(false);
    const init = cli(['--json', 'init', '--insecure-no-encryption'], noPw);
    expect(init.code, init.stderr).toBe(0);
    expect(init.json.encrypted).toBe(false);
    expect(init.stderr).toMatch(/NOT encrypted/);
    expect(cli(['snapshot', src], noPw).code).toBe(0);
    const list = cli(['snapshots'], noPw);
    expect(list.code).toBe(0);
    expect(list.stderr).toMatch(/NOT encrypted/);
    const chk = cli(['check'], noPw);
    expect(chk.code).toBe(0);
    expect(chk.stdout).toMatch(/NOT encrypted/);
    // Plaintext indeed, but still format 2: no blob ids in tar entry names.
    expect(grepR(env.SNAPFILL_REPO, SECRET).length).toBeGreaterThan(0);
    expect(grepR(env.SNAPFILL_REPO, sha(fs.readFileSync(`${src}/site/wp-config.php`)).slice(0, 40))).toEqual([]);
  });

  it('a version-1 repository stays readable (snapshots, ls, cat, restore, check) and copies into version 2 keeping time, host, paths, tags', () => {
    const v1 = repoEnv(path.join(base, 'v1'));
    expect(cli(['init', '--format-version', '1'], v1).code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(v1.SNAPFILL_REPO, 'config'), 'utf8')).version).toBe(1);
    expect(cli(['snapshot', src, '--tag', 'first'], v1).code).toBe(0);
    write(`${src}/site/later.txt`, 'added later\n');
    expect(cli(['snapshot', src, '--host', 'web7'], v1).code).toBe(0);
    // v1 is plaintext, with its old entry names.
    expect(grepR(v1.SNAPFILL_REPO, SECRET).length).toBeGreaterThan(0);
    const l1 = cli(['--json', 'snapshots'], v1);
    expect(l1.code, l1.stderr).toBe(0);
    expect(l1.json.snapshots).toHaveLength(2);
    expect(cli(['check', '--read-data'], v1).code).toBe(0);
    const cat = cli(['cat', 'latest', `${src}/site/wp-config.php`], v1);
    expect(cat.stdout).toContain(SECRET);
    const out = path.join(base, 'v1-out');
    expect(cli(['restore', 'latest', '--target', out], v1).code).toBe(0);
    expect(fs.readFileSync(`${out}${src}/site/later.txt`, 'utf8')).toBe('added later\n');

    // Migration: a new encrypted repository, then copy.
    const v2 = repoEnv(path.join(base, 'v2'));
    expect(cli(['init'], v2).code).toBe(0);
    const cp = cli(['--json', 'copy', '--to', v2.SNAPFILL_REPO, '--to-password-file', v2.SNAPFILL_PASSWORD_FILE], v1);
    expect(cp.code, cp.stderr).toBe(0);
    expect(cp.json.copied).toHaveLength(2);
    const l2 = cli(['--json', 'snapshots'], v2);
    expect(l2.code, l2.stderr).toBe(0);
    const key = (s: any) => JSON.stringify([s.time, s.host, s.paths, s.tags]);
    expect(l2.json.snapshots.map(key).sort()).toEqual(l1.json.snapshots.map(key).sort());
    expect(grepR(v2.SNAPFILL_REPO, SECRET)).toEqual([]);
    expect(cli(['check', '--read-data'], v2).code).toBe(0);
    const out2 = path.join(base, 'v2-out');
    expect(cli(['restore', 'latest', '--target', out2], v2).code).toBe(0);
    expect(fs.readFileSync(`${out2}${src}/site/wp-config.php`, 'utf8')).toContain(SECRET);
    // Again: nothing new (dedup by blob id, snapshots already there are skipped).
    const again = cli(['--json', 'copy', '--to', v2.SNAPFILL_REPO], v1);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json.copied).toHaveLength(0);
    expect(again.json.blobs_copied).toBe(0);
  });

  it('the first snapshot into the default repository generates a password file (0600) and says where', () => {
    const home = path.join(base, 'fresh-home');
    fs.mkdirSync(home, { recursive: true });
    const e = {
      HOME: home,
      XDG_CONFIG_HOME: '',
      XDG_CACHE_HOME: '',
      SNAPFILL_REPO: '',
      SNAPFILL_CACHE: path.join(base, 'fresh-cache'),
      SNAPFILL_PASSWORD_FILE: '',
      SNAPFILL_INSECURE_TEST_KDF: '1',
      SNAPFILL_CONFIG: '',
    };
    // As root the defaults are system paths (/var/lib/snapfill, /etc/snapfill): run as nobody, whose
    // defaults are under its HOME, as an unprivileged admin's would be.
    if (IS_ROOT) {
      fs.chownSync(home, NOBODY, NOBODY);
      fs.chmodSync(base, 0o755);
      spawnSync('chmod', ['-R', 'go+rX', src]);
    }
    const asNobody = (args: string[], extra: Record<string, string> = {}) => {
      const r = spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, BIN, ...args], {
        encoding: 'utf8',
        env: { ...process.env, ...e, SNAPFILL_CACHE: path.join(home, 'cache'), ...extra },
      });
      return { code: r.status ?? -1, stderr: r.stderr, stdout: r.stdout };
    };
    const run = IS_ROOT ? asNobody : (args: string[], extra: Record<string, string> = {}) => cli(args, { ...e, ...extra });
    const r = run(['snapshot', src]);
    expect(r.code, r.stderr).toBe(0);
    const pw = path.join(home, '.config', 'snapfill', 'password');
    expect(r.stderr).toContain(pw);
    expect(fs.statSync(pw).mode & 0o777).toBe(0o600);
    expect(run(['snapshots']).code).toBe(0);
    // An explicit repository that does not exist still needs init.
    const named = run(['snapshot', src], { SNAPFILL_REPO: path.join(base, 'not-there') });
    expect(named.code).not.toBe(0);
  });
});

const skip = !requireSystem('s3rver', s3rverBin() !== null, 'npm ci installs it as a devDependency');

describe.skipIf(skip)('encrypted S3 repository', () => {
  let server: S3Server;
  let base: string;
  beforeAll(async () => {
    base = tmpDir('snapfill-enc-s3-');
    server = await startS3rver(path.join(base, 's3rver'), ['bkt-enc']);
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('holds no planted secret, and restores', async () => {
    const src = makeSource(base);
    const env = s3Env(server.url, 's3://bkt-enc/host1', path.join(base, 'cache'));
    expect((await cliAsync(['init'], env)).code).toBe(0);
    const s = await cliAsync(['snapshot', src], env);
    expect(s.code, s.stderr).toBe(0);
    expect(grepR(server.dir, SECRET)).toEqual([]);
    expect(grepR(server.dir, sha(fs.readFileSync(`${src}/site/wp-config.php`)))).toEqual([]);
    const out = path.join(base, 'out');
    const r = await cliAsync(['restore', 'latest', '--target', out], env);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(`${out}${src}/site/wp-config.php`, 'utf8')).toContain(SECRET);
    const bad = path.join(base, 'bad-pw');
    fs.writeFileSync(bad, 'nope\n');
    const w = await cliAsync(['snapshots'], { ...env, SNAPFILL_PASSWORD_FILE: bad });
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/wrong password/);
  });
});
