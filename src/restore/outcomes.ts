import type { LightEntry } from '../catalog/catalog.js';
import type { ClassifyResult, OutcomeCounts } from './protocol.js';

/**
 * The outcomes that need nothing but counting: a file written, a symlink or FIFO created, a
 * metadata fix applied, an entry left as it is. Most entries of a restore end this way, so a
 * worker counts them itself and the orchestrator gets the totals, not an entry each (classify.ts
 * handles the rest: planned content and links, directories, errors). One rule for both sides:
 * the orchestrator counts these outcomes of the entries it classified through `countOutcome` too.
 */
export function emptyCounts(): OutcomeCounts {
  return { entries: 0, notes: {}, restored: 0, restoredBytes: 0, created: 0, skipped: 0, metadataFixed: 0 };
}

/**
 * Counts `r` when it is one of the outcomes above and returns true; false when the
 * orchestrator must see the entry. A dry run lists every entry's action: nothing is only counted.
 */
export function countOutcome(
  c: OutcomeCounts,
  v: Pick<LightEntry, 'type' | 'target' | 'size'>,
  r: ClassifyResult,
  dryRun: boolean,
): boolean {
  if (dryRun) return false;
  switch (r.outcome) {
    case 'written':
      note(c, r.why ? 'replace (extra hard links)' : 'restore', v.size);
      c.restored++;
      c.restoredBytes += v.size;
      return true;
    case 'created':
      if (v.type === 'dir') return false; // its metadata is set at the end: planned
      note(c, `create ${v.type}`);
      c.created++;
      return true;
    case 'meta':
      note(c, 'metadata');
      c.metadataFixed++;
      return true;
    case 'skip-present':
    case 'skip-same':
      // A surviving name of a hard-link group may be what a missing first name is linked back to: planned.
      if (v.type === 'hardlink' && v.target !== null) return false;
      if (v.type !== 'dir') c.skipped++;
      // Directories on lines of their own: the plan's skip lines then add up to files_skipped.
      note(c, v.type === 'dir' ? `${r.outcome} (dirs)` : r.outcome);
      return true;
    default:
      return false;
  }
}

/**
 * Entries skipped with one outcome, counted at once as countOutcome counts each of them (none a
 * name of a hard-link group linked back to): `nonDirs` entries that are no directory, `dirs`
 * directories. For the intact passes' per-directory shortcuts (issue 17), which skip whole
 * directories' entries: one count per directory, not a call and a note per entry.
 */
export function countSkipped(c: OutcomeCounts, outcome: 'skip-present' | 'skip-same', nonDirs: number, dirs: number): void {
  c.entries += nonDirs + dirs;
  if (nonDirs) {
    c.skipped += nonDirs;
    note(c, outcome, 0, nonDirs);
  }
  if (dirs) note(c, `${outcome} (dirs)`, 0, dirs);
}

function note(c: OutcomeCounts, kind: string, bytes = 0, count = 1): void {
  const e = (c.notes[kind] ??= { count: 0, bytes: 0 });
  e.count += count;
  e.bytes += bytes;
}
