import { display, type RawPath } from '../util/rawpath.js';
import type { ItemResult, OutcomeCounts, RestoreMode } from './protocol.js';

export interface RestoreProgress {
  phase: 'plan' | 'content' | 'links' | 'delete' | 'metadata';
  entries: number;
  files: number;
  bytes: number;
  plannedFiles: number;
  plannedBytes: number;
}

export interface RestoreAction {
  path: string;
  action: string;
  bytes?: number;
  reason?: string;
}

export interface RestoreResult {
  snapshot_id: string;
  mode: RestoreMode;
  target: string;
  dry_run: boolean;
  files_restored: number;
  dirs_created: number;
  files_skipped: number;
  skipped_newer: string[];
  metadata_fixed: number;
  deleted: number;
  bytes_written: number;
  planned: Record<string, { count: number; bytes: number }>;
  errors: { path: string; message: string }[];
  /** The errors grouped by cause, biggest group first: ~800 EACCES lines of a non-root restore say one thing. */
  error_groups: ErrorGroup[];
  actions?: RestoreAction[];
  duration_s: number;
}

/** Errors of one cause: `code` is the errno name when the message starts with one (EACCES), else null. */
export interface ErrorGroup {
  code: string | null;
  /** What the cause means, in words ("permission denied"), or the message itself. */
  cause: string;
  count: number;
  /** The first path in error, and up to EXAMPLES paths in all. */
  first: string;
  examples: string[];
}

const CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  ELOOP: 'a symbolic link is in the way',
  EEXIST: 'already exists',
  ENAMETOOLONG: 'name too long',
  EIO: 'input/output error',
};
const EXAMPLES = 3;

/** Groups errors by errno code (or by the whole message when it names none), biggest group first. */
export function groupErrors(errors: { path: string; message: string }[]): ErrorGroup[] {
  const groups = new Map<string, ErrorGroup>();
  for (const e of errors) {
    const code = /^(E[A-Z0-9]+)\b/.exec(e.message)?.[1] ?? null;
    const key = code ?? e.message;
    const g = groups.get(key);
    if (g) {
      g.count++;
      if (g.examples.length < EXAMPLES) g.examples.push(e.path);
    } else groups.set(key, { code, cause: code ? (CAUSES[code] ?? e.message) : e.message, count: 1, first: e.path, examples: [e.path] });
  }
  return [...groups.values()].sort((a, b) => b.count - a.count);
}

/**
 * What a restore by a user other than root cannot do, said once before it starts instead of
 * being discovered as hundreds of EACCES lines; null for root.
 */
export function nonRootRestoreNote(uid: number | undefined): string | null {
  if (uid === undefined || uid === 0) return null;
  return (
    `note: restoring as uid ${uid}, not root: restored files belong to this user (the snapshot's owners and groups ` +
    `are not set), and paths this user may not write (other users' files and directories) fail with "permission denied"; ` +
    `errors are counted by cause at the end (--json lists every path)`
  );
}

const MAX_LISTED_SKIPS = 10000;
const PROGRESS_EVERY_MS = 250;

/**
 * What a restore counts and reports: the result's counters, the plan's per-action notes, the
 * dry run's action list, errors by path, progress, and the directories whose metadata is set
 * at the end (created by this run, or written into in a mode that restores times).
 */
export class Tally {
  readonly res: RestoreResult;
  readonly progress: RestoreProgress = { phase: 'plan', entries: 0, files: 0, bytes: 0, plannedFiles: 0, plannedBytes: 0 };
  readonly createdDirs = new Set<RawPath>();
  readonly touchedDirs = new Set<RawPath>();
  private lastProgress = 0;
  private readonly started = Date.now();

  constructor(
    snapshotId: string,
    private readonly mode: RestoreMode,
    target: RawPath,
    dryRun: boolean,
    private readonly onProgress?: (p: RestoreProgress) => void,
  ) {
    this.res = {
      snapshot_id: snapshotId,
      mode,
      target: display(target),
      dry_run: dryRun,
      files_restored: 0,
      dirs_created: 0,
      files_skipped: 0,
      skipped_newer: [],
      metadata_fixed: 0,
      deleted: 0,
      bytes_written: 0,
      planned: {},
      errors: [],
      error_groups: [],
      duration_s: 0,
    };
    if (dryRun) this.res.actions = [];
  }

  error(p: RawPath, message: string): void {
    this.res.errors.push({ path: display(p), message });
  }

  /** Counts one planned action of `kind` (the dry run's summary table). */
  note(kind: string, bytes = 0): void {
    const e = (this.res.planned[kind] ??= { count: 0, bytes: 0 });
    e.count++;
    e.bytes += bytes;
  }

  /** Lists one action (dry run only). */
  action(p: RawPath, action: string, extra: { bytes?: number; reason?: string } = {}): void {
    this.res.actions?.push({
      path: display(p),
      action,
      ...(extra.bytes ? { bytes: extra.bytes } : {}),
      ...(extra.reason ? { reason: extra.reason } : {}),
    });
  }

  /** Adds what a worker counted itself (restore/outcomes.ts). */
  merge(c: OutcomeCounts): void {
    for (const [kind, n] of Object.entries(c.notes)) {
      const e = (this.res.planned[kind] ??= { count: 0, bytes: 0 });
      e.count += n.count;
      e.bytes += n.bytes;
    }
    this.res.files_restored += c.restored + c.created;
    this.res.bytes_written += c.restoredBytes;
    this.res.files_skipped += c.skipped;
    this.res.metadata_fixed += c.metadataFixed;
    this.progress.entries += c.entries;
    this.progress.files += c.restored;
    this.progress.bytes += c.restoredBytes;
  }

  skippedNewer(p: RawPath): void {
    if (this.res.skipped_newer.length < MAX_LISTED_SKIPS) this.res.skipped_newer.push(display(p));
  }

  /** A file written (`bytes` of content) or linked (0). */
  restored(bytes: number): void {
    this.res.files_restored++;
    this.res.bytes_written += bytes;
    this.progress.files++;
    this.progress.bytes += bytes;
  }

  /** The outcome of one content write. */
  written(p: RawPath, bytes: number, r: ItemResult): void {
    if (!r.ok) this.error(p, r.msg ?? 'write failed');
    else if (r.skipped) {
      this.res.files_skipped++;
      if (r.msg?.includes('after the snapshot')) this.skippedNewer(p);
    } else {
      this.restored(bytes);
      this.tick();
    }
  }

  /** Do writes into existing directories move their times back (modes that restore metadata)? */
  get restoresDirTimes(): boolean {
    return this.mode !== 'missing' && this.mode !== 'metadata';
  }

  /** An existing directory this thread wrote into. */
  touched(rel: RawPath): void {
    if (!this.createdDirs.has(rel) && this.restoresDirTimes) this.touchedDirs.add(rel);
  }

  /** What a worker batch created, and the existing directories it wrote into. */
  noteDirs(reply: { createdDirs: string[]; touchedDirs: string[] }): void {
    for (const d of reply.createdDirs) this.createdDirs.add(d);
    if (!this.restoresDirTimes) return;
    for (const d of reply.touchedDirs) this.touchedDirs.add(d);
  }

  phase(p: RestoreProgress['phase']): void {
    this.progress.phase = p;
  }

  tick(force = false): void {
    if (!this.onProgress) return;
    const now = Date.now();
    if (!force && now - this.lastProgress < PROGRESS_EVERY_MS) return;
    this.lastProgress = now;
    this.onProgress({ ...this.progress });
  }

  finish(): RestoreResult {
    this.res.duration_s = (Date.now() - this.started) / 1000;
    this.res.error_groups = groupErrors(this.res.errors);
    return this.res;
  }
}
