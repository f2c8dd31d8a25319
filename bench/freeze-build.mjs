import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';

/**
 * Copies bin/ and dist/ of the checkout at `root` to a private directory and returns its
 * executable: a benchmark runs for a long time and a `tsc` in the working tree must not swap the
 * build under it halfway. The copy is checked to load; a build caught mid-write is retried.
 */
export function freezeBuild(root, { notes = [], log = (m) => process.stderr.write(m + '\n'), retryS = 20 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'snapfill-bench-build-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (let attempt = 1; ; attempt++) {
    fs.rmSync(path.join(dir, 'dist'), { recursive: true, force: true });
    fs.cpSync(path.join(root, 'dist'), path.join(dir, 'dist'), { recursive: true });
    fs.cpSync(path.join(root, 'bin'), path.join(dir, 'bin'), { recursive: true });
    fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
    // The native addons (issue 17) load from build/Release, two levels above dist/livefs.
    const rel = path.join(root, 'build', 'Release');
    fs.mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
    if (fs.existsSync(rel))
      for (const f of fs.readdirSync(rel))
        if (f.endsWith('.node')) fs.copyFileSync(path.join(rel, f), path.join(dir, 'build', 'Release', f));
    if (!fs.existsSync(path.join(dir, 'node_modules'))) fs.symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'));
    const bin = path.join(dir, 'bin', 'snapfill');
    const r = spawnSync(process.execPath, [bin, 'restore', '--help'], { encoding: 'utf8' });
    const v = spawnSync(process.execPath, [bin, 'stats', '--help'], { encoding: 'utf8' });
    if (r.status === 0 && v.status === 0) return bin;
    if (attempt >= 6) {
      notes.push('snapfill build did not load after 6 attempts; using it as is');
      return bin;
    }
    log(`snapfill build does not load (being rebuilt?), retrying in ${retryS} s: ${(r.stderr || v.stderr).split('\n')[0]}`);
    spawnSync('sleep', [String(retryS)]);
  }
}
