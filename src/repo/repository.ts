import { createHash, createHmac, randomBytes } from 'node:crypto';
import { gunzipSync, gzipSync, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { ListOptions, ObjectStore, PutOptions } from '../store/store.js';
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
  hostIndexPrefix,
  hostSnapshotPrefix,
  indexKey,
  packIdOfKey,
  packKey,
  parseIndexKey,
  parseSnapshotKey,
  snapshotKey,
  TIMED_INDEX_PREFIX,
  timedIndexCursor,
  timedIndexKey,
} from '../pack/keys.js';
import { STAMP_PUT_LIMIT_MS, storeTime } from './clock.js';
import { loadBlobsFromPack, takeBlob, type BlobKey, type BlobRef, type LoadedBlobs, type PackRangeReader } from './blobloader.js';
import { blobProbe, buildBlobFilter, parseBlobFilter, type BlobProbe } from '../pack/blobfilter.js';
import { KEY_BYTES, deriveSecrets, seal, unseal, type RepoSecrets } from '../pack/crypto.js';
import { DEFAULT_CHUNKER, validateChunker, type ChunkerConfig } from '../pack/chunker.js'; // [cdc, issue 14]
import { makeKeyObject, openMasterKey, saveKeyObject, tuneScrypt, type ScryptParams } from './keys.js';

const gzipAsync = promisify(gzip);

export { BlobCorruptError } from './blobloader.js';

/** The newest format this code writes and reads (docs/FORMAT.md). Version 1 stays readable and writable. */
export const REPO_VERSION = 2;

/** How an encrypted repository asks for its password: only called when one is needed; `from` names it in errors. */
export type PasswordSource = (() => Promise<string>) & { readonly from?: string };

export class PasswordNeededError extends OptionError {
  constructor(location: string) {
    super(
      (n) =>
        `the repository at ${location} is encrypted and no password was given: use ${n('passwordFile')}, ` +
        `SNAPFILL_PASSWORD_FILE, ${n('passwordCommand')}, "password_file" in the config file, or run on a terminal`,
    );
    this.name = 'PasswordNeededError';
  }
}

export interface InitOptions {
  chunkSize?: number;
  packSize?: number;
  /** 1: the old plaintext format (tests and migrations only); default 2. */
  version?: 1 | 2;
  /** Version 2: the password of the first key object; null for --insecure-no-encryption. */
  password?: string | null;
  /** scrypt parameters of the first key object (default: tuned to about 0.5 s). */
  kdf?: ScryptParams;
  // [cdc, issue 14] content-defined chunking of version-2 repositories (src/pack/chunker.ts).
  /** Version 2: the chunker of large files (default DEFAULT_CHUNKER); null cuts fixed chunk_size chunks. */
  chunker?: ChunkerConfig | null;
}

export interface RepoConfig {
  format: 'snapfill';
  version: number;
  id: string;
  created: string;
  chunk_size: number;
  pack_size: number;
  /** Version 2: "aes-256-gcm" (keys/ holds the key objects) or "none" (--insecure-no-encryption). */
  encryption?: 'aes-256-gcm' | 'none';
  // [cdc, issue 14] absent: files are cut into fixed chunk_size chunks (every version-1 repository).
  /** Version 2: files above `threshold` bytes are cut with FastCDC (src/pack/chunker.ts, docs/FORMAT.md). */
  chunker?: ChunkerConfig;
}

/** What opened an encrypted repository: the master key and the key object that unwrapped it. */
interface Unlocked {
  master: Buffer;
  keyId: string;
}

/**
 * The record that makes a snapshot visible. Stored at `snapshots/<host tag>/<id>` (flat
 * `snapshots/<id>` before issue 15), id = SHA-256 of the bytes.
 */
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

/** Snapshot ids listed: of every host (`complete`), or of some hosts' tags plus every flat record. */
export interface SnapshotListing {
  ids: Set<string>;
  /** True when every record of the repository was listed (every host). */
  complete: boolean;
  /** Records of the flat layout (older releases) listed; null when the flat layout was not listed. */
  flat: number | null;
}

export class RepoNotFoundError extends OptionError {
  constructor(location: string) {
    super((n) => `no snapfill repository at ${location}: run "snapfill init" (or check ${n('repo')} / SNAPFILL_REPO)`);
    this.name = 'RepoNotFoundError';
  }
}

/** A host's tag: 16 hex digits of HMAC-SHA-256(host) under the repository's host tag key. */
function tagOf(hostTagKey: Buffer, host: string): string {
  return createHmac('sha256', hostTagKey).update(host, 'utf8').digest('hex').slice(0, 16);
}

/**
 * The content layer over an object store: packs of blobs, their index objects, and snapshot
 * records. It holds no state beyond the store, so any machine can read it.
 */
export class Repository {
  private secretsNow: RepoSecrets;
  /** The key being unlocked (Repository.open with deferUnlock): set until unlock() has it. */
  private unlocking: Promise<Unlocked> | null = null;
  /**
   * Where each snapshot record seen by this instance is stored (id -> key): the layout is flat
   * or host-tagged per record (issue 15), and the callers speak in ids.
   */
  private readonly snapshotKeys = new Map<string, string>();
  /**
   * Where each pack index seen by this instance is stored (pack id -> keys): flat, or below a
   * host tag for tree packs (issue 15). Callers speak in pack ids. Usually one key; two hosts
   * that wrote byte-identical tree packs (possible unencrypted: e.g. a pack of the empty tree
   * alone) have one pack under two tags, and a deleted pack must lose every index naming it.
   */
  private readonly indexKeys = new Map<string, string[]>();

  private constructor(
    readonly store: ObjectStore,
    readonly config: RepoConfig,
    private unlocked: Unlocked | null,
  ) {
    this.secretsNow = deriveSecrets(unlocked?.master ?? null, config.id);
  }

  /**
   * The keys derived from the master key. Used before a deferred unlock finished, it throws
   * rather than answer "not encrypted": nothing is ever read or written without the key.
   */
  private get secrets(): RepoSecrets {
    if (this.unlocking) throw new Error('internal error: the repository key was used before it was unlocked');
    return this.secretsNow;
  }

  /**
   * Waits for a deferred unlock (a no-op otherwise); throws what the unlock threw (a wrong
   * password). Every method that reads or writes sealed objects awaits it first.
   */
  async unlock(): Promise<void> {
    if (!this.unlocking) return;
    const unlocked = await this.unlocking;
    this.unlocked = unlocked;
    this.secretsNow = deriveSecrets(unlocked.master, this.config.id);
    this.unlocking = null;
  }

  static async init(store: ObjectStore, opts: InitOptions = {}): Promise<Repository> {
    if (await store.head(CONFIG_KEY)) throw new Error(`a repository already exists at ${store.location}`);
    const version = opts.version ?? REPO_VERSION;
    if (version === 2 && opts.password === undefined) throw new PasswordNeededError(store.location);
    const config: RepoConfig = {
      format: 'snapfill',
      version,
      id: randomBytes(16).toString('hex'),
      created: new Date().toISOString(),
      chunk_size: opts.chunkSize ?? 8 * 1024 * 1024,
      pack_size: opts.packSize ?? 16 * 1024 * 1024,
    };
    let unlocked: Unlocked | null = null;
    if (version === 2) {
      // [cdc, issue 14]
      const chunker = opts.chunker === undefined ? DEFAULT_CHUNKER : opts.chunker;
      if (chunker) config.chunker = validateChunker(chunker);
      config.encryption = opts.password === null ? 'none' : 'aes-256-gcm';
      if (opts.password !== null && opts.password !== undefined) {
        if (!opts.password) throw new Error('the password is empty');
        // The key object goes first: a config without any key object would be an unreadable repository.
        const master = randomBytes(KEY_BYTES);
        const k = makeKeyObject(master, opts.password, opts.kdf ?? tuneScrypt());
        await saveKeyObject(store, k);
        unlocked = { master, keyId: k.id };
      }
    }
    await store.put(CONFIG_KEY, Buffer.from(JSON.stringify(config, null, 2) + '\n'), { ifAbsent: true });
    return new Repository(store, config, unlocked);
  }

  /**
   * Opens a repository; `password` is asked only when the repository is encrypted. With
   * `deferUnlock` the key is derived in the background (scrypt on the thread pool): the caller
   * must `await unlock()` before anything that needs the key, and before it writes anything
   * (a wrong password is reported there). The password itself is read here, before returning.
   */
  static async open(store: ObjectStore, password?: PasswordSource, opts: { deferUnlock?: boolean } = {}): Promise<Repository> {
    const config = await Repository.readConfig(store);
    if (config.version < 2 || config.encryption === 'none') return new Repository(store, config, null);
    if (config.encryption !== 'aes-256-gcm')
      throw new Error(`repository at ${store.location} uses unknown encryption "${String(config.encryption)}"`);
    if (!password) throw new PasswordNeededError(store.location);
    const unlocking = openMasterKey(store, await password(), password.from);
    if (!opts.deferUnlock) return new Repository(store, config, await unlocking);
    const repo = new Repository(store, config, null);
    repo.unlocking = unlocking;
    unlocking.catch(() => {}); // reported by unlock(); never an unhandled rejection meanwhile
    return repo;
  }

  /** The config alone (plaintext in every version): what unlock and listing keys need. */
  static async readConfig(store: ObjectStore): Promise<RepoConfig> {
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
    // [cdc, issue 14] a damaged or hostile config must not make the chunker misbehave (a 4 GiB max).
    if (config.chunker !== undefined) {
      try {
        config.chunker = validateChunker(config.chunker);
      } catch (e) {
        throw new Error(`repository config at ${store.location}: ${(e as Error).message}`, { cause: e });
      }
    }
    return config;
  }

  /** True when objects and blobs are sealed (version 2 without --insecure-no-encryption). */
  get encrypted(): boolean {
    return this.unlocked !== null || this.unlocking !== null;
  }

  /** The key object this session opened the repository with (null when not encrypted). */
  get keyId(): string | null {
    void this.secrets; // throws while a deferred unlock is pending
    return this.unlocked?.keyId ?? null;
  }

  /** The master key, for writing another key object (key add / passwd) or a copy's target. */
  masterKey(): Buffer | null {
    void this.secrets; // throws while a deferred unlock is pending
    return this.unlocked?.master ?? null;
  }

  /** The blob loader's key (null: blobs are stored unsealed). Passed to worker threads that read packs. */
  blobKey(): BlobKey {
    return this.secrets.dataKey;
  }

  /** 32 bytes for the content-defined chunker's gear table: secret when encrypted, from the repository id otherwise. */
  chunkerSeed(): Buffer {
    return this.secrets.chunkerSeed;
  }

  /** Seals an object's bytes (index, snapshot record) in an encrypted repository. */
  private sealObject(bytes: Buffer): Buffer {
    const key = this.secrets.dataKey;
    return key ? seal(key, bytes) : bytes;
  }

  /** The plaintext of a stored object, or throws naming it when it fails authentication. */
  private openObject(bytes: Buffer, what: string): Buffer {
    const key = this.secrets.dataKey;
    if (!key) return bytes;
    const plain = unseal(key, bytes);
    if (!plain) throw new Error(`${what} fails authentication (tampered, damaged, or not of this repository)`);
    return plain;
  }

  /**
   * Uploads a finished pack, then its index. A pack without an index is garbage, never
   * referenced. A tree pack's index goes below `treeTag` (the tag of the host whose trees it
   * holds, see hostTag; issue 15), so that only the commands reading that host's trees list and
   * read it; null keeps it flat. A data pack's index is named by the store time it is written at
   * (`index/t/...`): every host's dedup needs it, and a sync lists only those newer than its
   * last one (docs/FORMAT.md, "Catalog sync").
   */
  async savePack(writer: PackWriter, treeTag: string | null): Promise<PackIndex> {
    await this.unlock();
    const { id, bytes, index } = await writer.finish();
    await this.store.put(packKey(id), bytes);
    // Gzipped: an index is ~100 bytes of JSON per blob, and it is read on every catalog rebuild.
    // Compressed before it is sealed (ciphertext does not compress).
    // On the thread pool: level 9 of a 16 MiB pack's index was ~0.4 s of a 200k-file snapshot's main thread.
    const body = this.sealObject(await gzipAsync(Buffer.from(JSON.stringify(index)), { level: 9 }));
    if (index.type === 'tree') {
      const key = indexKey(id, treeTag);
      await this.store.put(key, body);
      this.rememberIndexKey(id, key);
      return index;
    }
    // A data pack of few blobs names a keyed filter of them (issue 15): other hosts learn from
    // the listing whether it may hold a blob they are about to store, and read it only then.
    const filter = buildBlobFilter(
      this.secrets.blobFilterKey,
      index.blobs.map((b) => b.id),
    );
    await this.putStamped(async (ms) => {
      const key = timedIndexKey(ms, id, filter);
      await this.store.put(key, body);
      this.rememberIndexKey(id, key); // a write done again leaves its first key: one more key of the pack
    });
    return index;
  }

  /**
   * Writes an object named by the store's time (a data pack index, a deletion record; issue 15):
   * `write` stores it under a key made from `stampMs`. A sync resumes its listing a window
   * before the newest stamp it saw (clock.ts), so a write that took longer than the writer's
   * share of that window is done again with a fresh stamp: none lands behind a cursor.
   */
  async putStamped(write: (stampMs: number) => Promise<void>): Promise<void> {
    for (;;) {
      const started = performance.now();
      await write(await this.storeNowMs());
      if (performance.now() - started <= STAMP_PUT_LIMIT_MS) return;
    }
  }

  /** This host's clock minus the store's (clock.ts), probed once per instance; for key stamps. */
  private storeSkew: Promise<number> | null = null;

  /** The store's time now as this host reckons it (one probe of the store's clock, then its own clock). */
  async storeNowMs(): Promise<number> {
    this.storeSkew ??= storeTime(this.store).then(
      (t) => t.skewMs,
      (e: unknown) => {
        this.storeSkew = null; // the next write probes again
        throw e;
      },
    );
    return Date.now() - (await this.storeSkew);
  }

  /** Every pack index's id, both layouts and every host tag (prune, check, copy: they must see all). */
  async *listPackIndexes(): AsyncIterable<string> {
    for await (const o of this.store.list(INDEX_PREFIX)) {
      const k = this.learnIndexKey(o.key);
      if (k) yield k.id;
    }
  }

  /**
   * The pack indexes a catalog that lists `tags` needs (issue 15): data pack indexes and the
   * tree pack indexes below each of `tags`. With `since` (a store time, ms), only the timed data
   * indexes stamped at or after it (a sync resuming from its cursor); without, every data index:
   * the timed ones, and the flat ones of older releases (one listing that does not descend into
   * the tags). Returns pack id -> host tag (null: flat or timed), and the newest stamp listed.
   */
  async listPackIndexesBelow(
    tags: Iterable<string>,
    since: number | null = null,
  ): Promise<{ packs: Map<string, string | null>; newestStampMs: number | null }> {
    const listings: { prefix: string; opts: ListOptions }[] = [
      { prefix: TIMED_INDEX_PREFIX, opts: since === null ? {} : { startAfter: timedIndexCursor(since) } },
      ...[...new Set(tags)].map((t) => ({ prefix: hostIndexPrefix(t), opts: {} })),
    ];
    if (since === null) listings.push({ prefix: INDEX_PREFIX, opts: { shallow: true } });
    // The listings overlap (each is a request of its own; their order does not matter).
    const keys = await Promise.all(
      listings.map(async ({ prefix, opts }) => {
        const out: string[] = [];
        for await (const o of this.store.list(prefix, opts)) out.push(o.key);
        return out;
      }),
    );
    const packs = new Map<string, string | null>();
    let newestStampMs: number | null = null;
    for (const key of keys.flat()) {
      const k = this.learnIndexKey(key);
      if (!k) continue;
      if (!packs.has(k.id)) packs.set(k.id, k.hostTag);
      if (k.stampMs !== undefined && (newestStampMs === null || k.stampMs > newestStampMs)) newestStampMs = k.stampMs;
    }
    return { packs, newestStampMs };
  }

  /** The pack id of a listed `index/` key, remembering where it is; null for a key of no index. */
  private learnIndexKey(key: string): ReturnType<typeof parseIndexKey> {
    const k = parseIndexKey(key);
    if (k) this.rememberIndexKey(k.id, key);
    return k;
  }

  /** The key of a pack's index this instance has listed or written (the first one), if any. */
  listedIndexKey(packId: string): string | null {
    return this.indexKeys.get(packId)?.[0] ?? null;
  }

  /**
   * Where a pack's index lies, as a caller recorded it from an earlier listing (issue 15: a sync
   * that resumes from a cursor does not list it again). A key of another form, or naming another
   * pack, is ignored.
   */
  knowIndexKey(packId: string, key: string): void {
    if (parseIndexKey(key)?.id === packId) this.rememberIndexKey(packId, key);
  }

  private rememberIndexKey(packId: string, key: string): void {
    const keys = this.indexKeys.get(packId);
    if (!keys) this.indexKeys.set(packId, [key]);
    else if (!keys.includes(key)) keys.push(key);
  }

  /**
   * The blob filter a pack's index name carries (pack/blobfilter.ts), as far as this instance
   * has listed or written it; null when it has none (or one this build cannot read).
   */
  indexFilterOf(packId: string): Buffer | null {
    const key = this.listedIndexKey(packId);
    const text = key === null ? null : parseIndexKey(key)?.filter;
    return (text && parseBlobFilter(text)) || null;
  }

  /** The positions a blob tests in blob filters (pack/blobfilter.ts): keyed, so the key must be at hand. */
  blobProbe(id: BlobId): BlobProbe {
    return blobProbe(this.secrets.blobFilterKey, id);
  }

  /**
   * The host tag a pack's index lies below (null: flat), as far as this instance has listed or
   * written it; undefined when it has not seen that index.
   */
  indexTagOf(packId: string): string | null | undefined {
    const key = this.listedIndexKey(packId);
    return key === null ? undefined : (parseIndexKey(key)?.hostTag ?? null);
  }

  /**
   * Where pack `packId`'s index is stored: known from a listing or a write of this instance;
   * else the flat key when it exists, else found by listing every index (callers list first, so
   * this is the rare path). An index found nowhere gets the flat key (a read then fails "not
   * found", a delete deletes nothing).
   */
  async indexKeyOf(packId: string): Promise<string> {
    return (await this.indexKeysOf(packId))[0];
  }

  /** Every key holding pack `packId`'s index that this instance knows (see indexKeyOf for an unknown one). */
  private async indexKeysOf(packId: string): Promise<string[]> {
    const known = this.indexKeys.get(packId);
    if (known) return known;
    if (await this.store.head(indexKey(packId))) return [indexKey(packId)];
    for await (const _ of this.listPackIndexes()) void _;
    return this.indexKeys.get(packId) ?? [indexKey(packId)];
  }

  /** The key of a pack's index for messages (check): the known one, else the flat one. */
  indexKeyForDisplay(packId: string): string {
    return this.listedIndexKey(packId) ?? indexKey(packId);
  }

  async loadPackIndex(packId: string): Promise<PackIndex> {
    await this.unlock();
    const key = await this.indexKeyOf(packId);
    const raw = this.openObject(await this.store.get(key), `pack index ${key}`);
    const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw, { maxOutputLength: 256 * 1024 * 1024 }) : raw;
    const idx = JSON.parse(text.toString('utf8')) as PackIndex;
    if (idx.v !== 1 || idx.pack !== packId || !Array.isArray(idx.blobs)) throw new Error(`invalid pack index ${packId}`);
    return idx;
  }

  async *listPacks(): AsyncIterable<{ id: string; size: number; mtime?: Date }> {
    // [prune, issue 15] mtime: the store's time of the pack (prune leaves packs of running snapshots alone).
    for await (const o of this.store.list(PACK_PREFIX)) yield { id: packIdOfKey(o.key), size: o.size, mtime: o.mtime };
  }

  /** Reads one blob (decompressing it) and checks its identity, so corruption is never returned as content. */
  async readBlob(packId: string, offset: number, length: number, id: BlobId): Promise<Buffer> {
    await this.unlock();
    return takeBlob(await this.loadBlobs(packId, [{ id, offset, length }]), id, packId);
  }

  /** Blobs of one pack through the blob loader: ranged reads, neighbours coalesced, every blob verified. */
  async loadBlobs(packId: string, refs: BlobRef[]): Promise<LoadedBlobs> {
    await this.unlock();
    return loadBlobsFromPack(this.packRangeReader(packId), refs, this.blobKey());
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
    // Every index naming the pack (prune listed them all first), before the pack.
    if (hasIndex) for (const key of await this.indexKeysOf(packId)) await this.store.delete(key);
    await this.store.delete(packKey(packId));
  }

  /** Until when S3 Object Lock keeps a pack from being deleted; null when it may go now. */
  packRetainedUntil(packId: string): Promise<Date | null> {
    return this.retainedUntil(packKey(packId));
  }

  /** Until when S3 Object Lock keeps a snapshot record from being deleted; null when it may go now. */
  async snapshotRetainedUntil(snapshotId: string): Promise<Date | null> {
    return this.retainedUntil(await this.snapshotKeyOf(snapshotId));
  }

  private async retainedUntil(key: string): Promise<Date | null> {
    if (!this.store.retainedUntil) return null;
    const until = await this.store.retainedUntil(key);
    return until && until.getTime() > Date.now() ? until : null;
  }

  /**
   * The tag under which `host`'s snapshot records are stored (issue 15): 16 hex digits of
   * HMAC-SHA256 of the host name under a key derived from the master key, so the store does not
   * show host names (an unencrypted repository derives the key from its id: a plain hash).
   * Two hosts sharing a tag only read each other's records; nothing relies on tags being unique.
   */
  async hostTag(host: string): Promise<string> {
    // While the key is derived, a tag the catalog remembered will do (checked once it is: knowHostTags).
    const known = this.unlocking ? this.rememberedTags.get(host) : undefined;
    if (known !== undefined) return known;
    await this.unlock();
    return tagOf(this.secrets.hostTagKey, host);
  }

  /** Tags given by knowHostTags, used while a deferred unlock is pending. */
  private readonly rememberedTags = new Map<string, string>();

  /**
   * Host tags a caller remembers from an earlier session (the catalog keeps them: issue 17),
   * so that listing a host's records and tree indexes need not wait for the key's derivation
   * (scrypt, in every command). Once the key is derived each one is checked, and a wrong one
   * fails the unlock, and with it everything that awaits it (every write): fail closed.
   */
  knowHostTags(tags: Record<string, string>): void {
    if (!this.unlocking) return; // the key is here (or none is needed): tags are computed
    for (const [host, tag] of Object.entries(tags)) if (typeof tag === 'string') this.rememberedTags.set(host, tag);
    this.unlocking = this.unlocking.then((u) => {
      const key = deriveSecrets(u.master, this.config.id).hostTagKey;
      for (const [host, tag] of this.rememberedTags)
        if (tagOf(key, host) !== tag)
          throw new Error(
            `the local catalog's tag for host "${host}" does not match this repository's key: rebuild it ("snapfill catalog rebuild")`,
          );
      return u;
    });
    this.unlocking.catch(() => {}); // reported by unlock()
  }

  /** The tags of `hosts` when the key is at hand (null while a deferred unlock is pending): for the catalog to remember. */
  hostTagsNow(hosts: Iterable<string>): Record<string, string> | null {
    if (this.unlocking) return null;
    const out: Record<string, string> = {};
    for (const h of hosts) out[h] = tagOf(this.secrets.hostTagKey, h);
    return out;
  }

  /** Stores a record under its host's tag; the id is the SHA-256 of the bytes as stored (sealed, when encrypted). */
  async saveSnapshot(rec: SnapshotRecord): Promise<string> {
    await this.unlock();
    const json = Buffer.from(JSON.stringify(rec, null, 1));
    const bytes = this.encrypted ? this.sealObject(gzipSync(json, { level: 9 })) : json;
    const id = createHash('sha256').update(bytes).digest('hex');
    const key = snapshotKey(id, await this.hostTag(rec.host));
    await this.store.put(key, bytes);
    this.snapshotKeys.set(id, key);
    return id;
  }

  /** Every snapshot record's id, both layouts (prune, check, copy, commands over every host). */
  async *listSnapshotIds(): AsyncIterable<string> {
    for await (const o of this.store.list(SNAPSHOT_PREFIX)) {
      const id = this.learnSnapshotKey(o.key);
      if (id !== null) yield id;
    }
  }

  /**
   * The records a catalog that follows `hosts` needs (issue 15): those below these hosts' tags,
   * and every record of the flat layout (older releases wrote no tag; listed without descending
   * into the tags: one listing whatever the fleet's size; not with `flat` false, for a catalog
   * that knows the repository has none). `complete` when `all`: then every record is listed.
   */
  async listSnapshots(hosts: Iterable<string>, all = false, flat = true): Promise<SnapshotListing> {
    const ids = new Set<string>();
    let flatSeen = 0;
    const learn = (key: string) => {
      const id = this.learnSnapshotKey(key);
      if (id === null) return;
      ids.add(id);
      if (parseSnapshotKey(key)?.hostTag === null) flatSeen++;
    };
    if (all) {
      for await (const o of this.store.list(SNAPSHOT_PREFIX)) learn(o.key);
      return { ids, complete: true, flat: flatSeen };
    }
    const prefixes = flat ? [SNAPSHOT_PREFIX] : [];
    for (const h of new Set(hosts)) prefixes.push(hostSnapshotPrefix(await this.hostTag(h)));
    // The listings overlap (each is a request of its own; their order does not matter).
    const keys = await Promise.all(
      prefixes.map(async (prefix) => {
        const out: string[] = [];
        for await (const o of this.store.list(prefix, { shallow: prefix === SNAPSHOT_PREFIX })) out.push(o.key);
        return out;
      }),
    );
    for (const key of keys.flat()) learn(key);
    return { ids, complete: false, flat: flat ? flatSeen : null };
  }

  /**
   * Whether a record lies where its host's records go: below its host's tag, or flat (older
   * releases). A record under another host's tag (crafted, or moved) is not that host's for a
   * routine sync, which lists only its hosts' tags: callers keep it as a record of another
   * host, and check reports it.
   */
  async recordUnderItsHost(s: StoredSnapshot): Promise<boolean> {
    const key = parseSnapshotKey(await this.snapshotKeyOf(s.id));
    return !key || key.hostTag === null || key.hostTag === (await this.hostTag(s.host));
  }

  /** The id a listed `snapshots/` key stores, remembering where it is; null for a key of no record. */
  private learnSnapshotKey(key: string): string | null {
    const k = parseSnapshotKey(key);
    if (!k) return null;
    // Two keys holding one id hold the same bytes (the id is their hash): either will do.
    if (!this.snapshotKeys.has(k.id)) this.snapshotKeys.set(k.id, key);
    return k.id;
  }

  /**
   * Where record `id` is stored: known from a listing or a write of this instance; else the
   * flat key when it exists, else found by listing every record (callers list first, so this
   * is the rare path). An id found nowhere gets the flat key (a read then fails "not found").
   */
  private async snapshotKeyOf(id: string): Promise<string> {
    const known = this.snapshotKeys.get(id);
    if (known) return known;
    if (await this.store.head(snapshotKey(id))) return snapshotKey(id);
    for await (const _ of this.listSnapshotIds()) void _;
    return this.snapshotKeys.get(id) ?? snapshotKey(id);
  }

  async loadSnapshot(id: string): Promise<StoredSnapshot> {
    await this.unlock();
    const bytes = await this.store.get(await this.snapshotKeyOf(id));
    if (createHash('sha256').update(bytes).digest('hex') !== id) throw new Error(`snapshot ${id} is damaged (hash mismatch)`);
    const opened = this.openObject(bytes, `snapshot ${id}`);
    const text = opened[0] === 0x1f && opened[1] === 0x8b ? gunzipSync(opened, { maxOutputLength: 64 * 1024 * 1024 }) : opened;
    const rec = JSON.parse(text.toString('utf8')) as SnapshotRecord;
    return { ...rec, id };
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.store.delete(await this.snapshotKeyOf(id));
  }

  // [prune, issue 15] small sealed records of other kinds (garbage/<id>, src/repo/garbage.ts):
  // gzipped JSON, sealed like snapshot records in an encrypted repository.
  /** Stores a JSON record under `key`; returns the SHA-256 of the stored bytes. */
  async putRecord(key: (id: string) => string, value: unknown, opts: PutOptions = {}): Promise<string> {
    await this.unlock();
    const json = Buffer.from(JSON.stringify(value));
    const bytes = this.sealObject(gzipSync(json, { level: 9 }));
    const id = createHash('sha256').update(bytes).digest('hex');
    await this.store.put(key(id), bytes, opts);
    return id;
  }

  /** Reads a record stored by putRecord; fails naming it when it is damaged or fails authentication. */
  async getRecord<T>(key: string): Promise<T> {
    await this.unlock();
    const opened = this.openObject(await this.store.get(key), key);
    const text = opened[0] === 0x1f && opened[1] === 0x8b ? gunzipSync(opened, { maxOutputLength: 64 * 1024 * 1024 }) : opened;
    return JSON.parse(text.toString('utf8')) as T;
  }

  newPackWriter(type: BlobType): PackWriter {
    return new PackWriter(type, { key: this.blobKey(), version: this.config.version });
  }
}
