import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import type { ObjectStore } from '../store/store.js';
import { idOfKey, LOCK_PREFIX, lockKey } from '../pack/keys.js';
import { storeTime } from './clock.js';

/** Lock objects are rewritten while held and deleted on release: never made immutable (S3 Object Lock). */
const MUTABLE = { mutable: true } as const;

/**
 * Repository locks, safe on S3: each holder writes its own object `locks/<random id>` (no
 * shared object is ever overwritten, so no read-modify-write race), refreshes it while it
 * works, and treats locks not refreshed for `staleAfterMs` as stale (the holder died). Ages are
 * judged in the STORE's time (the lock object's LastModified against the store's time now,
 * src/repo/clock.ts), so a host whose clock is off neither keeps a dead lock alive nor
 * declares a live one stale.
 *
 * Three kinds (issue 15: snapshots and prune no longer block each other):
 * - shared (snapshot, restore, check): coexist with each other and with maintenance. For a
 *   snapshot the object is a MARKER: prune reads it (created_store) and keeps the packs it
 *   marked after that snapshot started until the marker goes (docs/FORMAT.md, "Garbage").
 * - maintenance (prune, forget): excludes other maintenance and exclusive locks only.
 * - exclusive (kept for operations that need the repository to themselves, and written by
 *   older releases' prune/forget): excludes every other lock.
 * After writing its lock the taker lists again; if it then sees a conflicting live lock it backs
 * off, so two racing takers cannot both proceed (at worst both back off and report "locked").
 */
export type LockKind = 'shared' | 'maintenance' | 'exclusive';

export interface LockInfo {
  id: string;
  /** True only for kind "exclusive" (what older releases read). */
  exclusive: boolean;
  /** Absent in locks of older releases: then `exclusive` decides (true: exclusive, false: shared). */
  kind?: LockKind;
  host: string;
  pid: number;
  operation: string;
  /** This host's clock, for people. */
  created: string;
  refreshed: string;
  /** The store's time when the lock object was first written (src/repo/clock.ts); what prune compares. */
  created_store?: string;
  /** The store's time of the last write of the object (its LastModified), from the listing. */
  mtime?: string;
}

export function lockKind(l: LockInfo): LockKind {
  return l.kind ?? (l.exclusive ? 'exclusive' : 'shared');
}

/** Whether a lock of kind `a` and one of kind `b` cannot be held at once. */
function conflict(a: LockKind, b: LockKind): boolean {
  if (a === 'exclusive' || b === 'exclusive') return true;
  return a === 'maintenance' && b === 'maintenance';
}

export class RepoLockedError extends Error {
  constructor(
    readonly holders: LockInfo[],
    operation: string,
  ) {
    super(
      `repository is locked: cannot ${operation} while ${holders.map((h) => `${h.operation} (${lockKind(h)}, host ${h.host}, pid ${h.pid}, since ${h.created})`).join('; ')} runs. ` +
        `If that process is dead, its lock goes stale after it stops being refreshed; "snapfill unlock" removes stale locks.`,
    );
    this.name = 'RepoLockedError';
  }
}

export const LOCK_STALE_MS = 30 * 60 * 1000;
const REFRESH_MS = 5 * 60 * 1000;

export class RepoLock {
  private timer: NodeJS.Timeout | null = null;
  /** This host's clock at the last successful write of the lock object. */
  private lastWritten = Date.now();

  private constructor(
    private readonly store: ObjectStore,
    readonly info: LockInfo,
    private readonly staleAfterMs: number,
  ) {}

  /** `exclusive`: true = exclusive, false = shared (the signature of older callers), or a kind. */
  static async acquire(
    store: ObjectStore,
    operation: string,
    exclusive: boolean | LockKind,
    opts: { staleAfterMs?: number } = {},
  ): Promise<RepoLock> {
    const stale = opts.staleAfterMs ?? LOCK_STALE_MS;
    const kind: LockKind = typeof exclusive === 'string' ? exclusive : exclusive ? 'exclusive' : 'shared';
    const conflicts = (all: LockInfo[], nowMs: number | null, self?: string) =>
      all.filter((l) => l.id !== self && !isStale(l, stale, nowMs) && conflict(kind, lockKind(l)));
    const listed = await listLocks(store);
    await removeDeadLocalLocks(store, listed);
    // Cheap early answer (no write) when a conflicting lock is plainly fresh by this host's clock.
    const before = conflicts(listed, null);
    if (before.length && before.every((l) => !l.mtime)) throw new RepoLockedError(before, operation);
    const now = new Date().toISOString();
    const info: LockInfo = {
      id: randomBytes(16).toString('hex'),
      exclusive: kind === 'exclusive',
      kind,
      host: os.hostname(),
      pid: process.pid,
      operation,
      created: now,
      refreshed: now,
    };
    const key = lockKey(info.id);
    await store.put(key, Buffer.from(JSON.stringify(info)), { ifAbsent: true, ...MUTABLE });
    // The store's stamp on our own object is the store's time now: the creation time other hosts
    // compare with, and the "now" against which the other locks' ages are judged.
    const own = await store.head(key).catch(() => null);
    const storeNow = own?.mtime?.getTime() ?? null;
    if (own?.mtime) info.created_store = own.mtime.toISOString();
    const after = conflicts(await listLocks(store), storeNow, info.id);
    if (after.length) {
      await store.delete(key, MUTABLE);
      throw new RepoLockedError(after, operation);
    }
    const lock = new RepoLock(store, info, stale);
    if (info.created_store) await lock.refresh();
    lock.timer = setInterval(() => {
      void lock.refresh();
    }, REFRESH_MS);
    lock.timer.unref();
    return lock;
  }

  /**
   * A shared lock for an operation that only reads the repository (check, restore, verify).
   * An exclusive lock still stops it. On a repository this user cannot
   * write (a backup user's read-only view, a read-only mount, a bucket policy without
   * PutObject) it runs without a lock instead of failing: returns null, and the caller says so.
   */
  static async acquireForReading(store: ObjectStore, operation: string): Promise<RepoLock | null> {
    const exclusive = (await listLocks(store)).filter((l) => lockKind(l) === 'exclusive' && !isStale(l));
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
      this.lastWritten = Date.now();
    } catch {
      // The next refresh retries; a lock that cannot be refreshed for long goes stale by design.
    }
  }

  /**
   * False once the lock object has not been written for longer than the stale age: others may
   * have judged it stale (a snapshot's marker then protects nothing; the snapshot checks the
   * packs it reuses itself before its record, see src/snapshot/reuseguard.ts).
   */
  healthy(): boolean {
    return Date.now() - this.lastWritten < this.staleAfterMs - REFRESH_MS;
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

/**
 * Whether a lock is stale. With `storeNowMs` (the store's time now) and the lock object's
 * store time (listed mtime), the age is the store's alone; otherwise (a store without times,
 * or a caller without the store's time) this host's clock against the holder's `refreshed`.
 */
export function isStale(l: LockInfo, staleAfterMs = LOCK_STALE_MS, storeNowMs: number | null = null): boolean {
  // A lock of a dead process on this host is stale at once; elsewhere only by age.
  if (heldByDeadLocalProcess(l)) return true;
  // An object without a readable refresh time is no lock any live process wrote: stale.
  const refreshed = Date.parse(l.refreshed);
  if (Number.isNaN(refreshed)) return true;
  if (storeNowMs !== null && l.mtime) {
    const written = Date.parse(l.mtime);
    if (!Number.isNaN(written)) return storeNowMs - written > staleAfterMs;
  }
  return Date.now() - refreshed > staleAfterMs;
}

export async function listLocks(store: ObjectStore): Promise<LockInfo[]> {
  const out: LockInfo[] = [];
  for await (const o of store.list(LOCK_PREFIX)) {
    try {
      // The id is the key's: what `unlock` deletes must be the object that was listed.
      const info = JSON.parse((await store.get(o.key)).toString('utf8')) as LockInfo;
      out.push({ ...info, id: idOfKey(LOCK_PREFIX, o.key), mtime: o.mtime?.toISOString() });
    } catch {
      // Vanished between list and get (released), or unreadable: ignore.
    }
  }
  return out;
}

/** Removes stale locks (judged in the store's time, see isStale); returns how many. */
export async function removeStaleLocks(store: ObjectStore, staleAfterMs = LOCK_STALE_MS): Promise<number> {
  const { now } = await storeTime(store);
  let n = 0;
  for (const l of await listLocks(store)) {
    if (isStale(l, staleAfterMs, now.getTime())) {
      await store.delete(lockKey(l.id), MUTABLE);
      n++;
    }
  }
  return n;
}
