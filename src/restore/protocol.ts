import type { LightEntry } from '../catalog/catalog.js';
/**
 * Messages between the restore orchestrator and its worker threads. They are structured-cloned
 * per entry, so they stay flat: named fields, no nesting beyond an entry inside an item.
 */
export type RestoreMode = 'missing' | 'changed' | 'checksum' | 'metadata' | 'all';

/** The parts of an entry a worker needs, with owner ids already mapped. Paths are relative to the root. */
export interface WireEntry {
  rel: string;
  /** Entry type (src/repo/tree.ts EntryType). */
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Modification time in ns, as a decimal string. */
  mtimeNs: string;
  /** xxh64 hex of the content as the snapshot read it. */
  fingerprint: string | null;
  /** Symlink target, or a hardlink's first name (raw). */
  linkTarget: string | null;
  rdev: number;
  /** Link count recorded in the snapshot (a live file with more links is someone else's inode). */
  nlink: number;
  /** The snapshot stored content for it. */
  hasContent: boolean;
  /** An ancestor of a restore root: created when missing, never modified. */
  ancestor?: boolean;
}

export interface WorkerInit {
  root: string;
  mode: RestoreMode;
  dryRun: boolean;
  overwriteNewer: boolean;
  snapshotTimeNs: string;
  chown: boolean;
  /** Local repository directory: workers read pack files themselves (direct strategy). */
  repoDir: string | null;
  /**
   * The run's write gate (livefs/writegate.ts): workers walk and compare at once, and write only
   * once the main thread has proven the key and taken the repository lock; the repository's blob
   * key (direct strategy, encrypted repositories) crosses with it. Null: writes go through (dry run).
   */
  gate: SharedArrayBuffer | null;
  /** Where workers journal the directories they create (crash recovery); null in a dry run. */
  journalDir: string | null;
  /** The process umask during the restore (0 lets files be created with their final mode). */
  umask: number;
  /**
   * What the walk needs (op 'walk'): workers read the snapshot's directories from the catalog
   * file themselves, on read-only connections, and apply the restore's scope where they read.
   */
  walk: {
    catalogFile: string;
    lineage: number;
    seq: number;
    /** --exclude and --include patterns (restore/scope.ts applies the same). */
    exclude: string[];
    include: string[] | null;
    /** Map owners by name through this machine's /etc/passwd and /etc/group. */
    ownerByName: boolean;
  };
}

/** A snapshot directory whose children a worker reads, compares and restores. */
export interface RestoreDirTask {
  /** The directory's path id in the catalog. */
  id: number;
  path: string;
  /** Created by this restore: its entries cannot exist yet, nothing to look at. */
  fresh: boolean;
}

/** What a worker counts itself for entries whose outcome needs nothing more (see restore/outcomes.ts). */
export interface OutcomeCounts {
  entries: number;
  /** Per planned action: count and bytes (the dry run's summary table). */
  notes: Record<string, { count: number; bytes: number }>;
  /** Files written now, and their bytes. */
  restored: number;
  restoredBytes: number;
  /** Non-file entries created now (symlinks, FIFOs, devices). */
  created: number;
  skipped: number;
  metadataFixed: number;
}

/** An entry whose outcome the orchestrator must see: planned content and links, directories, errors, a dry run's actions. */
export interface WalkedItem {
  v: LightEntry;
  w: WireEntry;
  r: ClassifyResult;
}

export interface WalkReply {
  counts: OutcomeCounts;
  items: WalkedItem[];
  /** Entries refused before they were compared (unsafe paths in the snapshot). */
  errors: { path: string; message: string }[];
  /** Directories found beyond the batch's budget: handed back for balancing. */
  more: RestoreDirTask[];
}

export type Outcome =
  | 'content' // file content must be written
  | 'link' // hardlink to create after content
  | 'created' // created now (dir, symlink, fifo, device)
  | 'meta' // metadata fixed now (or would be, in a dry run)
  | 'dirmeta' // directory metadata to set at the end
  | 'written' // content written (direct strategy)
  | 'skip-present'
  | 'skip-same'
  | 'skip-newer'
  | 'skip-conflict'
  | 'skip-unsupported'
  | 'skip-nocontent'
  | 'error';

export interface ClassifyResult {
  outcome: Outcome;
  msg?: string;
  /** An existing entry will be replaced. */
  replace?: boolean;
  /** The parent directory was created by this restore: nothing else can be there. */
  fresh?: boolean;
  /** The parent's listing held no temp entry: no leftover of an interrupted run to clear first. */
  clean?: boolean;
  /** Why an existing entry is replaced (shown in the plan), e.g. extra hard links. */
  why?: string;
}

export interface WriteItem {
  rel: string;
  entry: WireEntry;
  /** The decoded blobs of one pack group, shared by every item of the group. */
  sab: SharedArrayBuffer;
  offset: number;
  length: number;
  /** May replace what exists (changed/checksum/all); otherwise only create. */
  replace: boolean;
  /** Parent created by this restore (mode 0700, ours): a plain rename cannot clobber anyone's data. */
  fresh: boolean;
}

/** Where one content chunk is: pack, offset and length in it, and its id to verify. */
export interface ChunkRef {
  pack: string;
  offset: number;
  length: number;
  id: string;
}

/** Classify an entry and, when content is needed, write it straight from the local packs. */
export interface RestoreItem {
  entry: WireEntry;
  chunks: ChunkRef[] | null;
}

/**
 * What the snapshot recorded for the inode a hardlink is made to: the live entry there is
 * linked only when it still matches (regular file, size, mtime, owner, link count within the
 * record), so a restore never links a name to an inode it did not create or verify.
 */
export interface LinkSource {
  size: number;
  mtimeNs: string;
  uid: number;
  gid: number;
  nlink: number;
}

export interface LinkItem {
  rel: string;
  first: string;
  entry: WireEntry;
  replace: boolean;
  source: LinkSource;
}

export interface ItemResult {
  ok: boolean;
  msg?: string;
  skipped?: boolean;
}

export type ToWorker =
  | { op: 'init'; init: WorkerInit }
  | { op: 'classify'; id: number; items: WireEntry[] }
  | { op: 'write'; id: number; items: WriteItem[] }
  | { op: 'restore'; id: number; items: RestoreItem[] }
  | { op: 'walk'; id: number; dirs: RestoreDirTask[] }
  | { op: 'link'; id: number; items: LinkItem[] }
  | { op: 'dirmeta'; id: number; items: WireEntry[] };

export type FromWorker =
  | { id: number; results: (ClassifyResult | ItemResult)[]; walk?: WalkReply; createdDirs: string[]; touchedDirs: string[] }
  | { id: number; fatal: string };

/** A request as the pool sends it (the pool adds the id). */
export type WorkerRequest = Exclude<ToWorker, { op: 'init' }> extends infer T ? (T extends { id: number } ? Omit<T, 'id'> : never) : never;
export type WorkerReply = Extract<FromWorker, { results: unknown }>;
