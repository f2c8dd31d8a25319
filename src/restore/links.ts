import { BATCH, type RestoreRun } from './context.js';
import { writeLargeFiles } from './content.js';
import type { ContentRow, LinkRow } from './plan.js';
import type { ItemResult, LinkItem, WireEntry } from './protocol.js';

/**
 * Hard links, in two steps around the content phase: first names of groups are linked back
 * to a surviving name before content is written (so a group is one inode again), the other
 * names after it. A name that cannot be linked gets a copy of its own.
 */

function sourceOf(e: WireEntry): LinkItem['source'] {
  return { size: e.size, mtimeNs: e.mtimeNs, uid: e.uid, gid: e.gid, nlink: e.nlink };
}

/**
 * The first name of a hard-link group is missing but another name survived: link it back to
 * that survivor (when the survivor still matches the snapshot) instead of writing a copy.
 * Whatever cannot be linked is written as usual next.
 */
export async function relinkGroupFirsts(run: RestoreRun): Promise<void> {
  const jobs = [...run.plan.groupFirstsWithSurvivor()];
  for (let i = 0; i < jobs.length; i += BATCH) {
    const batch = jobs.slice(i, i + BATCH);
    const reply = await run.pool.submit({
      op: 'link',
      items: batch.map((j) => ({
        rel: j.rel,
        first: j.survivor,
        entry: j.entry,
        replace: j.replace,
        source: sourceOf(j.survivorEntry),
      })),
    });
    run.tally.noteDirs(reply);
    reply.results.forEach((res, k) => {
      const it = res as ItemResult;
      if (it.ok && !it.skipped) {
        run.plan.dropContent(batch[k].id);
        run.tally.restored(0);
      }
    });
  }
}

export async function writeLinks(run: RestoreRun): Promise<void> {
  run.tally.phase('links');
  const fallback: ContentRow[] = [];
  const inflight: Promise<void>[] = [];
  let batch: LinkRow[] = [];
  const send = () => {
    const items = batch;
    batch = [];
    inflight.push(
      run.pool
        .submit({
          op: 'link',
          items: items.map((x) => ({ rel: x.rel, first: x.first, entry: x.entry, replace: x.replace, source: x.source })),
        })
        .then((reply) => {
          run.tally.noteDirs(reply);
          reply.results.forEach((r, i) => onLinked(run, items[i], r as ItemResult, fallback));
        }),
    );
  };
  for (const l of run.plan.links()) {
    batch.push(l);
    if (batch.length >= BATCH) send();
  }
  if (batch.length) send();
  await Promise.all(inflight);
  if (fallback.length) await writeLargeFiles(run, fallback);
}

function onLinked(run: RestoreRun, it: LinkRow, res: ItemResult, fallback: ContentRow[]): void {
  if (res.ok && !res.skipped) run.tally.restored(0);
  else if (res.ok) run.tally.res.files_skipped++;
  // The first path of the inode was not restored: write this one as a file of its own.
  else if (it.blobs.length) {
    fallback.push({
      rel: it.rel,
      entry: { ...it.entry, type: 'file' },
      blobs: it.blobs,
      pack: null,
      off: 0,
      len: 0,
      replace: it.replace,
      fresh: false,
    });
  } else run.tally.error('/' + it.rel, res.msg ?? 'hardlink failed');
}
