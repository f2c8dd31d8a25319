import { Worker } from 'node:worker_threads';
import { limitMallocArenas } from './native.js';

/**
 * The worker-thread pool: a few threads doing synchronous file-system work, fed batches.
 * Each batch goes to the least busy worker (or a named one, so a subtree stays with the worker
 * that created it); at most `depth` batches per worker are in flight, so memory stays bounded
 * while workers stay fed.
 *
 * The protocol is the caller's: `init` is sent once as `{ op: 'init', init }` and the worker
 * answers `{ id: -1 }` when ready; every request is `{ ...msg, id }` and its reply carries the
 * same `id`, or `{ id, fatal }` when the worker cannot go on.
 */
/**
 * Young generation per worker thread, MiB (see start). Small on purpose: a worker's short-lived
 * buffers (read batches, compressed and sealed blobs, decoded chunks) are freed by the next
 * scavenge, so a smaller young generation frees them sooner. Measured (issue 17): V8's default
 * (~48 MiB) -> 16 saved ~50 MiB of a 200k full restore; 16 -> 6 took a 1M-file snapshot's peak
 * RSS from 359 to 295 MiB (each reader thread's external memory 40 -> 15 MiB) and its time from
 * 147 to 115 s, and a 200k snapshot / full restore were as fast or faster.
 */
const YOUNG_GENERATION_MB = 6;

/** Threads started by WorkerPool.spawn, not yet given their init. */
export interface SpawnedPool<Request extends object, Reply extends { id: number }> {
  /** Sends `init` to every thread; resolves with the pool once all are ready (closed if one fails). */
  init(init: unknown): Promise<WorkerPool<Request, Reply>>;
  /** Ends the threads (the pool will not be used). */
  close(): Promise<void>;
}

export class WorkerPool<Request extends object, Reply extends { id: number }> {
  private readonly workers: { w: Worker; busy: number }[] = [];
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; slot: { busy: number } }>();
  private nextId = 1;
  private slotFree: (() => void)[] = [];

  private constructor(
    private readonly depth: number,
    private readonly label: string,
  ) {}

  static async start<Request extends object, Reply extends { id: number }>(
    script: URL,
    n: number,
    init: unknown,
    opts: { depth?: number; label?: string } = {},
  ): Promise<WorkerPool<Request, Reply>> {
    return WorkerPool.spawn<Request, Reply>(script, n, opts).init(init);
  }

  /**
   * Starts the threads without their `init`: each loads its script meanwhile (~0.1 s), so a
   * caller can spawn them before it has what `init` carries (a snapshot: the repository key, while
   * scrypt derives it). Call `init` to get the pool, or `close` if it will not be used.
   */
  static spawn<Request extends object, Reply extends { id: number }>(
    script: URL,
    n: number,
    opts: { depth?: number; label?: string } = {},
  ): SpawnedPool<Request, Reply> {
    const pool = new WorkerPool<Request, Reply>(opts.depth ?? 2, opts.label ?? 'worker');
    limitMallocArenas(); // before the threads exist: they share an arena (see native.ts)
    const ready = Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve, reject) => {
          // A small young generation instead of V8's default (16 MiB semi-spaces, ~48 MiB): see above.
          const w = new Worker(script, { resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
          const slot = { w, busy: 0 };
          pool.workers.push(slot);
          w.once('error', reject);
          w.on('message', (m: Reply | { id: number; fatal: string }) => {
            if (m.id === -1) {
              if ('fatal' in m) reject(new Error(`${pool.label} failed to start: ${m.fatal}`));
              else resolve();
              return;
            }
            const waiter = pool.waiting.get(m.id);
            if (!waiter) return;
            pool.waiting.delete(m.id);
            waiter.slot.busy--;
            // Wake every waiter: each re-checks whether its (possibly specific) worker has room.
            for (const free of pool.slotFree.splice(0)) free();
            if ('fatal' in m) waiter.reject(new Error(`${pool.label} failed: ${m.fatal}`));
            else waiter.resolve(m);
          });
          w.on('error', (e) => {
            for (const [id, wt] of pool.waiting)
              if (wt.slot === slot) {
                pool.waiting.delete(id);
                wt.reject(e);
              }
          });
        }),
    );
    const all = Promise.all(ready);
    all.catch(() => {}); // reported by init(); a pool closed unused reports nothing
    return {
      init: async (init: unknown) => {
        for (const s of pool.workers) s.w.postMessage({ op: 'init', init });
        try {
          await all;
        } catch (e) {
          await pool.close();
          throw e;
        }
        return pool;
      },
      close: () => pool.close(),
    };
  }

  get size(): number {
    return this.workers.length;
  }

  /** Sends a batch; resolves with the worker's reply. Waits first while every worker is saturated. */
  async submit(msg: Request, transfer: ArrayBuffer[] = [], worker?: number): Promise<Reply> {
    const pick = () => (worker === undefined ? this.pickSlot() : this.workers[worker].busy < this.depth ? this.workers[worker] : undefined);
    let slot = pick();
    while (!slot) {
      await new Promise<void>((r) => this.slotFree.push(r));
      slot = pick();
    }
    const id = this.nextId++;
    slot.busy++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot: slot });
      slot.w.postMessage({ ...msg, id }, transfer);
    });
  }

  private pickSlot(): { w: Worker; busy: number } | undefined {
    let best: { w: Worker; busy: number } | undefined;
    for (const s of this.workers) if (s.busy < this.depth && (!best || s.busy < best.busy)) best = s;
    return best;
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
