import type { Command } from 'commander';
import { action, collect, progressLog, withSession } from './action.js';
import { humanBytes, info, printJson, type GlobalOpts } from './output.js';
import { choosePolicy, describePolicy, forgetSnapshots, parseDuration, parseGrace } from '../api/maintain.js';
import type { ChosenPolicy, PruneReport, RetentionPolicy } from '../api/index.js';

function count(flag: string) {
  return (v: string) => {
    if (!/^\d+$/.test(v)) throw new Error(`${flag}: expected a whole number, got "${v}"`);
    return Number(v);
  };
}

export function parseThreshold(v: string): number {
  const n = v.endsWith('%') ? Number(v.slice(0, -1)) / 100 : Number(v);
  if (!(n >= 0 && n <= 1)) throw new Error(`--repack-threshold: expected a share 0..1 or a percentage, got "${v}"`);
  return n;
}

export function printPruneReport(g: { quiet?: boolean; json?: boolean }, r: PruneReport): void {
  if (r.dry_run) {
    info(
      g,
      `would mark ${r.packs_marked} packs as garbage (${r.packs_repacked} of them after repacking their live blobs), ` +
        `freeing ${humanBytes(Math.max(0, r.bytes_freed))} once a later prune deletes them ` +
        `(${r.snapshots} snapshots use ${r.blobs_used} blobs; repository ${humanBytes(r.bytes_before)})`,
    );
    return;
  }
  info(
    g,
    `freed ${humanBytes(Math.max(0, r.bytes_freed))}: ${r.packs_deleted} marked packs deleted, ${r.orphan_packs_deleted} orphan packs removed; ` +
      `marked ${r.packs_marked} new (${r.packs_repacked} repacked into ${r.packs_written} new), ${r.packs_waiting} waiting for their grace period` +
      (r.packs_unmarked ? `, ${r.packs_unmarked} unmarked (used again)` : '') +
      ` (${r.snapshots} snapshots use ${r.blobs_used} blobs; repository ${humanBytes(r.bytes_before)} -> ${humanBytes(r.bytes_after)})`,
  );
  if (r.retained_kept.length) {
    const last = r.retained_kept.map((k) => k.until).sort()[r.retained_kept.length - 1];
    info(
      g,
      `${r.retained_kept.length} packs are under object-lock retention and were kept (the last until ${last}); a later prune deletes them`,
    );
  } else if (r.retained_skipped.length) info(g, `${r.retained_skipped.length} packs are still under object-lock retention and were kept`);
  if (r.retention_extended) info(g, `object-lock retention extended for ${r.retention_extended} packs live snapshots use`);
}

/** --grace: a duration (24h, 2d, 90min, 0s); SNAPFILL_PRUNE_GRACE gives the default. */
export function graceOption(v: string): number {
  try {
    return parseGrace(v);
  } catch (e) {
    throw new Error(`--grace: ${(e as Error).message}`, { cause: e });
  }
}

/** The grace given by flag, else SNAPFILL_PRUNE_GRACE, else the library's default. */
export function graceFromEnv(flag: number | undefined): number | undefined {
  if (flag !== undefined) return flag;
  const env = process.env.SNAPFILL_PRUNE_GRACE;
  if (!env) return undefined;
  try {
    return parseGrace(env);
  } catch (e) {
    throw new Error(`SNAPFILL_PRUNE_GRACE: ${(e as Error).message}`, { cause: e });
  }
}

export const GRACE_HELP =
  "with prune: time between marking unused data and deleting it, in the store's time (default 24h; e.g. 2d, 90min, 0s)";

function policySource(c: ChosenPolicy): string {
  return c.from === 'options' ? 'the command line' : c.from === 'config' ? `config ${c.file}` : 'the default policy';
}

type ForgetOutcome = Awaited<ReturnType<typeof forgetSnapshots>>;

function printForget(g: GlobalOpts, result: ForgetOutcome): void {
  for (const grp of result.groups) {
    info(
      g,
      `host ${grp.host}, paths ${grp.paths.join(' ')}: keep ${grp.keep.length}, ${result.dry_run ? 'would remove' : 'remove'} ${grp.remove.length}`,
    );
    for (const k of grp.keep) info(g, `  keep   ${k.id.slice(0, 8)}  ${k.time}  ${k.reasons.join('; ')}`);
    for (const r of grp.remove)
      info(g, `  ${result.dry_run ? 'would remove' : 'remove'} ${r.id.slice(0, 8)}  ${r.time}  ${r.reasons.join('; ')}`);
  }
  info(
    g,
    `${result.dry_run ? 'dry run: would remove' : 'removed'} ${result.removed.length} snapshots, kept ${result.kept}` +
      (result.retained.length ? `; ${result.retained.length} kept because of object-lock retention` : ''),
  );
  if (result.prune) printPruneReport(g, result.prune);
}

export function register(program: Command): void {
  program
    .command('forget')
    .description('remove snapshots by a retention policy (per host + source paths); data is freed by prune')
    .option('--keep-last <n>', 'keep the n newest snapshots', count('--keep-last'))
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours that have one', count('--keep-hourly'))
    .option('--keep-daily <n>', 'keep the newest snapshot of each of the last n days that have one', count('--keep-daily'))
    .option('--keep-weekly <n>', 'same per ISO week', count('--keep-weekly'))
    .option('--keep-monthly <n>', 'same per month', count('--keep-monthly'))
    .option('--keep-yearly <n>', 'same per year', count('--keep-yearly'))
    .option('--keep-within <duration>', 'keep every snapshot within this duration of the newest one (e.g. 7d, 36h, 2w, 1y6m)')
    .option('--keep-tag <tag>', 'keep every snapshot with this tag (repeatable)', collect, [])
    .option('--host <name>', "only apply the policy to this host's snapshots")
    .option('-n, --dry-run', 'show which snapshots would go and why; change nothing')
    .option('--prune', 'run prune afterwards to free the space')
    .option('--repack-threshold <share>', 'with --prune: repack packs with more than this share unused (default 0.25)', parseThreshold)
    .option('--grace <duration>', GRACE_HELP, graceOption)
    .addHelpText(
      'after',
      `
With no --keep-* option the policy comes from the config file when --config (or SNAPFILL_CONFIG)
is given, else the default: every snapshot within 7 days of the newest, plus 4 weekly.
Time buckets are UTC; weeks are ISO weeks. A group never loses all of its snapshots.

Examples:
  snapfill forget --dry-run
  snapfill forget --keep-within 7d --keep-weekly 4 --keep-monthly 6 --prune`,
    )
    .action(
      action(async (g, [opts]) => {
        const given: RetentionPolicy = {
          last: opts.keepLast,
          hourly: opts.keepHourly,
          daily: opts.keepDaily,
          weekly: opts.keepWeekly,
          monthly: opts.keepMonthly,
          yearly: opts.keepYearly,
          withinMs: opts.keepWithin ? parseDuration(opts.keepWithin) : undefined,
          tags: opts.keepTag.length ? opts.keepTag : undefined,
        };
        const chosen = choosePolicy(given, g.config);
        info(g, `policy (${policySource(chosen)}): ${describePolicy(chosen.policy)}`);
        const result = await withSession(g, {}, (s) =>
          forgetSnapshots(s, {
            policy: chosen.policy,
            dryRun: opts.dryRun,
            host: opts.host,
            prune: opts.prune,
            repackThreshold: opts.repackThreshold,
            graceMs: graceFromEnv(opts.grace),
            onProgress: progressLog(g),
          }),
        );
        if (g.json) {
          printJson(result);
          return;
        }
        printForget(g, result);
      }),
    );
}
