/**
 * Raw paths: file names on Linux are byte strings, not UTF-8. snapfill keeps every path as a
 * JS string in which each char code is one byte (latin1 "binary" form). That keeps names with
 * invalid UTF-8 intact end to end, sorts in byte order, and survives JSON and SQLite BLOBs.
 * Convert at the edges: `toFs` before a syscall, `display` before showing a human,
 * `fromUser` for paths typed on the command line.
 */
export type RawPath = string;

export function toFs(p: RawPath): Buffer {
  return Buffer.from(p, 'latin1');
}

export function fromFs(b: Buffer): RawPath {
  return b.toString('latin1');
}

export function fromUser(p: string): RawPath {
  return Buffer.from(p, 'utf8').toString('latin1');
}

/** A human-readable rendering; invalid UTF-8 bytes become U+FFFD. */
export function display(p: RawPath): string {
  return Buffer.from(p, 'latin1').toString('utf8');
}

export function toBlob(p: RawPath): Buffer {
  return Buffer.from(p, 'latin1');
}

export function fromBlob(b: Buffer | Uint8Array): RawPath {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export function join(dir: RawPath, name: RawPath): RawPath {
  if (dir === '/') return '/' + name;
  return dir + '/' + name;
}

export function dirname(p: RawPath): RawPath {
  const i = p.lastIndexOf('/');
  if (i <= 0) return '/';
  return p.slice(0, i);
}

export function basename(p: RawPath): RawPath {
  const i = p.lastIndexOf('/');
  return p.slice(i + 1);
}

/** Normalizes an absolute path: collapses `//`, `.`, and resolves `..` lexically. */
export function normalizeAbs(p: RawPath): RawPath {
  if (!p.startsWith('/')) throw new Error(`not an absolute path: ${display(p)}`);
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return '/' + out.join('/');
}

/** True when `p` is `root` or lies below it. */
export function isUnder(p: RawPath, root: RawPath): boolean {
  if (root === '/') return p.startsWith('/');
  return p === root || p.startsWith(root + '/');
}

/** The exclusive upper bound of the byte range holding every path strictly below `dir`. */
export function subtreeRange(dir: RawPath): [RawPath, RawPath] {
  const prefix = dir === '/' ? '/' : dir + '/';
  // '/' is 0x2f; '0' (0x30) is the next byte, so [prefix, prefix-with-last-byte+1) covers the subtree.
  return [prefix, prefix.slice(0, -1) + '0'];
}

/** A safe single path component: refuses what could escape a directory. */
export function isSafeName(name: RawPath): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/** Splits an absolute path into its components. */
export function components(p: RawPath): RawPath[] {
  return p.split('/').filter((x) => x !== '');
}
