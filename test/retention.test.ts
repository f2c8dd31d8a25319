import { describe, it, expect } from 'vitest';
import * as path from 'node:path';
import { applyPolicy, parseDuration, DEFAULT_POLICY, type RetentionItem, type RetentionPolicy } from '../src/maintain/policy.js';
import { planForget } from '../src/maintain/forget.js';
import type { SnapshotRow } from '../src/catalog/catalog.js';
import { cli, repoEnv, tmpDir, write } from './helpers.js';

// Synthetic snapshot times across five months (UTC). Letters are ids; the comment is the ISO week.
const SNAPS: [string, string, string[]?][] = [
  ['A', '2026-07-15T03:00:00Z'], // W29
  ['B', '2026-07-31T19:00:00Z'], // W31
  ['C', '2026-08-10T03:00:00Z'], // W33
  ['D', '2026-08-31T11:00:00Z', ['pre-upgrade']], // W36
  ['E', '2026-09-01T03:00:00Z'], // W36
  ['F', '2026-09-20T19:00:00Z'], // W38
  ['G', '2026-09-30T23:00:00Z'], // W40 (still September in UTC)
  ['H', '2026-10-05T03:00:00Z'], // W41
  ['I', '2026-10-31T11:00:00Z'], // W44 Sat
  ['J', '2026-11-01T03:00:00Z'], // W44 Sun
  ['K', '2026-11-02T03:00:00Z'], // W45
  ['L', '2026-11-02T11:00:00Z'], // W45
  ['M', '2026-11-02T19:00:00Z'], // W45
  ['N', '2026-11-08T19:00:00Z'], // W45 Sun
  ['O', '2026-11-09T03:00:00Z'], // W46
  ['P', '2026-11-10T03:00:00Z'], // W46
  ['Q', '2026-11-10T11:00:00Z'], // W46
  ['R', '2026-11-10T19:00:00Z'], // W46, newest
];
const items: RetentionItem[] = SNAPS.map(([id, time, tags]) => ({ id, time, tags: tags ?? [] }));

// policy -> the ids it keeps (everything else goes), worked out by hand.
const TABLE: [string, RetentionPolicy, string][] = [
  ['default: all within 7d of newest + 4 weekly', DEFAULT_POLICY, 'HJNOPQR'],
  ['daily 3, weekly 2, monthly 3', { daily: 3, weekly: 2, monthly: 3 }, 'GINOR'],
  ['last 2 + tag pre-upgrade', { last: 2, tags: ['pre-upgrade'] }, 'DQR'],
  ['hourly 2', { hourly: 2 }, 'QR'],
  ['yearly 1', { yearly: 1 }, 'R'],
  ['monthly 5', { monthly: 5 }, 'BDGIR'],
  ['weekly 6', { weekly: 6 }, 'FGHJNR'],
  ['within 40h', { withinMs: 40 * 3600_000 }, 'OPQR'],
  ['within 36h', { withinMs: 36 * 3600_000 }, 'PQR'],
  ['daily 1, within 1d', { daily: 1, withinMs: 86400_000 }, 'PQR'],
];

describe('retention policy (pure)', () => {
  for (const [name, policy, keep] of TABLE) {
    it(`keeps ${keep} for ${name}`, () => {
      const d = applyPolicy(items, policy);
      expect(
        d.keep
          .map((k) => k.item.id)
          .sort()
          .join(''),
      ).toBe(keep);
      expect(
        d.remove
          .map((k) => k.item.id)
          .sort()
          .join(''),
      ).toBe(
        SNAPS.map((s) => s[0])
          .filter((id) => !keep.includes(id))
          .join(''),
      );
      for (const r of d.remove) expect(r.reasons).toEqual(['no keep rule matched']);
    });
  }

  it('explains each kept snapshot', () => {
    const d = applyPolicy(items, DEFAULT_POLICY);
    const why = Object.fromEntries(d.keep.map((k) => [k.item.id, k.reasons.join('; ')]));
    expect(why.R).toBe('weekly #1 (2026-W46); within 7d of the newest');
    expect(why.J).toBe('weekly #3 (2026-W44)');
    expect(why.P).toBe('within 7d of the newest');
  });

  it('uses ISO weeks across a year boundary', () => {
    const s = [
      { id: 'a', time: '2026-12-28T03:00:00Z', tags: [] }, // 2026-W53
      { id: 'b', time: '2027-01-02T03:00:00Z', tags: [] }, // still 2026-W53
      { id: 'c', time: '2027-01-04T03:00:00Z', tags: [] }, // 2027-W01
    ];
    expect(applyPolicy(s, { weekly: 2 }).keep.map((k) => k.item.id)).toEqual(['c', 'b']);
    expect(applyPolicy(s, { monthly: 2 }).keep.map((k) => k.item.id)).toEqual(['c', 'a']);
    expect(applyPolicy(s, { weekly: 1 }).keep[0].reasons[0]).toBe('weekly #1 (2027-W01)');
  });

  it('measures "within" from the newest snapshot, not the clock', () => {
    // Backups stopped a year ago: a 7-day rule must not expire them all.
    const old = [
      { id: 'x', time: '2025-01-01T00:00:00Z', tags: [] },
      { id: 'y', time: '2025-01-05T00:00:00Z', tags: [] },
    ];
    expect(applyPolicy(old, { withinMs: 7 * 86400_000 }).remove).toEqual([]);
  });

  it('parses durations', () => {
    expect(parseDuration('7d')).toBe(7 * 86400_000);
    expect(parseDuration('36h')).toBe(36 * 3600_000);
    expect(parseDuration('2w')).toBe(14 * 86400_000);
    expect(parseDuration('1y6m')).toBe(365 * 86400_000 + 180 * 86400_000);
    expect(parseDuration('90min')).toBe(90 * 60_000);
    for (const bad of ['', '7', 'd', '7x', '-1d', '0d']) expect(() => parseDuration(bad), bad).toThrow();
  });

  it('refuses a policy that keeps nothing, and a group that would lose every snapshot', () => {
    const rows = items.map((i, n) => ({
      ...i,
      seq: n,
      lineage: 1,
      host: 'h',
      paths: ['/home'],
      tree: '',
      parent: null,
      record: {},
    })) as SnapshotRow[];
    expect(() => planForget(rows, {})).toThrow(/no keep rule/);
    expect(() => planForget(rows, { tags: ['nope'] })).toThrow(/refusing to remove all 18 snapshots of host h/);
    const other = rows.map((r) => ({ ...r, id: r.id + '2', host: 'h2' }));
    const groups = planForget([...rows, ...other], { last: 1 });
    expect(groups.map((g) => [g.host, g.keep.length, g.remove.length])).toEqual([
      ['h', 1, 17],
      ['h2', 1, 17],
    ]);
  });
});

describe('snapfill forget', () => {
  it('shows what goes and why, forgets per group, and refuses to empty a group', () => {
    const base = tmpDir();
    const env = repoEnv(base);
    const src = path.join(base, 'src');
    write(path.join(src, 'f'), 'x');
    expect(cli(['init'], env).code).toBe(0);
    const times = ['2026-09-01T03:00:00Z', '2026-10-01T03:00:00Z', '2026-11-01T03:00:00Z', '2026-11-01T11:00:00Z', '2026-11-02T03:00:00Z'];
    for (const t of times) {
      write(path.join(src, 'f'), t);
      expect(cli(['snapshot', src, '--time', t, '-q'], env).code).toBe(0);
    }
    write(path.join(src, 'other'), 'y');
    expect(cli(['snapshot', path.join(src, 'other'), '--time', '2026-01-01T00:00:00Z', '-q'], env).code).toBe(0);

    const dry = cli(['--json', 'forget', '--keep-daily', '2', '--keep-monthly', '2', '--dry-run'], env);
    expect(dry.code).toBe(0);
    expect(dry.json.dry_run).toBe(true);
    const main = dry.json.groups.find((g: any) => g.paths[0] === src);
    expect(main.keep.map((k: any) => k.time)).toEqual(['2026-11-02T03:00:00.000Z', '2026-11-01T11:00:00.000Z', '2026-10-01T03:00:00.000Z']);
    expect(main.remove.map((k: any) => [k.time, k.reasons[0]])).toEqual([
      ['2026-11-01T03:00:00.000Z', 'no keep rule matched'],
      ['2026-09-01T03:00:00.000Z', 'no keep rule matched'],
    ]);
    const human = cli(['forget', '--keep-daily', '2', '--keep-monthly', '2', '--dry-run'], env);
    expect(human.stdout).toMatch(/would remove [0-9a-f]{8}\s+2026-09-01T03:00:00.000Z\s+no keep rule matched/);
    expect(cli(['--json', 'snapshots'], env).json.snapshots).toHaveLength(6);

    const refused = cli(['forget', '--keep-tag', 'nothing-has-this'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/refusing to remove all/);
    expect(cli(['--json', 'snapshots'], env).json.snapshots).toHaveLength(6);

    const real = cli(['--json', 'forget', '--keep-daily', '2', '--keep-monthly', '2'], env);
    expect(real.code).toBe(0);
    expect(real.json.removed).toHaveLength(2);
    const left = cli(['--json', 'snapshots'], env).json.snapshots.map((s: any) => s.time);
    expect(left).toEqual(['2026-01-01T00:00:00.000Z', '2026-10-01T03:00:00.000Z', '2026-11-01T11:00:00.000Z', '2026-11-02T03:00:00.000Z']);
  });
});
