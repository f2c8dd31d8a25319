// Where snapshot records are stored (issue 15): below a tag of their host
// (`snapshots/<tag>/<id>`), and the flat `snapshots/<id>` of older releases, which every command
// still reads. A routine sync reads the records of the hosts its catalog follows (and every flat
// one, as before); commands over every host read the others on demand.
import { describe, it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, describeTree, diffTrees, repoEnv, snapshotRecordFiles, tmpDir, write } from './helpers.js';

describe('snapshot record layout (issue 15)', () => {
  it('a repository of flat records (older releases) keeps working beside host-tagged ones: sync, snapshots, restore, forget, prune, check', () => {
    const base = tmpDir('snapfill-layout-');
    const env = (host: string, cache = host) => ({
      ...repoEnv(base),
      SNAPFILL_HOST: host,
      SNAPFILL_CACHE: path.join(base, `cache-${cache}`),
    });
    const src = (host: string) => path.join(base, 'src', host);
    for (const host of ['host-a', 'host-b']) {
      write(path.join(src(host), 'shared.txt'), 'the same on every host\n'.repeat(100));
      write(path.join(src(host), 'own.txt'), `only on ${host}\n`.repeat(100));
    }
    expect(cli(['init'], env('host-a')).code).toBe(0);
    const snap = (host: string) => {
      const r = cli(['--json', 'snapshot', src(host)], env(host));
      expect(r.code, r.stderr).toBe(0);
      return r.json.snapshot_id as string;
    };
    const a1 = snap('host-a');
    write(path.join(src('host-a'), 'own.txt'), 'changed on host-a\n');
    const a2 = snap('host-a');
    const b1 = snap('host-b');
    const repo = repoEnv(base).SNAPFILL_REPO;

    // Written below their host's tag: two tags, neither naming its host.
    const files = snapshotRecordFiles(repo);
    expect([...files.keys()].sort()).toEqual([a1, a2, b1].sort());
    const tagOf = (id: string) => path.basename(path.dirname(files.get(id)!));
    expect(tagOf(a1)).toMatch(/^[0-9a-f]{16}$/);
    expect(tagOf(a1)).toBe(tagOf(a2));
    expect(tagOf(b1)).not.toBe(tagOf(a1));

    // The layout of older releases: every record flat (same bytes, same id).
    for (const [id, f] of files) fs.renameSync(f, path.join(repo, 'snapshots', id));
    for (const id of [a1, b1]) fs.rmSync(path.join(repo, 'snapshots', tagOf(id)), { recursive: true, force: true });
    expect(fs.readdirSync(path.join(repo, 'snapshots')).sort()).toEqual([a1, a2, b1].sort());

    // A fresh catalog of host A reads the flat records as before: its own imported, B's a record.
    const s = cli(['--json', 'catalog', 'sync'], env('host-a', 'a-fresh'));
    expect(s.code, s.stderr).toBe(0);
    expect(s.json.snapshots_added).toBe(2);
    expect(s.json.remote_added).toBe(1);
    const listed = cli(['--json', 'snapshots'], env('host-a', 'a-fresh'));
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.json.snapshots.map((x: any) => x.id).sort()).toEqual([a1, a2, b1].sort());
    const restore = (host: string, id: string, of: string, cache: string) => {
      const target = path.join(base, 'out', `${id.slice(0, 8)}-${cache}`);
      const r = cli(['--json', 'restore', id, '--target', target], env(host, cache));
      expect(r.code, r.stderr).toBe(0);
      expect(diffTrees(describeTree(src(of)), describeTree(path.join(target, src(of))))).toEqual([]);
    };
    restore('host-a', b1, 'host-b', 'a-fresh'); // another host's flat record, imported on demand

    // A new snapshot is written tagged; both layouts side by side.
    write(path.join(src('host-a'), 'new.txt'), 'a third snapshot\n');
    const a3 = snap('host-a');
    expect(path.dirname(snapshotRecordFiles(repo).get(a3)!)).not.toBe(path.join(repo, 'snapshots'));
    expect(path.dirname(snapshotRecordFiles(repo).get(a2)!)).toBe(path.join(repo, 'snapshots'));
    const both = cli(['--json', 'snapshots'], env('host-b'));
    expect(both.json.snapshots.map((x: any) => x.id).sort()).toEqual([a1, a2, a3, b1].sort());

    // forget across hosts (a pruner of its own) removes flat and tagged records alike.
    const f = cli(['--json', 'forget', '--keep-last', '1', '--prune', '--grace', '0s'], env('pruner'));
    expect(f.code, f.stderr).toBe(0);
    expect([...f.json.removed].sort()).toEqual([a1, a2].sort());
    expect([...snapshotRecordFiles(repo).keys()].sort()).toEqual([a3, b1].sort());
    const p = cli(['--json', 'prune', '--grace', '0s'], env('pruner'));
    expect(p.code, p.stderr).toBe(0);
    const chk = cli(['--json', 'check', '--read-data'], env('host-a', 'checker'));
    expect(chk.code, chk.stderr).toBe(0);
    restore('fresh', a3, 'host-a', 'fresh');
    restore('fresh', b1, 'host-b', 'fresh');
    // Host A's own catalog followed the forget (flat records of its host vanish from its listing).
    const again = cli(['--json', 'snapshots', '--host', 'host-a'], env('host-a'));
    expect(again.json.snapshots.map((x: any) => x.id)).toEqual([a3]);
  }, 120_000);

  it('a routine sync does not read another host`s records; --host, `latest --host` and an id of that host read them on demand', () => {
    const base = tmpDir('snapfill-layout2-');
    const env = (host: string, cache = host) => ({
      ...repoEnv(base),
      SNAPFILL_HOST: host,
      SNAPFILL_CACHE: path.join(base, `cache-${cache}`),
    });
    const src = (host: string) => path.join(base, 'src', host);
    for (const host of ['host-a', 'host-b']) write(path.join(src(host), 'f.txt'), `${host}\n`);
    expect(cli(['init'], env('host-a')).code).toBe(0);
    const s0 = cli(['--json', 'snapshot', src('host-a')], env('host-a'));
    expect(s0.code, s0.stderr).toBe(0);
    const b1 = cli(['--json', 'snapshot', src('host-b')], env('host-b'));
    expect(b1.code, b1.stderr).toBe(0);
    const s = cli(['--json', 'catalog', 'sync'], env('host-a'));
    expect(s.code, s.stderr).toBe(0);
    expect(s.json.remote_added).toBe(0);
    expect(s.json.snapshots_added).toBe(0);
    // B's record is read when a command asks for B: `restore latest --host host-b`, or an id prefix.
    const target = path.join(base, 'out');
    const r = cli(['--json', 'restore', 'latest', '--host', 'host-b', '--target', target], env('host-a'));
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(target, src('host-b'), 'f.txt'), 'utf8')).toBe('host-b\n');
    const byId = cli(['--json', 'cat', b1.json.snapshot_id.slice(0, 10), path.join(src('host-b'), 'f.txt')], env('host-a', 'other'));
    expect(byId.code, byId.stderr).toBe(0);

    // A record moved below another host's tag is no host's to a sync: neither imported nor
    // listed (a sync of its host would never see it), and check names it.
    write(path.join(src('host-a'), 'f.txt'), 'second\n');
    const a2 = cli(['--json', 'snapshot', src('host-a')], env('host-a'));
    expect(a2.code, a2.stderr).toBe(0);
    const files = snapshotRecordFiles(repoEnv(base).SNAPFILL_REPO);
    const moved = path.join(path.dirname(files.get(b1.json.snapshot_id)!), a2.json.snapshot_id);
    fs.renameSync(files.get(a2.json.snapshot_id)!, moved);
    const fresh = cli(['--json', 'catalog', 'sync'], env('host-a', 'a-fresh'));
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.json.snapshots_added).toBe(1);
    const all = cli(['--json', 'snapshots'], env('host-a', 'a-fresh'));
    expect(all.json.snapshots.map((x: any) => x.id).sort()).toEqual([b1.json.snapshot_id, s0.json.snapshot_id].sort());
    expect(all.stderr).toMatch(/stored below another host's tag: ignored/);
    const mine = cli(['--json', 'ls', 'latest', src('host-a')], env('host-a', 'a-fresh'));
    expect(mine.code, mine.stderr).toBe(0);
    const chk = cli(['--json', 'check'], env('host-a', 'a-fresh'));
    expect(chk.code).toBe(1);
    expect(chk.json.errors.some((e: any) => e.path === `snapshot ${a2.json.snapshot_id}` && /another host's tag/.test(e.message))).toBe(
      true,
    );
  }, 60_000);
});
