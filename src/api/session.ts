import type { RepoContext } from '../catalog/context.js';
import * as fs from 'node:fs';
import { openStore, type StoreOptions } from '../store/open.js';
import type { ObjectStore } from '../store/store.js';
import { Repository, RepoNotFoundError } from '../repo/repository.js';
import { Catalog } from '../catalog/catalog.js';
import { syncCatalog, type SyncReport } from '../catalog/sync.js';
import { catalogPathFor } from '../config/location.js';
import { applyCredentials } from '../config/config.js';
import { describeRepoLookup, resolveSettings, type SessionSettings } from '../config/settings.js';
import { acquirePidLock, LockBusyError } from '../util/pidlock.js';
import type { OptionNamer, OptionText } from '../util/errors.js';
import { RepoLock } from '../repo/lock.js';

export interface OpenOptions extends StoreOptions {
  /** The config file (default: SNAPFILL_CONFIG, else /etc/snapfill/config.json when it exists). */
  config?: string;
  repo?: string;
  catalog?: string;
  /** Create the repository when it does not exist (only ever for the default location or `init`). */
  create?: boolean;
  /** Skip the catalog sync (for commands that only read the repository). */
  noSync?: boolean;
  /**
   * A read-only command: when a writer holds the catalog, read it as it is instead of failing;
   * and on a repository this user cannot write, run without a repository lock (and say so).
   */
  readOnly?: boolean;
  onProgress?: (msg: string) => void;
}

/** An open repository with its local catalog, synced with the repository. */
export class Session implements RepoContext {
  private releaseLock: (() => void) | null = null;
  syncReport: SyncReport | null = null;
  /** Set by openSession: a read-only command's session, which may go without a repository lock. */
  readOnly = false;
  /** Notes for the person running the command (openSession's onProgress). */
  note: (msg: string) => void = () => {};

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
    const reader = this.readOnly && !exclusive;
    const lock = reader
      ? await RepoLock.acquireForReading(this.repo.store, operation)
      : await RepoLock.acquire(this.repo.store, operation, exclusive);
    if (!lock)
      this.note(
        `note: the repository ${this.repo.store.location} is read-only for this user; no lock was taken ` +
          `(${operation} only reads it; a prune started meanwhile elsewhere could remove what it reads)`,
      );
    try {
      return await fn();
    } finally {
      await lock?.release();
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

/** Thrown when there is no repository where the settings point: says where it looked. */
export class NoRepositoryError extends RepoNotFoundError {
  constructor(
    location: string,
    private readonly lookup: OptionText,
  ) {
    super(location);
    this.message = lookup((o) => o);
  }

  override messageFor(name: OptionNamer): string {
    return this.lookup(name);
  }
}

function noRepository(settings: SessionSettings): NoRepositoryError {
  const { location, from } = settings.repository;
  return new NoRepositoryError(location, (n) => {
    const start = from === 'default' ? 'no repository configured' : `no snapfill repository at ${location}`;
    return `${start}: ${describeRepoLookup(settings, n)}; run "snapfill init" there, or name one with ${n('repo')}, SNAPFILL_REPO or "repository" in the config file`;
  });
}

/** The settings (flags > env > config file), with the config file's credentials made visible to the S3 client. */
export function sessionSettings(opts: OpenOptions): SessionSettings {
  const settings = resolveSettings(opts);
  if (settings.config) applyCredentials({ file: settings.config.file, credentials: settings.credentials });
  return settings;
}

/** The store the settings name, for commands that need no catalog (unlock, config check). */
export async function openSettingsStore(opts: OpenOptions = {}): Promise<{ settings: SessionSettings; store: ObjectStore }> {
  const settings = sessionSettings(opts);
  return { settings, store: await openStore(settings.repository.location, { ...opts, ...settings.s3 }) };
}

async function openRepository(opts: OpenOptions): Promise<{ settings: SessionSettings; repo: Repository }> {
  const { settings, store } = await openSettingsStore(opts);
  const { location, from } = settings.repository;
  try {
    return { settings, repo: await Repository.open(store) };
  } catch (e) {
    if (!(e instanceof RepoNotFoundError) || !(opts.create && from === 'default')) {
      await store.close?.();
      throw e instanceof RepoNotFoundError ? noRepository(settings) : e;
    }
    if (!location.startsWith('s3://')) fs.mkdirSync(location, { recursive: true });
    opts.onProgress?.(`created default repository at ${location}`);
    return { settings, repo: await Repository.init(store) };
  }
}

export async function openSession(opts: OpenOptions = {}): Promise<Session> {
  const { settings, repo } = await openRepository(opts);
  const catalog = Catalog.open(catalogPathFor(repo.config.id, settings.catalog), repo.config.id);
  const session = new Session(repo, catalog);
  session.readOnly = opts.readOnly ?? false;
  if (opts.onProgress) session.note = opts.onProgress;
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

/** Creates a repository where the settings point (flags > env > config file > default). */
export async function initRepository(opts: OpenOptions = {}): Promise<Repository> {
  const { location } = sessionSettings(opts).repository;
  if (!location.startsWith('s3://')) fs.mkdirSync(location, { recursive: true });
  const { store } = await openSettingsStore(opts);
  return Repository.init(store);
}
