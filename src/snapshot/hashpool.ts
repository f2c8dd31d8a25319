import os from 'node:os';
import { WorkerPool } from '../livefs/pool.js';
import { workerUrl } from '../util/workerurl.js';
import {
  packHashItems,
  type HashInit,
  type HashReply,
  type HashRequest,
  type HashResult,
  type HashTarget,
  type ScanResult,
} from './hashprotocol.js';

/** Items per message: one message per 64 files of a directory keeps the per-message cost small without delaying reads. */
const HASH_BATCH = 64;

/** Directories per listing message: few enough that both threads share a wide directory's subdirectories. */
const SCAN_BATCH = 16;

/** Reader threads of a snapshot: one per CPU, at least 1, at most 4. */
function readerThreads(): number {
  return Math.max(1, Math.min(4, os.cpus().length));
}

/** Reader threads started ahead of their key (HashPool.spawn). */
export interface SpawnedReaders {
  start(chunkSize: number, key: Buffer | null): Promise<HashPool>;
  close(): Promise<void>;
}

/**
 * Reader threads for the snapshot (the one worker pool, livefs/pool.ts): the files of one
 * directory are sent in batches, read relative to the directory's fd; each item gets its own
 * promise. The walk bounds how many directories it reads ahead, so the pool does not: every
 * batch goes at once to the least busy thread.
 */
export class HashPool {
  private constructor(
    private readonly pool: WorkerPool<HashRequest, HashReply>,
    private readonly chunkSize: number,
  ) {}

  /**
   * Starts `n` reader threads (default: one per CPU, 1 to 4) before the key is known: they load
   * while scrypt derives it (takeSnapshot). `start` gives them the repository's data key (null:
   * unencrypted; they seal what they store, off the main thread); `close` ends them unused.
   */
  static spawn(n = readerThreads()): SpawnedReaders {
    const spawned = WorkerPool.spawn<HashRequest, HashReply>(workerUrl(import.meta.url, 'hashworker.js'), n, {
      depth: Number.POSITIVE_INFINITY,
      label: 'snapshot reader',
    });
    return {
      start: async (chunkSize, key) => {
        const init: HashInit = { key: key ? new Uint8Array(key) : null };
        return new HashPool(await spawned.init(init), chunkSize);
      },
      close: () => spawned.close(),
    };
  }

  /**
   * Opens `name` relative to the directory open at `parentFd` (or `path` itself when parentFd
   * is -1) and lists it with lstat fields, in a worker. The result holds the directory's fd.
   */
  async scan(parentFd: number, name: string, path: string): Promise<ScanResult> {
    const r = await this.pool.submit({ op: 'scan', parentFd, name, path });
    return (r as Extract<HashReply, { scan: ScanResult }>).scan;
  }

  /**
   * Lists several subdirectories of the directory open at `parentFd`, SCAN_BATCH to a message
   * (one message per directory was a large share of a no-change walk's main thread, issue 17):
   * one promise per name, in order.
   */
  scanMany(parentFd: number, names: string[]): Promise<ScanResult>[] {
    const out: Promise<ScanResult>[] = [];
    for (let from = 0; from < names.length; from += SCAN_BATCH) {
      const part = names.slice(from, from + SCAN_BATCH);
      const reply = this.pool.submit({ op: 'scans', parentFd, names: part });
      part.forEach((_, i) => out.push(reply.then((r) => (r as Extract<HashReply, { scans: ScanResult[] }>).scans[i])));
    }
    return out;
  }

  /** Reads (and hashes, compresses) files of the directory open at `dirFd`: one promise per item. */
  hashDir(dirFd: number, targets: readonly HashTarget[]): Promise<HashResult>[] {
    const out: Promise<HashResult>[] = [];
    for (let from = 0; from < targets.length; from += HASH_BATCH) {
      const part = targets.slice(from, from + HASH_BATCH);
      const items = packHashItems(part);
      const reply = this.pool.submit({ op: 'hash', dirFd, items, chunkSize: this.chunkSize }, [items.expect.buffer as ArrayBuffer]);
      part.forEach((_, i) => out.push(reply.then((r) => (r as Extract<HashReply, { results: HashResult[] }>).results[i])));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
