/**
 * Holds a CLI process at one repository write, for the interleaving tests of the lock-free
 * prune (test/prune-lockfree.test.ts). Loaded with NODE_OPTIONS='--import <this file's URL>'.
 * The HOLD_NTH-th LocalStore put (rename or link of a temp file, through node:fs or
 * node:fs/promises) whose destination matches the
 * regular expression HOLD_MATCH stops before it lands: the hook creates the file HOLD_SIGNAL,
 * then waits (the whole process, synchronously) until the file HOLD_RELEASE exists.
 * Not a mock: the real file system does the work; only the moment of that write moves.
 */
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { wrapPlacements } from './wrap-places.mjs';

const match = process.env.HOLD_MATCH ? new RegExp(process.env.HOLD_MATCH) : null;
const nth = Number(process.env.HOLD_NTH ?? 1) || 1;
const signal = process.env.HOLD_SIGNAL;
const release = process.env.HOLD_RELEASE;

if (match && signal && release) {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  let seen = 0;
  const maybeHold = (dest) => {
    if (!match.test(String(dest))) return;
    if (++seen !== nth) return;
    fs.writeFileSync(signal, String(process.pid));
    while (!fs.existsSync(release)) Atomics.wait(cell, 0, 0, 20);
  };
  const { unlinkSync } = fs;
  // HOLD_UNLINK=1: deletes (LocalStore.delete unlinks the object's file) are held instead.
  if (process.env.HOLD_UNLINK === '1') {
    fs.unlinkSync = function holdUnlinkSync(p) {
      maybeHold(p);
      return unlinkSync.call(this, p);
    };
    syncBuiltinESMExports();
  } else {
    // A rename or link lands an object at `dest`: held there (the whole process, even from node:fs/promises).
    wrapPlacements({ sync: (src, dest) => maybeHold(dest), async: async (src, dest) => maybeHold(dest) });
  }
}
