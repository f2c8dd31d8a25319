/**
 * Input from the page is never trusted: every parameter is checked here before it reaches the
 * library API, which applies the same path and scope rules as the CLI on top. A path with a
 * `.` or `..` component is refused outright rather than normalized: nothing a person clicks
 * produces one, so one in a request is an attack or a bug, and either is worth a 400.
 */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export function bad(message: string): HttpError {
  return new HttpError(400, message);
}

/** `//`, a `.` or `..` component, or a trailing `/` (control characters are checked apart). */
const UNSAFE_PATH = /\/\/|\/\.\.?(\/|$)|\/$/;

function hasControl(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
const MAX_PATH = 4096;

/** An absolute snapshot path as the page sends it. */
export function snapshotPath(v: unknown, what = 'path'): string {
  if (typeof v !== 'string' || !v) throw bad(`${what}: missing`);
  if (v.length > MAX_PATH) throw bad(`${what}: too long`);
  if (!v.startsWith('/')) throw bad(`${what}: must be an absolute path inside the snapshot`);
  if (hasControl(v) || (v !== '/' && UNSAFE_PATH.test(v)))
    throw bad(`${what}: refused (".", ".." components, "//", control characters and a trailing "/" are not allowed)`);
  return v;
}

/** `latest`, a snapshot id or an id prefix (the API resolves it; this only keeps junk out). */
export function snapshotRef(v: unknown, what = 'snapshot'): string {
  if (typeof v !== 'string' || !/^(latest|[0-9a-f]{1,64})$/.test(v)) throw bad(`${what}: expected "latest" or a snapshot id`);
  return v;
}

const NAME = /^[A-Za-z0-9._-]{1,128}$/;

/** One path component a person names: an account, a staging directory. */
export function simpleName(v: unknown, what: string): string {
  if (typeof v !== 'string' || !NAME.test(v) || v === '.' || v === '..')
    throw bad(`${what}: expected a name of letters, digits, ".", "_" and "-" (not "." or "..")`);
  return v;
}

export function optionalHost(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !/^[A-Za-z0-9._-]{1,253}$/.test(v)) throw bad('host: not a host name');
  return v;
}

export function int(v: unknown, what: string, min: number, max: number, dflt: number): number {
  if (v === undefined || v === null || v === '') return dflt;
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw bad(`${what}: expected a whole number from ${min} to ${max}`);
  return n;
}

export function bool(v: unknown, what: string): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw bad(`${what}: expected true or false`);
  return v;
}

export const MODES = ['missing', 'changed', 'checksum', 'metadata'] as const;
export type ConsoleMode = (typeof MODES)[number];

export function restoreMode(v: unknown): ConsoleMode {
  if (v === undefined) return 'missing';
  if (typeof v !== 'string' || !(MODES as readonly string[]).includes(v)) throw bad(`mode: one of ${MODES.join(', ')}`);
  return v as ConsoleMode;
}

/** Query parameters: each may appear once (a repeated one is a smuggling attempt or a bug). */
export function queryParams(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    if (k in out) throw bad(`${k}: given twice`);
    out[k] = v;
  }
  return out;
}
