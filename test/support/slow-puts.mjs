/**
 * Delay injection for the crash tests (test/crash.test.ts, test/hygiene.test.ts), loaded into a
 * CLI process with NODE_OPTIONS='--import <this file's URL>': every LocalStore put pauses for
 * SLOW_PUTS_MS milliseconds between writing its temp file and renaming (or linking) it into
 * place, so a SIGKILL can land between any two repository writes and leave temp objects behind.
 * Not a mock: the real file system does the work; only the moment of the rename moves.
 *
 * LocalStore writes `<dir>/.tmp-<pid>-<12 hex>` and then renames it (or links it, for
 * create-if-absent puts) onto the object's key; those two calls are wrapped. The pause is a
 * synchronous sleep (the calls are synchronous), which also holds the process's other work:
 * for a kill test that only makes the moments between writes longer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { syncBuiltinESMExports } from 'node:module';

const ms = Number(process.env.SLOW_PUTS_MS ?? 0) || 0;
const TEMP = /^\.tmp-\d+-[0-9a-f]{12}$/;

if (ms > 0) {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const pause = (src) => {
    if (TEMP.test(path.basename(String(src)))) Atomics.wait(cell, 0, 0, ms);
  };
  const { renameSync, linkSync } = fs;
  fs.renameSync = function slowRenameSync(src, dest) {
    pause(src);
    return renameSync.call(this, src, dest);
  };
  fs.linkSync = function slowLinkSync(src, dest) {
    pause(src);
    return linkSync.call(this, src, dest);
  };
  // `import * as fs from 'node:fs'` in the CLI's modules sees the wrapped functions too.
  syncBuiltinESMExports();
}
