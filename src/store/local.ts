import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ObjectExistsError, ObjectNotFoundError, type ObjectInfo, type ObjectStore, type PutOptions } from './store.js';

/**
 * Test hook for the crash-safety tests (test/crash.test.ts): a pause between writing an
 * object's temp file and renaming it into place, so a SIGKILL can land between any two writes
 * of an operation. Zero (off) unless SNAPFILL_TEST_PUT_DELAY_MS is set.
 */
const TEST_PUT_DELAY_MS = Number(process.env.SNAPFILL_TEST_PUT_DELAY_MS ?? 0) || 0;

/**
 * A repository in a local directory. Every put is temp file + fsync + rename + directory
 * fsync, so a crash leaves either the old state or the whole new object, never a torn one.
 */
export class LocalStore implements ObjectStore {
  readonly location: string;

  constructor(private readonly root: string) {
    this.location = path.resolve(root);
  }

  localPath(key: string): string {
    return this.file(key);
  }

  private file(key: string): string {
    if (key.includes('..') || key.startsWith('/')) throw new Error(`invalid object key: ${key}`);
    return path.join(this.location, key);
  }

  async put(key: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    const dest = this.file(key);
    const dir = path.dirname(dest);
    fs.mkdirSync(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      let off = 0;
      while (off < data.length) off += fs.writeSync(fd, data, off, data.length - off);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (TEST_PUT_DELAY_MS) await new Promise((r) => setTimeout(r, TEST_PUT_DELAY_MS));
    try {
      if (opts.ifAbsent) {
        // link() fails when the name exists, which makes it an atomic create-if-absent.
        try {
          fs.linkSync(tmp, dest);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ObjectExistsError(key);
          throw e;
        }
        fs.unlinkSync(tmp);
      } else {
        fs.renameSync(tmp, dest);
      }
    } catch (e) {
      try { fs.unlinkSync(tmp); } catch { /* already gone */ }
      throw e;
    }
    fsyncDir(dir);
  }

  async get(key: string): Promise<Buffer> {
    try {
      return fs.readFileSync(this.file(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(key);
      throw e;
    }
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    let fd: number;
    try {
      fd = fs.openSync(this.file(key), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ObjectNotFoundError(key);
      throw e;
    }
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const n = fs.readSync(fd, buf, got, length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      if (got < length) throw new Error(`short read in ${key}: wanted ${length} bytes at ${offset}, got ${got}`);
      return buf;
    } finally {
      fs.closeSync(fd);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the directory that can hold the prefix.
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    yield* this.walk(baseKey, prefix);
  }

  private async *walk(dirKey: string, prefix: string): AsyncIterable<ObjectInfo> {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(dirKey ? this.file(dirKey) : this.location, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of names) {
      if (d.name.startsWith('.tmp-')) continue;
      const key = dirKey ? `${dirKey}/${d.name}` : d.name;
      if (d.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(key + '/')) yield* this.walk(key, prefix);
      } else if (key.startsWith(prefix)) {
        let size = 0;
        try { size = fs.statSync(this.file(key)).size; } catch { continue; }
        yield { key, size };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      fs.unlinkSync(this.file(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    try {
      return { key, size: fs.statSync(this.file(key)).size };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
