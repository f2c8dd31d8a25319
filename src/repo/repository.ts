import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ObjectStore } from '../store/store.js';
import { OptionError } from '../util/errors.js';
import { ObjectNotFoundError } from '../store/store.js';
import type { BlobId } from '../pack/blobid.js';
import { PackWriter } from '../pack/packwriter.js';
import type { BlobType, PackIndex } from '../pack/format.js';
import {
  CONFIG_KEY,
  INDEX_PREFIX,
  PACK_PREFIX,
  SNAPSHOT_PREFIX,
  idOfKey,
  indexKey,
  packIdOfKey,
  packKey,
  snapshotKey,
} from '../pack/keys.js';
import { loadBlobsFromPack, takeBlob, type BlobRef, type LoadedBlobs, type PackRangeReader } from './blobloader.js';

export { BlobCorruptError } from './blobloader.js';

export const REPO_VERSION = 1;

export interface RepoConfig {
  format: 'snapfill';
  version: number;
  id: string;
  created: string;
  chunk_size: number;
  pack_size: number;
}

/** The record that makes a snapshot visible. Stored at `snapshots/<id>`, id = SHA-256 of the bytes. */
export interface SnapshotRecord {
  v: 1;
  time: string;
  host: string;
  username: string;
  paths: string[]; // raw paths
  tags: string[];
  excludes: string[];
  tree: BlobId;
  parent: string | null;
  summary: Record<string, number>;
  program: string;
}

export interface StoredSnapshot extends SnapshotRecord {
  id: string;
}

export class RepoNotFoundError extends OptionError {
  constructor(location: string) {
    super((n) => `no snapfill repository at ${location}: run "snapfill init" (or check ${n('repo')} / SNAPFILL_REPO)`);
    this.name = 'RepoNotFoundError';
  }
}

/**
 * The content layer over an object store: packs of blobs, their index objects, and snapshot
 * records. It holds no state beyond the store, so any machine can read it.
 */
export class Repository {
  private constructor(
    readonly store: ObjectStore,
    readonly config: RepoConfig,
  ) {}

  static async init(store: ObjectStore, opts: { chunkSize?: number; packSize?: number } = {}): Promise<Repository> {
    if (await store.head(CONFIG_KEY)) throw new Error(`a repository already exists at ${store.location}`);
    const config: RepoConfig = {
      format: 'snapfill',
      version: REPO_VERSION,
      id: randomBytes(16).toString('hex'),
      created: new Date().toISOString(),
      chunk_size: opts.chunkSize ?? 8 * 1024 * 1024,
      pack_size: opts.packSize ?? 16 * 1024 * 1024,
    };
    await store.put(CONFIG_KEY, Buffer.from(JSON.stringify(config, null, 2) + '\n'), { ifAbsent: true });
    return new Repository(store, config);
  }

  static async open(store: ObjectStore): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await store.get(CONFIG_KEY);
    } catch (e) {
      if (e instanceof ObjectNotFoundError) throw new RepoNotFoundError(store.location);
      throw new Error(`cannot read repository config at ${store.location}: ${(e as Error).message}`, { cause: e });
    }
    let config: RepoConfig;
    try {
      config = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new Error(`repository config at ${store.location} is not valid JSON; the repository may be damaged`);
    }
    if (config.format !== 'snapfill' || typeof config.id !== 'string') {
      throw new Error(`${store.location} does not hold a snapfill repository config`);
    }
    if (config.version > REPO_VERSION) {
      throw new Error(`repository format ${config.version} is newer than this snapfill supports (${REPO_VERSION}); upgrade snapfill`);
    }
    return new Repository(store, config);
  }

  /** Uploads a finished pack, then its index. A pack without an index is garbage, never referenced. */
  async savePack(writer: PackWriter): Promise<PackIndex> {
    const { id, bytes, index } = await writer.finish();
    await this.store.put(packKey(id), bytes);
    // Gzipped: an index is ~100 bytes of JSON per blob, and it is read on every catalog rebuild.
    await this.store.put(indexKey(id), gzipSync(Buffer.from(JSON.stringify(index)), { level: 9 }));
    return index;
  }

  async *listPackIndexes(): AsyncIterable<string> {
    for await (const o of this.store.list(INDEX_PREFIX)) yield idOfKey(INDEX_PREFIX, o.key);
  }

  async loadPackIndex(packId: string): Promise<PackIndex> {
    const raw = await this.store.get(indexKey(packId));
    const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw, { maxOutputLength: 256 * 1024 * 1024 }) : raw;
    const idx = JSON.parse(text.toString('utf8')) as PackIndex;
    if (idx.v !== 1 || idx.pack !== packId || !Array.isArray(idx.blobs)) throw new Error(`invalid pack index ${packId}`);
    return idx;
  }

  async *listPacks(): AsyncIterable<{ id: string; size: number }> {
    for await (const o of this.store.list(PACK_PREFIX)) yield { id: packIdOfKey(o.key), size: o.size };
  }

  /** Reads one blob (decompressing it) and checks its identity, so corruption is never returned as content. */
  async readBlob(packId: string, offset: number, length: number, id: BlobId): Promise<Buffer> {
    return takeBlob(await this.loadBlobs(packId, [{ id, offset, length }]), id, packId);
  }

  /** Blobs of one pack through the blob loader: ranged reads, neighbours coalesced, every blob verified. */
  loadBlobs(packId: string, refs: BlobRef[]): Promise<LoadedBlobs> {
    return loadBlobsFromPack(this.packRangeReader(packId), refs);
  }

  /** Ranged reads of one pack object, for the blob loader. */
  packRangeReader(packId: string): PackRangeReader<Promise<Buffer>> {
    const key = packKey(packId);
    return (offset, length) => this.store.getRange(key, offset, length);
  }

  /** The file holding a pack, when the store is a local directory (worker threads pread it directly). */
  localPackPath(packId: string): string | null {
    return this.store.localPath?.(packKey(packId)) ?? null;
  }

  async readPack(packId: string): Promise<Buffer> {
    return this.store.get(packKey(packId));
  }

  /**
   * Deletes a pack: its index first, then the pack. A pack without an index is unreferenced
   * garbage the next prune removes; an index without its pack would make a snapshot skip
   * storing a blob it thinks exists.
   */
  async deletePack(packId: string, hasIndex = true): Promise<void> {
    if (hasIndex) await this.store.delete(indexKey(packId));
    await this.store.delete(packKey(packId));
  }

  /** Until when S3 Object Lock keeps a pack from being deleted; null when it may go now. */
  packRetainedUntil(packId: string): Promise<Date | null> {
    return this.retainedUntil(packKey(packId));
  }

  /** Until when S3 Object Lock keeps a snapshot record from being deleted; null when it may go now. */
  snapshotRetainedUntil(snapshotId: string): Promise<Date | null> {
    return this.retainedUntil(snapshotKey(snapshotId));
  }

  private async retainedUntil(key: string): Promise<Date | null> {
    if (!this.store.retainedUntil) return null;
    const until = await this.store.retainedUntil(key);
    return until && until.getTime() > Date.now() ? until : null;
  }

  async saveSnapshot(rec: SnapshotRecord): Promise<string> {
    const bytes = Buffer.from(JSON.stringify(rec, null, 1));
    const id = createHash('sha256').update(bytes).digest('hex');
    await this.store.put(snapshotKey(id), bytes);
    return id;
  }

  async *listSnapshotIds(): AsyncIterable<string> {
    for await (const o of this.store.list(SNAPSHOT_PREFIX)) yield idOfKey(SNAPSHOT_PREFIX, o.key);
  }

  async loadSnapshot(id: string): Promise<StoredSnapshot> {
    const bytes = await this.store.get(snapshotKey(id));
    if (createHash('sha256').update(bytes).digest('hex') !== id) throw new Error(`snapshot ${id} is damaged (hash mismatch)`);
    const rec = JSON.parse(bytes.toString('utf8')) as SnapshotRecord;
    return { ...rec, id };
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.store.delete(snapshotKey(id));
  }

  newPackWriter(type: BlobType): PackWriter {
    return new PackWriter(type);
  }
}
