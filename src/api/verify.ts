import * as path from 'node:path';
import { native } from '../livefs/native.js';
import { verifySnapshot, type VerifyOptions, type VerifyResult } from '../verify/verify.js';
import { fromUser, normalizeAbs } from '../util/rawpath.js';
import type { Session } from './session.js';
import { pickSnapshot, type SnapshotRef } from './snapshots.js';

export interface VerifyTreeOptions extends Omit<VerifyOptions, 'paths' | 'target'> {
  /** `latest` (the newest snapshot of a group holding `paths`), an id, a prefix, a query or a row. */
  snapshot: SnapshotRef;
  /** Only these paths (as recorded in the snapshot); default: the snapshot's source paths. */
  paths?: string[];
  /** Compare the tree restored under this directory (directory + original path). */
  target?: string;
}

/** Compares the live tree with a snapshot, read-only (paths as a user types them). */
export async function verify(s: Session, o: VerifyTreeOptions): Promise<VerifyResult> {
  // [issue 17, native-restore] No slow fallback: without the addon, one line and a non-zero exit before anything else.
  native();
  const { snapshot, paths, target, ...opts } = o;
  const asked = (paths ?? []).map((p) => normalizeAbs(fromUser(p)));
  const snap = await pickSnapshot(s, snapshot, asked);
  return verifySnapshot(s.catalog, snap, {
    ...opts,
    paths: asked,
    target: target ? fromUser(path.resolve(target)) : undefined,
  });
}
