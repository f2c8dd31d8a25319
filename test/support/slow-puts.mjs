/**
 * Delay injection for the crash tests (test/crash.test.ts, test/hygiene.test.ts), loaded into a
 * CLI process with NODE_OPTIONS='--import <this file's URL>': every LocalStore put pauses for
 * SLOW_PUTS_MS milliseconds between writing its temp file and renaming (or linking) it into
 * place, so a SIGKILL can land between any two repository writes and leave temp objects behind.
 * Not a mock: the real file system does the work; only the moment of the rename moves.
 *
 * LocalStore writes `<dir>/.tmp-<pid>-<12 hex>` and then renames it (or links it, for
 * create-if-absent puts) onto the object's key, through node:fs/promises (the puts) or node:fs
 * (synchronous writers); both are wrapped. The synchronous calls sleep synchronously, which
 * also holds the process's other work; the promise calls wait on a timer, so other puts go on,
 * as they would with a slow disk.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { wrapPlacements } from './wrap-places.mjs';

const ms = Number(process.env.SLOW_PUTS_MS ?? 0) || 0;
const TEMP = /^\.tmp-\d+-[0-9a-f]{12}$/;

if (ms > 0) {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  const isTemp = (src) => TEMP.test(path.basename(String(src)));
  wrapPlacements({
    sync: (src) => {
      if (isTemp(src)) Atomics.wait(cell, 0, 0, ms);
    },
    async: async (src) => {
      if (isTemp(src)) await sleep(ms);
    },
  });
}
