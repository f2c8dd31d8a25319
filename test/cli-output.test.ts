import { describe, it, expect, beforeAll } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { BIN, ROOT, cli, repoEnv, requireSystem, tmpDir, write } from './helpers.js';

// What a person sees at the terminal, through the real CLI: closed pipes, progress lines, sizes
// and times, the restore plan against its summary, version, completion and the man page.

/** Runs the CLI, reads stdout until the first chunk, then closes the pipe as `| head -1` does. */
function closeAfterFirstChunk(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/** Runs the CLI and sends SIGINT once stderr shows `ready`. */
function interruptWhen(args: string[], env: Record<string, string>, ready: RegExp): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d) => {
      stderr += d;
      if (!sent && ready.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('output a person can read', () => {
  let base: string;
  let src: string;
  let env: Record<string, string>;
  let first: string;
  let second: string;

  beforeAll(() => {
    base = tmpDir();
    src = path.join(base, 'src');
    env = { ...repoEnv(base), TZ: 'UTC' };
    for (let d = 0; d < 20; d++) for (let f = 0; f < 100; f++) write(`${src}/d${d}/a-file-with-a-long-name-${f}.txt`, `v1 ${d}/${f}\n`);
    write(`${src}/big.bin`, randomBytes(3 * 1024 * 1024));
    expect(cli(['init'], env).code).toBe(0);
    first = cli(['--json', 'snapshot', src], env).json.snapshot_id;
    for (let d = 0; d < 20; d++) for (let f = 0; f < 100; f++) write(`${src}/d${d}/a-file-with-a-long-name-${f}.txt`, `v2 ${d}/${f}\n`);
    second = cli(['--json', 'snapshot', src], env).json.snapshot_id;
    expect(first).toBeTruthy();
    expect(second).toBeTruthy();
  });

  it('a reader that goes away (| head) ends ls -R, find and diff quietly, with status 0', async () => {
    for (const args of [
      ['ls', '-R', 'latest', src],
      ['ls', '-l', '-R', 'latest', src],
      ['find', '*.txt'],
      ['diff', first, second],
    ]) {
      const r = await closeAfterFirstChunk(args, env);
      expect(r.stderr, args.join(' ')).not.toMatch(/EPIPE|Error|at /);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    }
  });

  it('ls -l --human-readable (and -h, which is not help there) shows KiB/MiB and times with their zone', () => {
    const plain = cli(['ls', '-l', 'latest', src], env);
    expect(plain.stdout).toMatch(new RegExp(` ${3 * 1024 * 1024} \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\+00:00 big\\.bin`));
    for (const flag of ['-h', '--human-readable']) {
      const h = cli(['ls', '-l', flag, 'latest', src], env);
      expect(h.code, h.stderr).toBe(0);
      expect(h.stdout).not.toMatch(/Usage:/);
      expect(h.stdout).toMatch(/ 3\.0 MiB \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00 big\.bin/);
    }
    expect(cli(['ls', '--help'], env).stdout).toMatch(/-h, --human-readable/);
    // The zone is the reader's: TZ moves the clock and says by how much.
    expect(cli(['ls', '-l', 'latest', src], { ...env, TZ: 'Asia/Kolkata' }).stdout).toMatch(/ \+05:30 big\.bin/);
    expect(cli(['snapshots'], env).stdout).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+00:00/);
  });

  it("the restore summary's counts agree with the plan's lines, and the plan says what it counts", () => {
    const r = cli(['restore', 'latest', src, '--dry-run'], env);
    expect(r.code, r.stderr).toBe(0);
    const line = (k: string) => Number(new RegExp(`^  ${k.replace(/[()]/g, '\\$&')} +(\\d+)`, 'm').exec(r.stdout)?.[1]);
    // Everything is in place: 2001 files skipped; the 21 directories (and the source's
    // ancestors) on a line of their own, not in the files' count.
    expect(line('skip-present')).toBe(2001);
    expect(line('skip-present (dirs)')).toBeGreaterThanOrEqual(21);
    expect(r.stdout).toMatch(/would restore 0 files \(0 B written\), 0 dirs created, 0 metadata fixed, 2001 files skipped/);
    expect(r.stdout).toMatch(/entries per action: directories only on the "mkdir" and "\(dirs\)" lines/);
  });

  it('progress without a terminal: a plain line with totals, percentage and ETA at each interval', () => {
    for (let d = 0; d < 20; d++) for (let f = 0; f < 100; f++) write(`${src}/d${d}/a-file-with-a-long-name-${f}.txt`, `v3 ${d}/${f}\n`);
    write(`${src}/big.bin`, randomBytes(3 * 1024 * 1024));
    // 3 MB at 2 MB/s: long enough for lines every 100 ms; the estimate comes from the previous snapshot.
    const r = cli(['snapshot', src, '--limit-read', '2'], { ...env, SNAPFILL_PROGRESS_INTERVAL_MS: '100' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).toMatch(
      /^\d+\/2001 files \(\d+\.\d%\), [\d.]+ [KMG]?i?B read, \d+ files\/s, [\d.]+ [KMG]?i?B\/s, ETA (\d+s|--|\d+m\d\ds), /m,
    );
    // The summary in binary units.
    expect(r.stdout).toMatch(/read 3\.\d MiB, added [\d.]+ [KM]iB to the repository/);
    // Without the variable, nothing in a run this short (one line every 10 s).
    const quiet = cli(['snapshot', src], env);
    expect(quiet.stderr).toBe('');
  });

  it('Ctrl-C says what was done and that a re-run finishes the job, and exits 130', async () => {
    write(`${src}/big.bin`, randomBytes(3 * 1024 * 1024));
    const r = await interruptWhen(['snapshot', src, '--limit-read', '0.5'], { ...env, SNAPFILL_PROGRESS_INTERVAL_MS: '50' }, /files/);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stderr).toMatch(/interrupted: \d+ files looked at, .* read; no snapshot was saved .*Run the same command again to take it\./);
    const again = cli(['--json', 'snapshot', src], env);
    expect(again.code, again.stderr).toBe(0);
  });

  it('S3 retries are visible: "retry N/M in T s: ECONNREFUSED"', async () => {
    const port = await closedPort();
    const r = cli(['--repo', 's3://snapfill-test/x', '--s3-endpoint', `http://127.0.0.1:${port}`, 'snapshots'], {
      ...env,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      SNAPFILL_S3_RETRIES: '3',
      SNAPFILL_S3_RETRY_BASE_MS: '10',
      SNAPFILL_S3_RETRY_MAX_MS: '20',
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^s3: retry 1\/2 in 0\.0 s: ECONNREFUSED \(/m);
    expect(r.stderr).toMatch(/^s3: retry 2\/2 in 0\.0 s: ECONNREFUSED \(/m);
    // --quiet keeps them out.
    expect(
      cli(['-q', '--repo', 's3://snapfill-test/x', '--s3-endpoint', `http://127.0.0.1:${port}`, 'snapshots'], {
        ...env,
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        SNAPFILL_S3_RETRIES: '2',
        SNAPFILL_S3_RETRY_BASE_MS: '10',
      }).stderr,
    ).not.toMatch(/retry/);
  });
});

describe('progress text', () => {
  it('formats totals, percentage and ETA, and never claims more than 100%', async () => {
    const { formatProgress, restoreProgressLine, interruptedRestore } = await import(path.join(ROOT, 'dist/cli/progress.js'));
    expect(formatProgress({ files: 250, totalFiles: 1000, bytes: 5 * 1048576, bytesVerb: 'read', elapsedS: 10 })).toBe(
      '250/1000 files (25.0%), 5.0 MiB read, 25 files/s, 512.0 KiB/s, ETA 30s',
    );
    // The tree grew past the estimate: no total, no ETA.
    expect(formatProgress({ files: 1200, totalFiles: 1000, bytes: 0, bytesVerb: 'read', elapsedS: 10 })).toBe(
      '1200 files, 0 B read, 120 files/s, 0 B/s, ETA --',
    );
    const p = { phase: 'content', entries: 10, files: 5, bytes: 1024 * 1024, plannedFiles: 20, plannedBytes: 4 * 1024 * 1024 };
    expect(restoreProgressLine(p, 60)).toBe('content: 5/20 files (25.0%), 1.0 MiB/4.0 MiB written, 0 files/s, 17.1 KiB/s, ETA 3m00s');
    expect(interruptedRestore(p)).toBe(
      '5 of 20 files restored (1.0 MiB written). Run the same command again to finish the job: what is already in place is skipped.',
    );
  });
});

describe('version, completion, man page', () => {
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;

  it('snapfill version and --version', () => {
    expect(cli(['version']).stdout).toMatch(new RegExp(`^snapfill ${version.replace(/\./g, '\\.')} \\(node \\d+\\.\\d+\\.\\d+, linux/`));
    expect(cli(['--version']).stdout.trim()).toBe(version);
    expect(cli(['--json', 'version']).json.version).toBe(version);
  });

  it('completion bash: generated from the commands, valid bash, completes commands and flags', () => {
    const script = cli(['completion', 'bash']).stdout;
    expect(script).toMatch(/complete .*-F _snapfill_complete snapfill/);
    const file = path.join(tmpDir(), 'snapfill.bash');
    fs.writeFileSync(file, script);
    const complete = (line: string) => {
      const words = line.split(' ');
      const r = spawnSync(
        'bash',
        [
          '-c',
          `source ${file}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _snapfill_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim().split('\n');
    };
    expect(complete('snapfill res')).toEqual(['restore']);
    expect(complete('snapfill --repo /srv/b ver')).toEqual(['verify', 'version']);
    expect(complete('snapfill ls --hu')).toEqual(['--human-readable']);
    expect(complete('snapfill restore latest --dry')).toEqual(['--dry-run']);
    expect(complete('snapfill schedule ')).toEqual(['install', 'remove', 'show']);
    expect(complete('snapfill -q schedule sh')).toEqual(['show']);
    const zsh = cli(['completion', 'zsh']);
    expect(zsh.stdout).toMatch(/^#compdef snapfill/);
    expect(zsh.stdout).toMatch(/'restore:put back from a snapshot/);
    expect(cli(['completion', 'fish']).stderr).toMatch(/expected bash or zsh/);
  });

  it('a run loads only the command it names: global options and their values before it, help and typos still see every command', () => {
    const env = repoEnv(tmpDir());
    const pw = env.SNAPFILL_PASSWORD_FILE;
    const repo = env.SNAPFILL_REPO;
    const bare = { SNAPFILL_CACHE: env.SNAPFILL_CACHE, SNAPFILL_INSECURE_TEST_KDF: '1' };
    expect(cli(['--password-file', pw, '-r', repo, '-q', 'init'], bare).code).toBe(0);
    // Values that are themselves command names must not be taken for the command.
    for (const args of [
      ['-r', repo, '--password-file', pw, '--json', 'snapshots'],
      [`--repo=${repo}`, `--password-file=${pw}`, '--json', 'snapshots'],
      ['--catalog', 'restore', '-r', repo, '--password-file', pw, '--json', 'snapshots'],
    ]) {
      const r = cli(args, bare, { cwd: tmpDir() });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json, r.stdout).not.toBeNull();
    }
    expect(cli(['-r', repo, 'backup', '--help']).stdout).toMatch(/^Usage: snapfill snapshot\|backup/);
    expect(cli(['doctor', '--help']).stdout).toMatch(/^Usage: snapfill doctor/);
    const help = cli(['--help']).stdout;
    for (const c of ['init', 'snapshot', 'restore', 'verify', 'serve', 'copy']) expect(help).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    expect(cli(['help', 'verify']).stdout).toMatch(/^Usage: snapfill verify/);
    const typo = cli(['-r', repo, 'restor']);
    expect(typo.code).not.toBe(0);
    expect(typo.stderr).toMatch(/unknown command 'restor'[\s\S]*restore/);
  });

  it('a man page generated from the command definitions, installed with the package', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.man).toEqual(['./docs/snapfill.1']);
    const generated = spawnSync(process.execPath, [path.join(ROOT, 'scripts/man.mjs'), '--stdout'], { encoding: 'utf8' }).stdout;
    // `npm run build` (and so `npm test` and `prepare`) writes it: the installed page is the current one.
    expect(fs.readFileSync(path.join(ROOT, 'docs/snapfill.1'), 'utf8')).toBe(generated);
    expect(generated).toMatch(/^\.TH SNAPFILL 1 "" "snapfill \d/m);
    for (const c of ['snapshot', 'restore', 'verify', 'ls', 'version', 'completion'])
      expect(generated).toMatch(new RegExp(`^\\.SS snapfill ${c}\\b`, 'm'));
    expect(generated).toMatch(/^\.B \\-h, \\-\\-human\\-readable$/m);
    if (requireSystem('groff-base', () => spawnSync('groff', ['--version']).status === 0)) {
      const r = spawnSync('groff', ['-man', '-Tascii', '-P-cbou', '-ww', path.join(ROOT, 'docs/snapfill.1')], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^ +snapfill restore \[options\] snap \[path\.\.\.\]$/m);
      expect(r.stdout).toMatch(/^ +-h, --human-readable$/m);
    }
  });
});

describe('tests that need a system package', () => {
  it('fail in CI naming the package, and skip with the same reason elsewhere', () => {
    const saved = process.env.CI;
    try {
      process.env.CI = 'true';
      expect(() => requireSystem('libfuse2', false)).toThrow('missing system package libfuse2 (apt-get install libfuse2)');
      expect(requireSystem('rsync', () => true)).toBe(true);
      process.env.CI = '';
      expect(requireSystem('libfuse2', () => false)).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });

  it('every skip in test/ goes through requireSystem (or is about root, not a package)', () => {
    const dir = path.join(ROOT, 'test');
    const offenders: string[] = [];
    for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
      if (!f.endsWith('.ts') || f === 'helpers.ts' || f === 'cli-output.test.ts') continue;
      fs.readFileSync(path.join(dir, f), 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const skip = /\.skipIf\(|\bit\.skip\b|describe\.skip\b|skipping|skipped:/.test(line);
          if (skip && !/requireSystem|IS_ROOT|\broot\b|not Linux|fuseOk|skipIf\(skip\)|hasGnuTar/.test(line))
            offenders.push(`${f}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(offenders).toEqual([]);
  });
});
