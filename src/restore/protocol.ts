/** Messages between the restore orchestrator and its worker threads. */
export type RestoreMode = 'missing' | 'changed' | 'checksum' | 'metadata' | 'all';

/** The parts of an entry a worker needs, with owner ids already mapped. Paths are relative to the root. */
export interface WireEntry {
  rel: string;
  t: string; // entry type
  m: number;
  u: number;
  g: number;
  s: number;
  mt: string; // mtime ns
  fp: string | null;
  tg: string | null; // symlink target (raw)
  rd: number;
  nl: number; // link count recorded in the snapshot (a live file with more links is someone else's inode)
  content: boolean; // has stored content
  anc?: boolean; // an ancestor of a restore root: created when missing, never modified
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
  /** Where workers journal the directories they create (crash recovery); null in a dry run. */
  journalDir: string | null;
  /** The process umask during the restore (0 lets files be created with their final mode). */
  umask: number;
}

export type ClassifyCode =
  | 'content' // file content must be written
  | 'link' // hardlink to create after content
  | 'created' // created now (dir, symlink, fifo, device)
  | 'meta' // metadata fixed now (or would be, in a dry run)
  | 'dirmeta' // directory metadata to set at the end
  | 'written' // content written (direct strategy)
  | 'skip-present' | 'skip-same' | 'skip-newer' | 'skip-conflict' | 'skip-unsupported' | 'skip-nocontent'
  | 'error';

export interface ClassifyResult {
  c: ClassifyCode;
  msg?: string;
  replace?: boolean; // an existing entry will be replaced
  fresh?: boolean; // the parent directory was created by this restore: nothing else can be there
  /** Why an existing entry is replaced (shown in the plan), e.g. extra hard links. */
  why?: string;
}

export interface WriteItem {
  rel: string;
  e: WireEntry;
  sab: SharedArrayBuffer;
  off: number;
  len: number;
  /** May replace what exists (changed/checksum/all); otherwise only create. */
  replace: boolean;
  /** Parent created by this restore (mode 0700, ours): a plain rename cannot clobber anyone's data. */
  fresh: boolean;
}

/** Where one content chunk is: pack file, offset, length, and its id to verify. */
export interface ChunkRef {
  pack: string;
  off: number;
  len: number;
  id: string;
}

/** Classify an entry and, when content is needed, write it straight from the local packs. */
export interface RestoreItem {
  e: WireEntry;
  chunks: ChunkRef[] | null;
}

export interface LinkItem {
  rel: string;
  first: string;
  e: WireEntry;
  replace: boolean;
  /**
   * What the snapshot recorded for the inode at `first`: the live entry there is linked only
   * when it still matches (regular file, size, mtime, owner, link count within the record), so
   * a restore never links a name to an inode it did not create or verify.
   */
  source: { s: number; mt: string; u: number; g: number; nl: number };
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
  | { op: 'link'; id: number; items: LinkItem[] }
  | { op: 'dirmeta'; id: number; items: WireEntry[] };

export type FromWorker =
  | { id: number; results: (ClassifyResult | ItemResult)[]; createdDirs: string[]; touchedDirs: string[] }
  | { id: number; fatal: string };

/** A request as the pool sends it (the pool adds the id). */
export type WorkerRequest = Exclude<ToWorker, { op: 'init' }> extends infer T ? T extends { id: number } ? Omit<T, 'id'> : never : never;
export type WorkerReply = Extract<FromWorker, { results: unknown }>;
