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
}

export type ClassifyCode =
  | 'content' // file content must be written
  | 'link' // hardlink to create after content
  | 'created' // created now (dir, symlink, fifo, device)
  | 'meta' // metadata fixed now (or would be, in a dry run)
  | 'dirmeta' // directory metadata to set at the end
  | 'skip-present' | 'skip-same' | 'skip-newer' | 'skip-conflict' | 'skip-unsupported' | 'skip-nocontent'
  | 'error';

export interface ClassifyResult {
  c: ClassifyCode;
  msg?: string;
  replace?: boolean; // an existing entry will be replaced
}

export interface WriteItem {
  rel: string;
  e: WireEntry;
  sab: SharedArrayBuffer;
  off: number;
  len: number;
  /** May replace what exists (changed/checksum/all); otherwise only create. */
  replace: boolean;
}

export interface LinkItem {
  rel: string;
  first: string;
  e: WireEntry;
  replace: boolean;
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
  | { op: 'link'; id: number; items: LinkItem[] }
  | { op: 'dirmeta'; id: number; items: WireEntry[] };

export type FromWorker =
  | { id: number; results: (ClassifyResult | ItemResult)[]; createdDirs: string[] }
  | { id: number; fatal: string };
