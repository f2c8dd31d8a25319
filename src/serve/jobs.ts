/**
 * Restores started from the page. A restore is always planned first (a dry run of the very
 * options it will run with, the snapshot pinned to the id the plan used); running it names the
 * plan, so what runs is what the tech saw. One restore at a time per target: restores into
 * the same target root share one crash journal (restore/journal.ts), and two writers in one
 * tree would fight; a second one is refused with the reason (409). Within one process a
 * restore, dry or not, also keeps its plan database under the process id (restore/restorer.ts),
 * so this console runs one restore or preview at a time in all: a preview waits for another
 * preview, and is refused while a restore runs. Every run is logged: who (session label,
 * peer), when, what, result.
 */
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  display,
  normalizeAbs,
  fromUser,
  pathIsUnder,
  restoreSnapshot,
  type JsonLog,
  type RestoreProgress,
  type RestoreSnapshotOptions,
  type RestoreSnapshotResult,
  type Session,
} from '../api/index.js';
import type { ConsoleSession } from './auth.js';
import { HttpError, type ConsoleMode } from './validate.js';

export interface RestoreRequest {
  snapshot: string;
  paths: string[];
  account?: string;
  mode: ConsoleMode;
  /** null: in place. */
  staging: string | null;
  delete: boolean;
  overwriteNewer: boolean;
  ownerByName: boolean;
}

export interface Plan {
  id: string;
  req: RestoreRequest;
  /** The snapshot the dry run used: the run uses this id, even when `latest` has moved since. */
  snapshotId: string;
  target: string | null;
  /** Live paths the restore writes (target + each root). */
  destinations: string[];
  created: number;
  session: string;
}

export interface Job {
  id: string;
  plan: Plan;
  who: { session: string; peer: string };
  started: string;
  state: 'running' | 'done' | 'failed';
  progress: RestoreProgress | null;
  result: RestoreSummary | null;
  error: string | null;
  finished: string | null;
}

const SHOW = 200;

/** What the page shows of a restore result: the counts and the first paths of each list. */
export interface RestoreSummary {
  snapshot: { id: string; time: string; host: string };
  mode: string;
  target: string;
  dry_run: boolean;
  files_restored: number;
  dirs_created: number;
  files_skipped: number;
  metadata_fixed: number;
  deleted: number;
  bytes_written: number;
  planned: Record<string, { count: number; bytes: number }>;
  skipped_newer: { count: number; first: string[] };
  deletes: { count: number; first: string[] };
  errors: { count: number; first: { path: string; message: string }[] };
  duration_s: number;
}

export function summarize(r: RestoreSnapshotResult): RestoreSummary {
  const deletes = (r.actions ?? []).filter((a) => a.action === 'delete').map((a) => a.path);
  return {
    snapshot: { id: r.snapshot.id, time: r.snapshot.time, host: r.snapshot.host },
    mode: r.mode,
    target: r.target,
    dry_run: r.dry_run,
    files_restored: r.files_restored,
    dirs_created: r.dirs_created,
    files_skipped: r.files_skipped,
    metadata_fixed: r.metadata_fixed,
    deleted: r.deleted,
    bytes_written: r.bytes_written,
    planned: r.planned,
    skipped_newer: { count: r.skipped_newer.length, first: r.skipped_newer.slice(0, SHOW) },
    deletes: { count: deletes.length, first: deletes.slice(0, SHOW) },
    errors: { count: r.errors.length, first: r.errors.slice(0, SHOW) },
    duration_s: r.duration_s,
  };
}

const PLAN_TTL_MS = 30 * 60_000;
const KEEP_JOBS = 50;

export class RestoreJobs {
  private readonly plans = new Map<string, Plan>();
  readonly jobs = new Map<string, Job>();
  /** Previews, one after the other. */
  private previewing: Promise<unknown> = Promise.resolve();
  private previews = 0;

  constructor(
    private readonly o: {
      stagingRoot: string;
      accountsRoot: string;
      log: JsonLog;
      openSession: <T>(fn: (s: Session) => Promise<T>) => Promise<T>;
    },
  ) {}

  /** The library options for a request: staging names become directories under the staging root. */
  private options(req: RestoreRequest, snapshot: string, dryRun: boolean): RestoreSnapshotOptions {
    return {
      snapshot,
      paths: req.paths,
      account: req.account,
      accountsRoot: this.o.accountsRoot,
      mode: req.mode,
      target: req.staging === null ? undefined : path.join(this.o.stagingRoot, req.staging),
      delete: req.delete,
      overwriteNewer: req.overwriteNewer,
      ownerByName: req.ownerByName,
      dryRun,
    };
  }

  private destinations(req: RestoreRequest, target: string | null): string[] {
    const roots = [...req.paths];
    if (req.account !== undefined) roots.push(`${this.o.accountsRoot}/${req.account}`);
    if (!roots.length) roots.push('/');
    return roots.map((r) => display(normalizeAbs(fromUser((target ?? '') + (r.startsWith('/') ? r : '/' + r)))));
  }

  /** A dry run with exactly the options the run will use; kept for PLAN_TTL_MS under a new id. */
  async plan(req: RestoreRequest, who: ConsoleSession): Promise<{ plan: Plan; summary: RestoreSummary }> {
    this.expire();
    this.refuseWhileRunning();
    this.previews++;
    const turn = this.previewing.then(() => {
      this.refuseWhileRunning();
      return this.o.openSession((s) => restoreSnapshot(s, this.options(req, req.snapshot, true)));
    });
    this.previewing = turn.catch(() => {});
    const res = await turn.finally(() => this.previews--);
    const target = req.staging === null ? null : path.join(this.o.stagingRoot, req.staging);
    const plan: Plan = {
      id: randomBytes(12).toString('hex'),
      req,
      snapshotId: res.snapshot.id,
      target,
      destinations: this.destinations(req, target),
      created: Date.now(),
      session: who.id,
    };
    this.plans.set(plan.id, plan);
    return { plan, summary: summarize(res) };
  }

  /** Starts a planned restore; refuses (409) while another one writes into the same target or tree. */
  start(planId: string, who: ConsoleSession): Job {
    this.expire();
    const plan = this.plans.get(planId);
    if (!plan || plan.session !== who.id) throw new HttpError(404, 'no such restore plan (plans last 30 minutes; preview again)');
    this.refuseWhileRunning(plan);
    if (this.previews) throw new HttpError(409, 'a restore preview is being computed; start again in a moment');
    this.plans.delete(planId);
    const job: Job = {
      id: randomBytes(12).toString('hex'),
      plan,
      who: { session: who.label, peer: who.peer },
      started: new Date().toISOString(),
      state: 'running',
      progress: null,
      result: null,
      error: null,
      finished: null,
    };
    this.jobs.set(job.id, job);
    const what = {
      job: job.id,
      who: job.who.session,
      peer: job.who.peer,
      snapshot: plan.snapshotId,
      paths: plan.req.paths,
      account: plan.req.account ?? null,
      target: plan.target ?? 'in place',
      mode: plan.req.mode,
      delete: plan.req.delete,
      overwrite_newer: plan.req.overwriteNewer,
    };
    this.o.log.write('info', 'console restore started', what);
    void this.run(job, what);
    return job;
  }

  private async run(job: Job, what: Record<string, unknown>): Promise<void> {
    try {
      const res = await this.o.openSession((s) =>
        restoreSnapshot(s, {
          ...this.options(job.plan.req, job.plan.snapshotId, false),
          onProgress: (p) => {
            job.progress = p;
          },
        }),
      );
      job.result = summarize(res);
      job.state = 'done';
      job.finished = new Date().toISOString();
      this.o.log.write(res.errors.length ? 'warn' : 'info', 'console restore finished', {
        ...what,
        status: res.errors.length ? 'partial' : 'success',
        files_restored: res.files_restored,
        bytes_written: res.bytes_written,
        metadata_fixed: res.metadata_fixed,
        deleted: res.deleted,
        errors: res.errors.length,
        duration_s: res.duration_s,
      });
    } catch (e) {
      job.state = 'failed';
      job.error = (e as Error).message;
      job.finished = new Date().toISOString();
      this.o.log.write('error', 'console restore failed', { ...what, status: 'failed', error: job.error });
    }
  }

  /** 409 while a restore runs, saying which one (and whether it writes into the same tree as `plan`). */
  private refuseWhileRunning(plan?: Plan): void {
    const busy = [...this.jobs.values()].find((j) => j.state === 'running');
    if (!busy) return;
    const same = plan && this.conflicts(busy.plan, plan);
    throw new HttpError(
      409,
      `${same ? 'another restore is writing into the same place' : 'another restore is running (one at a time in this console)'}: ` +
        `${busy.plan.destinations.join(', ')}${busy.plan.target ? '' : ' (in place)'}, started ${busy.started} by ${busy.who.session} from ${busy.who.peer}; wait for it to finish`,
    );
  }

  /** Same target root (one journal), or one writes inside the other's tree. */
  private conflicts(a: Plan, b: Plan): boolean {
    if ((a.target ?? '/') === (b.target ?? '/')) return true;
    return a.destinations.some((x) => b.destinations.some((y) => pathIsUnder(x, y) || pathIsUnder(y, x)));
  }

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  running(): boolean {
    return [...this.jobs.values()].some((j) => j.state === 'running');
  }

  private expire(now = Date.now()): void {
    for (const [id, p] of this.plans) if (now - p.created > PLAN_TTL_MS) this.plans.delete(id);
    const done = [...this.jobs.values()].filter((j) => j.state !== 'running');
    for (const j of done.slice(0, Math.max(0, done.length - KEEP_JOBS))) this.jobs.delete(j.id);
  }
}
