import { checkSession, parseSubset, type CheckResult, type PackSubset } from '../check/check.js';
import type { Session } from './session.js';

export { parseSubset } from '../check/check.js';

export interface CheckRunOptions {
  /** Read every pack (or the subset) and verify each blob's SHA-256. */
  readData?: boolean;
  /** Read only part of the packs: "10%" (a window that moves every day), "n/m", or the parsed form. */
  readDataSubset?: string | PackSubset;
  onProgress?: (msg: string) => void;
}

/**
 * Checks the repository's integrity. Open the session without sync: a damaged snapshot that
 * would stop the sync must not stop the check from reporting it.
 */
export async function check(s: Session, o: CheckRunOptions = {}): Promise<CheckResult> {
  const subset = typeof o.readDataSubset === 'string' ? parseSubset(o.readDataSubset) : o.readDataSubset;
  return checkSession(s, { readData: o.readData, subset, onProgress: o.onProgress });
}
