/**
 * `snapfill ls -R ... | head`, or quitting `less`: a closed pipe ends the command quietly with
 * status 0, as it does for cat(1) and ls(1) (which die of SIGPIPE without a word). Installed once
 * for every command by the program (program.ts); without it Node reports the EPIPE of the next
 * write as an unhandled 'error' event: a stack trace and status 1.
 */
let installed = false;

export function endQuietlyOnEpipe(): void {
  if (installed) return;
  installed = true;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (isClosedPipe(e)) quietExit();
    throw e;
  });
}

/** After the reader went away the stream is destroyed: further output is pointless. */
export function stdoutClosed(): boolean {
  return process.stdout.destroyed;
}

/** Ends the process now: the reader has gone, there is no one left to tell anything. */
export function quietExit(): never {
  process.exit(0);
}

function isClosedPipe(e: NodeJS.ErrnoException): boolean {
  return e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED';
}
