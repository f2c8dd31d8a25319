import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ObjectStore } from '../store/store.js';
import { idOfKey, LOCK_PREFIX, lockKey } from '../pack/keys.js';

/** Lock objects are rewritten while held and deleted on release: never made immutable (S3 Object Lock). */
const MUTABLE = { mutable: true } as const;

/**
 * Repository locks, safe on S3: each holder writes its own object `locks/<random id>` (no
 * shared object is ever overwritten, so no read-modify-write race), refreshes it while it
 * works, and treats locks not refreshed for `staleAfterMs` as stale (the holder died).
 *
 * - shared (snapshot, restore, check): may coexist with other shared locks.
 * - exclusive (prune, forget): requires no other live lock. After writing its lock the taker
 *   lists again; if it then sees another live exclusive lock or shared lock it backs off, so
 *   two racing takers cannot both proceed (at worst both back off and report "locked").
 */
export interface LockInfo {
  id: string;
  exclusive: boolean;
  host: string;
  pid: number;
  operation: string;
  created: string;
  refreshed: string;
}

export class RepoLockedError extends Error {
  constructor(
    readonly holders: LockInfo[],
    operation: string,
  ) {
    super(
      `repository is locked: cannot ${operation} while ${holders.map((h) => `${h.operation} (${h.exclusive ? 'exclusive' : 'shared'}, host ${h.host}, pid ${h.pid}, since ${h.created})`).join('; ')} runs. ` +
        `If that process is dead, its lock goes stale after it stops being refreshed; "snapfill unlock" removes stale locks.`,
    );
    this.name = 'RepoLockedError';
  }
}

export const LOCK_STALE_MS = 30 * 60 * 1000;
const REFRESH_MS = 5 * 60 * 1000;

export class RepoLock {
  private timer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly store: ObjectStore,
    readonly info: LockInfo,
  ) {}

  static async acquire(store: ObjectStore, operation: string, exclusive: boolean, opts: { staleAfterMs?: number } = {}): Promise<RepoLock> {
    const stale = opts.staleAfterMs ?? LOCK_STALE_MS;
    const conflicts = (all: LockInfo[], self?: string) =>
      all.filter((l) => l.id !== self && !isStale(l, stale) && (exclusive || l.exclusive));
    const listed = await listLocks(store);
    await removeDeadLocalLocks(store, listed);
    const before = conflicts(listed);
    if (before.length) throw new RepoLockedError(before, operation);
    const now = new Date().toISOString();
    const info: LockInfo = {
      id: randomBytes(16).toString('hex'),
      exclusive,
      host: os.hostname(),
      pid: process.pid,
      operation,
      created: now,
      refreshed: now,
    };
    await store.put(lockKey(info.id), Buffer.from(JSON.stringify(info)), { ifAbsent: true, ...MUTABLE });
    const after = conflicts(await listLocks(store), info.id);
    // A shared taker only yields to exclusive locks; an exclusive one yields to anything.
    if (after.length) {
      await store.delete(lockKey(info.id), MUTABLE);
      throw new RepoLockedError(after, operation);
    }
    const lock = new RepoLock(store, info);
    lock.timer = setInterval(() => {
      void lock.refresh();
    }, REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  /**
   * A shared lock for an operation that only reads the repository (check, restore, verify).
   * A prune holding the exclusive lock still stops it. On a repository this user cannot
   * write (a backup user's read-only view, a read-only mount, a bucket policy without
   * PutObject) it runs without a lock instead of failing: returns null, and the caller says so.
   */
  static async acquireForReading(store: ObjectStore, operation: string): Promise<RepoLock | null> {
    const exclusive = (await listLocks(store)).filter((l) => l.exclusive && !isStale(l));
    if (exclusive.length) throw new RepoLockedError(exclusive, operation);
    try {
      return await RepoLock.acquire(store, operation, false);
    } catch (e) {
      if (isWriteRefused(e)) return null;
      throw e;
    }
  }

  async refresh(): Promise<void> {
    this.info.refreshed = new Date().toISOString();
    try {
      await this.store.put(lockKey(this.info.id), Buffer.from(JSON.stringify(this.info)), MUTABLE);
    } catch {
      // The next refresh retries; a lock that cannot be refreshed for long goes stale by design.
    }
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.store.delete(lockKey(this.info.id), MUTABLE);
  }
}

/** A write the store refused for lack of permission (local: EACCES/EPERM/EROFS; S3: 403 AccessDenied). */
function isWriteRefused(e: unknown): boolean {
  const err = e as { code?: string; name?: string; $metadata?: { httpStatusCode?: number } };
  return ['EACCES', 'EPERM', 'EROFS'].includes(err.code ?? '') || err.name === 'AccessDenied' || err.$metadata?.httpStatusCode === 403;
}

/** Whether the lock's holder is a process of this host that no longer exists. */
function heldByDeadLocalProcess(l: LockInfo): boolean {
  if (l.host !== os.hostname() || l.pid === process.pid || !Number.isInteger(l.pid) || l.pid <= 0) return false;
  try {
    process.kill(l.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: alive, another user's
  }
}

/**
 * Deletes the locks of this host's dead processes (SIGKILL, OOM kill, power loss): nothing
 * will ever release them, and left alone they pile up in locks/ until someone runs `unlock`.
 * Other hosts' locks are judged by age only, by `unlock`: their processes cannot be seen here.
 */
async function removeDeadLocalLocks(store: ObjectStore, locks: LockInfo[]): Promise<void> {
  for (const l of locks) {
    if (!heldByDeadLocalProcess(l)) continue;
    try {
      await store.delete(lockKey(l.id), MUTABLE);
    } catch {
      // Best effort: the lock stays ignored as stale, and the next taker tries again.
    }
  }
}

export function isStale(l: LockInfo, staleAfterMs = LOCK_STALE_MS): boolean {
  // A lock of a dead process on this host is stale at once; elsewhere only by age.
  if (heldByDeadLocalProcess(l)) return true;
  // An object without a readable refresh time is no lock any live process wrote: stale.
  const refreshed = Date.parse(l.refreshed);
  return Number.isNaN(refreshed) || Date.now() - refreshed > staleAfterMs;
}

export async function listLocks(store: ObjectStore): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for await (const o of store.list(LOCK_PREFIX)) {
    try {
      // The id is the key's: what `unlock` deletes must be the object that was listed.
      out.push({ ...(JSON.parse((await store.get(o.key)).toString('utf8')) as LockInfo), id: idOfKey(LOCK_PREFIX, o.key) });
    } catch {
      // Vanished between list and get (released), or unreadable: ignore.
    }
  }
  return out;
}

/** Removes stale locks; returns how many. */
export async function removeStaleLocks(store: ObjectStore, staleAfterMs = LOCK_STALE_MS): Promise<number> {
  let n = 0;
  for (const l of await listLocks(store)) {
    if (isStale(l, staleAfterMs)) {
      await store.delete(lockKey(l.id), MUTABLE);
      n++;
    }
  }
  return n;
}
