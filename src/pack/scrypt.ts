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
 * scrypt (RFC 7914) with its p lanes run side by side (issue 17): the same function and result as
 * node:crypto's scrypt, which runs them one after the other. scrypt is PBKDF2-HMAC-SHA256 of the
 * password over the p lanes' ROMix; each ROMix is independent, so on a machine with a free core
 * a key object of p=2 takes half the time. Each lane runs natively on libuv's thread pool
 * (native/romix.c, in 2 MiB pages); at most as many at once as there are cores and
 * PARALLEL_SCRATCH allows. Nothing about the key's strength changes: the parameters are the key
 * object's, tuned at init as before (tuneScrypt); only the legitimate user's wait does.
 */
export async function scryptParallel(password: Buffer, salt: Buffer, keyLen: number, cost: ScryptCost): Promise<Buffer> {
  const laneBytes = 128 * cost.r;
  const scratch = laneBytes * cost.N;
  const side = Math.max(1, Math.min(cost.p, os.availableParallelism(), Math.floor(PARALLEL_SCRATCH / scratch)));
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
