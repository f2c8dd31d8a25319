import { humanBytes } from './output.js';

/** A plain progress line this often when stderr is not a terminal (journald, cron mail, `tee`). */
export const LINE_INTERVAL_MS = 10_000;
/** A terminal's one updating line is redrawn at most this often. */
const TTY_REDRAW_MS = 250;
/** Exit status after Ctrl-C, as a shell reports a command killed by SIGINT (128 + 2). */
export const EXIT_INTERRUPTED = 130;

/**
 * How often the non-terminal mode prints: SNAPFILL_PROGRESS_INTERVAL_MS, read here in the CLI
 * only (the library never reads it), so a test can see a line without waiting 10 s.
 */
export function lineIntervalMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.SNAPFILL_PROGRESS_INTERVAL_MS);
  return Number.isFinite(v) && v > 0 ? v : LINE_INTERVAL_MS;
}

export interface ProgressOptions {
  quiet?: boolean;
  /** Whether stderr is a terminal (default: ask it). */
  tty?: boolean;
  /** Non-terminal mode: print a line this often (default lineIntervalMs()). */
  intervalMs?: number;
}

type Render = (elapsedS: number) => string;

/**
 * Progress on stderr. On a terminal: one line, redrawn in place (\r) and cleared at the end.
 * Otherwise: a plain line every `intervalMs`, so a log shows a long job is alive and how far
 * it got, without a line per file. With --quiet: nothing.
 */
export class Progress {
  readonly mode: 'tty' | 'lines' | 'off';
  private readonly start = Date.now();
  private readonly intervalMs: number;
  private render: Render | null = null;
  private last = 0;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private printedRender: Render | null = null;
  private onSigint: (() => void) | null = null;

  constructor(opts: ProgressOptions = {}) {
    const tty = opts.tty ?? Boolean(process.stderr.isTTY);
    this.mode = opts.quiet ? 'off' : tty ? 'tty' : 'lines';
    this.intervalMs = opts.intervalMs ?? lineIntervalMs();
  }

  /** The current state; `render` is called when a line is due, with the seconds since start. */
  update(render: Render, force = false): void {
    this.render = render;
    if (this.mode === 'lines') this.startTimer();
    if (this.mode !== 'tty') return;
    const now = Date.now();
    if (!force && now - this.last < TTY_REDRAW_MS) return;
    this.last = now;
    const line = render((now - this.start) / 1000);
    const width = process.stderr.columns || 100;
    process.stderr.write('\r' + line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length + 8)));
    this.dirty = true;
  }

  private startTimer(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // Only when something moved since the last line: a stalled job shows as silence in one place.
      if (!this.render || this.render === this.printedRender) return;
      this.printedRender = this.render;
      process.stderr.write(this.render((Date.now() - this.start) / 1000) + '\n');
    }, this.intervalMs);
    this.timer.unref();
  }

  /**
   * Ctrl-C while the job runs: say what was done and that running the same command again
   * finishes the job, then exit 130. Lasts until done().
   */
  onInterrupt(whatWasDone: () => string): void {
    if (this.onSigint) process.off('SIGINT', this.onSigint);
    this.onSigint = () => {
      this.done();
      process.stderr.write(`\ninterrupted: ${whatWasDone()}\n`);
      process.exit(EXIT_INTERRUPTED);
    };
    process.once('SIGINT', this.onSigint);
  }

  done(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.onSigint) process.off('SIGINT', this.onSigint);
    this.onSigint = null;
    if (this.mode === 'tty' && this.dirty) process.stderr.write('\r\x1b[K');
    this.dirty = false;
  }

  message(msg: string): void {
    if (this.mode === 'off') return;
    if (this.mode === 'tty' && this.dirty) {
      process.stderr.write('\r\x1b[K');
      this.dirty = false;
    }
    process.stderr.write(msg + '\n');
  }
}

export function rate(n: number, s: number): string {
  return s > 0 ? (n / s).toFixed(0) : '0';
}

/** Seconds as "45s", "3m05s", "2h10m". */
export function duration(s: number): string {
  if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.round(s)}s`;
}

/** Time left at the rate so far; "--" until there is a rate, or once the estimate is passed. */
export function eta(done: number, total: number, elapsedS: number): string {
  if (done <= 0 || total <= done) return '--';
  return duration((elapsedS / done) * (total - done));
}

export interface ProgressCounts {
  /** Files done so far, and the expected total (unknown: no total, percentage or ETA). */
  files: number;
  totalFiles?: number;
  bytes: number;
  totalBytes?: number;
  /** What the bytes are ("read", "written"). */
  bytesVerb: string;
  elapsedS: number;
  /** Which of the two the percentage and ETA follow (per-file cost dominates small files). */
  by?: 'files' | 'bytes';
}

/**
 * One progress line: "1234/5000 files (24.7%), 12.0 MiB/40.0 MiB written, 310 files/s, ETA 12s".
 * An estimate that turned out low (the tree grew) shows no total and "ETA --" rather than 104%.
 */
export function formatProgress(c: ProgressCounts): string {
  const by = c.by ?? 'files';
  const [done, total] = by === 'files' ? [c.files, c.totalFiles] : [c.bytes, c.totalBytes];
  const known = total !== undefined && total > 0 && done <= total;
  const files = c.totalFiles !== undefined && c.files <= c.totalFiles ? `${c.files}/${c.totalFiles} files` : `${c.files} files`;
  const bytes =
    c.totalBytes !== undefined && c.bytes <= c.totalBytes
      ? `${humanBytes(c.bytes)}/${humanBytes(c.totalBytes)} ${c.bytesVerb}`
      : `${humanBytes(c.bytes)} ${c.bytesVerb}`;
  const pct = known ? ` (${((100 * done) / total).toFixed(1)}%)` : '';
  const speed = `${rate(c.files, c.elapsedS)} files/s, ${humanBytes(c.elapsedS > 0 ? c.bytes / c.elapsedS : 0)}/s`;
  return `${files}${pct}, ${bytes}, ${speed}, ETA ${known ? eta(done, total, c.elapsedS) : '--'}`;
}

type RestoreProgress = import('../api/index.js').RestoreProgress;

/** The restore's line: entries compared while planning, then totals from the plan. */
export function restoreProgressLine(p: RestoreProgress, elapsedS: number): string {
  if (p.phase === 'plan') return `comparing: ${p.entries} entries checked (${rate(p.entries, elapsedS)}/s)`;
  const counts = formatProgress({
    files: p.files,
    totalFiles: p.plannedFiles,
    bytes: p.bytes,
    totalBytes: p.plannedBytes,
    bytesVerb: 'written',
    elapsedS,
    // Big files dominate once content is written; files per second is what the links phase has.
    by: p.plannedBytes > 0 && p.phase === 'content' ? 'bytes' : 'files',
  });
  return `${p.phase}: ${counts}`;
}

/** What Ctrl-C leaves behind in a restore, and that running it again finishes the job. */
export function interruptedRestore(p: RestoreProgress | null): string {
  const done =
    p && p.phase !== 'plan'
      ? `${p.files} of ${p.plannedFiles} files restored (${humanBytes(p.bytes)} written)`
      : `stopped while comparing${p ? ` (${p.entries} entries checked)` : ''}, nothing written yet`;
  return `${done}. Run the same command again to finish the job: what is already in place is skipped.`;
}
