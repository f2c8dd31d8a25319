import { Worker } from 'node:worker_threads';
import { workerUrl } from '../util/workerurl.js';
import type { HashItem, HashResult, ScanResult } from './hashprotocol.js';

/** Reader threads for the snapshot: items are sent in small batches; each item gets its own promise. */
export class HashPool {
  private readonly workers: { w: Worker; busy: number }[] = [];
  private readonly waiting = new Map<number, { resolve: (r: HashResult[]) => void; reject: (e: Error) => void; slot: { busy: number } }>();
  private nextId = 1;
  private queue: { item: HashItem; resolve: (r: HashResult) => void; reject: (e: Error) => void }[] = [];
  private flushScheduled = false;

  private constructor(private readonly chunkSize: number) {}

  static async start(n: number, chunkSize: number): Promise<HashPool> {
    const pool = new HashPool(chunkSize);
    const url = workerUrl(import.meta.url, 'hashworker.js');
    await Promise.all(Array.from({ length: n }, () => new Promise<void>((resolve, reject) => {
      const w = new Worker(url);
      const slot = { w, busy: 0 };
      pool.workers.push(slot);
      w.once('error', reject);
      w.on('message', (m: { id: number; results?: HashResult[]; scan?: ScanResult }) => {
        if (m.id === -1) { resolve(); return; }
        if (m.scan) {
          const sw = pool.scans.get(m.id);
          pool.scans.delete(m.id);
          slot.busy--;
          sw?.(m.scan);
          return;
        }
        const waiter = pool.waiting.get(m.id);
        if (!waiter) return;
        pool.waiting.delete(m.id);
        waiter.slot.busy--;
        waiter.resolve(m.results!);
      });
      w.on('error', (e) => {
        for (const [id, wt] of pool.waiting) if (wt.slot === slot) { pool.waiting.delete(id); wt.reject(e); }
      });
      w.postMessage({ init: true });
    })));
    return pool;
  }

  private readonly scans = new Map<number, (r: ScanResult) => void>();

  /** Lists and lstats one directory in a worker. */
  scan(dir: string): Promise<ScanResult> {
    return new Promise((resolve) => {
      let slot = this.workers[0];
      for (const s of this.workers) if (s.busy < slot.busy) slot = s;
      const id = this.nextId++;
      slot.busy++;
      this.scans.set(id, resolve);
      slot.w.postMessage({ id, scan: dir });
    });
  }

  hash(item: HashItem): Promise<HashResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= 32) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => { this.flushScheduled = false; this.flush(); });
      }
    });
  }

  private flush(): void {
    while (this.queue.length) {
      const batch = this.queue.splice(0, 32);
      let slot = this.workers[0];
      for (const s of this.workers) if (s.busy < slot.busy) slot = s;
      const id = this.nextId++;
      slot.busy++;
      this.waiting.set(id, {
        resolve: (rs) => rs.forEach((r, i) => batch[i].resolve(r)),
        reject: (e) => batch.forEach((b) => b.reject(e)),
        slot,
      });
      slot.w.postMessage({ id, items: batch.map((b) => b.item), chunkSize: this.chunkSize });
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate()));
  }
}
