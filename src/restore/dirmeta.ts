import { lightFromVersion } from '../catalog/catalog.js';
import { BATCH, wire, type RestoreRun } from './context.js';
import type { ItemResult, WireEntry } from './protocol.js';

/**
 * The last phase: directory metadata, children before parents. Directories this run created
 * (0700 until now) and existing ones it wrote into get the snapshot's owner, mode and times.
 */
export async function setDirMetadata(run: RestoreRun): Promise<void> {
  run.tally.phase('metadata');
  for (const rel of run.tally.createdDirs) run.plan.addDir(rel, null);
  for (const rel of run.tally.touchedDirs) run.plan.addDir(rel, null);
  const inflight: Promise<void>[] = [];
  let batch: WireEntry[] = [];
  const send = () => {
    const items = batch;
    batch = [];
    inflight.push(
      run.pool.submit({ op: 'dirmeta', items }).then((reply) => {
        reply.results.forEach((r, i) => {
          const res = r as ItemResult;
          if (!res.ok) run.tally.error('/' + items[i].rel, res.msg ?? 'cannot set directory metadata');
        });
      }),
    );
  };
  // Setting a child's metadata never changes its parent's mtime, so batches may run in parallel;
  // only entry creation does, and that is finished before this phase.
  for (const d of run.plan.dirsDeepestFirst()) {
    let e = d.entry;
    if (!e) {
      const v = run.s.catalog.entry(run.snap, '/' + d.rel);
      if (!v || v.type !== 'dir') continue;
      e = wire(run, lightFromVersion(v, null));
    }
    batch.push(e);
    if (batch.length >= BATCH) send();
  }
  if (batch.length) send();
  await Promise.all(inflight);
}
