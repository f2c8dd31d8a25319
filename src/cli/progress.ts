/** A one-line progress display on stderr, only when stderr is a terminal (cron logs stay clean). */
export class Progress {
  private readonly enabled: boolean;
  private last = 0;
  private readonly start = Date.now();
  private dirty = false;

  constructor(opts: { quiet?: boolean; force?: boolean } = {}) {
    this.enabled = !opts.quiet && (opts.force || Boolean(process.stderr.isTTY));
  }

  update(render: (elapsedS: number) => string, force = false): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (!force && now - this.last < 250) return;
    this.last = now;
    const line = render((now - this.start) / 1000);
    const width = process.stderr.columns || 100;
    process.stderr.write('\r' + line.slice(0, width - 1).padEnd(Math.min(width - 1, line.length + 8)));
    this.dirty = true;
  }

  done(): void {
    if (this.enabled && this.dirty) process.stderr.write('\r\x1b[K');
    this.dirty = false;
  }

  message(msg: string): void {
    if (!this.enabled) return;
    this.done();
    process.stderr.write(msg + '\n');
  }
}

export function rate(n: number, s: number): string {
  return s > 0 ? (n / s).toFixed(0) : '0';
}

export function eta(done: number, total: number, elapsedS: number): string {
  if (done <= 0 || total <= done) return '--';
  const left = (elapsedS / done) * (total - done);
  if (left > 3600) return `${Math.floor(left / 3600)}h${Math.floor((left % 3600) / 60)}m`;
  if (left > 60) return `${Math.floor(left / 60)}m${Math.floor(left % 60)}s`;
  return `${left.toFixed(0)}s`;
}
