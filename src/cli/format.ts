import { display, type VersionRow } from '../api/index.js';

const TYPE_CHAR: Record<string, string> = {
  file: '-',
  hardlink: '-',
  dir: 'd',
  symlink: 'l',
  fifo: 'p',
  chardev: 'c',
  blockdev: 'b',
  socket: 's',
};

export function modeString(type: string, mode: number): string {
  const rwx = (bits: number, special: boolean, ch: string) =>
    `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-'}`;
  return (
    TYPE_CHAR[type] +
    rwx(mode >> 6, (mode & 0o4000) !== 0, 's') +
    rwx(mode >> 3, (mode & 0o2000) !== 0, 's') +
    rwx(mode, (mode & 0o1000) !== 0, 't')
  );
}

export function timeString(ns: bigint): string {
  return new Date(Number(ns / 1000000n)).toISOString().replace('T', ' ').slice(0, 19);
}

/** A `ls -l`-like line. */
export function longLine(v: VersionRow, name = display(v.path)): string {
  const owner = (v.user || String(v.uid)).padEnd(9);
  const group = (v.group || String(v.gid)).padEnd(9);
  let line = `${modeString(v.type, v.mode)} ${String(v.nlink).padStart(3)} ${owner}${group}${String(v.size).padStart(12)} ${timeString(v.mtime)} ${name}`;
  if (v.type === 'symlink' && v.target !== null) line += ` -> ${display(v.target)}`;
  if (v.type === 'hardlink' && v.target !== null) line += ` => ${display(v.target)}`;
  return line;
}

export function entryJson(v: VersionRow): Record<string, unknown> {
  return {
    path: display(v.path),
    type: v.type,
    mode: v.mode,
    mode_string: modeString(v.type, v.mode),
    uid: v.uid,
    gid: v.gid,
    user: v.user,
    group: v.group,
    size: v.size,
    mtime: timeString(v.mtime),
    mtime_ns: v.mtime.toString(),
    nlink: v.nlink,
    target: v.target === null ? null : display(v.target),
    fingerprint: v.fp,
  };
}
