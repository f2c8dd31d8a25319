import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { requireSystem, tmpDir, write, describeTree, diffTrees } from './helpers.js';
import { FaultProxy } from './support/faultproxy.js';
import { startS3rver, s3rverBin, cliAsync, s3Env, S3_CREDENTIALS, type S3Server } from './support/s3server.js';
import { S3Store } from '../src/store/s3.js';

const skip = !requireSystem('s3rver', s3rverBin() !== null, 'npm ci installs it as a devDependency');

/** A small tree typical of a hosting account: shared WordPress-like files, unique uploads, a bigger file. */
function makeTree(root: string, account: string, seed: number): void {
  for (let i = 0; i < 12; i++)
    write(`${root}/home/${account}/public_html/wp-includes/core${i}.php`, `<?php /* shared core file ${i} */\n`.repeat(40));
  for (let i = 0; i < 10; i++) write(`${root}/home/${account}/public_html/uploads/img${i}.bin`, randomBytes(3000 + seed * 100 + i * 37));
  write(`${root}/home/${account}/big.bin`, randomBytes(1_500_000 + seed));
  write(`${root}/home/${account}/.htaccess`, `# ${account}\n`, 0o600);
  fs.symlinkSync('public_html/uploads', `${root}/home/${account}/uploads-link`);
}

/**
 * Compares two trees. Node sets mtimes through a double of seconds, so a restored mtime is
 * exact only to about a microsecond: mtimes may differ by up to 2 µs, everything else must match.
 */
function expectSameTree(a: string, b: string): void {
  const mt = /^(.* f \d+ )(\d+)( .*)$/;
  const ta = describeTree(a);
  const tb = describeTree(b);
  const problems = diffTrees(ta, tb).filter((line) => {
    const k = line.slice(0, line.indexOf(': '));
    const [x, y] = [mt.exec(ta.get(k) ?? ''), mt.exec(tb.get(k) ?? '')];
    return !(x && y && x[1] === y[1] && x[3] === y[3] && Math.abs(Number(BigInt(x[2]) - BigInt(y[2]))) <= 2000);
  });
  expect(problems).toEqual([]);
}

describe.skipIf(skip)('S3 repositories end to end (real s3rver, fault proxy, the real CLI)', () => {
  let base: string;
  let server: S3Server;
  let proxy: FaultProxy;

  beforeAll(async () => {
    base = tmpDir('snapfill-s3-');
    server = await startS3rver(path.join(base, 's3rver'), ['bkt-main', 'bkt-fleet']);
    proxy = await new FaultProxy({ host: server.host, port: server.port }, 42).start();
  });
  afterAll(async () => {
    await proxy?.stop();
    await server?.stop();
  });

  it('snapshots under faults complete correctly or fail cleanly; restore retries through faults; check passes; a fresh machine recovers', async () => {
    const src = path.join(base, 'src1');
    makeTree(src, 'alice', 1);
    const repo = 's3://bkt-main/hosting/server1';
    const env = s3Env(proxy.url, repo, path.join(base, 'cache1'));
    const init = await cliAsync(['init'], env);
    expect(init.code, init.stderr).toBe(0);

    // 1. a snapshot through 500s, 503s, dropped connections and delays
    proxy.faults = { error500: 0.1, error503: 0.1, drop: 0.1, delay: 0.05, delayMs: 300 };
    proxy.resetCounts();
    const snap = await cliAsync(['--json', 'snapshot', src], env);
    const faultsDuringSnapshot = proxy.counts.faults;
    proxy.faults = {};
    expect(faultsDuringSnapshot).toBeGreaterThan(0);
    if (snap.code !== 0) {
      // Failing is allowed, but cleanly: a message, and no snapshot record that points at missing data.
      expect(snap.stderr).toMatch(/snapfill: /);
      const retry = await cliAsync(['--json', 'snapshot', src], env);
      expect(retry.code, retry.stderr).toBe(0);
    } else {
      expect(snap.json.errors).toEqual([]);
    }
    const check1 = await cliAsync(['--json', 'check', '--read-data'], env);
    expect(check1.code, check1.stderr + check1.stdout).toBe(0);
    expect(check1.json.ok).toBe(true);

    // 2. a snapshot whose record cannot be stored (every PUT of it answers 503) fails and damages nothing
    write(`${src}/home/alice/new-after-first.txt`, 'new content');
    proxy.faults = { error503: 1, only: (r) => r.method === 'PUT' && r.key.includes('/snapshots/') };
    const broken = await cliAsync(['--json', 'snapshot', src], { ...env, SNAPFILL_S3_RETRIES: '3' });
    proxy.faults = {};
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toMatch(/snapfill: .*(SlowDown|reduce your request rate|attempts)/i);
    const check2 = await cliAsync(['--json', 'check'], env);
    expect(check2.code, check2.stderr + check2.stdout).toBe(0);
    const list = await cliAsync(['--json', 'snapshots'], env);
    expect(list.json.snapshots.length).toBe(1);

    // 3. restore through faults: every file comes back byte-identical
    const target = path.join(base, 'restore1');
    proxy.faults = { error500: 0.15, error503: 0.1, drop: 0.15, delay: 0.05, delayMs: 300 };
    proxy.resetCounts();
    const rest = await cliAsync(['--json', 'restore', 'latest', '--target', target], env);
    proxy.faults = {};
    expect(rest.code, rest.stderr).toBe(0);
    expect(rest.json.errors).toEqual([]);
    expect(proxy.counts.faults).toBeGreaterThan(0);
    fs.rmSync(`${src}/home/alice/new-after-first.txt`);
    expectSameTree(src, path.join(target, src));

    // 4. the server is gone: a fresh machine with only the bucket URL (new, empty cache)
    const fresh = s3Env(proxy.url, repo, path.join(base, 'fresh-cache'));
    proxy.faults = { error503: 0.1, drop: 0.1 };
    proxy.resetCounts();
    const snaps = await cliAsync(['--json', 'snapshots'], fresh);
    proxy.faults = {};
    expect(snaps.code, snaps.stderr).toBe(0);
    expect(snaps.json.snapshots.length).toBe(1);
    const target2 = path.join(base, 'restore-fresh');
    const rest2 = await cliAsync(['--json', 'restore', 'latest', '--target', target2], fresh);
    expect(rest2.code, rest2.stderr).toBe(0);
    expectSameTree(src, path.join(target2, src));
    // the explicit rebuild gives the same catalog
    const rebuilt = await cliAsync(['--json', 'catalog', 'rebuild'], fresh);
    expect(rebuilt.code, rebuilt.stderr).toBe(0);
    expect(rebuilt.json.snapshots_added).toBe(1);
    // one file back without downloading whole packs: ranged reads only
    const target3 = path.join(base, 'restore-one');
    proxy.resetCounts();
    const one = await cliAsync(['--json', 'restore', 'latest', `${src}/home/alice/.htaccess`, '--target', target3], fresh);
    expect(one.code, one.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target3, src, 'home/alice/.htaccess'), 'utf8')).toBe('# alice\n');
    const packGets = proxy.log.filter((r) => r.method === 'GET' && r.key.includes('/data/'));
    expect(packGets.length).toBeGreaterThan(0);
    expect(packGets.every((r) => typeof r.headers.range === 'string')).toBe(true);
  });

  it('several hosts snapshot concurrently into one bucket: no collisions, shared content stored once, --host filters, both restore byte-identically', async () => {
    const repo = 's3://bkt-fleet/fleet';
    const srcA = path.join(base, 'hostA');
    const srcB = path.join(base, 'hostB');
    makeTree(srcA, 'acct', 2);
    makeTree(srcB, 'acct', 3);
    // the same 5 MB of customer data on both hosts: must be stored once
    const shared = randomBytes(5 * 1024 * 1024);
    write(`${srcA}/home/acct/shared.tar`, shared);
    write(`${srcB}/home/acct/shared.tar`, shared);
    // packs of 5 MiB and more go up as multipart uploads here, through the faults below
    const mp = { SNAPFILL_S3_MULTIPART_THRESHOLD: String(5 * 1024 * 1024), SNAPFILL_S3_PART_SIZE: String(5 * 1024 * 1024) };
    const envA = s3Env(proxy.url, repo, path.join(base, 'cacheA'), mp);
    const envB = s3Env(proxy.url, repo, path.join(base, 'cacheB'), mp);
    const init_envA = await cliAsync(['init'], envA);
    expect(init_envA.code, init_envA.stderr).toBe(0);
    // a seeded snapshot from host A first, so the shared blob is in the repository
    proxy.resetCounts();
    const first = await cliAsync(['--json', 'snapshot', srcA, '--host', 'web1'], envA);
    expect(first.code, first.stderr).toBe(0);
    expect(proxy.log.some((r) => r.method === 'PUT' && /partNumber=2/.test(r.query))).toBe(true);
    proxy.faults = { error503: 0.05, drop: 0.05 };
    const [a, b] = await Promise.all([
      cliAsync(['--json', 'snapshot', srcA, '--host', 'web1', '--tag', 'second'], envA),
      cliAsync(['--json', 'snapshot', srcB, '--host', 'web2'], envB),
    ]);
    proxy.faults = {};
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(a.json.snapshot_id).not.toBe(b.json.snapshot_id);
    // Host A stored the shared 5 MB before host B started, and B's session synced its catalog
    // from the bucket first: B does not upload it again.
    expect(b.json.bytes_added).toBeLessThan(shared.length);

    const all = await cliAsync(['--json', 'snapshots'], envA);
    expect(all.json.snapshots.map((s: any) => s.host).sort()).toEqual(['web1', 'web1', 'web2']);
    const onlyB = await cliAsync(['--json', 'snapshots', '--host', 'web2'], envA);
    expect(onlyB.json.snapshots.length).toBe(1);
    expect(onlyB.json.snapshots[0].id).toBe(b.json.snapshot_id);

    const check = await cliAsync(['--json', 'check', '--read-data'], envB);
    expect(check.code, check.stderr + check.stdout).toBe(0);

    // each host restores its own latest snapshot (from the other host's machine, even)
    const tA = path.join(base, 'restoreA');
    const tB = path.join(base, 'restoreB');
    const rA = await cliAsync(['--json', 'restore', a.json.snapshot_id, '--target', tA], envB);
    const rB = await cliAsync(['--json', 'restore', 'latest', '--host', 'web2', '--target', tB], envA);
    expect(rA.code, rA.stderr).toBe(0);
    expect(rB.code, rB.stderr).toBe(0);
    expectSameTree(srcA, path.join(tA, srcA));
    expectSameTree(srcB, path.join(tB, srcB));
  });

  it('uploads with Object Lock retention when asked, and not for lock objects', async () => {
    const repo = 's3://bkt-main/locked';
    const src = path.join(base, 'src-locked');
    write(`${src}/f.txt`, 'keep me');
    const env = s3Env(proxy.url, repo, path.join(base, 'cache-locked'));
    const init_env = await cliAsync(['init'], env);
    expect(init_env.code, init_env.stderr).toBe(0);
    proxy.resetCounts();
    const first = await cliAsync(['--json', '--object-lock-days', '30', 'snapshot', src], env);
    expect(first.code, first.stderr).toBe(0);
    const puts = proxy.log.filter((x) => x.method === 'PUT');
    const locked = puts.filter((x) => x.headers['x-amz-object-lock-mode'] === 'COMPLIANCE');
    expect(locked.some((x) => x.key.includes('/data/'))).toBe(true);
    expect(locked.some((x) => x.key.includes('/snapshots/'))).toBe(true);
    expect(puts.filter((x) => x.key.includes('/locks/')).every((x) => x.headers['x-amz-object-lock-mode'] === undefined)).toBe(true);
    const bad = await cliAsync(['--object-lock-days', 'soon', 'snapshots'], env);
    expect(bad.code).not.toBe(0);
    const local = await cliAsync(['--repo', path.join(base, 'local-repo'), '--object-lock-days', '3', 'snapshots'], env);
    expect(local.code).toBe(1);
    expect(local.stderr).toMatch(/needs an S3 repository/);

    // forget + prune never delete retained objects early
    write(`${src}/f.txt`, 'changed, and the old content is garbage now');
    const second = await cliAsync(['--json', '--object-lock-days', '30', 'snapshot', src], env);
    expect(second.code, second.stderr).toBe(0);
    proxy.resetCounts();
    const fg = await cliAsync(['--json', 'forget', '--keep-last', '1', '--prune'], env);
    expect(fg.code, fg.stderr).toBe(0);
    expect(fg.json.retained.map((r: any) => r.id)).toEqual([first.json.snapshot_id]);
    const deletes = proxy.log.filter((x) => x.method === 'DELETE' && /\/(data|index|snapshots)\//.test(x.key));
    expect(deletes).toEqual([]);
    const after = await cliAsync(['--json', 'check', '--read-data'], env);
    expect(after.code, after.stderr + after.stdout).toBe(0);
  });
  it('locks over S3: a live exclusive lock blocks a snapshot; a stale one is ignored and removed by unlock', async () => {
    const repo = 's3://bkt-main/locking';
    const src = path.join(base, 'src-locking');
    write(`${src}/f.txt`, 'x');
    const env = s3Env(proxy.url, repo, path.join(base, 'cache-locking'));
    const init_env = await cliAsync(['init'], env);
    expect(init_env.code, init_env.stderr).toBe(0);
    Object.assign(process.env, S3_CREDENTIALS);
    const store = S3Store.fromUrl(repo, { s3Endpoint: server.url });
    const lock = (id: string, refreshed: Date) =>
      Buffer.from(
        JSON.stringify({
          id,
          exclusive: true,
          host: 'other-host',
          pid: 1,
          operation: 'prune',
          created: refreshed.toISOString(),
          refreshed: refreshed.toISOString(),
        }),
      );
    await store.put('locks/live1', lock('live1', new Date()));
    const blocked = await cliAsync(['--json', 'snapshot', src], env);
    expect(blocked.code).toBe(4);
    expect(blocked.stderr).toMatch(/locked.*prune.*other-host/);
    await store.delete('locks/live1');
    const threeHoursAgo = new Date(Date.now() - 3 * 3600_000);
    await store.put('locks/stale1', lock('stale1', threeHoursAgo));
    // Staleness is judged by the store's clock (the object's Last-Modified, issue 15), not by the
    // times a lock claims: age the object itself, as if its holder stopped refreshing 3 h ago.
    fs.utimesSync(path.join(server.dir, 'bkt-main', 'locking', 'locks', 'stale1._S3rver_object'), threeHoursAgo, threeHoursAgo);
    await store.put('locks/garbage', Buffer.from('{}')); // not a lock any process wrote: stale too
    const ok = await cliAsync(['--json', 'snapshot', src], env);
    expect(ok.code, ok.stderr).toBe(0);
    const un = await cliAsync(['--json', 'unlock'], env);
    expect(un.code, un.stderr).toBe(0);
    expect(un.json).toEqual({ removed: 2, live: [] });
    const left: string[] = [];
    for await (const o of store.list('locks/')) left.push(o.key);
    expect(left).toEqual([]); // the snapshot released its own lock too
    await store.close();
  });
});
