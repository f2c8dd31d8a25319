// A real s3rver process on 127.0.0.1 for the benches (the tests have their own in
// test/support/s3server.ts). One bucket; `logFile`, when given, receives its request log and any
// crash output (a dead server explains failed rounds); otherwise the output is drained.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export async function startS3rver(dir, bucket, { logFile = null } = {}) {
  fs.mkdirSync(dir, { recursive: true });
  const bin = path.join(ROOT, 'node_modules', 's3rver', 'bin', 's3rver.js');
  // DES (s3rver's list continuation tokens) is in OpenSSL 3's legacy provider only.
  const args = ['--openssl-legacy-provider', bin, '-d', dir, '-a', '127.0.0.1', '-p', '0', '--no-vhost-buckets', '-s'];
  const child = spawn(process.execPath, [...args, '--configure-bucket', bucket], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const port = await new Promise((resolve, reject) => {
    const on = (c) => {
      out += c;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (c) => reject(new Error(`s3rver exited ${c}: ${out}`)));
  });
  if (logFile) {
    const log = fs.createWriteStream(logFile);
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    child.once('exit', (code, signal) => process.stderr.write(`s3rver exited (${signal ?? code}); its log: ${logFile}\n`));
  } else {
    child.stdout.resume();
    child.stderr.resume();
  }
  process.once('exit', () => child.kill('SIGKILL'));
  const stop = () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.kill('SIGTERM'))));
  return { port, stop };
}
