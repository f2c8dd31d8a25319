import { packKey } from '../pack/format.js';
import { loadBlobsFromPack } from '../repo/blobloader.js';
import { installFileAsync, type InstallResult } from '../livefs/install.js';
import { SafeRoot, splitParent, UnsafePathError } from '../livefs/safepath.js';
import { placementOf, type RestoreRun } from './context.js';
import type { ContentRow } from './plan.js';
import type { ItemResult, WriteItem } from './protocol.js';

/**
 * Phase 2, content: the files the plan holds, pack by pack. Whole-blob files are fetched one
 * pack group at a time through the one blob loader (large coalesced ranges; decompressed and
 * verified once each), decoded into a shared buffer and written by the workers; files of
 * several chunks are written here, chunk by chunk, through the same install primitive.
 */

interface PackData {
  plain: Map<string, Buffer>;
  bad: Map<string, string>;
  error?: string;
}

/** Read-ahead: the next packs are fetched while the current one is written (a remote store's latency overlaps with work). */
const READ_AHEAD = 2;
/** Files per write batch. */
const WRITE_BATCH = 128;

export async function writeContent(run: RestoreRun): Promise<void> {
  run.tally.phase('content');
  const inflight: Promise<void>[] = [];
  let group: ContentRow[] = [];
  const fetched: { rows: ContentRow[]; data: Promise<PackData> }[] = [];
  const drainOne = async () => {
    const g = fetched.shift()!;
    await writePackGroup(run, g.rows, await g.data, inflight);
    while (inflight.length > run.pool.size * 6) await inflight.shift();
  };
  const flushGroup = async () => {
    if (!group.length) return;
    fetched.push({ rows: group, data: fetchPackGroup(run, group) });
    group = [];
    if (fetched.length > READ_AHEAD) await drainOne();
  };
  for (const row of run.plan.singleBlobFiles()) {
    if (group.length && group[0].pack !== row.pack) await flushGroup();
    group.push(row);
  }
  await flushGroup();
  while (fetched.length) await drainOne();
  await Promise.all(inflight);
  // Files of several chunks (large files) and empty files: written here, chunk by chunk.
  await writeLargeFiles(run, run.plan.otherFiles());
}

/** Fetches what a pack group needs through the blob loader; a failed fetch is reported per file. */
async function fetchPackGroup(run: RestoreRun, rows: ContentRow[]): Promise<PackData> {
  const key = packKey(rows[0].pack!);
  try {
    return await loadBlobsFromPack(
      (offset, length) => run.s.repo.store.getRange(key, offset, length),
      rows.map((r) => ({ id: r.blobs[0], offset: r.off, length: r.len })),
      run.s.repo.blobKey(),
    );
  } catch (e) {
    return { plain: new Map(), bad: new Map(), error: (e as Error).message };
  }
}

/** Copies the decoded blobs into one shared buffer the workers write from; where each one lies. */
function share(plain: Map<string, Buffer>): { sab: SharedArrayBuffer; where: Map<string, { at: number; len: number }> } {
  let total = 0;
  for (const p of plain.values()) total += p.length;
  const sab = new SharedArrayBuffer(Math.max(1, total));
  const view = Buffer.from(sab);
  const where = new Map<string, { at: number; len: number }>();
  let pos = 0;
  for (const [id, p] of plain) {
    p.copy(view, pos);
    where.set(id, { at: pos, len: p.length });
    pos += p.length;
  }
  return { sab, where };
}

async function writePackGroup(run: RestoreRun, rows: ContentRow[], data: PackData, inflight: Promise<void>[]): Promise<void> {
  const pack = rows[0].pack!.slice(0, 12);
  if (data.error) {
    for (const r of rows) run.tally.error('/' + r.rel, `cannot read pack ${pack}: ${data.error}`);
    return;
  }
  const { sab, where } = share(data.plain);
  let batch: WriteItem[] = [];
  let batchRows: ContentRow[] = [];
  const send = () => {
    if (!batch.length) return;
    const items = batch;
    const rs = batchRows;
    batch = [];
    batchRows = [];
    inflight.push(
      run.pool.submit({ op: 'write', items }).then((reply) => {
        reply.results.forEach((res, i) => run.tally.written('/' + rs[i].rel, rs[i].entry.size, res as ItemResult));
        run.tally.noteDirs(reply);
      }),
    );
  };
  for (const r of rows) {
    const id = r.blobs[0];
    const bad = data.bad.get(id);
    const w = where.get(id);
    if (bad !== undefined) run.tally.error('/' + r.rel, `content blob ${id.slice(0, 12)} in pack ${pack} ${bad}; file not restored`);
    else if (!w) run.tally.error('/' + r.rel, `content blob ${id.slice(0, 12)} missing from pack ${pack}`);
    else {
      batch.push({ rel: r.rel, entry: r.entry, sab, offset: w.at, length: w.len, replace: r.replace, fresh: r.fresh });
      batchRows.push(r);
      if (batch.length < WRITE_BATCH) continue;
      send();
      while (inflight.length > run.pool.size * 6) await inflight.shift();
    }
  }
  send();
}

/** Writes files chunk by chunk in this thread (big files are few; their chunks are large). */
export async function writeLargeFiles(run: RestoreRun, rows: Iterable<ContentRow>): Promise<void> {
  const root = new SafeRoot(
    run.targetRoot,
    (rel) => run.tally.createdDirs.add(rel),
    (rel) => run.journal?.append(rel),
  );
  try {
    for (const row of rows) await writeLargeFile(run, root, row);
  } finally {
    root.close();
  }
}

async function writeLargeFile(run: RestoreRun, root: SafeRoot, row: ContentRow): Promise<void> {
  const p = '/' + row.rel;
  const [parentRel, name] = splitParent(row.rel);
  let dfd: number | null;
  try {
    dfd = root.dirFd(parentRel, true);
  } catch (e) {
    run.tally.error(p, e instanceof UnsafePathError ? e.message : String((e as Error).message));
    return;
  }
  if (dfd === null) {
    run.tally.error(p, 'parent directory missing');
    return;
  }
  let r: InstallResult;
  try {
    r = await installFileAsync(dfd, name, row.entry, run.policy, placementOf(run, row.replace, row.fresh), async (t) => {
      for (const id of row.blobs) {
        const loc = run.s.catalog.blobLocation(id);
        if (!loc) throw new Error(`content blob ${id.slice(0, 12)} is not in the repository index`);
        t.write(await run.s.repo.readBlob(loc.pack, loc.offset, loc.length, id));
      }
    });
  } catch (e) {
    run.tally.error(p, `${(e as Error).message}; file not restored`);
    return;
  }
  if (r.installed || r.reason !== 'newer') run.tally.touched(parentRel);
  run.tally.written(p, row.entry.size, r.installed ? { ok: true } : { ok: true, skipped: true, msg: r.msg });
}
