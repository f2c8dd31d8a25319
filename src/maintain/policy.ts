/**
 * Retention decisions: which snapshots a policy keeps, and why. A pure function of the
 * snapshot times and tags, so it is tested against a table and `forget --dry-run` can
 * show exactly what a real run would do.
 *
 * Semantics follow restic's, which operators already know:
 * - `last N`: the N newest snapshots.
 * - `hourly/daily/weekly/monthly/yearly N`: walking from the newest snapshot back, the newest
 *   snapshot of each of the N most recent hours/days/... that have a snapshot.
 * - `within D`: every snapshot no older than D before the group's NEWEST snapshot. Relative
 *   to the newest snapshot, not to the clock, so a server whose backups stopped for a month
 *   does not see its whole history expire on the next run.
 * - `tags`: every snapshot carrying one of these tags.
 * Buckets use UTC so a decision never depends on the machine's time zone; weeks are ISO
 * weeks (Monday to Sunday).
 */
export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** Milliseconds. */
  withinMs?: number;
  tags?: string[];
}

/** The routine the users asked for: everything of the last 7 days, plus 4 weekly snapshots. */
export const DEFAULT_POLICY: RetentionPolicy = { withinMs: 7 * 86400_000, weekly: 4 };

export interface RetentionItem {
  id: string;
  time: string;
  tags: string[];
}

export interface RetentionDecision<T extends RetentionItem> {
  keep: { item: T; reasons: string[] }[];
  remove: { item: T; reasons: string[] }[];
}

export function policyIsEmpty(p: RetentionPolicy): boolean {
  return !p.last && !p.hourly && !p.daily && !p.weekly && !p.monthly && !p.yearly && !p.withinMs && !(p.tags && p.tags.length);
}

function isoWeek(d: Date): string {
  // ISO 8601: the week belongs to the year of its Thursday.
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = (t.getUTCDay() + 6) % 7; // Monday = 0
  t.setUTCDate(t.getUTCDate() - day + 3);
  const firstThursday = new Date(Date.UTC(t.getUTCFullYear(), 0, 4));
  const week = 1 + Math.round(((t.getTime() - firstThursday.getTime()) / 86400_000 - 3 + ((firstThursday.getUTCDay() + 6) % 7)) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

const BUCKETS: { key: keyof RetentionPolicy; label: string; of: (d: Date) => string }[] = [
  { key: 'hourly', label: 'hourly', of: (d) => d.toISOString().slice(0, 13) },
  { key: 'daily', label: 'daily', of: (d) => d.toISOString().slice(0, 10) },
  { key: 'weekly', label: 'weekly', of: isoWeek },
  { key: 'monthly', label: 'monthly', of: (d) => d.toISOString().slice(0, 7) },
  { key: 'yearly', label: 'yearly', of: (d) => d.toISOString().slice(0, 4) },
];

export function formatDuration(ms: number): string {
  const units: [string, number][] = [
    ['y', 365 * 86400_000],
    ['d', 86400_000],
    ['h', 3600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  let left = ms;
  let out = '';
  for (const [u, n] of units) {
    if (left >= n) {
      out += `${Math.floor(left / n)}${u}`;
      left %= n;
    }
  }
  return out || '0s';
}

/** Decides one group (same host + paths). Never returns an empty `keep` for a non-empty policy with time rules. */
export function applyPolicy<T extends RetentionItem>(items: T[], policy: RetentionPolicy): RetentionDecision<T> {
  const sorted = [...items].sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : a.id < b.id ? 1 : -1)); // newest first
  const reasons = new Map<T, string[]>(sorted.map((s) => [s, []]));
  if (policy.last) sorted.slice(0, policy.last).forEach((s, i) => reasons.get(s)!.push(`last #${i + 1}`));
  for (const b of BUCKETS) {
    const n = policy[b.key] as number | undefined;
    if (!n) continue;
    let seen = 0;
    let lastBucket: string | null = null;
    for (const s of sorted) {
      const bucket = b.of(new Date(s.time));
      if (bucket === lastBucket) continue;
      lastBucket = bucket;
      reasons.get(s)!.push(`${b.label} #${++seen} (${bucket})`);
      if (seen >= n) break;
    }
  }
  if (policy.withinMs && sorted.length) {
    const newest = Date.parse(sorted[0].time);
    for (const s of sorted)
      if (newest - Date.parse(s.time) <= policy.withinMs) reasons.get(s)!.push(`within ${formatDuration(policy.withinMs)} of the newest`);
  }
  if (policy.tags?.length) {
    for (const s of sorted) {
      const hit = s.tags.filter((t) => policy.tags!.includes(t));
      if (hit.length) reasons.get(s)!.push(`tag ${hit.join(',')}`);
    }
  }
  const out: RetentionDecision<T> = { keep: [], remove: [] };
  for (const s of sorted) {
    const r = reasons.get(s)!;
    if (r.length) out.keep.push({ item: s, reasons: r });
    else out.remove.push({ item: s, reasons: ['no keep rule matched'] });
  }
  return out;
}

/** Parses "7d", "36h", "2w", "1y6m" (m = months here, as in restic: 1y2m3d4h). */
export function parseDuration(s: string): number {
  const re = /(\d+)\s*(min|mo|[ywdhm])/gy;
  const src = s.trim();
  if (!src) throw new Error('empty duration');
  let ms = 0;
  let pos = 0;
  re.lastIndex = 0;
  for (let m = re.exec(src); m; m = re.exec(src)) {
    const n = Number(m[1]);
    const unit = m[2];
    ms +=
      n *
      (
        { y: 365 * 86400_000, mo: 30 * 86400_000, m: 30 * 86400_000, w: 7 * 86400_000, d: 86400_000, h: 3600_000, min: 60_000 } as Record<
          string,
          number
        >
      )[unit];
    pos = re.lastIndex;
  }
  if (pos !== src.length || ms <= 0) throw new Error(`"${s}" is not a duration (use e.g. 7d, 36h, 2w, 1y6m; m = months, min = minutes)`);
  return ms;
}
