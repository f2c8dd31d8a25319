import { WorkerPool } from '../livefs/pool.js';
import { workerUrl } from '../util/workerurl.js';
import type { HashItem, HashReply, HashRequest, HashResult, ScanResult } from './hashprotocol.js';

/** Items per batch: one message per 32 files keeps the per-message cost small without delaying reads. */
const HASH_BATCH = 32;

/**
 * Reader threads for the snapshot (the one worker pool, livefs/pool.ts): items are sent in
 * small batches; each item gets its own promise. The walk bounds how many reads it starts, so
 * the pool does not: every batch goes at once to the least busy thread.
 */
export class HashPool {
  private queue: { item: HashItem; resolve: (r: HashResult) => void; reject: (e: Error) => void }[] = [];
  private flushScheduled = false;

  private constructor(
    private readonly pool: WorkerPool<HashRequest, HashReply>,
    private readonly chunkSize: number,
  ) {}

  static async start(n: number, chunkSize: number): Promise<HashPool> {
    const pool = await WorkerPool.start<HashRequest, HashReply>(workerUrl(import.meta.url, 'hashworker.js'), n, null, {
      depth: Number.POSITIVE_INFINITY,
      label: 'snapshot reader',
    });
    return new HashPool(pool, chunkSize);
  }

  /** Lists and lstats one directory in a worker. */
  async scan(dir: string): Promise<ScanResult> {
    const r = await this.pool.submit({ op: 'scan', dir });
    return (r as Extract<HashReply, { scan: ScanResult }>).scan;
  }

  hash(item: HashItem): Promise<HashResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      if (this.queue.length >= HASH_BATCH) this.flush();
      else if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => {
          this.flushScheduled = false;
          this.flush();
        });
      }
    });
  }

  private flush(): void {
    while (this.queue.length) {
      const batch = this.queue.splice(0, HASH_BATCH);
      this.pool.submit({ op: 'hash', items: batch.map((b) => b.item), chunkSize: this.chunkSize }).then(
        (r) => (r as Extract<HashReply, { results: HashResult[] }>).results.forEach((res, i) => batch[i].resolve(res)),
        (e: Error) => batch.forEach((b) => b.reject(e)),
      );
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
