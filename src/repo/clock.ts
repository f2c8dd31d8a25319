import { randomBytes } from 'node:crypto';
import type { ObjectStore } from '../store/store.js';
import { TMP_PREFIX } from '../pack/keys.js';

/**
 * The store's clock (issue 15). Hosts of a fleet share one bucket but not one clock: a lock's
 * age, a garbage mark's age and "which came first" are judged in the STORE's time, which every
 * host reads the same way: the time the store stamps on an object it has just written (S3
 * LastModified, a local or NFS file's mtime). Host clocks only matter for how long a host waits
 * between its own steps. See docs/S3.md, "Clocks".
 *
 * S3 stamps whole seconds in HEAD answers, so store times are compared with STORE_TIME_SLACK_MS.
 */
export const STORE_TIME_SLACK_MS = 2_000;

/**
 * Keys named by a store time (data pack indexes, deletion records; issue 15) are listed from a
 * cursor: a sync resumes STAMP_WINDOW_MS before the newest stamp it has seen, so it also finds a
 * key whose stamp is older than keys it saw, as long as the stamp was at most that much behind
 * the store's time when the store took the key. A writer stamps with the store's time as it
 * reckons it (one probe, storeTime, then its own clock: off by about a second) and writes the key
 * again, freshly stamped, when a write took longer than STAMP_PUT_LIMIT_MS: the rest of the
 * window covers the reckoning's error and a host clock that drifts while a snapshot runs.
 */
export const STAMP_WINDOW_MS = 120_000;
export const STAMP_PUT_LIMIT_MS = 60_000;

export interface StoreTime {
  /** The store's time now (when the probe was written). */
  now: Date;
  /** This host's clock minus the store's (positive: the host runs ahead), for reports and warnings. */
  skewMs: number;
}

/**
 * Writes a tiny probe object under tmp/ (never listed as repository data, mutable so it carries
 * no Object Lock retention), reads the time the store gave it, and deletes it. Falls back to
 * this host's clock only for a store that reports no times (then skewMs is 0).
 */
export async function storeTime(store: ObjectStore): Promise<StoreTime> {
  const key = `${TMP_PREFIX}clock-${randomBytes(8).toString('hex')}`;
  const before = Date.now();
  await store.put(key, Buffer.from('{}'), { mutable: true });
  const after = Date.now();
  let info;
  try {
    info = await store.head(key);
  } finally {
    await store.delete(key, { mutable: true }).catch(() => {});
  }
  if (!info?.mtime) return { now: new Date(after), skewMs: 0 };
  // The host's reading at the moment of the write lies between before and after.
  return { now: info.mtime, skewMs: Math.round((before + after) / 2 - info.mtime.getTime()) };
}
