import type { Recorded } from '../livefs/compare.js';
import type { RawPath } from '../util/rawpath.js';

/** Messages between the verify coordinator and its worker threads (through livefs/pool.ts). */

export interface DirTask {
  /** The directory's path id in the catalog. */
  id: number;
  path: RawPath;
}

/** One snapshot entry as verify compares it. */
export interface VerifyEntry extends Recorded {
  pathId: number;
  path: RawPath;
  /** A hardlink's first name (raw): the live entry must still be that inode. */
  linkFirst: RawPath | null;
}

export interface VerifyBatchResult {
  checked: number;
  missing: RawPath[];
  changed: { path: RawPath; reason: string }[];
  metadata: { path: RawPath; fields: string[] }[];
  extra: RawPath[];
  errors: { path: RawPath; message: string }[];
  /** Directories found but not processed within the batch's budget: handed back for balancing. */
  more: DirTask[];
}

export interface VerifyWorkerInit {
  catalogFile: string;
  lineage: number;
  seq: number;
  target: RawPath;
  checksum: boolean;
  /** The snapshot's source paths and exclude globs: what it never looked at is not "extra". */
  sources: RawPath[];
  excludes: string[];
}

export interface VerifyRequest {
  dirs: DirTask[];
}

export type VerifyReply = VerifyBatchResult & { id: number };

export function emptyBatch(): VerifyBatchResult {
  return { checked: 0, missing: [], changed: [], metadata: [], extra: [], errors: [], more: [] };
}
