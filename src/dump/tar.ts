import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { pack as tarPack, type Header } from 'tar-stream';

type TarHeader = Partial<Header> & Pick<Header, 'name'>;
import type { Catalog, SnapshotRow, VersionRow } from '../catalog/catalog.js';
import type { Repository } from '../repo/repository.js';
import { FileContentReader } from '../query/filecontent.js';
import { display, dirname, fromUser, type RawPath } from '../util/rawpath.js';
import { nameProblem, quoteName } from '../util/names.js';

/**
 * Why a member name must not go into the archive, or null. Extracting tars is where `..`,
 * absolute and empty names do harm (tar -x as root writes where they point), and a NUL ends
 * the name in the header. The catalog import already refuses such names; this holds for
 * catalogs imported before it did, and for whatever else might build a path.
 */
function memberProblem(rel: RawPath): string | null {
  if (rel.startsWith('/')) return 'is absolute';
  for (const part of rel.split('/')) {
    const bad = nameProblem(part);
    if (bad) return `has a component ${quoteName(part)} that ${bad}`;
  }
  return null;
}

export interface DumpResult {
  entries: number;
  files: number;
  bytes: number;
  /** Entries the archive could not carry faithfully (e.g. a file without content); the archive goes on. */
  errors: { path: string; message: string }[];
}

const TAR_TYPE: Record<string, Header['type']> = {
  dir: 'directory',
  symlink: 'symlink',
  fifo: 'fifo',
  chardev: 'character-device',
  blockdev: 'block-device',
};

/** Linux dev_t split (glibc gnu_dev_major/minor). */
function devMajor(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}
function devMinor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & 0xfff00n));
}

/**
 * Streams a snapshot subtree as a POSIX (ustar, pax for long names) tar archive: names are
 * relative to the subtree's parent (dumping /home/alice gives alice/...), as
 * `tar -C /home -cf - alice` would. Entries come from catalog.walk in path order and content
 * blob by blob, so memory stays bounded whatever the subtree's size. Hardlinks become tar
 * links to the first member of their inode inside the archive.
 *
 * Limits of the format as tar-stream writes it: mtimes in whole seconds, and names that are
 * not valid UTF-8 are written with U+FFFD in place of their invalid bytes.
 */
export async function dumpTar(
  repo: Repository,
  catalog: Catalog,
  snap: SnapshotRow,
  root: RawPath,
  out: NodeJS.WritableStream,
): Promise<DumpResult> {
  const top = root === '/' ? null : catalog.entry(snap, root);
  // What the snapshot lost or refused in this subtree (or above it): named, and the dump exits 3.
  const damage = catalog.damagedUnder(snap, root);
  if (root !== '/' && !top) {
    const why = damage.length ? ` (${display(damage[0].path)}: ${damage[0].message})` : '';
    throw new Error(`${display(root)} is not in snapshot ${snap.id.slice(0, 8)}${why}`);
  }
  const base = root === '/' ? '/' : dirname(root);
  const relRaw = (p: RawPath) => (base === '/' ? p.slice(1) : p.slice(base.length + 1));
  const pack = tarPack();
  const done = pipeline(pack, out);
  const ctx: DumpContext = {
    result: { entries: 0, files: 0, bytes: 0, errors: damage.map((d) => ({ path: display(d.path), message: d.message })) },
    reader: new FileContentReader(repo, catalog, 0),
    linkedMembers: new Map(),
    writeEntry: entryWriter(pack),
  };
  try {
    for (const v of catalog.walk(snap, root)) {
      const raw = relRaw(v.path);
      const bad = memberProblem(raw);
      if (bad) {
        ctx.result.errors.push({ path: display(v.path), message: `unsafe member name: ${bad}; refused (left out of the archive)` });
        continue;
      }
      if (fromUser(display(v.path)) !== v.path) {
        ctx.result.errors.push({
          path: display(v.path),
          message:
            'name is not valid UTF-8: written with U+FFFD in place of the invalid bytes (use restore or the mount for the exact name)',
        });
      }
      if (await dumpEntry(ctx, v, display(raw))) ctx.result.entries++;
    }
    pack.finalize();
  } catch (e) {
    pack.destroy(e as Error);
    await done.catch(() => {});
    throw e;
  }
  await done;
  return ctx.result;
}

type WriteEntry = (header: TarHeader, body?: AsyncIterable<Buffer>) => Promise<void>;

interface DumpContext {
  result: DumpResult;
  reader: FileContentReader;
  /** inode key (the first path of a hardlinked inode) -> the archive member that carries its content */
  linkedMembers: Map<RawPath, string>;
  writeEntry: WriteEntry;
}

/** Adds one member to the archive, body streamed with backpressure; resolves when the archive took it. */
function entryWriter(pack: ReturnType<typeof tarPack>): WriteEntry {
  return async (header, body) => {
    let entry!: ReturnType<typeof pack.entry>;
    const finished = new Promise<void>((resolve, reject) => {
      entry = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    });
    if (body) {
      // The entry stream pushes back when the archive's reader (stdout) is slower than the repository.
      for await (const chunk of body) if (!entry.write(chunk)) await once(entry, 'drain');
    }
    entry.end(undefined);
    await finished;
  };
}

/** Writes one catalog entry as member `name`; false when it was left out (and why is in the errors). */
async function dumpEntry(ctx: DumpContext, v: VersionRow, name: string): Promise<boolean> {
  const header: TarHeader = {
    name,
    mode: v.mode & 0o7777,
    uid: v.uid,
    gid: v.gid,
    uname: v.user,
    gname: v.group,
    mtime: new Date(Number(v.mtime / 1_000_000n)),
    size: 0,
  };
  if (v.type === 'file' || v.type === 'hardlink') return dumpFile(ctx, v, header);
  if (v.type === 'symlink') {
    if (v.target === null || v.target === '' || v.target.includes('\0')) {
      // tar would write an empty or NUL-cut target: a different link than the snapshot's.
      ctx.result.errors.push({
        path: display(v.path),
        message: 'symlink target is empty or holds a NUL byte; refused (left out of the archive)',
      });
      return false;
    }
    await ctx.writeEntry({ ...header, type: 'symlink', linkname: display(v.target ?? '') });
    return true;
  }
  if (v.type === 'socket') {
    ctx.result.errors.push({ path: display(v.path), message: 'sockets cannot be stored in tar; skipped' });
    return false;
  }
  if (v.type === 'dir') header.name += '/';
  const dev = v.type === 'chardev' || v.type === 'blockdev' ? { devmajor: devMajor(v.rdev), devminor: devMinor(v.rdev) } : {};
  await ctx.writeEntry({ ...header, type: TAR_TYPE[v.type], ...dev });
  return true;
}

/** A file: its content, or a tar link to the member that already carries its inode. */
async function dumpFile(ctx: DumpContext, v: VersionRow, header: TarHeader): Promise<boolean> {
  const key = v.type === 'hardlink' && v.target !== null ? v.target : v.nlink > 1 ? v.path : null;
  // A tar link only ever names a member already in this archive (checked above), never the
  // recorded target itself: a target outside the subtree, or a hostile one (/etc/shadow),
  // gets the entry's own content as a regular file instead.
  const first = key === null ? undefined : ctx.linkedMembers.get(key);
  if (first !== undefined) {
    await ctx.writeEntry({ ...header, type: 'link', linkname: first });
    return true;
  }
  if (v.content === null && v.size > 0) {
    // The snapshot could not read this file: say so rather than write an empty file as if it were the content.
    ctx.result.errors.push({
      path: display(v.path),
      message: 'no content in the snapshot (unreadable at snapshot time); left out of the archive',
    });
    return false;
  }
  // Later paths of this inode (and its first path, when path order put a link before it) link here.
  if (key !== null) ctx.linkedMembers.set(key, header.name);
  await ctx.writeEntry({ ...header, type: 'file', size: v.size }, ctx.reader.stream(v, display(v.path)));
  ctx.result.files++;
  ctx.result.bytes += v.size;
  return true;
}
