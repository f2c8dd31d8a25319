import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { ObjectExistsError, ObjectNotFoundError, type ListOptions, type ObjectInfo, type ObjectStore, type PutOptions } from './store.js';

/**
 * A repository in a local directory. Every put is temp file + fsync + rename + directory
 * fsync, so a crash leaves either the old state or the whole new object, never a torn one.
 */
export class LocalStore implements ObjectStore {
  readonly location: string;
  /** A pack is written while the next fills: a second one in flight only held 17 MiB more (issue 17). */
  readonly putsInFlight = 1;

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

  /**
   * Every call here is asynchronous (libuv's thread pool): writing a 16 MiB pack and its fsync
   * used to block the snapshot's main thread, ~1.3 s of a 200k-file snapshot on tmpfs (issue 17),
   * far more on a disk. The caller keeps `data` unchanged until the promise settles.
   */
  async put(key: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    const dest = this.file(key);
    const dir = path.dirname(dest);
    await fsp.mkdir(dir, { recursive: true });
    const tmp = path.join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    const fh = await fsp.open(tmp, 'wx', 0o600);
    // Every failure from here on (ENOSPC from write, fsync or close; EEXIST; ...) removes the
    // temp file: on a full disk it is the biggest thing to free, and nothing else would.
    try {
      try {
        let off = 0;
        while (off < data.length) off += (await fh.write(data, off, data.length - off)).bytesWritten;
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (opts.ifAbsent) {
        // link() fails when the name exists, which makes it an atomic create-if-absent.
        try {
          await fsp.link(tmp, dest);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ObjectExistsError(key);
          throw e;
        }
        await fsp.unlink(tmp);
      } else {
        await fsp.rename(tmp, dest);
      }
    } catch (e) {
      await fsp.unlink(tmp).catch(() => {}); // already gone
      throw e;
    }
    await fsyncDir(dir);
  }

  async listStaleTemps(): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const now = Date.now();
    const walk = (dirKey: string) => {
      const names = this.dirents(dirKey);
      for (const d of names) {
        const key = dirKey ? `${dirKey}/${d.name}` : d.name;
        if (d.isDirectory()) walk(key);
        else if (d.isFile() && d.name.startsWith('.tmp-')) {
          let st: fs.Stats;
          try {
            st = fs.lstatSync(this.file(key));
          } catch {
            continue;
          } // renamed or removed meanwhile
          if (tempIsStale(d.name, st.mtimeMs, now)) out.push({ key, size: st.size });
        }
      }
    };
    walk('');
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  async removeStaleTemps(): Promise<ObjectInfo[]> {
    const gone = await this.listStaleTemps();
    for (const t of gone) await this.delete(t.key);
    return gone;
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

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectInfo> {
    // Walk only the directory that can hold the prefix.
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash) : '';
    yield* this.walk(baseKey, prefix, opts.shallow === true, opts.startAfter ?? '');
  }

  /** The entries of a key directory; none when it does not exist (yet). */
  private dirents(dirKey: string): fs.Dirent[] {
    try {
      return fs.readdirSync(dirKey ? this.file(dirKey) : this.location, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  private async *walk(dirKey: string, prefix: string, shallow: boolean, after: string): AsyncIterable<ObjectInfo> {
    const names = this.dirents(dirKey);
    names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of names) {
      if (d.name.startsWith('.tmp-')) continue;
      const key = dirKey ? `${dirKey}/${d.name}` : d.name;
      if (d.isDirectory()) {
        // Shallow: a directory below the prefix holds only keys with a `/` after it.
        // Every key below `key/` sorts before `after` when `key/` does and `after` is not below it.
        const allBefore = key + '/' < after && !after.startsWith(key + '/');
        if (allBefore) continue;
        if ((key.startsWith(prefix) && !shallow) || prefix.startsWith(key + '/')) yield* this.walk(key, prefix, shallow, after);
      } else if (key.startsWith(prefix) && key > after) {
        let st: fs.Stats;
        try {
          st = fs.statSync(this.file(key));
        } catch {
          continue;
        }
        yield { key, size: st.size, mtime: st.mtime };
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
      const st = fs.statSync(this.file(key));
      return { key, size: st.size, mtime: st.mtime };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }
}

/**
 * Below this age a temp file is never stale: another host sharing the directory (NFS) may be
 * between its write and its rename, and its pid means nothing here. A put takes milliseconds.
 */
const TEMP_GRACE_MS = 10 * 60_000;
/** Past this age a temp file is stale whatever its pid says (another host's, or a reused pid). */
const TEMP_MAX_AGE_MS = 24 * 3600_000;

/** A temp file `.tmp-<pid>-<rand>` is stale when its writer is dead on this host, or it is very old. */
function tempIsStale(name: string, mtimeMs: number, now: number): boolean {
  const age = now - mtimeMs;
  if (age >= TEMP_MAX_AGE_MS) return true;
  if (age < TEMP_GRACE_MS) return false;
  const m = /^\.tmp-(\d+)-/.exec(name);
  if (!m) return false;
  const pid = Number(m[1]);
  if (pid === process.pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: alive, someone else's
  }
}

/** fsync of a directory (the rename in it durable), on the thread pool; a no-op where the file system refuses it. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: fsp.FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic there.
  } finally {
    await fh?.close();
  }
}
