import * as fs from 'node:fs';
import * as path from 'node:path';

export class LockBusyError extends Error {
  constructor(
    readonly file: string,
    readonly pid: number,
    readonly what: string,
  ) {
    super(`${what} is locked by running process ${pid} (${file})`);
    this.name = 'LockBusyError';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A local exclusive lock: a file created with O_EXCL holding our pid. A lock whose process
 * is dead is stale and is taken over (safely: removal is re-checked by a rename race).
 */
export function acquirePidLock(file: string, what: string): () => void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx', 0o644);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        process.removeListener('exit', release); // long-lived library users take many locks
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
        } catch {
          /* already gone */
        }
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid: number;
    try {
      pid = Number(fs.readFileSync(file, 'utf8').trim());
    } catch {
      continue;
    }
    if (pid && alive(pid) && pid !== process.pid) throw new LockBusyError(file, pid, what);
    // Stale: move it aside atomically so two takers cannot both remove a fresh lock.
    const aside = `${file}.stale-${process.pid}`;
    try {
      fs.renameSync(file, aside);
      const again = Number(fs.readFileSync(aside, 'utf8').trim());
      if (again !== pid && alive(again)) {
        fs.renameSync(aside, file);
        throw new LockBusyError(file, again, what);
      }
      fs.unlinkSync(aside);
    } catch (e) {
      if (e instanceof LockBusyError) throw e;
    }
  }
  throw new Error(`could not acquire lock ${file}`);
}
