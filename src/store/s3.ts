import { createHash, randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as https from 'node:https';
import {
  S3Client,
  GetObjectCommand,
  PutObjectCommand,
  HeadObjectCommand,
  DeleteObjectCommand,
  ListObjectsV2Command,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  CompleteMultipartUploadCommand,
  AbortMultipartUploadCommand,
  PutObjectRetentionCommand,
  type PutObjectCommandInput,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import pLimit, { type LimitFunction } from 'p-limit';
import {
  ObjectExistsError,
  ObjectNotFoundError,
  ObjectRetainedError,
  type DeleteOptions,
  type ListOptions,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
} from './store.js';
import type { StoreOptions } from './open.js';
import { resolveS3Settings, type S3Settings } from './s3config.js';
import { TransferError, withRetry, type RetryListener } from './retry.js';
import { OptionError } from '../util/errors.js';

/** The Object Lock headers of one PUT (none for mutable objects or without object lock days). */
type Retention = Pick<PutObjectCommandInput, 'ObjectLockMode' | 'ObjectLockRetainUntilDate' | 'Metadata'>;

/** User metadata that records the retention we asked for, so it is known even where the server ignores Object Lock. */
const RETAIN_META = 'snapfill-retain-until';

/** Counters for benchmarks and tests (requests sent, including retries). */
export interface S3Stats {
  get: number;
  put: number;
  head: number;
  list: number;
  delete: number;
  multipart: number;
  retries: number;
  bytesDown: number;
  bytesUp: number;
}

/** A conditional PUT answered 412; which attempt got that answer decides what it means. */
class PreconditionFailed extends Error {
  constructor(readonly attempt: number) {
    super('precondition failed');
  }
}

type ErrorLike = Error & { name: string; $metadata?: { httpStatusCode?: number }; Code?: string };

function status(e: unknown): number | undefined {
  return (e as ErrorLike)?.$metadata?.httpStatusCode;
}

function isNotFound(e: unknown): boolean {
  const n = (e as ErrorLike)?.name;
  return n === 'NoSuchKey' || n === 'NotFound' || (status(e) === 404 && n !== 'NoSuchBucket' && n !== 'NoSuchUpload');
}

function md5b64(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

/**
 * Reads a response body completely. A body that ends before its Content-Length, errors, or
 * stalls longer than `stallMs` becomes a retryable TransferError: the SDK has already handed
 * us the response at that point, so its own retries would never see these failures.
 */
async function readBody(body: unknown, expected: number | undefined, stallMs: number, what: string): Promise<Buffer> {
  const stream = body as NodeJS.ReadableStream & { destroy?: (e?: Error) => void };
  if (!stream || typeof (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator] !== 'function') {
    throw new Error(`${what}: response has no readable body`);
  }
  const chunks: Buffer[] = [];
  let got = 0;
  let timer: NodeJS.Timeout | null = null;
  let stalled = false;
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      stalled = true;
      stream.destroy?.(new TransferError(`${what}: body stalled for ${stallMs} ms`, 'ESTALLED'));
    }, stallMs);
  };
  arm();
  try {
    for await (const c of stream as AsyncIterable<Buffer>) {
      chunks.push(c);
      got += c.length;
      arm();
    }
  } catch (e) {
    if (stalled) throw new TransferError(`${what}: body stalled for ${stallMs} ms`, 'ESTALLED');
    const err = e as Error;
    throw new TransferError(`${what}: connection lost after ${got} of ${expected ?? '?'} bytes (${err.message})`);
  } finally {
    if (timer) clearTimeout(timer);
  }
  if (expected !== undefined && got !== expected) {
    throw new TransferError(`${what}: body has ${got} bytes, Content-Length said ${expected}`);
  }
  return Buffer.concat(chunks, got);
}

/**
 * An S3 (or S3-compatible: MinIO, Ceph RGW, ...) bucket as an object store.
 *
 * - Every request runs through one p-limit, so a process never has more than `concurrency`
 *   requests (and bodies in memory) in flight, however many callers ask at once.
 * - Every request is retried with exponential backoff and full jitter (see retry.ts); a GET
 *   counts as done only when its whole body is in and has the announced length.
 * - PUTs carry Content-MD5, so a body damaged on the way is rejected by the server; large
 *   objects go up as multipart uploads with parallel parts.
 * - With object lock days set, objects are uploaded with Object Lock retention, except those
 *   the caller marks `mutable` (locks: rewritten while held, deleted on release).
 */
export class S3Store implements ObjectStore {
  readonly location: string;
  readonly stats: S3Stats = { get: 0, put: 0, head: 0, list: 0, delete: 0, multipart: 0, retries: 0, bytesDown: 0, bytesUp: 0 };
  private readonly limit: LimitFunction;
  /** Whether the server honours `If-None-Match: *` on PUT; null until known. */
  private conditional: boolean | null;
  private probing: Promise<boolean> | null = null;
  /** Told of each retry (the CLI shows them); the store prints nothing by itself. */
  onRetry?: RetryListener;

  constructor(
    readonly settings: S3Settings,
    private readonly client: S3Client,
  ) {
    this.location = `s3://${settings.bucket}${settings.prefix ? '/' + settings.prefix.replace(/\/$/, '') : ''}`;
    this.limit = pLimit(settings.concurrency);
    this.conditional = settings.conditionalWrites === 'on' ? true : settings.conditionalWrites === 'off' ? false : null;
  }

  static fromUrl(url: string, opts: StoreOptions = {}): S3Store {
    const settings = resolveS3Settings(url, opts);
    const store = new S3Store(settings, S3Store.makeClient(settings));
    store.onRetry = opts.onRetry;
    return store;
  }

  static makeClient(s: S3Settings): S3Client {
    // The SDK warns on every run under Node < 22 that *future* SDK releases will need Node 22.
    // The locked SDK version works on Node 20 (our engines floor); keep stderr for real problems.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    const agentOpts = { keepAlive: true, maxSockets: s.concurrency + 4 };
    return new S3Client({
      region: s.region,
      endpoint: s.endpoint,
      forcePathStyle: s.pathStyle,
      requestChecksumCalculation: s.checksums,
      responseChecksumValidation: s.checksums,
      // Our retry loop (retry.ts) covers the whole request including the body; SDK retries would multiply attempts.
      maxAttempts: 1,
      requestHandler: {
        connectionTimeout: Math.min(s.timeoutMs, 10_000),
        requestTimeout: s.timeoutMs,
        // Without this the handler only logs a warning and the request hangs on.
        throwOnRequestTimeout: true,
        httpAgent: new http.Agent(agentOpts),
        httpsAgent: new https.Agent(agentOpts),
      },
    });
  }

  private k(key: string): string {
    if (key.startsWith('/') || key.split('/').includes('..')) throw new Error(`invalid object key: ${key}`);
    return this.settings.prefix + key;
  }

  /** One logical request: retried as a whole, each attempt holding one concurrency slot. */
  private request<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
    return withRetry(
      what,
      this.settings.retry,
      (attempt) => {
        if (attempt > 1) this.stats.retries++;
        return this.limit(() => fn(attempt));
      },
      this.onRetry,
    );
  }

  private retention(mutable: boolean | undefined): Retention {
    const days = this.settings.objectLockDays;
    if (!days || mutable) return {};
    const until = new Date(Date.now() + days * 86_400_000);
    return {
      ObjectLockMode: this.settings.objectLockMode,
      ObjectLockRetainUntilDate: until,
      Metadata: { [RETAIN_META]: until.toISOString() },
    };
  }

  private explainLockError(e: unknown): unknown {
    const err = e as ErrorLike;
    if (this.settings.objectLockDays && /object ?lock/i.test(err?.message ?? '') && (status(e) === 400 || err?.name === 'InvalidRequest')) {
      return new OptionError(
        (n) =>
          `bucket ${this.settings.bucket} does not accept Object Lock retention (${err.message}). ` +
          `Create the bucket with Object Lock enabled, or run without ${n('objectLockDays')}.`,
      );
    }
    return e;
  }

  async put(key: string, data: Buffer, opts: PutOptions = {}): Promise<void> {
    const fullKey = this.k(key);
    let conditional = false;
    if (opts.ifAbsent) {
      conditional = await this.supportsConditionalWrites();
      // Fallback for servers that ignore If-None-Match: check, then write. Not atomic, so
      // nothing relies on it for mutual exclusion (see docs/S3.md, "Locking").
      if (!conditional && (await this.head(key))) throw new ObjectExistsError(key);
    }
    try {
      const retention = this.retention(opts.mutable);
      if (data.length >= this.settings.multipartThreshold) await this.putMultipart(key, fullKey, data, conditional, retention);
      else await this.putSingle(key, fullKey, data, conditional, retention);
    } catch (e) {
      throw this.explainLockError(e);
    }
  }

  private async putSingle(key: string, fullKey: string, data: Buffer, conditional: boolean, retention: Retention): Promise<void> {
    const md5 = md5b64(data);
    try {
      await this.request(`PUT ${fullKey}`, async (attempt) => {
        this.stats.put++;
        try {
          await this.client.send(
            new PutObjectCommand({
              Bucket: this.settings.bucket,
              Key: fullKey,
              Body: data,
              ContentLength: data.length,
              ContentMD5: md5,
              ContentType: 'application/octet-stream',
              ...(conditional ? { IfNoneMatch: '*' } : {}),
              ...retention,
            }),
          );
          this.stats.bytesUp += data.length;
        } catch (e) {
          if (conditional && status(e) === 412) throw new PreconditionFailed(attempt);
          throw e;
        }
      });
    } catch (e) {
      if (!(e instanceof PreconditionFailed)) throw e;
      // On a retry, "already exists" may be our own first attempt whose answer was lost.
      // (Checked here, outside the attempt: a request inside one could wait for its own slot.)
      if (e.attempt > 1 && (await this.sameContent(key, data))) return;
      throw new ObjectExistsError(key);
    }
  }

  private async putMultipart(key: string, fullKey: string, data: Buffer, conditional: boolean, retention: Retention): Promise<void> {
    const { bucket } = this.settings;
    const created = await this.request(`CreateMultipartUpload ${fullKey}`, () => {
      this.stats.multipart++;
      return this.client.send(
        new CreateMultipartUploadCommand({ Bucket: bucket, Key: fullKey, ContentType: 'application/octet-stream', ...retention }),
      );
    });
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error(`CreateMultipartUpload ${fullKey}: server returned no upload id`);
    try {
      const partSize = this.settings.partSize;
      const count = Math.ceil(data.length / partSize);
      const parts: CompletedPart[] = await Promise.all(
        Array.from({ length: count }, (_, i) => {
          const body = data.subarray(i * partSize, Math.min(data.length, (i + 1) * partSize));
          const md5 = md5b64(body);
          return this.request(`UploadPart ${fullKey} #${i + 1}`, async () => {
            this.stats.put++;
            const r = await this.client.send(
              new UploadPartCommand({
                Bucket: bucket,
                Key: fullKey,
                UploadId: uploadId,
                PartNumber: i + 1,
                Body: body,
                ContentLength: body.length,
                ContentMD5: md5,
              }),
            );
            this.stats.bytesUp += body.length;
            return { PartNumber: i + 1, ETag: r.ETag };
          });
        }),
      );
      await this.request(`CompleteMultipartUpload ${fullKey}`, async (attempt) => {
        // An earlier attempt may have been applied with its answer lost: servers then answer a
        // repeated complete with NoSuchUpload (AWS) or even a 500 (s3rver). If the object is in
        // place with the right size, it is ours (multipart is used for content-addressed packs).
        if (attempt > 1 && (await this.quickSize(fullKey)) === data.length) return;
        this.stats.multipart++;
        try {
          await this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: bucket,
              Key: fullKey,
              UploadId: uploadId,
              MultipartUpload: { Parts: parts },
              ...(conditional ? { IfNoneMatch: '*' } : {}),
            }),
          );
        } catch (e) {
          if (conditional && status(e) === 412) throw new ObjectExistsError(key);
          throw e;
        }
      });
    } catch (e) {
      // Best effort: an abandoned upload only costs storage until the bucket's lifecycle rule removes it.
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: fullKey, UploadId: uploadId })).catch(() => {});
      throw e;
    }
  }

  /** One HEAD without retries or a concurrency slot (called from inside an attempt): size, or null. */
  private async quickSize(fullKey: string): Promise<number | null> {
    try {
      this.stats.head++;
      const h = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: fullKey }));
      return h.ContentLength ?? null;
    } catch {
      return null;
    }
  }

  private async sameContent(key: string, data: Buffer): Promise<boolean> {
    try {
      return (await this.get(key)).equals(data);
    } catch {
      return false;
    }
  }

  /**
   * Whether `If-None-Match: *` on PUT is honoured. AWS S3 (since 2024), MinIO and recent Ceph
   * do; s3rver and older servers ignore the header and overwrite. In 'auto' mode this is found
   * out once per process by writing a probe object `tmp/conditional-write-probe-*` twice and
   * deleting it (3 small requests).
   */
  async supportsConditionalWrites(): Promise<boolean> {
    if (this.conditional !== null) return this.conditional;
    this.probing ??= this.probeConditionalWrites().then((v) => (this.conditional = v));
    return this.probing;
  }

  private async probeConditionalWrites(): Promise<boolean> {
    // Under tmp/, outside every prefix a repository lists: no reader takes the probe for one of its objects.
    const key = this.k(`tmp/conditional-write-probe-${randomBytes(8).toString('hex')}`);
    const body = Buffer.from('{}');
    const put = () =>
      this.request(`PUT ${key}`, () => {
        this.stats.put++;
        return this.client.send(
          new PutObjectCommand({ Bucket: this.settings.bucket, Key: key, Body: body, ContentMD5: md5b64(body), IfNoneMatch: '*' }),
        );
      });
    try {
      await put();
    } catch (e) {
      const s = status(e);
      if (s === 501 || s === 400) return false; // header rejected as unsupported
      throw e;
    }
    let honoured = false;
    try {
      await put();
    } catch (e) {
      if (status(e) !== 412) throw e;
      honoured = true;
    }
    await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: key })).catch(() => {});
    return honoured;
  }

  async get(key: string): Promise<Buffer> {
    return this.getObject(key);
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    return this.getObject(key, offset, length);
  }

  private async getObject(key: string, offset?: number, length?: number): Promise<Buffer> {
    const fullKey = this.k(key);
    const range = offset !== undefined && length !== undefined ? `bytes=${offset}-${offset + length - 1}` : undefined;
    const what = `GET ${fullKey}${range ? ` ${range}` : ''}`;
    try {
      return await this.request(what, async () => {
        this.stats.get++;
        const out = await this.client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: fullKey, Range: range }));
        let body = await readBody(out.Body, out.ContentLength, this.settings.timeoutMs, what);
        this.stats.bytesDown += body.length;
        if (range) {
          if (!out.ContentRange) {
            // The server ignored Range and sent the whole object: cut out what was asked for.
            body = body.subarray(offset, offset! + length!);
          } else if (!out.ContentRange.startsWith(`bytes ${offset}-`)) {
            throw new Error(`${what}: server answered with range ${out.ContentRange}`);
          }
          if (body.length < length!) throw new Error(`short read in ${key}: wanted ${length} bytes at ${offset}, got ${body.length}`);
        }
        return body;
      });
    } catch (e) {
      if (isNotFound(e)) throw new ObjectNotFoundError(key);
      if ((e as ErrorLike).name === 'InvalidRange')
        throw new Error(`short read in ${key}: range ${range} is beyond the end of the object`, { cause: e });
      throw e;
    }
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    const delimiter = opts.shallow ? { Delimiter: '/' } : {};
    // Only the first request takes it: a continuation token already carries the position.
    const startAfter = opts.startAfter === undefined ? {} : { StartAfter: this.k(opts.startAfter) };
    const full = this.k(prefix);
    const strip = this.settings.prefix.length;
    do {
      const page = await this.request(`LIST ${full}`, () => {
        this.stats.list++;
        return this.client.send(
          new ListObjectsV2Command({
            Bucket: this.settings.bucket,
            Prefix: full,
            ContinuationToken: token,
            ...delimiter,
            ...(token === undefined ? startAfter : {}),
          }),
        );
      });
      for (const o of page.Contents ?? []) {
        if (!o.Key) continue;
        yield { key: o.Key.slice(strip), size: o.Size ?? 0, ...(o.LastModified ? { mtime: o.LastModified } : {}) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string, opts: DeleteOptions = {}): Promise<void> {
    // Fail closed: never issue a delete for an object still under retention. (On a versioned
    // bucket S3 would "succeed" by adding a delete marker, hiding data that cannot be freed.)
    if (!opts.mutable) {
      const until = await this.retainedUntil(key);
      if (until) throw new ObjectRetainedError(key, until);
    }
    const fullKey = this.k(key);
    try {
      await this.request(`DELETE ${fullKey}`, async () => {
        this.stats.delete++;
        try {
          await this.client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: fullKey }));
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      });
    } catch (e) {
      // [prune, issue 15] The server refused: Object Lock retention we did not know of (set by
      // another writer, a bucket default, or extended since we looked). Reported as retained,
      // with the date the server now gives, so callers keep the object instead of failing.
      if (!opts.mutable && (status(e) === 403 || (e as ErrorLike).name === 'AccessDenied')) {
        const h = await this.headObject(key).catch(() => null);
        if (h?.retainUntil && h.retainUntil.getTime() > Date.now()) throw new ObjectRetainedError(key, h.retainUntil);
        // Refused for Object Lock, but the retention cannot be read (credentials without
        // s3:GetObjectRetention, or a bucket default): still retained, date unknown.
        if (/object ?lock/i.test((e as Error).message ?? '')) throw new ObjectRetainedError(key, null);
      }
      throw e;
    }
  }

  /** [prune, issue 15] The retention new objects get (days), for prune's extension of live packs. */
  get objectLockDays(): number | undefined {
    return this.settings.objectLockDays || undefined;
  }

  /** [prune, issue 15] Sets a later retain-until date (PutObjectRetention; the mode stays the configured one). */
  async extendRetention(key: string, until: Date): Promise<void> {
    const fullKey = this.k(key);
    await this.request(`PutObjectRetention ${fullKey}`, () => {
      this.stats.put++;
      return this.client.send(
        new PutObjectRetentionCommand({
          Bucket: this.settings.bucket,
          Key: fullKey,
          Retention: { Mode: this.settings.objectLockMode, RetainUntilDate: until },
        }),
      );
    });
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const h = await this.headObject(key);
    return h ? { key, size: h.size, ...(h.mtime ? { mtime: h.mtime } : {}) } : null;
  }

  private async headObject(key: string): Promise<{ size: number; retainUntil: Date | null; mtime?: Date } | null> {
    const fullKey = this.k(key);
    try {
      return await this.request(`HEAD ${fullKey}`, async () => {
        this.stats.head++;
        const h = await this.client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: fullKey }));
        const dates = [h.ObjectLockRetainUntilDate, h.Metadata?.[RETAIN_META] ? new Date(h.Metadata[RETAIN_META]) : undefined].filter(
          (d): d is Date => d instanceof Date && !Number.isNaN(d.getTime()),
        );
        const retainUntil = dates.length ? new Date(Math.max(...dates.map((d) => d.getTime()))) : null;
        return { size: h.ContentLength ?? 0, retainUntil, mtime: h.LastModified };
      });
    } catch (e) {
      if (isNotFound(e)) return null;
      throw e;
    }
  }

  /**
   * The retention end of an object if it lies in the future, else null. Taken from the Object
   * Lock header and from the metadata snapfill writes alongside it (so retention asked for is
   * honoured by snapfill even on a server that ignores Object Lock).
   */
  async retainedUntil(key: string): Promise<Date | null> {
    const h = await this.headObject(key);
    if (!h?.retainUntil) return null;
    return h.retainUntil.getTime() > Date.now() ? h.retainUntil : null;
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
