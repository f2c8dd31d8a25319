import { join, type RawPath } from './rawpath.js';

/**
 * Entry names from a tree blob are untrusted: a snapshot may come from another host, a damaged
 * repository or an attacker. A name becomes a path by `join(dir, name)`, so a name holding "/"
 * or ".." would move the entry elsewhere (`a/b`, `../../etc/x`), and NUL truncates names in
 * syscalls and tar headers. readdir(2) never returns such names: the snapshot writer cannot
 * produce them, so any we meet is damage or a crafted tree, and is refused, never repaired.
 */
export function nameProblem(name: RawPath): string | null {
  if (name === '') return 'is empty';
  if (name === '.' || name === '..') return `is "${name}"`;
  if (name.includes('/')) return 'contains "/"';
  if (name.includes('\0')) return 'contains a NUL byte';
  return null;
}

/**
 * A printable, unambiguous rendering of a raw name: double-quoted, with `"`, `\` and control
 * bytes escaped (\xNN). Bytes >= 0x80 are kept (display() shows them as UTF-8).
 */
export function quoteName(name: RawPath): string {
  let out = '"';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += '\\' + name[i];
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += name[i];
  }
  return out + '"';
}

/**
 * Where a refused entry is reported: its directory plus the quoted name. The quotes keep it from
 * reading as a real path (`/data/"a/b"`, not `/data/a/b`), and it still sorts inside the
 * directory's subtree, so damage queries by path range find it.
 */
export function refusedPath(dir: RawPath, name: RawPath): RawPath {
  return join(dir, quoteName(name));
}
