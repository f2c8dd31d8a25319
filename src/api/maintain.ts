import { loadRetention } from '../config/config.js';
import { findConfigFile } from '../config/settings.js';
import { forget, pruneSession, type ForgetReport } from '../maintain/forget.js';
import { DEFAULT_POLICY, formatDuration, policyIsEmpty, type RetentionPolicy } from '../maintain/policy.js';
import type { PruneOptions, PruneReport } from '../maintain/prune.js';
import type { Session } from './session.js';

export { parseDuration } from '../maintain/policy.js';
export { parseGrace } from '../maintain/prune.js';

export interface ChosenPolicy {
  policy: RetentionPolicy;
  /** Where it came from: the caller's rules, the config file, or the built-in default. */
  from: 'options' | 'config' | 'default';
  file?: string;
}

/**
 * The retention policy to apply: the caller's keep rules when it gave any, else the config
 * file's (`configFile`, else SNAPFILL_CONFIG, else /etc/snapfill/config.json when it exists), else the default.
 */
export function choosePolicy(given: RetentionPolicy, configFile?: string): ChosenPolicy {
  if (!policyIsEmpty(given)) return { policy: given, from: 'options' };
  const ref = findConfigFile(configFile);
  if (ref) return { policy: loadRetention(ref.file), from: 'config', file: ref.file };
  return { policy: { ...DEFAULT_POLICY }, from: 'default' };
}

/** A policy in words: "all within 7d, 4 weekly". */
export function describePolicy(p: RetentionPolicy): string {
  const parts: string[] = [];
  if (p.withinMs) parts.push(`all within ${formatDuration(p.withinMs)}`);
  for (const k of ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const) if (p[k]) parts.push(`${p[k]} ${k}`);
  if (p.tags?.length) parts.push(`tags ${p.tags.join(',')}`);
  return parts.join(', ');
}

export interface ForgetSnapshotsOptions {
  policy: RetentionPolicy;
  dryRun?: boolean;
  host?: string;
  /** Prune afterwards to free the space (never on a dry run). */
  prune?: boolean;
  repackThreshold?: number;
  /** With prune: time between marking a pack as garbage and deleting it (ms, default 24 h). */
  graceMs?: number;
  onProgress?: (msg: string) => void;
}

/** Forget by policy, then prune when asked: the two steps `forget --prune` runs. */
export async function forgetSnapshots(s: Session, o: ForgetSnapshotsOptions): Promise<ForgetReport & { prune: PruneReport | null }> {
  const f = await forget(s, { policy: o.policy, dryRun: o.dryRun, host: o.host, onProgress: o.onProgress });
  let pr: PruneReport | null = null;
  if (o.prune && !o.dryRun)
    pr = await pruneSession(s, { repackThreshold: o.repackThreshold, graceMs: o.graceMs, onProgress: o.onProgress });
  return { ...f, prune: pr };
}

/** Frees the space no snapshot uses: marks it, and deletes what an earlier run marked (maintenance lock; snapshots run on). */
export async function pruneRepository(s: Session, o: PruneOptions): Promise<PruneReport> {
  return pruneSession(s, o);
}
