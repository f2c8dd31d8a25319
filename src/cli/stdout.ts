/** `snapfill cat ... | head`: a closed pipe ends the command quietly, as it does for cat(1). */
export function endQuietlyOnEpipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
}
