import * as fs from 'node:fs';
import * as path from 'node:path';

/** JSON log lines (one object per line) to a file or stderr; journald and log shippers parse them as they are. */
export class JsonLog {
  constructor(private readonly target: string | undefined) {}

  write(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown> = {}): void {
    if (!this.target) return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n';
    if (this.target === 'stderr') process.stderr.write(line);
    else {
      try {
        fs.mkdirSync(path.dirname(this.target), { recursive: true });
        fs.appendFileSync(this.target, line);
      } catch (e) {
        process.stderr.write(`snapfill: cannot write log ${this.target}: ${(e as Error).message}\n`);
      }
    }
  }
}

export interface RunMetrics {
  success: boolean;
  started: Date;
  durationS: number;
  filesTotal: number;
  filesNew: number;
  filesChanged: number;
  bytesRead: number;
  bytesAdded: number;
  errors: number;
  snapshotsRemoved: number;
  pruneBytesFreed: number;
}

function previousValue(text: string, metric: string): number | null {
  const m = new RegExp(`^${metric}(?:\\{[^}]*\\})? ([0-9.eE+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : null;
}

/**
 * Writes the node_exporter textfile-collector file atomically (temp file + rename in the
 * same directory, so the collector never reads half a file). The last success time
 * survives failed runs: it is carried over from the previous file, which is what an
 * alert "no successful backup for 12 h" needs.
 */
export function writePrometheusTextfile(file: string, m: RunMetrics): void {
  let prev = '';
  try {
    prev = fs.readFileSync(file, 'utf8');
  } catch {
    /* first run */
  }
  const now = m.started.getTime() / 1000 + m.durationS;
  const lastSuccess = m.success ? now : (previousValue(prev, 'snapfill_last_success_timestamp_seconds') ?? 0);
  const lines: string[] = [];
  const metric = (name: string, help: string, value: number) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
  };
  metric('snapfill_last_run_timestamp_seconds', 'Unix time the last run ended.', now);
  metric('snapfill_last_success_timestamp_seconds', 'Unix time the last successful run ended (0: never).', lastSuccess);
  metric('snapfill_last_run_success', '1 when the last run succeeded, else 0.', m.success ? 1 : 0);
  metric('snapfill_last_run_duration_seconds', 'Duration of the last run.', m.durationS);
  metric('snapfill_last_run_files_total', 'Files in the last snapshot.', m.filesTotal);
  metric('snapfill_last_run_files_new', 'New files in the last snapshot.', m.filesNew);
  metric('snapfill_last_run_files_changed', 'Changed files in the last snapshot.', m.filesChanged);
  metric('snapfill_last_run_bytes_read', 'Bytes read from the sources in the last run.', m.bytesRead);
  metric('snapfill_last_run_bytes_added', 'Bytes added to the repository in the last run.', m.bytesAdded);
  metric('snapfill_last_run_errors', 'Paths that could not be saved, plus failed steps, in the last run.', m.errors);
  metric('snapfill_last_run_snapshots_removed', 'Snapshots removed by retention in the last run.', m.snapshotsRemoved);
  metric('snapfill_last_run_prune_bytes_freed', 'Bytes freed by prune in the last run (0 when prune was not due).', m.pruneBytesFreed);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(tmp, lines.join('\n') + '\n', { mode: 0o644 });
  fs.renameSync(tmp, file);
}

/** The last scheduled run as the monitoring files tell it (doctor / `config check`). */
export interface LastRun {
  /** Which file told it. */
  source: string;
  success: boolean;
  /** When it ended. */
  ended: Date;
  /** When a run last succeeded (null: never, or the file does not say). */
  lastSuccess: Date | null;
}

/**
 * Reads the last run from the Prometheus textfile, else from the JSON log's last "run
 * finished" line; null when neither is configured or written yet. A file that exists but
 * cannot be read throws: the monitoring is then broken, which is worth saying.
 */
export function readLastRun(m: { prometheusTextfile?: string; jsonLog?: string }): LastRun | null {
  if (m.prometheusTextfile && fs.existsSync(m.prometheusTextfile)) {
    const text = fs.readFileSync(m.prometheusTextfile, 'utf8');
    const ended = previousValue(text, 'snapfill_last_run_timestamp_seconds');
    if (ended !== null) {
      const ok = previousValue(text, 'snapfill_last_success_timestamp_seconds');
      return {
        source: m.prometheusTextfile,
        success: previousValue(text, 'snapfill_last_run_success') === 1,
        ended: new Date(ended * 1000),
        lastSuccess: ok ? new Date(ok * 1000) : null,
      };
    }
  }
  if (m.jsonLog && m.jsonLog !== 'stderr' && fs.existsSync(m.jsonLog)) return lastRunInJsonLog(m.jsonLog);
  return null;
}

function lastRunInJsonLog(file: string): LastRun | null {
  let last: LastRun | null = null;
  let lastSuccess: Date | null = null;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('"run finished"')) continue;
    try {
      const o = JSON.parse(line) as { time: string; msg: string; status?: string };
      if (o.msg !== 'run finished') continue;
      const ended = new Date(o.time);
      if (o.status !== 'failed') lastSuccess = ended;
      last = { source: file, success: o.status !== 'failed', ended, lastSuccess };
    } catch {
      // A torn last line (the run was killed while writing): the lines before still count.
    }
  }
  return last ? { ...last, lastSuccess } : null;
}
