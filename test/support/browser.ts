/**
 * The web console under test: a real `snapfill serve` process (startServe), plain HTTP
 * requests to it from node (request), and Debian's chromium driven headless through
 * puppeteer-core (launchBrowser). puppeteer-core never downloads a browser.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import puppeteer, { type Browser } from 'puppeteer-core';
import { BIN } from '../helpers.js';

export const CHROMIUM = process.env.SNAPFILL_TEST_CHROMIUM ?? '/usr/bin/chromium';

export function haveChromium(): boolean {
  return fs.existsSync(CHROMIUM) && spawnSync(CHROMIUM, ['--version'], { encoding: 'utf8' }).status === 0;
}

export async function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Tests run as root (CI): chromium refuses its sandbox there.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--window-size=1280,900'],
    defaultViewport: { width: 1280, height: 900 },
  });
}

export interface ServeProcess {
  url: string;
  /** The token as printed at the first start, else read from the token file. */
  token: string;
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Starts `snapfill serve --port 0 ...args` and waits for its URL line. */
export async function startServe(args: string[], env: Record<string, string>, tokenFile: string): Promise<ServeProcess> {
  const proc = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  proc.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`snapfill serve did not start: ${out}${err}`)), 30_000);
    const look = () => {
      const m = /snapfill console: (https?:\/\/\S+)/.exec(out);
      if (m && /login token/.test(out)) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout!.on('data', look);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`snapfill serve exited (${code}): ${out}${err}`));
    });
  });
  const printed = /login token \(shown this once[^\n]*\n\s+(\S+)/.exec(out);
  const token = printed ? printed[1] : fs.readFileSync(tokenFile, 'utf8').trim();
  return {
    url,
    token,
    proc,
    stdout: () => out,
    stderr: () => err,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
}

/** One plain HTTP request (node's http, so no browser rule helps or hinders). */
export function request(
  url: string,
  o: { method?: string; headers?: Record<string, string>; body?: string | object; cookie?: string } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.cookie) headers.Cookie = o.cookie;
    let body: string | undefined;
    if (o.body !== undefined) {
      body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      headers['Content-Type'] ??= 'application/json';
    }
    const req = http.request(url, { method: o.method ?? (body === undefined ? 'GET' : 'POST'), headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: any = null;
        try {
          json = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text, json });
      });
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Logs in with the token; returns the cookie and CSRF token to send back. */
export async function login(base: string, token: string): Promise<{ cookie: string; csrf: string }> {
  const r = await request(base + 'api/login', { body: { token } });
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.body}`);
  const set = r.headers['set-cookie']?.[0] ?? '';
  return { cookie: set.split(';')[0], csrf: r.json.csrf };
}
