/**
 * The one place the put hooks (slow-puts.mjs, hold-puts.mjs) wrap how LocalStore lands an object:
 * a rename or a link of a temp file onto its key, through node:fs (synchronous writers) or
 * node:fs/promises (the puts). `before(src, dest)` runs first; what it returns (a promise from
 * the asynchronous entry points) is awaited before the real call. Not a mock: the real file
 * system does the work, only the moment moves.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';

export function wrapPlacements({ sync, async: later }) {
  for (const name of ['renameSync', 'linkSync']) {
    const real = fs[name];
    fs[name] = function placedSync(src, dest, ...rest) {
      sync(src, dest);
      return real.call(this, src, dest, ...rest);
    };
  }
  for (const name of ['rename', 'link']) {
    const real = fsp[name];
    fsp[name] = async function placed(src, dest, ...rest) {
      await later(src, dest);
      return real.call(this, src, dest, ...rest);
    };
  }
  // `import * as fs from 'node:fs'` (or node:fs/promises) in the CLI's modules sees the wrapped functions too.
  syncBuiltinESMExports();
}
