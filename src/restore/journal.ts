import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import type { RawPath } from '../util/rawpath.js';
import { SafeRoot } from '../livefs/safepath.js';
import { listDir, unlinkAt } from '../livefs/native.js';
import { TMP_PREFIX } from '../livefs/install.js';

/**
 * A restore journal: the directories a restore created (mode 0700 until the end of the run)
 * are appended to it before anything is put in them. A run killed before the end leaves it
 * behind; the next run into the same target reads it, sets those directories' metadata from
 * the snapshot and sweeps leftover temp entries. A completed run removes it.
 */
export class RestoreJournal {
  readonly dir: string;

  constructor(cacheDir: string, targetRoot: RawPath) {
    this.dir = path.join(cacheDir, 'restore-journal', createHash('sha256').update(targetRoot, 'latin1').digest('hex').slice(0, 32));
  }

  /** Directories created by interrupted runs (relative raw paths); empty when none. */
  leftovers(): RawPath[] {
    let files: string[];
    try {
      files = fs.readdirSync(this.dir);
    } catch {
      return [];
    }
    const out = new Set<RawPath>();
    for (const f of files) {
      for (const line of fs.readFileSync(path.join(this.dir, f), 'utf8').split('\n')) {
        if (line) out.add(Buffer.from(line, 'base64').toString('latin1'));
      }
    }
    return [...out];
  }

  hadInterruptedRun(): boolean {
    try {
      return fs.readdirSync(this.dir).length > 0;
    } catch {
      return false;
    }
  }

  private fd: number | null = null;

  open(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  /** Records a directory this (main) thread is about to create. */
  append(rel: RawPath): void {
    this.fd ??= fs.openSync(path.join(this.dir, `main-${process.pid}.log`), 'a', 0o600);
    fs.writeSync(this.fd, Buffer.from(rel, 'latin1').toString('base64') + '\n');
  }

  finish(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Removes temp entries left by a killed run below `rel` (never following symlinks). Returns how many. */
export function sweepTemps(root: SafeRoot, rel: RawPath): number {
  let fd: number | null;
  try {
    fd = root.dirFd(rel, false);
  } catch {
    return 0;
  }
  if (fd === null) return 0;
  let n = 0;
  let entries: ReturnType<typeof listDir>;
  try {
    entries = listDir(fd);
  } catch {
    return 0;
  }
  for (const { name, mode, err } of entries) {
    if (err !== 0) continue;
    const isDir = (mode & 0o170000) === 0o040000;
    if (name.startsWith(TMP_PREFIX) && !isDir) {
      // Asked again: the recursion below may have evicted (and closed) the cached fd.
      const cur = root.dirFd(rel, false);
      if (cur !== null && unlinkAt(cur, name) === 0) n++;
    } else if (isDir) {
      n += sweepTemps(root, rel === '' ? name : `${rel}/${name}`);
    }
  }
  return n;
}
