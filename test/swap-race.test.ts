import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { BIN, cli, IS_ROOT, repoEnv, tmpDir, write } from './helpers.js';

/**
 * Issue 17: a customer races a directory-to-symlink swap against a running restore. While
 * restores of every mode run, a child process renames directories of the target away and puts
 * symlinks to an outside directory in their place, in a tight loop (and drifts files inside
 * them, so every run has work there). Whatever the restore reports, nothing outside the target
 * may be written, chmod-ed, chown-ed, re-timed, created or deleted: the outside directory's
 * full state (ctime included, which any of those moves) is the same before and after.
 */

const DIRS = 6;
const FILES = 120;
const SECONDS_PER_MODE = 4;

/** Everything lstat and the content say about a tree, ctime included; the root itself too. */
function stateOf(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const one = (p: string, rel: string) => {
    const st = fs.lstatSync(p, { bigint: true });
    let d = `${st.mode.toString(8)} ${st.uid}:${st.gid} ino${st.ino} nl${st.nlink} s${st.size} m${st.mtimeNs} c${st.ctimeNs}`;
    if (st.isFile()) d += ' ' + crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16);
    else if (st.isSymbolicLink()) d += ' -> ' + fs.readlinkSync(p);
    out.set(rel, d);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) one(path.join(p, n), `${rel}/${n}`);
  };
  one(root, '.');
  return out;
}

function diff(a: Map<string, string>, b: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(`${k}: ${v} -> ${b.get(k) ?? '(gone)'}`);
  for (const [k, v] of b) if (!a.has(k)) out.push(`${k}: (new) ${v}`);
  return out;
}

/** The racer: a child process swapping each directory for a symlink to `outside` and back, until `stop` exists. */
const RACER = `
const fs = require('fs');
const dirs = JSON.parse(process.env.RACE_DIRS), outside = process.env.RACE_OUTSIDE, stop = process.env.RACE_STOP;
const files = Number(process.env.RACE_FILES);
let n = 0, swaps = 0;
const isRealDir = (d) => { try { const st = fs.lstatSync(d); return st.isDirectory(); } catch { return false; } };
while (!fs.existsSync(stop)) {
  for (const d of dirs) {
    try { fs.renameSync(d, d + '.swap'); } catch { continue; }
    try { fs.symlinkSync(outside, d); swaps++; } catch {}
    for (let i = 0; i < 200; i++); // a moment with the symlink in place
    try { if (fs.lstatSync(d).isSymbolicLink()) fs.unlinkSync(d); } catch {}
    try { fs.renameSync(d + '.swap', d); } catch {
      // The restore made a fresh directory meanwhile: drop it (it is inside the target), put ours back.
      try { fs.rmSync(d, { recursive: true, force: true }); fs.renameSync(d + '.swap', d); } catch {}
    }
    // Drift inside the real directory (never through a symlink: only the racer makes them), so every run has work.
    if (isRealDir(d)) {
      const f = d + '/file' + (n % files) + '.php';
      try {
        const st = fs.lstatSync(f);
        if (st.isFile()) {
          if (n % 3 === 0) fs.unlinkSync(f);
          else if (n % 3 === 1) fs.chmodSync(f, 0o604);
          else fs.appendFileSync(f, 'x');
        }
      } catch {}
    }
    n++;
  }
}
process.stdout.write(String(swaps));
`;

/** Starts the racer on `dirs`; `stop()` ends it and gives the number of swaps it made. */
function startRacer(dirs: string[], outside: string, stopFile: string): { stop: () => Promise<number> } {
  const racer = spawn(process.execPath, ['-e', RACER], {
    env: { ...process.env, RACE_DIRS: JSON.stringify(dirs), RACE_OUTSIDE: outside, RACE_STOP: stopFile, RACE_FILES: String(FILES) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let swaps = '';
  racer.stdout.on('data', (d) => (swaps += d));
  const exited = new Promise<void>((resolve) => racer.on('close', () => resolve()));
  return {
    stop: async () => {
      fs.writeFileSync(stopFile, '');
      await exited;
      return Number(swaps);
    },
  };
}

function runRestore(args: string[], env: Record<string, string>, command = 'restore'): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, '--json', command, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe('directory-to-symlink swap raced against a running restore', () => {
  it('writes, chmods, chowns and deletes nothing outside the target, in every mode', async () => {
    const base = tmpDir('snapfill-swap-');
    const env = repoEnv(path.join(base, 'r'));
    const src = path.join(base, 'src');
    for (let d = 0; d < DIRS; d++) {
      for (let f = 0; f < FILES; f++) write(`${src}/site/d${d}/file${f}.php`, `<?php // ${d} ${f} ${'y'.repeat(f * 7)}\n`, 0o644);
      write(`${src}/site/d${d}/sub/inner.txt`, `inner ${d}\n`, 0o640);
      fs.symlinkSync('file0.php', `${src}/site/d${d}/link.php`);
      fs.linkSync(`${src}/site/d${d}/file1.php`, `${src}/site/d${d}/hard.php`);
    }
    // Back-date everything so no live file counts as "modified after the snapshot".
    const past = Date.now() / 1000 - 86400;
    for (let d = 0; d < DIRS; d++)
      for (const n of fs.readdirSync(`${src}/site/d${d}`)) fs.lutimesSync(`${src}/site/d${d}/${n}`, past, past);
    expect(cli(['init'], env).code).toBe(0);
    const snap = cli(['--json', 'snapshot', src], env);
    expect(snap.code, snap.stderr).toBe(0);

    // The outside directory: the same names as inside the raced directories, so a followed symlink would hit them.
    const outside = path.join(base, 'outside');
    for (let f = 0; f < FILES; f++) write(`${outside}/file${f}.php`, `outside ${f}\n`, 0o600);
    write(`${outside}/sub/inner.txt`, 'outside inner\n', 0o600);
    fs.symlinkSync('file0.php', `${outside}/link.php`);
    write(`${outside}/.snapfill-tmp.file2.php`, 'a planted temp name\n', 0o600);
    if (IS_ROOT) fs.chownSync(`${outside}/file3.php`, 4242, 4242);
    fs.utimesSync(outside, past, past);
    const before = stateOf(outside);

    const target = path.join(base, 'target');
    const first = cli(['--json', 'restore', 'latest', '--target', target], env);
    expect(first.code, first.stderr).toBe(0);
    const dirs = Array.from({ length: DIRS }, (_, d) => path.join(target, src, 'site', `d${d}`));

    let totalSwaps = 0;
    let totalRuns = 0;
    for (const mode of ['missing', 'changed', 'checksum', 'metadata', 'all']) {
      const racer = startRacer(dirs, outside, path.join(base, `stop-${mode}`));
      const deadline = Date.now() + SECONDS_PER_MODE * 1000;
      let runs = 0;
      while (Date.now() < deadline || runs < 2) {
        const r = await runRestore(['latest', '--target', target, '--mode', mode], env);
        // Refusals (exit 3, "a symlink ... is in the way") are expected; a crash is not.
        expect([0, 3], `${mode}: ${r.stderr}`).toContain(r.code);
        runs++;
      }
      totalSwaps += await racer.stop();
      totalRuns += runs;
      expect(diff(before, stateOf(outside)), `after --mode ${mode}`).toEqual([]);
    }
    // The race really ran: many swaps during many restores.
    expect(totalRuns).toBeGreaterThanOrEqual(10);
    expect(totalSwaps).toBeGreaterThan(100);
    // And with the racer gone, a restore repairs the tree.
    const fin = cli(['--json', 'restore', 'latest', '--target', target, '--mode', 'changed'], env);
    expect(fin.code, fin.stderr).toBe(0);
    for (const d of dirs) expect(fs.readFileSync(`${d}/sub/inner.txt`, 'utf8')).toMatch(/^inner \d/);
  }, 600_000);
  it('verify --checksum reads nothing outside the tree: a swapped directory is refused, not listed or read through', async () => {
    const base = tmpDir('snapfill-swap-verify-');
    const env = repoEnv(path.join(base, 'r'));
    const src = path.join(base, 'src');
    const content = (d: number, f: number) => `<?php // ${d} ${f} ${'y'.repeat(f * 7)}\n`;
    for (let d = 0; d < DIRS; d++) for (let f = 0; f < FILES; f++) write(`${src}/site/d${d}/file${f}.php`, content(d, f), 0o644);
    expect(cli(['init'], env).code).toBe(0);
    expect(cli(['snapshot', src], env).code).toBe(0);
    const target = path.join(base, 'target');
    expect(cli(['restore', 'latest', '--target', target], env).code).toBe(0);
    // Outside: files of the very sizes the snapshot recorded (so a followed path would be read
    // for its fingerprint), their atime before their mtime, so any read of them moves it (relatime).
    const outside = path.join(base, 'outside');
    const past = Date.now() / 1000 - 86400;
    for (let f = 0; f < FILES; f++) {
      const file = `${outside}/file${f}.php`;
      write(file, content(0, f).replace('<', '>'), 0o600);
      fs.utimesSync(file, past - 3600, past);
    }
    const atimes = () => fs.readdirSync(outside).map((n) => `${n} ${fs.statSync(path.join(outside, n), { bigint: true }).atimeNs}`);
    const before = atimes();
    const dirs = Array.from({ length: DIRS }, (_, d) => path.join(target, src, 'site', `d${d}`));
    const racer = startRacer(dirs, outside, path.join(base, 'stop'));
    const deadline = Date.now() + SECONDS_PER_MODE * 1000;
    let runs = 0;
    while (Date.now() < deadline || runs < 3) {
      const r = await runRestore(['latest', '--target', target, '--checksum'], env, 'verify');
      // Findings (3) and refusals are expected while the racer works; a crash is not.
      expect([0, 1, 3], r.stderr).toContain(r.code);
      runs++;
    }
    expect(await racer.stop()).toBeGreaterThan(20);
    expect(atimes()).toEqual(before);
  }, 300_000);
});

describe('directory-to-symlink swap raced against a running snapshot', () => {
  it('takes nothing from outside the tree: no file read, no link target, whichever thread reads', async () => {
    const base = tmpDir('snapfill-swap-snapshot-');
    const env = repoEnv(path.join(base, 'r'));
    const src = path.join(base, 'src');
    // A file above the 1 MiB whole-file threshold is read by the main thread, the small ones by
    // the reader threads; with --limit-read every file goes through the main thread.
    const big = Buffer.alloc(1536 * 1024, 'b');
    for (let d = 0; d < DIRS; d++) {
      write(`${src}/site/d${d}/big.bin`, big, 0o644);
      for (let f = 0; f < 20; f++) write(`${src}/site/d${d}/file${f}.php`, `<?php // ${d} ${f}\n`, 0o644);
      fs.symlinkSync('file0.php', `${src}/site/d${d}/link.php`);
    }
    // Outside: the same names, holding what a customer must never get into their snapshot, and
    // atimes older than their mtimes, so any read of them moves the atime (relatime).
    const outside = path.join(base, 'outside');
    const past = Date.now() / 1000 - 86400;
    write(`${outside}/big.bin`, 'SECRET-BIG outside the tree\n', 0o600);
    for (let f = 0; f < 20; f++) write(`${outside}/file${f}.php`, `SECRET-SMALL ${f}\n`, 0o600);
    fs.symlinkSync('OUTSIDE-TARGET', `${outside}/link.php`);
    for (const n of fs.readdirSync(outside)) if (n !== 'link.php') fs.utimesSync(path.join(outside, n), past - 3600, past);
    const atimes = () => fs.readdirSync(outside).map((n) => `${n} ${fs.lstatSync(path.join(outside, n), { bigint: true }).atimeNs}`);
    const before = atimes();
    expect(cli(['init'], env).code).toBe(0);

    const dirs = Array.from({ length: DIRS }, (_, d) => path.join(src, 'site', `d${d}`));
    const racer = startRacer(dirs, outside, path.join(base, 'stop'));
    const deadline = Date.now() + 2 * SECONDS_PER_MODE * 1000;
    let runs = 0;
    while (Date.now() < deadline || runs < 4) {
      const args = runs % 2 ? ['--limit-read', '1000', src] : [src];
      const r = await runRestore(args, env, 'snapshot');
      // Errors for swapped paths (3: partial) are expected while the racer works; a crash is not.
      expect([0, 3], r.stderr).toContain(r.code);
      runs++;
    }
    expect(await racer.stop()).toBeGreaterThan(20);
    expect(atimes()).toEqual(before);
    // Every snapshot taken, read back as the tech would restore it: nothing from outside.
    const ids: string[] = cli(['--json', 'snapshots'], env).json.snapshots.map((s: any) => s.id);
    expect(ids.length).toBe(runs);
    for (const id of ids) {
      const tar = spawnSync(process.execPath, [BIN, 'dump', id, path.join(src, 'site')], {
        env: { ...process.env, ...env },
        maxBuffer: 1 << 30,
      });
      expect(tar.status, String(tar.stderr)).toBe(0);
      expect(tar.stdout.includes('SECRET'), `snapshot ${id} holds an outside file`).toBe(false);
      expect(tar.stdout.includes('OUTSIDE-TARGET'), `snapshot ${id} holds an outside link target`).toBe(false);
    }
  }, 300_000);
});
