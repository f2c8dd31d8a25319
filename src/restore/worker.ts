/**
 * A restore worker thread: synchronous native calls only (livefs/native.ts: a directory's scan,
 * install or metadata batch per call; a promise per syscall costs ~4x). Every directory is
 * opened through SafeRoot relative to its parent with O_NOFOLLOW, so nothing in the target tree
 * is ever followed as a symlink. The walk of the snapshot's directories is in worker-walk.ts,
 * the classify half in worker-classify.ts, the content half in worker-content.ts; this file only receives batches and answers them.
 */
import { parentPort } from 'node:worker_threads';
import { splitParent, UnsafePathError } from '../livefs/safepath.js';
import type { ClassifyResult, FromWorker, ItemResult, ToWorker } from './protocol.js';
import { classifyBatch } from './worker-classify.js';
import { dirmeta, link, restoreBatch, writeBatch } from './worker-content.js';
import { errMsg, startBatch, startWorker, worker } from './worker-state.js';
import { walkDirs } from './worker-walk.js';

type Result = ClassifyResult | ItemResult;

/** Runs `fn` on each item; a failing item becomes an error result, the batch goes on. */
function each<T>(items: T[], fn: (x: T) => Result, relOf: (x: T) => string): Result[] {
  return items.map((x) => {
    try {
      return fn(x);
    } catch (e) {
      if (e instanceof UnsafePathError) worker.root.forget(splitParent(relOf(x))[0]);
      return { outcome: 'error', ok: false, msg: errMsg(e) };
    }
  });
}

function handle(msg: Exclude<ToWorker, { op: 'init' | 'walk' }>): Result[] {
  switch (msg.op) {
    case 'classify':
      return classifyBatch(msg.items);
    case 'write':
      return writeBatch(msg.items);
    case 'restore':
      return restoreBatch(msg.items);
    case 'link':
      return each(msg.items, link, (x) => x.rel);
    case 'dirmeta':
      return each(msg.items, dirmeta, (x) => x.rel);
  }
}

/**
 * Loads what the thread needs, then tells the pool it is ready. A failure is left unhandled on
 * purpose: it ends the thread, which the pool sees as the worker's 'error'.
 */
async function init(msg: Extract<ToWorker, { op: 'init' }>): Promise<void> {
  await startWorker(msg.init);
  parentPort!.postMessage({ id: -1, results: [], createdDirs: [], touchedDirs: [] } satisfies FromWorker);
}

// The protocol of livefs/pool.ts: init first (answered with id -1), then one reply per request id.
parentPort!.on('message', (msg: ToWorker) => {
  if (msg.op === 'init') {
    void init(msg);
    return;
  }
  try {
    startBatch();
    const walked = msg.op === 'walk' ? walkDirs(msg.dirs) : undefined;
    const results = msg.op === 'walk' ? [] : handle(msg);
    parentPort!.postMessage({
      id: msg.id,
      results,
      ...(walked ? { walk: walked } : {}),
      createdDirs: worker.createdDirs,
      touchedDirs: [...worker.touchedDirs],
    } satisfies FromWorker);
  } catch (e) {
    parentPort!.postMessage({ id: msg.id, fatal: errMsg(e) } satisfies FromWorker);
  }
});
