import { display } from '../api/common.js';
import type { VersionRow } from '../api/index.js';
import { humanBytes } from './output.js';

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

/** A nanosecond mtime in UTC without a zone: the `--json` field, unchanged for scripts. */
export function timeString(ns: bigint): string {
  return new Date(Number(ns / 1000000n)).toISOString().replace('T', ' ').slice(0, 19);
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/**
 * A time as a person reads it: the local time (TZ) with its UTC offset, so a log read on
 * another machine or by a colleague elsewhere is not off by hours: "2026-11-30 19:03:01 +00:00".
 */
export function humanTime(t: Date | string | bigint): string {
  const d = typeof t === 'bigint' ? new Date(Number(t / 1000000n)) : typeof t === 'string' ? new Date(t) : t;
  if (Number.isNaN(d.getTime())) return String(t);
  const offset = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 19).replace('T', ' ');
  const abs = Math.abs(offset);
  return `${local} ${offset < 0 ? '-' : '+'}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
}

/**
 * The restore plan's lines, one per action, with a header saying what they count: entries,
 * with directories on lines of their own ("mkdir", "skip-present (dirs)"), so the file lines
 * add up to the summary's files restored / skipped.
 */
export function planLines(planned: Record<string, { count: number; bytes: number }>): string[] {
  const lines = ['  (entries per action: directories only on the "mkdir" and "(dirs)" lines; "metadata" counts both)'];
  for (const [k, v] of Object.entries(planned).sort())
    lines.push(`  ${k.padEnd(22)} ${String(v.count).padStart(9)}${v.bytes ? '  ' + humanBytes(v.bytes) : ''}`);
  return lines;
}

/** A `ls -l`-like line; `human`: sizes as KiB/MiB/GiB (`ls -lh`). */
export function longLine(v: VersionRow, name = display(v.path), human = false): string {
  const owner = (v.user || String(v.uid)).padEnd(9);
  const group = (v.group || String(v.gid)).padEnd(9);
  const size = human ? humanBytes(v.size) : String(v.size);
  let line = `${modeString(v.type, v.mode)} ${String(v.nlink).padStart(3)} ${owner}${group}${size.padStart(12)} ${humanTime(v.mtime)} ${name}`;
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
