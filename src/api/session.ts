import type { RepoContext } from '../catalog/context.js';
import * as fs from 'node:fs';
import { openStore, type StoreOptions } from '../store/open.js';
import type { ObjectStore } from '../store/store.js';
import { PasswordNeededError, Repository, RepoNotFoundError } from '../repo/repository.js';
import { Catalog } from '../catalog/catalog.js';
import { syncCatalog, type SyncReport } from '../catalog/sync.js';
import { catalogPathFor } from '../config/location.js';
import { applyCredentials } from '../config/config.js';
import { describeRepoLookup, resolveSettings, type SessionSettings } from '../config/settings.js';
import { acquirePidLock, LockBusyError } from '../util/pidlock.js';
import type { OptionNamer, OptionText } from '../util/errors.js';
import { RepoLock } from '../repo/lock.js';
import { ensureDefaultPassword, newPassword, passwordSource, type PasswordGetter } from '../config/password.js';
import type { InitOptions } from '../repo/repository.js';

export interface OpenOptions extends StoreOptions {
  /** The config file (default: SNAPFILL_CONFIG, else /etc/snapfill/config.json when it exists). */
  config?: string;
  repo?: string;
  catalog?: string;
  /** A file whose first line is the repository password (then SNAPFILL_PASSWORD_FILE, passwordCommand, the config file, a prompt). */
  passwordFile?: string;
  /** A shell command that prints the repository password. */
  passwordCommand?: string;
  /** Create the repository when it does not exist (only ever for the default location or `init`). */
  create?: boolean;
  /** Skip the catalog sync (for commands that only read the repository). */
  noSync?: boolean;
  /**
   * A read-only command: when a writer holds the catalog, read it as it is instead of failing;
   * and on a repository this user cannot write, run without a repository lock (and say so).
   */
  readOnly?: boolean;
  /**
   * Derive the key in the background (repo/repository.ts Repository.open): for commands that
   * mostly read the local catalog and the live tree (verify, restore). They must await
   * `repo.unlock()` before they write anything; withSession awaits it before it returns, so a
   * wrong password still fails the command.
   */
  deferUnlock?: boolean;
  onProgress?: (msg: string) => void;
}

/** An open repository with its local catalog, synced with the repository. */
export class Session implements RepoContext {
  private releaseLock: (() => void) | null = null;
  syncReport: SyncReport | null = null;
  /** Set by api/snapshots.ts readAllRecords: every host's records were read in this session. */
  allRecordsRead = false;
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

  /** [prune, issue 15] The lock withRepoLock holds now (a snapshot's marker, which the snapshot checks is kept fresh). */
  heldLock: RepoLock | null = null;

  /** Runs `fn` holding a repository lock: shared (false), 'maintenance' (prune, forget) or exclusive (true). */
  async withRepoLock<T>(operation: string, exclusive: boolean | 'maintenance', fn: () => Promise<T>): Promise<T> {
    return this.withRepoLockAfter(Promise.resolve(), operation, exclusive, async (locked) => {
      await locked;
      return fn();
    });
  }

  /**
   * Runs `fn` at once, and takes the repository lock once `first` settles (e.g. the key's
   * derivation): `fn` gets a promise of the lock held, which rejects with what `first` or the
   * lock's acquisition threw, and must not touch the repository or write before it settles.
   * The lock is released after `fn` ends (issue 17: a restore walks while the key is derived).
   */
  async withRepoLockAfter<T>(
    first: Promise<void>,
    operation: string,
    exclusive: boolean | 'maintenance',
    fn: (locked: Promise<void>) => Promise<T>,
  ): Promise<T> {
    let lock: RepoLock | null = null;
    const locked = first.then(async () => {
      const reader = this.readOnly && exclusive === false;
      lock = reader
        ? await RepoLock.acquireForReading(this.repo.store, operation)
        : await RepoLock.acquire(this.repo.store, operation, exclusive);
      if (!lock)
        this.note(
          `note: the repository ${this.repo.store.location} is read-only for this user; no lock was taken ` +
            `(${operation} only reads it; a prune started meanwhile elsewhere could remove what it reads)`,
        );
      this.heldLock = lock;
    });
    locked.catch(() => {}); // fn awaits it; a rejection is not "unhandled" meanwhile
    try {
      return await fn(locked);
    } finally {
      // fn may end (fail) before the lock is taken: wait for it, so it is never left behind.
      await locked.catch(() => {});
      this.heldLock = null;
      await (lock as RepoLock | null)?.release();
    }
  }

  /**
   * Runs `fn` holding the catalog lock: taken for `fn` only when the session does not hold it
   * already (a read-only command that must write the catalog once, e.g. an on-demand import).
   */
  async withCatalogLock<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.releaseLock) return fn();
    this.lockCatalog(what);
    try {
      return await fn();
    } finally {
      this.unlockCatalog();
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

/** The password source for these options and settings (asked only for an encrypted repository). */
export function repoPassword(opts: OpenOptions, settings: SessionSettings): PasswordGetter | undefined {
  return passwordSource(opts, settings.passwordFile);
}

async function openRepository(opts: OpenOptions): Promise<{ settings: SessionSettings; repo: Repository }> {
  const { settings, store } = await openSettingsStore(opts);
  const { location, from } = settings.repository;
  try {
    return { settings, repo: await Repository.open(store, repoPassword(opts, settings), { deferUnlock: opts.deferUnlock }) };
  } catch (e) {
    if (!(e instanceof RepoNotFoundError) || !(opts.create && from === 'default')) {
      await store.close?.();
      throw e instanceof RepoNotFoundError ? noRepository(settings) : e;
    }
    if (!location.startsWith('s3://')) fs.mkdirSync(location, { recursive: true });
    try {
      // A first snapshot on a fresh machine: a named password source wins; else a random
      // password is generated into the default password file (said once, loudly).
      const explicit = opts.passwordFile || process.env.SNAPFILL_PASSWORD_FILE || opts.passwordCommand || settings.passwordFile;
      let password: string;
      let generated: string | null = null;
      if (explicit) password = await repoPassword(opts, settings)!();
      else {
        const d = ensureDefaultPassword();
        password = d.password;
        if (d.created) generated = d.file;
      }
      const repo = await Repository.init(store, { password });
      if (generated)
        // Always said, even with --quiet: whoever loses this file loses every backup in the repository.
        process.stderr.write(
          `snapfill: created encrypted repository ${location}; its password is in ${generated} - without that file ` +
            'the repository cannot be read: keep a copy elsewhere\n',
        );
      else opts.onProgress?.(`created default repository at ${location} (encrypted)`);
      return { settings, repo };
    } catch (err) {
      await store.close?.();
      throw err;
    }
  }
}

export async function openSession(opts: OpenOptions = {}): Promise<Session> {
  const { settings, repo } = await openRepository(opts);
  const catalogFile = catalogPathFor(repo.config.id, settings.catalog);
  // A wrong password writes nothing to the cache either: a catalog is created only once the key is proven.
  if (!fs.existsSync(catalogFile)) await repo.unlock();
  const catalog = Catalog.open(catalogFile, repo.config.id);
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
    const out = await fn(s);
    await s.repo.unlock(); // a deferred unlock that nothing awaited: a wrong password still fails the command
    return out;
  } finally {
    await s.close();
  }
}

export interface InitRepositoryOptions extends OpenOptions {
  /** A version-2 repository WITHOUT encryption (anyone who can read the store reads the backups). */
  insecureNoEncryption?: boolean;
  /** 1: the old format (tests and migrations only). */
  formatVersion?: 1 | 2;
  /** A file holding the first key's password (otherwise the usual password sources). */
  newPasswordFile?: string;
  chunkSize?: number;
  packSize?: number;
}

/** Creates a repository where the settings point (flags > env > config file > default). */
export async function initRepository(opts: InitRepositoryOptions = {}): Promise<Repository> {
  const settings = sessionSettings(opts);
  const { location } = settings.repository;
  const version = opts.formatVersion ?? 2;
  const init: InitOptions = { version, chunkSize: opts.chunkSize, packSize: opts.packSize };
  if (version === 2) {
    if (opts.insecureNoEncryption) init.password = null;
    else {
      // Asked before anything is created: no password, nothing written.
      init.password = await newPassword(opts, settings.passwordFile);
      if (init.password === undefined) throw new PasswordNeededError(location);
    }
  }
  if (!location.startsWith('s3://')) fs.mkdirSync(location, { recursive: true });
  const { store } = await openSettingsStore(opts);
  try {
    return await Repository.init(store, init);
  } catch (e) {
    await store.close?.();
    throw e;
  }
}
