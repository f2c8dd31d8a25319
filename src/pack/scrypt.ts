import { pbkdf2Sync } from 'node:crypto';
import * as os from 'node:os';
import pLimit from 'p-limit';
import { romixLane } from './nativecodec.js';

/** scrypt's cost parameters, as a key object stores them. */
export interface ScryptCost {
  N: number;
  r: number;
  p: number;
}

/**
 * At most this much scratch at once for lanes run side by side: what node:crypto takes for one
 * lane at N=2^17, r=8 (the most tuneScrypt picks before it raises p). Two lanes of N=2^16 fit.
 */
const PARALLEL_SCRATCH = 128 << 20;

/**
 * Lanes at once: one core is left to the threads a command starts while its key is derived (a
 * restore's workers, a snapshot's readers load meanwhile), so on 2 cores the lanes run one after
 * the other. Measured on 2 cores (issue 17): both lanes at once took the key from ~0.25 to ~0.11 s
 * but a 1M-file full restore's peak RSS from 222 to 292 MiB (the lanes' 128 MiB beside the loading
 * workers), against a 300 MB target.
 */
function lanesAtOnce(cost: ScryptCost, scratch: number): number {
  return Math.max(1, Math.min(cost.p, os.availableParallelism() - 1, Math.floor(PARALLEL_SCRATCH / scratch)));
}

/**
 * scrypt (RFC 7914) with its p lanes run side by side (issue 17): the same function and result as
 * node:crypto's scrypt, which runs them one after the other. scrypt is PBKDF2-HMAC-SHA256 of the
 * password over the p lanes' ROMix; each ROMix is independent, so on a machine with a free core
 * a key object of p=2 takes half the time. Each lane runs natively on libuv's thread pool
 * (native/romix.c, in 2 MiB pages: on its own ~2x node:crypto's speed here); at most
 * lanesAtOnce at once. Nothing about the key's strength changes: the parameters are the key
 * object's, tuned at init as before (tuneScrypt); only the legitimate user's wait does.
 */
export async function scryptParallel(password: Buffer, salt: Buffer, keyLen: number, cost: ScryptCost): Promise<Buffer> {
  const laneBytes = 128 * cost.r;
  const scratch = laneBytes * cost.N;
  const side = lanesAtOnce(cost, scratch);
  const lanes = pbkdf2Sync(password, salt, 1, cost.p * laneBytes, 'sha256');
  try {
    const limit = pLimit(side);
    const mixed = await Promise.all(
      Array.from({ length: cost.p }, (_, i) => limit(() => romixLane(lanes.subarray(i * laneBytes, (i + 1) * laneBytes), cost.r, cost.N))),
    );
    mixed.forEach((m, i) => m.copy(lanes, i * laneBytes));
    for (const m of mixed) m.fill(0);
    return pbkdf2Sync(password, lanes, 1, keyLen, 'sha256');
  } finally {
    lanes.fill(0); // derived from the password: not left in the heap
  }
}
