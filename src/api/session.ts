import type { RepoContext } from '../catalog/context.js';
import * as fs from 'node:fs';
import { openStore, type StoreOptions } from '../store/open.js';
import { Repository, RepoNotFoundError } from '../repo/repository.js';
import { Catalog } from '../catalog/catalog.js';
import { syncCatalog, type SyncReport } from '../catalog/sync.js';
import { catalogPathFor, resolveRepoLocation } from '../config/location.js';
import { acquirePidLock, LockBusyError } from '../util/pidlock.js';
import { RepoLock } from '../repo/lock.js';

export interface OpenOptions extends StoreOptions {
  repo?: string;
  catalog?: string;
  /** Create the repository when it does not exist (only ever for the default location or `init`). */
  create?: boolean;
  /** Skip the catalog sync (for commands that only read the repository). */
  noSync?: boolean;
  /** A read-only command: when a writer holds the catalog, read it as it is instead of failing. */
  readOnly?: boolean;
  onProgress?: (msg: string) => void;
}

/** An open repository with its local catalog, synced with the repository. */
export class Session implements RepoContext {
  private releaseLock: (() => void) | null = null;
  syncReport: SyncReport | null = null;

  constructor(
    readonly repo: Repository,
    readonly catalog: Catalog,
  ) {}

  /** Serializes writers of this catalog on this machine. */
  lockCatalog(what: string): void {
    if (!this.releaseLock) this.releaseLock = acquirePidLock(this.catalog.file + '.lock', what);
  }

  /** Runs `fn` holding a repository lock: shared for writers that add, exclusive for those that delete. */
  async withRepoLock<T>(operation: string, exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    const lock = await RepoLock.acquire(this.repo.store, operation, exclusive);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  unlockCatalog(): void {
    this.releaseLock?.();
    this.releaseLock = null;
  }

  async close(): Promise<void> {
    this.catalog.close();
    this.releaseLock?.();
    this.releaseLock = null;
    await this.repo.store.close?.();
  }
}

export async function openSession(opts: OpenOptions = {}): Promise<Session> {
  const { location, isDefault } = resolveRepoLocation(opts.repo);
  const store = await openStore(location, opts);
  let repo: Repository;
  try {
    repo = await Repository.open(store);
  } catch (e) {
    if (e instanceof RepoNotFoundError && opts.create && isDefault) {
      if (!location.startsWith('s3://')) fs.mkdirSync(location, { recursive: true });
      opts.onProgress?.(`created default repository at ${location}`);
      repo = await Repository.init(store);
    } else throw e;
  }
  const catalog = Catalog.open(catalogPathFor(repo.config.id, opts.catalog), repo.config.id);
  const session = new Session(repo, catalog);
  if (!opts.noSync) {
    try {
      try {
        session.lockCatalog('the catalog');
      } catch (e) {
        if (!(opts.readOnly && e instanceof LockBusyError)) throw e;
        opts.onProgress?.(`note: ${e.message}; reading the catalog without syncing it`);
        return session;
      }
      session.syncReport = await syncCatalog(repo, catalog, opts.onProgress);
      if (opts.readOnly) session.unlockCatalog();
    } catch (e) {
      await session.close();
      throw e;
    }
  }
  return session;
}

/** Opens a session, runs `fn` with it, and closes it whatever happens. */
export async function withSession<T>(opts: OpenOptions, fn: (s: Session) => Promise<T>): Promise<T> {
  const s = await openSession(opts);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

export async function initRepository(opts: OpenOptions = {}): Promise<Repository> {
  const { location } = resolveRepoLocation(opts.repo);
  if (!location.startsWith('s3://')) fs.mkdirSync(location, { recursive: true });
  const store = await openStore(location, opts);
  return Repository.init(store);
}
