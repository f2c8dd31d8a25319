import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, repoEnv, tmpDir, write } from './helpers.js';
import { login, request, startServe, type ServeProcess } from './support/browser.js';

/**
 * The console can write as root: every route needs a login, a forged cross-site request is
 * refused, path traversal in any parameter is refused, --read-only refuses restores, and a
 * second restore while one runs is refused with the reason. Plain HTTP from node against a real
 * `snapfill serve` on a real repository.
 */
describe('snapfill serve: security', () => {
  let base: string;
  let home: string;
  let env: Record<string, string>;
  let serve: ServeProcess;
  let url: string;
  let tokenFile: string;
  let logFile: string;
  let staging: string;
  let snapId: string;

  const GETS = [
    '/api/session',
    '/api/accounts',
    '/api/snapshots',
    '/api/ls',
    '/api/versions',
    '/api/download',
    '/api/diff',
    '/api/restores',
    '/api/restore/status',
    '/api/health',
  ];
  const POSTS = ['/api/logout', '/api/restore/plan', '/api/restore/run', '/api/check'];

  beforeAll(async () => {
    base = tmpDir('snapfill-serve-sec-');
    home = path.join(base, 'src', 'home');
    env = repoEnv(base);
    write(`${home}/alice/public_html/index.php`, '<?php echo 1;');
    write(`${home}/alice/wp-content/uploads/2026/11/cat.jpg`, Buffer.alloc(300_000, 7));
    for (let i = 0; i < 400; i++) write(`${home}/alice/wp-content/uploads/bulk/f${i}.bin`, Buffer.alloc(20_000, i));
    write(`${home}/bob/notes.txt`, 'bob');
    write(path.join(base, 'secret.txt'), 'outside the accounts');
    expect(cli(['init'], env).code).toBe(0);
    const r = cli(['--json', 'snapshot', '-q', path.join(base, 'src')], env);
    expect(r.code, r.stderr).toBe(0);
    snapId = r.json.snapshot_id;
    tokenFile = path.join(base, 'cache', 'console', 'token');
    logFile = path.join(base, 'console.log');
    staging = path.join(base, 'staging');
    serve = await startServe(['--accounts-root', home, '--staging-root', staging, '--log', logFile], env, tokenFile);
    url = serve.url;
  });

  afterAll(async () => {
    await serve?.stop();
  });

  it('keeps the token 0600 and prints it only at the first start', () => {
    const st = fs.statSync(tokenFile);
    expect(st.mode & 0o777).toBe(0o600);
    expect(serve.stdout()).toContain(serve.token);
    expect(serve.token).toBe(fs.readFileSync(tokenFile, 'utf8').trim());
  });

  it('answers 401 on every data route without a session, and with a forged cookie', async () => {
    for (const route of GETS) {
      const q = '?snapshot=latest&path=' + encodeURIComponent(`${home}/alice`) + '&a=latest&b=latest&id=' + '0'.repeat(24);
      for (const cookie of [undefined, 'snapfill_session=forged', 'snapfill_session=']) {
        const r = await request(url + route.slice(1) + q, { cookie });
        expect(r.status, `${route} ${cookie}`).toBe(401);
        expect(r.body).not.toContain('alice/public_html');
      }
    }
    for (const route of POSTS) {
      const r = await request(url + route.slice(1), {
        body: { snapshot: 'latest', account: 'alice', target: 'in-place', plan: '0'.repeat(24) },
      });
      expect(r.status, route).toBe(401);
    }
    // Not even a 404 tells an outsider what exists.
    expect((await request(url + 'api/nothing-here')).status).toBe(401);
  });

  it('refuses a wrong token, and sets a HttpOnly SameSite=Strict cookie on login', async () => {
    expect((await request(url + 'api/login', { body: { token: 'x'.repeat(43) } })).status).toBe(401);
    expect((await request(url + 'api/login', { body: { token: serve.token.slice(0, -1) } })).status).toBe(401);
    const r = await request(url + 'api/login', { body: { token: serve.token } });
    expect(r.status).toBe(200);
    const cookie = r.headers['set-cookie']![0];
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toMatch(/Secure/); // plain HTTP on loopback
    expect(fs.readFileSync(logFile, 'utf8')).toContain('console login refused');
  });

  it('refuses forged cross-site requests and sends no CORS headers', async () => {
    const { cookie, csrf } = await login(url, serve.token);
    const plan = { snapshot: 'latest', account: 'alice', target: 'staging', staging: 'x1', mode: 'missing' };
    const ok = await request(url + 'api/restore/plan', { cookie, body: plan, headers: { 'X-CSRF-Token': csrf, Origin: url.slice(0, -1) } });
    expect(ok.status, ok.body).toBe(200);
    // What a page on another site can send with the victim's cookie: no CSRF header, its own Origin.
    const forged = [
      { headers: { Origin: 'http://evil.example' } },
      { headers: { Origin: 'http://evil.example', 'X-CSRF-Token': csrf } },
      { headers: { 'Sec-Fetch-Site': 'cross-site', 'X-CSRF-Token': csrf } },
      { headers: { 'X-CSRF-Token': 'wrong' } },
      { headers: {} },
      { headers: { 'Content-Type': 'text/plain', 'X-CSRF-Token': csrf }, body: JSON.stringify(plan) },
      { headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'null' }, body: 'snapshot=latest' },
    ];
    for (const f of forged) {
      const r = await request(url + 'api/restore/plan', { cookie, body: f.body ?? plan, headers: f.headers });
      expect([403, 415], JSON.stringify(f.headers)).toContain(r.status);
    }
    // DNS rebinding: a request naming another host is refused before anything else.
    const rebound = await request(url + 'api/accounts', { cookie, headers: { Host: 'evil.example' } });
    expect(rebound.status).toBe(421);
    // Login CSRF: another site cannot log a victim's browser in either.
    expect((await request(url + 'api/login', { body: { token: serve.token }, headers: { Origin: 'http://evil.example' } })).status).toBe(
      403,
    );
    for (const method of ['OPTIONS', 'GET']) {
      const r = await request(url + 'api/accounts', {
        method,
        cookie,
        headers: { Origin: 'http://evil.example', 'Access-Control-Request-Method': 'POST' },
      });
      expect(Object.keys(r.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
    const page = await request(url);
    expect(page.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(fs.existsSync(path.join(staging, 'x1'))).toBe(false); // a plan writes nothing
  });

  it('refuses path traversal in every parameter', async () => {
    const { cookie, csrf } = await login(url, serve.token);
    const bad = [
      `${home}/alice/../../secret.txt`,
      `${home}/alice/./x`,
      `${home}//alice`,
      'relative/path',
      `${home}/alice/`,
      `${home}/alice\0/x`,
      '../etc/passwd',
      `${home}/alice/..`,
    ];
    for (const p of bad) {
      const e = encodeURIComponent(p);
      for (const route of [
        `api/ls?snapshot=latest&path=${e}`,
        `api/versions?path=${e}`,
        `api/download?snapshot=latest&path=${e}`,
        `api/diff?a=latest&b=latest&path=${e}`,
        `api/snapshots?path=${e}`,
      ]) {
        const r = await request(url + route, { cookie });
        expect(r.status, `${route}: ${r.body}`).toBe(400);
      }
    }
    for (const ref of ['../x', 'latest/..', 'HEAD', '%2e%2e']) {
      const r = await request(url + `api/ls?snapshot=${encodeURIComponent(ref)}&path=${encodeURIComponent(home)}`, { cookie });
      expect(r.status, ref).toBe(400);
    }
    expect((await request(url + `api/ls?snapshot=latest&path=${encodeURIComponent(home)}&path=/etc`, { cookie })).status).toBe(400);
    const post = (body: object) => request(url + 'api/restore/plan', { cookie, body, headers: { 'X-CSRF-Token': csrf } });
    const good = { snapshot: 'latest', target: 'staging', staging: 'ok', mode: 'missing' };
    const cases: object[] = [
      { ...good, account: '..' },
      { ...good, account: '../bob' },
      { ...good, account: 'alice/../bob' },
      { ...good, account: 'alice', staging: '..' },
      { ...good, account: 'alice', staging: '../../escape' },
      { ...good, account: 'alice', staging: 'a/b' },
      { ...good, account: 'alice', staging: '/tmp/x' },
      { ...good, paths: [`${home}/alice/../bob`] },
      { ...good, paths: ['alice'] },
      { ...good, paths: [`${home}/alice/`] },
      { ...good, account: 'alice', mode: 'all' },
      { ...good, account: 'alice', target: '/tmp' },
      { ...good, snapshot: '../../x', account: 'alice' },
    ];
    for (const c of cases) {
      const r = await post(c);
      expect(r.status, `${JSON.stringify(c)}: ${r.body}`).toBe(400);
    }
    expect(fs.existsSync(path.join(base, 'escape'))).toBe(false);
    // The downloads that are allowed stay inside the snapshot: a file outside its sources is not in it.
    const outside = await request(url + `api/download?snapshot=latest&path=${encodeURIComponent(path.join(base, 'secret.txt'))}`, {
      cookie,
    });
    expect(outside.status).toBe(400);
    expect(outside.body).not.toContain('outside the accounts');
  });

  it('pages a big directory', async () => {
    const { cookie } = await login(url, serve.token);
    const dir = encodeURIComponent(`${home}/alice/wp-content/uploads/bulk`);
    const first = await request(url + `api/ls?snapshot=latest&path=${dir}&limit=100`, { cookie });
    expect(first.status, first.body).toBe(200);
    expect(first.json.total).toBe(400);
    expect(first.json.entries).toHaveLength(100);
    const last = await request(url + `api/ls?snapshot=latest&path=${dir}&offset=390&limit=100`, { cookie });
    expect(last.json.entries.map((e: any) => e.name)).toEqual([...Array.from({ length: 400 }, (_, i) => `f${i}.bin`)].sort().slice(390));
    expect(last.json.entries[0]).toMatchObject({ type: 'file', size: 20_000, user: expect.any(String), mode: 0o644 });
  });

  it('runs one restore at a time: a second one is refused with the reason (409), and each is logged', async () => {
    const { cookie, csrf } = await login(url, serve.token);
    const headers = { 'X-CSRF-Token': csrf };
    const plan = async (staging: string) => {
      const r = await request(url + 'api/restore/plan', {
        cookie,
        headers,
        body: { snapshot: snapId.slice(0, 12), account: 'alice', target: 'staging', staging, mode: 'missing' },
      });
      expect(r.status, r.body).toBe(200);
      return r.json.plan as string;
    };
    const [a, b] = [await plan('one'), await plan('two')];
    const [ra, rb] = await Promise.all([
      request(url + 'api/restore/run', { cookie, headers, body: { plan: a } }),
      request(url + 'api/restore/run', { cookie, headers, body: { plan: b } }),
    ]);
    expect(ra.status, ra.body).toBe(202);
    expect(rb.status, rb.body).toBe(409);
    expect(rb.json.error).toMatch(/another restore is running/);
    // A plan is used once; another session cannot run someone else's plan.
    expect((await request(url + 'api/restore/run', { cookie, headers, body: { plan: a } })).status).toBe(404);
    let st: any;
    for (let i = 0; i < 200; i++) {
      st = (await request(url + `api/restore/status?id=${ra.json.id}`, { cookie })).json;
      if (st.state !== 'running') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(st.state, JSON.stringify(st)).toBe('done');
    expect(st.result.files_restored).toBe(402);
    expect(fs.readFileSync(path.join(staging, 'one', home, 'alice/public_html/index.php'), 'utf8')).toBe('<?php echo 1;');
    const log = fs
      .readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const started = log.find((l) => l.msg === 'console restore started' && l.job === ra.json.id);
    const finished = log.find((l) => l.msg === 'console restore finished' && l.job === ra.json.id);
    expect(started).toMatchObject({ account: 'alice', target: path.join(staging, 'one'), mode: 'missing', snapshot: snapId });
    expect(started.who).toMatch(/^session-/);
    expect(started.peer).toMatch(/^127\.0\.0\.1:/);
    expect(started.time).toBeTruthy();
    expect(finished).toMatchObject({ status: 'success', files_restored: 402 });
  });

  it('--read-only refuses restores (403) but browses, downloads and previews', async () => {
    const ro = await startServe(['--read-only', '--accounts-root', home, '--staging-root', staging, '--log', logFile], env, tokenFile);
    try {
      expect(ro.stdout()).not.toContain(serve.token); // printed once only
      const { cookie, csrf } = await login(ro.url, ro.token);
      const headers = { 'X-CSRF-Token': csrf };
      const dl = await request(ro.url + `api/download?snapshot=latest&path=${encodeURIComponent(`${home}/alice/public_html/index.php`)}`, {
        cookie,
      });
      expect(dl.status).toBe(200);
      expect(dl.body).toBe('<?php echo 1;');
      const p = await request(ro.url + 'api/restore/plan', {
        cookie,
        headers,
        body: { snapshot: 'latest', account: 'alice', target: 'in-place' },
      });
      expect(p.status, p.body).toBe(200);
      expect(p.json.readOnly).toBe(true);
      const r = await request(ro.url + 'api/restore/run', { cookie, headers, body: { plan: p.json.plan } });
      expect(r.status).toBe(403);
      expect(r.json.error).toMatch(/read-only/);
    } finally {
      await ro.stop();
    }
  });

  it('refuses to listen beyond loopback without --allow-remote and TLS', () => {
    const a = cli(['serve', '--listen', '0.0.0.0', '--port', '0'], env);
    expect(a.code).toBe(1);
    expect(a.stderr).toMatch(/not a loopback address: add --allow-remote/);
    const b = cli(['serve', '--listen', '0.0.0.0', '--port', '0', '--allow-remote'], env);
    expect(b.code).toBe(1);
    expect(b.stderr).toMatch(/needs TLS/);
  });
});
