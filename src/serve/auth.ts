/**
 * Who may use the console. One secret, the token: random, made at the first start, kept 0600
 * in the cache directory, printed once. A login exchanges it for a session cookie (HttpOnly,
 * SameSite=Strict, Secure under TLS); every state-changing request also carries the session's
 * CSRF token in a header, which a cross-site page can neither read nor send without a CORS
 * preflight this server never answers. Host and Origin are checked too (DNS rebinding, old
 * browsers). Comparisons of secrets are constant-time.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './validate.js';

export const COOKIE = 'snapfill_session';
/** A session unused this long is gone: a forgotten browser tab does not stay a root shell. */
const IDLE_MS = 8 * 3600_000;
const MAX_SESSIONS = 64;

export interface TokenInfo {
  token: string;
  file: string;
  /** True when this start created it (then, and only then, it is printed). */
  created: boolean;
}

/**
 * Reads the token file, or creates it (O_EXCL, 0600). A token file others can read, or that
 * another user owns, is refused: the token is as good as root on this machine.
 */
export function loadOrCreateToken(file: string): TokenInfo {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  try {
    const token = randomBytes(32).toString('base64url');
    const fd = fs.openSync(file, 'wx', 0o600);
    try {
      fs.writeSync(fd, token + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return { token, file, created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = fs.lstatSync(file);
  if (!st.isFile()) throw new Error(`console token ${file} is not a regular file; remove it and start again`);
  if ((st.mode & 0o077) !== 0)
    throw new Error(
      `console token ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); remove it to get a new one, or chmod 600 it`,
    );
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new Error(`console token ${file} belongs to uid ${st.uid}, not to this user (${uid})`);
  const token = fs.readFileSync(file, 'utf8').trim();
  if (token.length < 32) throw new Error(`console token ${file} is too short; remove it to get a new one`);
  return { token, file, created: false };
}

/** Constant-time equality of two secrets of any length (both hashed first, so lengths leak nothing). */
export function secretEquals(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
}

export interface ConsoleSession {
  id: string;
  csrf: string;
  /** A short, non-secret name for logs: a hash of the id. */
  label: string;
  peer: string;
  created: number;
  lastSeen: number;
}

export class Sessions {
  private readonly byId = new Map<string, ConsoleSession>();

  create(peer: string, now = Date.now()): ConsoleSession {
    this.expire(now);
    if (this.byId.size >= MAX_SESSIONS) {
      // The least recently used one goes: a login loop cannot grow memory without bound.
      const oldest = [...this.byId.values()].sort((a, b) => a.lastSeen - b.lastSeen)[0];
      this.byId.delete(oldest.id);
    }
    const id = randomBytes(32).toString('base64url');
    const s: ConsoleSession = {
      id,
      csrf: randomBytes(32).toString('base64url'),
      label: 'session-' + createHash('sha256').update(id).digest('hex').slice(0, 10),
      peer,
      created: now,
      lastSeen: now,
    };
    this.byId.set(id, s);
    return s;
  }

  /** The session a request's cookie names, or null. Lookup by map key, then a constant-time recheck. */
  find(req: IncomingMessage, now = Date.now()): ConsoleSession | null {
    const id = cookies(req)[COOKIE];
    if (!id) return null;
    const s = this.byId.get(id);
    if (!s || !secretEquals(s.id, id)) return null;
    if (now - s.lastSeen > IDLE_MS) {
      this.byId.delete(id);
      return null;
    }
    s.lastSeen = now;
    return s;
  }

  remove(s: ConsoleSession): void {
    this.byId.delete(s.id);
  }

  private expire(now: number): void {
    for (const [id, s] of this.byId) if (now - s.lastSeen > IDLE_MS) this.byId.delete(id);
  }
}

export function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    if (k && !(k in out)) out[k] = part.slice(i + 1).trim();
  }
  return out;
}

export function sessionCookie(s: ConsoleSession, tls: boolean): string {
  return `${COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Strict${tls ? '; Secure' : ''}`;
}

export function clearedCookie(tls: boolean): string {
  return `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${tls ? '; Secure' : ''}`;
}

/**
 * The Host header must name this server (a page on evil.example that resolves its own name to
 * 127.0.0.1 — DNS rebinding — would otherwise be "same origin" with the console).
 */
export function checkHost(req: IncomingMessage, allowed: Set<string>): string {
  const host = (req.headers.host ?? '').toLowerCase();
  if (!allowed.has(host)) throw new HttpError(421, `Host "${host}" is not this console (allowed: ${[...allowed].join(', ')})`);
  return host;
}

/**
 * A state-changing request must come from the console's own page: an Origin header, when the
 * browser sends one, must be this origin; else Sec-Fetch-Site, when sent, must say same-origin.
 * Clients that send neither (curl, scripts) are not browsers and cannot be forged cross-site;
 * they still need the session cookie and the CSRF header.
 */
export function checkOrigin(req: IncomingMessage, origin: string): void {
  const o = req.headers.origin;
  if (o !== undefined) {
    if (o !== origin) throw new HttpError(403, `cross-site request refused (Origin ${o})`);
    return;
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new HttpError(403, `cross-site request refused (Sec-Fetch-Site ${String(site)})`);
}

export function checkCsrf(req: IncomingMessage, s: ConsoleSession): void {
  const h = req.headers['x-csrf-token'];
  if (typeof h !== 'string' || !secretEquals(h, s.csrf)) throw new HttpError(403, 'missing or wrong CSRF token (reload the page)');
}

/** Failed logins: past LIMIT in a minute, logins wait (the token is 256 bits; this keeps the log readable and the CPU free). */
export class LoginThrottle {
  private failures: number[] = [];
  private static readonly LIMIT = 10;

  check(now = Date.now()): void {
    this.failures = this.failures.filter((t) => now - t < 60_000);
    if (this.failures.length >= LoginThrottle.LIMIT) throw new HttpError(429, 'too many failed logins; wait a minute');
  }

  fail(now = Date.now()): void {
    this.failures.push(now);
  }
}
