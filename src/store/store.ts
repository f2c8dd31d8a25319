/**
 * The object store: the only thing a backend implements. It knows nothing of snapshots or
 * packs; keys are slash-separated names such as `data/ab/ab12...`.
 */
export interface ObjectInfo {
  key: string;
  size: number;
  /**
   * [prune, issue 15] When the store last wrote the object, by the STORE's clock (S3
   * LastModified, a local file's mtime). Compared only with other store times (repo/clock.ts),
   * never with this host's clock. Absent when the store cannot say.
   */
  mtime?: Date;
}

export interface PutOptions {
  /** Fail with ObjectExistsError instead of replacing an existing object. */
  ifAbsent?: boolean;
  /**
   * The object is rewritten or deleted as part of normal work (a repository lock), so the
   * store must not make it immutable: no S3 Object Lock retention. Objects are write-once
   * unless the caller says otherwise.
   */
  mutable?: boolean;
}

export interface DeleteOptions {
  /** The object was written `mutable`: it carries no retention, so none is looked up before deleting it. */
  mutable?: boolean;
}

export class ObjectExistsError extends Error {
  constructor(key: string) {
    super(`object already exists: ${key}`);
    this.name = 'ObjectExistsError';
  }
}

export class ObjectNotFoundError extends Error {
  constructor(key: string) {
    super(`object not found: ${key}`);
    this.name = 'ObjectNotFoundError';
  }
}

/** A delete refused because the object is still under retention (S3 Object Lock). */
export class ObjectRetainedError extends Error {
  constructor(
    readonly key: string,
    /** null: the store refused the delete for Object Lock but does not say until when (no permission to read retention). */
    readonly until: Date | null,
  ) {
    super(
      `object ${key} is retained (object lock) ${until ? `until ${until.toISOString()}` : 'until a date the store does not show'}; it cannot be deleted before then`,
    );
    this.name = 'ObjectRetainedError';
  }
}

export interface ListOptions {
  /** Only keys with no `/` after the prefix. */
  shallow?: boolean;
  /** Only keys that sort after this one (byte order; S3 `StartAfter`): a listing resumed from a cursor. */
  startAfter?: string;
}

export interface ObjectStore {
  /** Human-readable location, e.g. `/srv/backup` or `s3://bucket/prefix`. */
  readonly location: string;
  /**
   * How many large puts (packs) in flight pay off; each is a pack's size of memory held. A local
   * directory writes at memory or disk speed: 1. Unset: latency-bound (S3), the writer's default.
   */
  readonly putsInFlight?: number;
  /** Atomically stores `data` under `key`: readers see the whole object or none of it. */
  put(key: string, data: Buffer, opts?: PutOptions): Promise<void>;
  get(key: string): Promise<Buffer>;
  getRange(key: string, offset: number, length: number): Promise<Buffer>;
  /**
   * Every object whose key starts with `prefix`; with `shallow`, only those with no `/` after
   * the prefix (S3: a listing with delimiter `/`, one request whatever lies below).
   */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo>;
  /** Removing a missing object is not an error. */
  delete(key: string, opts?: DeleteOptions): Promise<void>;
  /** Size of the object, or null when it does not exist. */
  head(key: string): Promise<ObjectInfo | null>;
  /**
   * When the object may be deleted at the earliest (S3 Object Lock retention), or null when
   * it is not retained. Stores without retention do not implement it. Prune/forget skip keys
   * retained in the future; `delete` of such a key throws ObjectRetainedError.
   */
  retainedUntil?(key: string): Promise<Date | null>;
  /**
   * [prune, issue 15] Extends an object's Object Lock retention to `until` (S3
   * PutObjectRetention; never shortens it). Stores without retention do not implement it.
   */
  extendRetention?(key: string, until: Date): Promise<void>;
  /** [prune, issue 15] The Object Lock retention new objects get, in days (S3 with object lock days set). */
  readonly objectLockDays?: number;
  /**
   * Temporary objects that interrupted writes left behind (a process killed between writing
   * and renaming) and that no live writer can still be using. Invisible to `list`, so only
   * this finds them; `check` reports them and `prune` removes them. Stores whose writes leave
   * no temporaries do not implement it. (S3's equivalent, the incomplete multipart upload of
   * a killed process, is not handled here: a bucket lifecycle rule aborts those.)
   */
  listStaleTemps?(): Promise<ObjectInfo[]>;
  /** Removes what `listStaleTemps` finds (judged again now); returns what was removed. */
  removeStaleTemps?(): Promise<ObjectInfo[]>;
  /** For stores on the local file system: the file holding `key`, so hot paths can pread it directly. */
  localPath?(key: string): string;
  close?(): Promise<void>;
}
