import * as path from 'node:path';
import { verifySnapshot, type VerifyOptions, type VerifyResult } from '../verify/verify.js';
import { fromUser, normalizeAbs } from '../util/rawpath.js';
import type { Session } from './session.js';
import { selectSnapshot, type SnapshotRef } from './snapshots.js';

export interface VerifyTreeOptions extends Omit<VerifyOptions, 'paths' | 'target'> {
  snapshot: SnapshotRef;
  /** Only these paths (as recorded in the snapshot); default: the snapshot's source paths. */
  paths?: string[];
  /** Compare the tree restored under this directory (directory + original path). */
  target?: string;
}

/** Compares the live tree with a snapshot, read-only (paths as a user types them). */
export async function verify(s: Session, o: VerifyTreeOptions): Promise<VerifyResult> {
  const { snapshot, paths, target, ...opts } = o;
  const snap = selectSnapshot(s, snapshot);
  return verifySnapshot(s.catalog, snap, {
    ...opts,
    paths: (paths ?? []).map((p) => normalizeAbs(fromUser(p))),
    target: target ? fromUser(path.resolve(target)) : undefined,
  });
}
