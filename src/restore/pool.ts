import { Worker } from 'node:worker_threads';
import { workerUrl } from '../util/workerurl.js';
import type { FromWorker, ToWorker, WorkerInit } from './protocol.js';

type Op = Exclude<ToWorker, { op: 'init' }>;
type Reply = Extract<FromWorker, { results: unknown }>;

/**
 * A small pool of restore worker threads. Each batch goes to the least busy worker; at most
 * `depth` batches per worker are in flight so memory stays bounded while workers stay fed.
 */
export class WorkerPool {
  private readonly workers: { w: Worker; busy: number }[] = [];
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void; slot: { busy: number } }>();
  private nextId = 1;
  private slotFree: (() => void)[] = [];

  private constructor(private readonly depth: number) {}

  static async start(n: number, init: WorkerInit, depth = 2): Promise<WorkerPool> {
    const pool = new WorkerPool(depth);
    const url = workerUrl(import.meta.url, 'worker.js');
    await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
      const w = new Worker(url);
      const slot = { w, busy: 0 };
      pool.workers.push(slot);
      w.once('error', reject);
      w.on('message', (m: FromWorker) => {
        if (m.id === -1) { resolve(); return; }
        const waiter = pool.waiting.get(m.id);
        if (!waiter) return;
        pool.waiting.delete(m.id);
        waiter.slot.busy--;
        // Wake every waiter: each re-checks whether its (possibly specific) worker has room.
        for (const free of pool.slotFree.splice(0)) free();
        if ('fatal' in m) waiter.reject(new Error(`restore worker failed: ${m.fatal}`));
        else waiter.resolve(m);
      });
      w.on('error', (e) => {
        for (const [id, wt] of pool.waiting) if (wt.slot === slot) { pool.waiting.delete(id); wt.reject(e); }
      });
      w.postMessage({ op: 'init', init } satisfies ToWorker);
    })));
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /** Sends a batch; resolves with the worker's reply. Waits first while every worker is saturated. */
  async submit(msg: Omit<Op, 'id'>, transfer: ArrayBuffer[] = [], worker?: number): Promise<Reply> {
    const pick = () => (worker === undefined ? this.pickSlot() : this.workers[worker].busy < this.depth ? this.workers[worker] : undefined);
    let slot = pick();
    while (!slot) {
      await new Promise<void>((r) => this.slotFree.push(r));
      slot = pick();
    }
    const id = this.nextId++;
    slot.busy++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot: slot! });
      slot!.w.postMessage({ ...msg, id } as ToWorker, transfer);
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
