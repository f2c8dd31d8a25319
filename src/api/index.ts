/**
 * The library API: what the CLI uses is what a program can use. Whole operations take an open
 * Session and options (never flag names); the lower layers' types, errors and path helpers a
 * caller needs are re-exported here, so a program imports nothing else. (The CLI imports each
 * command's own api module and api/common.ts instead, so a run loads only its command: issue 17.)
 */

// The session: store + repository + catalog + locks.
export { openSession, withSession, initRepository, Session, type OpenOptions, type InitRepositoryOptions } from './session.js';
// Encryption keys and copying between repositories (format version 2).
export { listRepoKeys, addRepoKey, removeRepoKey, changeRepoPassword, type KeyOptions, type KeyListEntry } from './keys.js';
export { copySnapshots, type CopyOptions, type CopyReport } from './copy.js';
export { configCheck, type DoctorReport, type DoctorCheck, type DoctorOptions } from './doctor.js';

// Whole operations.
export { takeSnapshot, type TakeSnapshotOptions } from './snapshot.js';
export {
  chooseSnapshot,
  listSnapshots,
  resolveSnapshot,
  selectSnapshot,
  pickSnapshot,
  importHosts,
  readAllRecords,
  type ChosenSnapshot,
  type SnapshotFilter,
  type SnapshotGroup,
  type SnapshotQuery,
  type SnapshotRef,
  type SnapshotSelection,
} from './snapshots.js';
export { restoreSnapshot, type RestoredSnapshot, type RestoreSnapshotOptions, type RestoreSnapshotResult } from './restore.js';
export { verify, type VerifyTreeOptions } from './verify.js';
export { check, type CheckRunOptions } from './check.js';
export {
  choosePolicy,
  describePolicy,
  forgetSnapshots,
  pruneRepository,
  type ChosenPolicy,
  type ForgetSnapshotsOptions,
} from './maintain.js';
export {
  find,
  prepareFind,
  parseSize,
  parseTime,
  type FindOptions,
  type FindQuery,
  type FindResult,
  type FoundPath,
  type FoundVersion,
  type FindDamage,
} from './find.js';
export { listEntries, catFile, dumpSubtree, diff, pickForPath, type Listing, type SnapshotDiff } from './browse.js';
export {
  consoleSettings,
  consoleStateDir,
  listAccounts,
  listPage,
  snapshotsHolding,
  diffSubtree,
  health,
  pathIsUnder,
  refreshCatalog,
  type ConsoleSettings,
  type AccountSummary,
  type ListingPage,
  type SubtreeDiff,
  type HealthReport,
  type HostHealth,
} from './console.js';
export { JsonLog, readLastRun, type LastRun } from './monitor.js';
export { mount, checkMountAvailable, unmountHint, MountUnavailableError, type MountHandle, type MountOptions } from './mount.js';
export { unlockRepository, catalogRebuild, catalogSync } from './repository.js';
export { runJob, summaryLine, RunOverlapError, type RunReport, type RunStatus, type RunJobOptions } from './run.js';
export {
  renderSchedule,
  installSchedule,
  removeSchedule,
  showSchedule,
  detectInit,
  scheduleSpecFromConfig,
  type ScheduleSpec,
  type ScheduleChoices,
  type InitSystem,
} from './schedule.js';

// Lower layers, as a program (or the CLI) meets them.
export { Repository, type SnapshotRecord, type StoredSnapshot, type RepoConfig } from '../repo/repository.js';
export { Catalog, type SnapshotRow, type VersionRow } from '../catalog/catalog.js';
export { syncCatalog, rebuildCatalog, importSnapshot, type SyncReport } from '../catalog/sync.js';
export { Snapshotter, type SnapshotOptions, type SnapshotResult, type SnapshotProgress, type PathError } from '../snapshot/snapshotter.js';
export {
  restore,
  type RestoreOptions,
  type RestoreResult,
  type RestoreProgress,
  type RestoreMode,
  type RestoreStrategy,
} from '../restore/restorer.js';
export { diffSnapshots, type DiffResult } from '../query/diff.js';
export { repoStats, type RepoStats } from '../query/stats.js';
export type { DumpResult } from '../dump/tar.js';
export { RepoLock, RepoLockedError, listLocks, removeStaleLocks, type LockInfo } from '../repo/lock.js';
export { LockBusyError } from '../util/pidlock.js';
export { OptionError, type OptionNamer } from '../util/errors.js';
export type { ObjectStore, ObjectInfo } from '../store/store.js';
export { LocalStore } from '../store/local.js';
export { openStore, type StoreOptions } from '../store/open.js';
export { ObjectRetainedError, ObjectExistsError, ObjectNotFoundError } from '../store/store.js';
export type { Entry, EntryType } from '../repo/tree.js';
export { loadConfig, readConfigFile, applyCredentials, configPath, ConfigError, type Config } from '../config/config.js';
export { applyPolicy, parseDuration, DEFAULT_POLICY, type RetentionPolicy, type RetentionDecision } from '../maintain/policy.js';
export { forget, planForget, pruneSession, RetentionRefusedError, type ForgetReport, type ForgetOptions } from '../maintain/forget.js';
export { prune, PruneAbortedError, parseGrace, DEFAULT_GRACE_MS, type PruneOptions, type PruneReport } from '../maintain/prune.js';
export { TokenBucket, LoadGate, throttleHooks, reexecAtIdlePriority, type ThrottleSettings } from '../util/throttle.js';
export {
  checkRepository,
  checkSession,
  parseSubset,
  inSubset,
  type CheckOptions,
  type CheckResult,
  type BrokenPack,
  type PackSubset,
} from '../check/check.js';
export { verifySnapshot, type VerifyOptions, type VerifyResult } from '../verify/verify.js';
export { display, fromUser, normalizeAbs, basename, type RawPath } from '../util/rawpath.js';
