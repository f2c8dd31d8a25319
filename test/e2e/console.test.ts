import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, Page } from 'puppeteer-core';
import { cli, describeTree, diffTrees, repoEnv, requireSystem, tmpDir, write } from '../helpers.js';
import { haveChromium, launchBrowser, startServe, type ServeProcess } from '../support/browser.js';

const skip = !requireSystem('chromium', haveChromium);

/**
 * The ticket: "account alice lost wp-content/uploads on Tuesday". A tech logs in, opens alice,
 * picks Tuesday's snapshot, finds a file's versions, previews a restore of the uploads to a
 * staging directory, runs it, then puts them back in place; the files are checked on disk.
 * Real repository made with the CLI, real `snapfill serve`, Debian's chromium headless.
 * Screenshots of each step go to the test's temp dir (or SNAPFILL_E2E_SCREENSHOTS).
 */
describe.skipIf(skip)('web console end to end (chromium)', () => {
  let base: string;
  let home: string;
  let uploads: string;
  let env: Record<string, string>;
  let serve: ServeProcess;
  let browser: Browser;
  let page: Page;
  let shots: string;
  let before: Map<string, string>;
  let tuesday: string;
  const stagingRoot = () => path.join(base, 'staging');

  const shot = async (name: string) => {
    await page.screenshot({ path: path.join(shots, `${name}.png`) as `${string}.png`, fullPage: true });
  };

  /** Waits until `selector` exists and its text contains `text`. */
  const waitText = async (selector: string, text: string, timeout = 30_000) => {
    await page.waitForFunction(
      (sel: string, t: string) => [...document.querySelectorAll(sel)].some((e) => (e.textContent ?? '').includes(t)),
      { timeout },
      selector,
      text,
    );
  };

  beforeAll(async () => {
    base = tmpDir('snapfill-e2e-');
    shots = process.env.SNAPFILL_E2E_SCREENSHOTS ?? path.join(base, 'screenshots');
    fs.mkdirSync(shots, { recursive: true });
    home = path.join(base, 'src', 'home');
    uploads = `${home}/alice/public_html/wp-content/uploads`;
    env = repoEnv(base);
    write(`${home}/alice/public_html/index.php`, '<?php require "wp-blog-header.php";');
    write(`${home}/alice/public_html/wp-config.php`, "define('DB_NAME', 'alice_wp');", 0o600);
    for (let m = 9; m <= 11; m++)
      for (let i = 0; i < 12; i++) write(`${uploads}/2026/${m}/photo-${i}.jpg`, Buffer.alloc(10_000 + i * 1000, m * 16 + i));
    write(`${uploads}/2026/11/logo.png`, 'logo v1');
    write(`${home}/bob/public_html/index.html`, '<h1>bob</h1>');
    write(`${home}/carol/mail/inbox`, 'hello');
    expect(cli(['init'], env).code).toBe(0);
    const snap = (time: string) => {
      const r = cli(['--json', 'snapshot', '-q', path.join(base, 'src'), '--time', time], env);
      expect(r.code, r.stderr).toBe(0);
      return r.json.snapshot_id as string;
    };
    snap('2026-11-23T03:00:00Z'); // Monday
    write(`${uploads}/2026/11/logo.png`, 'logo v2, the one alice wants');
    tuesday = snap('2026-11-24T11:00:00Z');
    before = describeTree(uploads);
    // Wednesday: a plugin update wiped the uploads.
    fs.rmSync(uploads, { recursive: true });
    write(`${home}/alice/public_html/wp-content/plugins/new-plugin.php`, '<?php');
    snap('2026-11-25T03:00:00Z');
    serve = await startServe(
      ['--accounts-root', home, '--staging-root', stagingRoot(), '--log', path.join(base, 'console.log')],
      env,
      path.join(base, 'cache', 'console', 'token'),
    );
    browser = await launchBrowser();
    page = await browser.newPage();
    page.setDefaultTimeout(30_000);
  });

  afterAll(async () => {
    await browser?.close();
    await serve?.stop();
  });

  it('goes from the ticket to the files back in place in a few clicks', async () => {
    const t0 = Date.now();
    // 1. Log in with the token printed at the first start.
    await page.goto(serve.url);
    await page.waitForSelector('#token', { visible: true });
    await shot('01-login');
    await page.type('#token', serve.token);
    await page.click('#login-btn');

    // 2. The accounts: alice, bob, carol, with what changed since the previous snapshot.
    await waitText('#accounts tr[data-account="alice"]', 'alice');
    await waitText('#accounts', 'carol');
    await shot('02-accounts');
    const aliceRow = await page.$eval('#accounts tr[data-account="alice"]', (e) => e.textContent ?? '');
    expect(aliceRow).toContain('−42'); // 37 uploads and their 5 directories removed since Tuesday

    // 3. Browse alice, switch to Tuesday's snapshot, down to the uploads.
    await page.click('#accounts tr[data-account="alice"] a.account-link');
    await waitText('#listing', 'public_html');
    await page.select('#browse-snapshot', tuesday);
    await page.waitForFunction((id: string) => location.hash.includes(id), {}, tuesday);
    await waitText('#listing', 'public_html');
    await page.click('tr[data-name="public_html"] a.dir-link');
    await waitText('#listing', 'wp-content');
    await page.click('tr[data-name="wp-content"] a.dir-link');
    await waitText('#listing', 'uploads');
    await page.click('tr[data-name="uploads"] a.dir-link');
    await page.waitForSelector('tr[data-name="2026"]');
    await page.click('tr[data-name="2026"] a.dir-link');
    await page.waitForSelector('tr[data-name="11"]');
    await page.click('tr[data-name="11"] a.dir-link');
    await waitText('#listing', 'logo.png');
    const listing = await page.$eval('#listing', (e) => e.textContent ?? '');
    expect(listing).toContain('photo-11.jpg');
    expect(listing).toMatch(/-rw-r--r--/);
    await shot('03-browse-tuesday');

    // 4. The versions of logo.png: v1 on Monday, v2 on Tuesday (content changed).
    await page.click('tr[data-name="logo.png"] a.versions-link');
    await waitText('#version-count', '2 distinct versions');
    const versions = await page.$eval('#versions', (e) => e.textContent ?? '');
    expect(versions).toContain('content');
    await shot('04-versions');

    // 5. Back to wp-content in Tuesday's snapshot; pick uploads; preview a restore to staging.
    await page.goto(`${serve.url}#/browse?${new URLSearchParams({ snapshot: tuesday, path: `${home}/alice/public_html/wp-content` })}`);
    await page.waitForSelector('tr[data-name="uploads"] input.pick');
    await page.click('tr[data-name="uploads"] input.pick');
    await page.click('#restore-selected');
    await page.waitForSelector('#preview');
    expect(await page.$eval('#restore-paths', (e) => (e as HTMLTextAreaElement).value)).toBe(uploads);
    expect(await page.$eval('#restore-snapshot', (e) => (e as HTMLSelectElement).value)).toBe(tuesday);
    await page.select('#restore-target', 'staging');
    await page.$eval('#restore-staging', (e) => ((e as HTMLInputElement).value = ''));
    await page.type('#restore-staging', 'alice-uploads');
    await page.click('#preview');
    await waitText('#plan', 'Plan (dry run');
    const plan = await page.$eval('#plan', (e) => e.textContent ?? '');
    expect(plan).toMatch(/37\s*files to restore/);
    expect(fs.existsSync(path.join(stagingRoot(), 'alice-uploads'))).toBe(false); // the preview changed nothing
    await shot('05-restore-plan');

    // 6. Run it: live progress, then the report; the files are in staging.
    await page.click('#run-restore');
    await page.waitForSelector('#report, #report-failed', { timeout: 60_000 });
    const report = await page.$eval('#progress-line', (e) => e.textContent ?? '');
    expect(report).toContain('finished without errors');
    await shot('06-restore-report');
    const staged = path.join(stagingRoot(), 'alice-uploads', uploads);
    expect(diffTrees(before, describeTree(staged))).toEqual([]);

    // 7. And in place: the same restore with target "in place" (mode missing touches nothing else).
    await page.goto(`${serve.url}#/restore?${new URLSearchParams({ snapshot: tuesday, paths: uploads })}`);
    await page.waitForSelector('#preview');
    await page.select('#restore-target', 'in-place');
    await page.click('#preview');
    await waitText('#plan', 'Plan (dry run');
    await page.click('#run-restore');
    await page.waitForSelector('#report, #report-failed', { timeout: 60_000 });
    expect(await page.$eval('#progress-line', (e) => e.textContent ?? '')).toContain('finished without errors');
    await shot('07-restored-in-place');
    expect(diffTrees(before, describeTree(uploads))).toEqual([]);
    expect(fs.readFileSync(`${home}/alice/public_html/wp-content/plugins/new-plugin.php`, 'utf8')).toBe('<?php'); // newer data untouched
    expect(Date.now() - t0).toBeLessThan(60_000);

    // 8. Health: the host, its newest snapshot; the restores are in the log with who and what.
    await page.click('#nav-health');
    await page.waitForSelector('#hosts');
    await shot('08-health');
    const log = fs.readFileSync(path.join(base, 'console.log'), 'utf8');
    expect(log.match(/console restore finished/g)).toHaveLength(2);
    for (const f of fs.readdirSync(shots)) expect(fs.statSync(path.join(shots, f)).size).toBeGreaterThan(5000);
  });
});
