/** The library API: what the CLI uses is what a program can use. */
export { openSession, initRepository, Session, type OpenOptions } from './session.js';
export { Repository, type SnapshotRecord, type StoredSnapshot, type RepoConfig } from './repo/repository.js';
export { Catalog, type SnapshotRow, type VersionRow } from './index/catalog.js';
export { syncCatalog, rebuildCatalog, importSnapshot } from './index/sync.js';
export { resolveSnapshot } from './index/resolve.js';
export { Snapshotter, type SnapshotOptions, type SnapshotResult, type PathError } from './snapshot/snapshotter.js';
export { diffSnapshots } from './query/diff.js';
export { repoStats } from './query/stats.js';
export { RepoLock, RepoLockedError, listLocks, removeStaleLocks } from './repo/lock.js';
export type { ObjectStore, ObjectInfo } from './store/store.js';
export { LocalStore } from './store/local.js';
export { openStore } from './store/open.js';
export type { Entry, EntryType } from './repo/tree.js';
