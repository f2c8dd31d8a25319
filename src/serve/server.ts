/**
 * `snapfill serve`: a small HTTP(S) server (Node's own http/https, no framework) for the web
 * console page and its JSON API. Every route is a thin adapter over src/api: it checks the
 * request (auth.ts, validate.ts), calls one library function, and shapes its answer as JSON.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  basename,
  catFile,
  check,
  consoleStateDir,
  diffSubtree,
  display,
  find,
  health,
  listAccounts,
  listPage,
  openSession,
  readAllRecords,
  refreshCatalog,
  OptionError,
  snapshotsHolding,
  type JsonLog,
  type OpenOptions,
  type Session,
  type VersionRow,
} from '../api/index.js';
import {
  checkCsrf,
  checkHost,
  checkOrigin,
  clearedCookie,
  LoginThrottle,
  loadOrCreateToken,
  secretEquals,
  sessionCookie,
  Sessions,
  type ConsoleSession,
  type TokenInfo,
} from './auth.js';
import { RestoreJobs, type RestoreRequest } from './jobs.js';
import { bad, bool, HttpError, int, optionalHost, queryParams, restoreMode, simpleName, snapshotPath, snapshotRef } from './validate.js';

export interface ServeOptions {
  session: OpenOptions;
  listen: string;
  port: number;
  /** Any address but a loopback one needs this, and TLS. */
  allowRemote?: boolean;
  /** Extra names the Host header may carry (a remote console's DNS name). */
  allowHosts?: string[];
  tlsCert?: string;
  tlsKey?: string;
  readOnly?: boolean;
  accountsRoot: string;
  stagingRoot: string;
  monitoring: { prometheusTextfile?: string; jsonLog?: string };
  log: JsonLog;
  /** Default: <cache dir>/console/token. */
  tokenFile?: string;
}

export interface RunningServer {
  url: string;
  token: TokenInfo;
  close(): Promise<void>;
}

const STATIC: Record<string, [string, string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/static/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/static/style.css': ['style.css', 'text/css; charset=utf-8'],
};

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

const MAX_BODY = 64 * 1024;
/** How old the catalog may be before a request re-syncs it with the repository. */
const REFRESH_MS = 15_000;

export function isLoopback(addr: string): boolean {
  return addr === 'localhost' || addr === '::1' || (net.isIPv4(addr) && addr.startsWith('127.'));
}

function staticDir(): string {
  return path.join(path.dirname(fileURLToPath(import.meta.url)), 'static');
}

/** Refuses a listen address that would expose the console without TLS or without being asked to. */
export function checkListen(o: Pick<ServeOptions, 'listen' | 'allowRemote' | 'tlsCert' | 'tlsKey' | 'allowHosts'>): void {
  if (!!o.tlsCert !== !!o.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  if (isLoopback(o.listen)) return;
  if (!o.allowRemote)
    throw new Error(
      `--listen ${o.listen} is not a loopback address: add --allow-remote (and --tls-cert/--tls-key) to serve beyond this machine`,
    );
  if (!o.tlsCert) throw new Error(`--listen ${o.listen}: serving beyond this machine needs TLS (--tls-cert and --tls-key)`);
  if ((o.listen === '0.0.0.0' || o.listen === '::') && !o.allowHosts?.length)
    throw new Error(`--listen ${o.listen} answers on every address: name the host name(s) the console is reached by with --allow-host`);
}

function errorMessage(e: unknown): string {
  return e instanceof OptionError ? e.messageFor((o) => o) : ((e as Error).message ?? String(e));
}

function versionJson(v: VersionRow): Record<string, unknown> {
  return {
    path: display(v.path),
    name: display(v.name),
    type: v.type,
    mode: v.mode,
    uid: v.uid,
    gid: v.gid,
    user: v.user,
    group: v.group,
    size: v.size,
    mtime: new Date(Number(v.mtime / 1_000_000n)).toISOString(),
    nlink: v.nlink,
    target: v.target === null ? null : display(v.target),
  };
}

function snapJson(r: { id: string; time: string; host: string; paths: string[]; tags: string[] }) {
  return { id: r.id, time: r.time, host: r.host, paths: r.paths.map(display), tags: r.tags };
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  checkListen(o);
  const tls = !!o.tlsCert;
  const token = loadOrCreateToken(o.tokenFile ?? path.join(consoleStateDir(), 'console', 'token'));
  const sessions = new Sessions();
  const throttle = new LoginThrottle();
  const assets = new Map<string, Buffer>();
  for (const [route, [file]] of Object.entries(STATIC)) assets.set(route, fs.readFileSync(path.join(staticDir(), file)));

  // One session for the server's life: the repository key is derived once (a password prompt,
  // a KDF), not per request. Its catalog is re-synced before a request when it is older than
  // REFRESH_MS, one sync at a time.
  const session = await openSession({ ...o.session, readOnly: true });
  await readAllRecords(session); // the console lists every host's snapshots (issue 15: read on demand)
  let synced = Date.now();
  let syncing: Promise<void> | null = null;
  const withSession = async <T>(fn: (s: Session) => Promise<T>): Promise<T> => {
    if (Date.now() - synced > REFRESH_MS && !jobs.running()) {
      syncing ??= refreshCatalog(session)
        .then(() => {
          synced = Date.now();
        })
        .finally(() => {
          syncing = null;
        });
      await syncing;
    }
    return fn(session);
  };
  const jobs = new RestoreJobs({ stagingRoot: o.stagingRoot, accountsRoot: o.accountsRoot, log: o.log, openSession: withSession });
  let lastCheck: { time: string; who: string; result?: unknown; error?: string } | null = null;

  const server = tls ? https.createServer({ cert: fs.readFileSync(o.tlsCert!), key: fs.readFileSync(o.tlsKey!) }) : http.createServer();
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;

  let allowedHosts = new Set<string>();

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', ...headers });
    res.end(text);
  };

  const readJson = async (req: http.IncomingMessage): Promise<Record<string, unknown>> => {
    const type = req.headers['content-type'] ?? '';
    // A cross-site <form> can only send form or text bodies; JSON needs a preflight we never answer.
    if (!/^application\/json(;|$)/.test(type)) throw new HttpError(415, 'expected Content-Type: application/json');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req as AsyncIterable<Buffer>) {
      size += c.length;
      if (size > MAX_BODY) throw new HttpError(413, 'request body too large');
      chunks.push(c);
    }
    let v: unknown;
    try {
      v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch {
      throw bad('body is not JSON');
    }
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad('body must be a JSON object');
    return v as Record<string, unknown>;
  };

  const peerOf = (req: http.IncomingMessage) => `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;

  type Handler = (req: http.IncomingMessage, res: http.ServerResponse, q: Record<string, string>, who: ConsoleSession) => Promise<void>;

  const get: Record<string, Handler> = {
    '/api/session': async (_req, res, _q, who) =>
      send(res, 200, {
        csrf: who.csrf,
        who: who.label,
        readOnly: !!o.readOnly,
        accountsRoot: o.accountsRoot,
        stagingRoot: o.stagingRoot,
      }),
    '/api/accounts': async (_req, res, q) => {
      const host = optionalHost(q.host);
      send(res, 200, await withSession(async (s) => listAccounts(s, { accountsRoot: o.accountsRoot, host })));
    },
    '/api/snapshots': async (_req, res, q) => {
      const p = q.path === undefined ? '/' : snapshotPath(q.path);
      const host = optionalHost(q.host);
      const rows = await withSession(async (s) => snapshotsHolding(s, p, { host }));
      send(res, 200, { path: p, snapshots: rows.map(snapJson) });
    },
    '/api/ls': async (_req, res, q) => {
      const ref = snapshotRef(q.snapshot);
      const p = snapshotPath(q.path);
      const offset = int(q.offset, 'offset', 0, 1e9, 0);
      const limit = int(q.limit, 'limit', 1, 5000, 200);
      const page = await withSession(async (s) => listPage(s, ref, p, { offset, limit }));
      send(res, 200, {
        snapshot: snapJson(page.snapshot),
        path: display(page.path),
        self: page.self ? versionJson(page.self) : null,
        total: page.total,
        offset: page.offset,
        entries: page.entries.map(versionJson),
        damage: page.damage,
      });
    },
    '/api/versions': async (_req, res, q) => {
      const p = snapshotPath(q.path);
      const out = await withSession(async (s) => {
        const r = find(s, { pattern: p });
        const paths = [...r.paths].slice(0, 1).map((fp) => ({
          path: display(fp.path),
          versions: fp.versions.map((v) => ({
            ...versionJson(v.version),
            changes: v.changes,
            first: v.first,
            snapshots: v.snapshots.map(snapJson),
          })),
        }));
        return { damage: r.damage, found: paths[0] ?? null };
      });
      send(res, 200, out);
    },
    '/api/diff': async (_req, res, q) => {
      const a = snapshotRef(q.a, 'a');
      const b = snapshotRef(q.b, 'b');
      const p = snapshotPath(q.path);
      const d = await withSession(async (s) => diffSubtree(s, a, b, p));
      send(res, 200, { a: snapJson(d.a), b: snapJson(d.b), path: d.path, counts: d.counts, paths: d.paths });
    },
    '/api/restores': async (_req, res) =>
      send(res, 200, {
        restores: [...jobs.jobs.values()]
          .reverse()
          .map((j) => ({ id: j.id, state: j.state, started: j.started, who: j.who, destinations: j.plan.destinations })),
      }),
    '/api/restore/status': async (_req, res, q) => {
      const j = jobs.get(typeof q.id === 'string' && /^[0-9a-f]{24}$/.test(q.id) ? q.id : '');
      if (!j) throw new HttpError(404, 'no such restore');
      send(res, 200, {
        id: j.id,
        state: j.state,
        started: j.started,
        finished: j.finished,
        who: j.who,
        destinations: j.plan.destinations,
        progress: j.progress,
        result: j.result,
        error: j.error,
      });
    },
    '/api/health': async (_req, res) => {
      const h = await withSession(async (s) => health(s, o.monitoring));
      send(res, 200, { ...h, lastCheck });
    },
  };

  const post: Record<string, Handler> = {
    '/api/logout': async (_req, res, _q, who) => {
      sessions.remove(who);
      send(res, 200, { ok: true }, { 'Set-Cookie': clearedCookie(tls) });
    },
    '/api/restore/plan': async (req, res, _q, who) => {
      const b = await readJson(req);
      const r = restoreRequest(b);
      const { plan, summary } = await jobs.plan(r, who);
      send(res, 200, { plan: plan.id, snapshot: plan.snapshotId, destinations: plan.destinations, readOnly: !!o.readOnly, summary });
    },
    '/api/restore/run': async (req, res, _q, who) => {
      const b = await readJson(req);
      if (o.readOnly) throw new HttpError(403, 'this console is read-only (--read-only): restores are refused');
      if (typeof b.plan !== 'string' || !/^[0-9a-f]{24}$/.test(b.plan)) throw bad('plan: missing (preview the restore first)');
      const job = jobs.start(b.plan, who);
      send(res, 202, { id: job.id, state: job.state });
    },
    '/api/check': async (req, res, _q, who) => {
      await readJson(req);
      // The structural check (no pack data read): quick, and what a tech needs to trust a restore.
      const time = new Date().toISOString();
      try {
        const result = await withSession(async (s) => check(s, {}));
        lastCheck = { time, who: who.label, result };
      } catch (e) {
        lastCheck = { time, who: who.label, error: errorMessage(e) };
      }
      send(res, 200, lastCheck);
    },
  };

  const restoreRequest = (b: Record<string, unknown>): RestoreRequest => {
    const paths = b.paths === undefined ? [] : b.paths;
    if (!Array.isArray(paths) || paths.length > 1000) throw bad('paths: expected a list of at most 1000 paths');
    const staging = b.target === 'staging' ? simpleName(b.staging, 'staging') : null;
    if (b.target !== 'staging' && b.target !== 'in-place') throw bad('target: "in-place" or "staging"');
    const req: RestoreRequest = {
      snapshot: snapshotRef(b.snapshot),
      paths: paths.map((p, i) => snapshotPath(p, `paths[${i}]`)),
      account: b.account === undefined || b.account === null || b.account === '' ? undefined : simpleName(b.account, 'account'),
      mode: restoreMode(b.mode),
      staging,
      delete: bool(b.delete, 'delete'),
      overwriteNewer: bool(b.overwriteNewer, 'overwriteNewer'),
      ownerByName: bool(b.ownerByName, 'ownerByName'),
    };
    if (!req.paths.length && req.account === undefined) throw bad('name an account or at least one path to restore');
    return req;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const host = checkHost(req, allowedHosts);
    // Every allowed Host is its own origin: the Origin check compares with the Host the request used.
    const origin = `${tls ? 'https' : 'http'}://${host}`;
    const url = new URL(req.url ?? '/', origin);
    const route = url.pathname;
    const method = req.method ?? 'GET';
    if (method === 'GET' && STATIC[route]) {
      // The page and its code: the same for everyone and free of data, so the login form can load.
      res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': STATIC[route][1] });
      res.end(assets.get(route));
      return;
    }
    if (method === 'POST' && route === '/api/login') {
      checkOrigin(req, origin);
      throttle.check();
      const b = await readJson(req);
      if (typeof b.token !== 'string' || !secretEquals(b.token, token.token)) {
        throttle.fail();
        o.log.write('warn', 'console login refused', { peer: peerOf(req) });
        throw new HttpError(401, 'wrong token');
      }
      const s = sessions.create(peerOf(req));
      o.log.write('info', 'console login', { who: s.label, peer: s.peer });
      send(res, 200, { csrf: s.csrf, who: s.label, readOnly: !!o.readOnly }, { 'Set-Cookie': sessionCookie(s, tls) });
      return;
    }
    const who = sessions.find(req);
    if (!who) throw new HttpError(401, 'log in first (the token was printed at the first start of snapfill serve)');
    if (method === 'GET' && route === '/api/download') {
      await download(res, queryParams(url));
      return;
    }
    const table = method === 'GET' ? get : method === 'POST' ? post : null;
    const h = table?.[route];
    if (!h) throw new HttpError(table ? 404 : 405, table ? 'no such route' : `method ${method} not allowed`);
    if (method === 'POST') {
      checkOrigin(req, origin);
      checkCsrf(req, who);
    }
    await h(req, res, queryParams(url), who);
  };

  const download = async (res: http.ServerResponse, q: Record<string, string>) => {
    const ref = snapshotRef(q.snapshot);
    const p = snapshotPath(q.path);
    await withSession(async (s) => {
      const page = listPage(s, ref, p, { limit: 1 });
      const v = page.self;
      if (!v || (v.type !== 'file' && v.type !== 'hardlink')) throw bad(`${p} is not a file in snapshot ${page.snapshot.id.slice(0, 8)}`);
      const name = display(basename(v.path));
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(v.size),
        'Content-Disposition': `attachment; filename="${name.replace(/[^A-Za-z0-9._-]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      });
      await catFile(s, page.snapshot, p, res);
      res.end();
    });
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) send(res, e.status, { error: e.message });
      else send(res, 400, { error: errorMessage(e) });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.listen, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  const names = isLoopback(o.listen) ? ['127.0.0.1', 'localhost', '[::1]'] : [o.listen.includes(':') ? `[${o.listen}]` : o.listen];
  if (o.listen !== '0.0.0.0' && o.listen !== '::' && !isLoopback(o.listen)) names.push(o.listen);
  for (const h of o.allowHosts ?? []) names.push(h);
  allowedHosts = new Set(names.filter((n) => n !== '0.0.0.0' && n !== '[::]').map((n) => `${n.toLowerCase()}:${port}`));
  const shown = isLoopback(o.listen)
    ? o.listen === '::1'
      ? '[::1]'
      : o.listen === 'localhost'
        ? 'localhost'
        : o.listen
    : (o.allowHosts?.[0] ?? o.listen);

  return {
    url: `${tls ? 'https' : 'http'}://${shown}:${port}/`,
    token,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await session.close();
    },
  };
}
