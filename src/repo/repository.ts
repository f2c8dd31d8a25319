import { createHash, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ObjectStore } from '../store/store.js';
import { ObjectNotFoundError } from '../store/store.js';
import type { BlobId } from '../pack/blobid.js';
import { openBlob } from '../pack/codec.js';
import { PackWriter } from '../pack/packwriter.js';
import { indexKey, packKey, type BlobType, type PackIndex } from '../pack/format.js';

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

export class RepoNotFoundError extends Error {
  constructor(location: string) {
    super(`no snapfill repository at ${location}: run "snapfill init" (or check --repo / SNAPFILL_REPO)`);
    this.name = 'RepoNotFoundError';
  }
}

/**
 * The content layer over an object store: packs of blobs, their index objects, and snapshot
 * records. It holds no state beyond the store, so any machine can read it.
 */
export class Repository {
  private constructor(readonly store: ObjectStore, readonly config: RepoConfig) {}

  static async init(store: ObjectStore, opts: { chunkSize?: number; packSize?: number } = {}): Promise<Repository> {
    if (await store.head('config')) throw new Error(`a repository already exists at ${store.location}`);
    const config: RepoConfig = {
      format: 'snapfill', version: REPO_VERSION, id: randomBytes(16).toString('hex'), created: new Date().toISOString(),
      chunk_size: opts.chunkSize ?? 8 * 1024 * 1024, pack_size: opts.packSize ?? 16 * 1024 * 1024,
    };
    await store.put('config', Buffer.from(JSON.stringify(config, null, 2) + '\n'), { ifAbsent: true });
    return new Repository(store, config);
  }

  static async open(store: ObjectStore): Promise<Repository> {
    let raw: Buffer;
    try {
      raw = await store.get('config');
    } catch (e) {
      if (e instanceof ObjectNotFoundError) throw new RepoNotFoundError(store.location);
      throw new Error(`cannot read repository config at ${store.location}: ${(e as Error).message}`);
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
    for await (const o of this.store.list('index/')) yield o.key.slice('index/'.length);
  }

  async loadPackIndex(packId: string): Promise<PackIndex> {
    const raw = await this.store.get(indexKey(packId));
    const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw, { maxOutputLength: 256 * 1024 * 1024 }) : raw;
    const idx = JSON.parse(text.toString('utf8')) as PackIndex;
    if (idx.v !== 1 || idx.pack !== packId || !Array.isArray(idx.blobs)) throw new Error(`invalid pack index ${packId}`);
    return idx;
  }

  async *listPacks(): AsyncIterable<{ id: string; size: number }> {
    for await (const o of this.store.list('data/')) yield { id: o.key.slice(o.key.lastIndexOf('/') + 1), size: o.size };
  }

  /** Reads one blob (decompressing it) and checks its identity, so corruption is never returned as content. */
  async readBlob(packId: string, offset: number, length: number, id: BlobId): Promise<Buffer> {
    const data = await this.store.getRange(packKey(packId), offset, length);
    return verifyBlob(data, id, packId);
  }

  async readPack(packId: string): Promise<Buffer> {
    return this.store.get(packKey(packId));
  }

  async saveSnapshot(rec: SnapshotRecord): Promise<string> {
    const bytes = Buffer.from(JSON.stringify(rec, null, 1));
    const id = createHash('sha256').update(bytes).digest('hex');
    await this.store.put(`snapshots/${id}`, bytes);
    return id;
  }

  async *listSnapshotIds(): AsyncIterable<string> {
    for await (const o of this.store.list('snapshots/')) yield o.key.slice('snapshots/'.length);
  }

  async loadSnapshot(id: string): Promise<StoredSnapshot> {
    const bytes = await this.store.get(`snapshots/${id}`);
    if (createHash('sha256').update(bytes).digest('hex') !== id) throw new Error(`snapshot ${id} is damaged (hash mismatch)`);
    const rec = JSON.parse(bytes.toString('utf8')) as SnapshotRecord;
    return { ...rec, id };
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.store.delete(`snapshots/${id}`);
  }

  newPackWriter(type: BlobType): PackWriter {
    return new PackWriter(type);
  }
}

export class BlobCorruptError extends Error {
  constructor(readonly blobId: string, readonly packId: string) {
    super(`blob ${blobId.slice(0, 12)} in pack ${packId.slice(0, 12)} is corrupt (content hash mismatch)`);
    this.name = 'BlobCorruptError';
  }
}

/** Checks a stored blob against its id and returns its plain content (see src/pack/codec.ts). */
export function verifyBlob(stored: Buffer, id: BlobId, packId: string): Buffer {
  const plain = openBlob(stored, id);
  if (plain === null) throw new BlobCorruptError(id, packId);
  return plain;
}
