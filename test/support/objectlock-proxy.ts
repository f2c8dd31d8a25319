import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { S3Client, HeadObjectCommand } from '@aws-sdk/client-s3';
import { S3_CREDENTIALS } from './s3server.js';

/**
 * S3 Object Lock in front of s3rver (which ignores it): an HTTP proxy that remembers, per
 * object, the retention a writer asked for and enforces it the way S3 does, so tests see the
 * server's real answers instead of trusting the client to hold back.
 *
 * - PUT / CreateMultipartUpload with `x-amz-object-lock-mode` + `x-amz-object-lock-retain-until-date`
 *   set the object's retention (multipart: when the upload completes). As on S3: both headers or
 *   neither (400 InvalidArgument), a date in the future (400 InvalidArgument), Content-MD5 or an
 *   x-amz-checksum-* header required (400 InvalidRequest), and a bucket without Object Lock
 *   refuses them (400 InvalidRequest).
 * - PutObjectRetention (`PUT ?retention`, XML body) is answered here, never forwarded (s3rver
 *   would store the XML as the object). COMPLIANCE retention may only be extended; GOVERNANCE
 *   may be shortened or removed only with `x-amz-bypass-governance-retention: true`.
 *   GetObjectRetention (`GET ?retention`) answers the XML S3 gives.
 * - HEAD / GET of an object carry `x-amz-object-lock-mode` and `x-amz-object-lock-retain-until-date`
 *   (also after the date has passed, as S3 does). `reportRetention: false` leaves them out, as S3
 *   does for credentials without s3:GetObjectRetention: the client then learns of retention only
 *   from the refusal.
 * - DELETE of an object whose retention has not expired: 403 AccessDenied with S3's XML error
 *   body, nothing forwarded. (Simplification: S3 buckets with Object Lock are versioned, and a
 *   DELETE without a version id there "succeeds" by adding a delete marker while the locked
 *   version stays and keeps costing storage; snapfill must never rely on that, so refusing is
 *   the stricter test.) A PUT over a locked object keeps the later of both dates (on S3 the old
 *   version stays locked). Multi-object delete (`POST ?delete`) answers 501: snapfill does not
 *   use it, and a test must not pass by going around the lock.
 *
 * Times are this process's clock, which is also the store clock the client sees (s3rver runs
 * on the same machine).
 */
export type LockMode = 'COMPLIANCE' | 'GOVERNANCE';

export interface Retention {
  mode: LockMode;
  until: Date;
}

export interface ObjectLockOptions {
  /** Buckets created with Object Lock enabled (default: every bucket). */
  lockedBuckets?: string[];
  // No bucket default retention rule: on S3 it locks every new version, locks and other
  // mutable objects included, which only works there because a DELETE without a version id
  // adds a delete marker; this proxy refuses such a DELETE instead (see above).
  /** Whether HEAD/GET report the retention headers (default true). */
  reportRetention?: boolean;
}

/** One answer the proxy gave on its own for Object Lock reasons (a refusal or an accepted change). */
export interface LockEvent {
  op: 'delete-refused' | 'delete-bypassed' | 'retention-set' | 'retention-refused' | 'put-refused' | 'delete-multi-refused';
  /** bucket/key */
  key: string;
  until?: string;
  previous?: string;
  reason?: string;
}

const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function s3Error(code: string, message: string, resource: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<Resource>${resource}</Resource><RequestId>objectlock-proxy</RequestId></Error>`
  );
}

function xmlField(xml: string, name: string): string | undefined {
  return new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1];
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

export class ObjectLockProxy {
  private server: http.Server;
  private agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  /** Retention per `bucket/key` of every object written with it (kept after expiry, like S3). */
  readonly retention = new Map<string, Retention>();
  /** Retention asked for by CreateMultipartUpload, applied when the upload completes. */
  private pending = new Map<string, Retention>();
  readonly events: LockEvent[] = [];
  port = 0;
  private client: S3Client | null = null;

  constructor(
    private readonly target: { host: string; port: number },
    readonly opts: ObjectLockOptions = {},
  ) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
    this.client?.destroy();
  }

  /** Retention of `bucket/key` whose date has not passed, else undefined. */
  activeRetention(fullKey: string, now = Date.now()): Retention | undefined {
    const r = this.retention.get(fullKey);
    return r && r.until.getTime() > now ? r : undefined;
  }

  /** Events of one kind, optionally only for keys under `bucket/prefix`. */
  eventsOf(op: LockEvent['op'], under = ''): LockEvent[] {
    return this.events.filter((e) => e.op === op && e.key.startsWith(under));
  }

  private locked(bucket: string): boolean {
    return !this.opts.lockedBuckets || this.opts.lockedBuckets.includes(bucket);
  }

  private reply(
    res: http.ServerResponse,
    req: http.IncomingMessage,
    status: number,
    code: string,
    message: string,
    resource: string,
  ): void {
    const body = s3Error(code, message, resource);
    res.writeHead(status, {
      'content-type': 'application/xml',
      'content-length': Buffer.byteLength(body),
      'x-amz-request-id': 'objectlock-proxy',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** The retention asked for by a PUT / CreateMultipartUpload's headers; {status, ...} is the error to answer. */
  private requested(req: http.IncomingMessage, bucket: string): Retention | null | { status: number; code: string; message: string } {
    const mode = header(req, 'x-amz-object-lock-mode');
    const date = header(req, 'x-amz-object-lock-retain-until-date');
    if (mode === undefined && date === undefined) return null;
    if (!this.locked(bucket)) return { status: 400, code: 'InvalidRequest', message: 'Bucket is missing Object Lock Configuration' };
    if (mode === undefined || date === undefined)
      return {
        status: 400,
        code: 'InvalidArgument',
        message: 'x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied',
      };
    if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE')
      return { status: 400, code: 'InvalidArgument', message: 'Unknown wormMode directive.' };
    const until = new Date(date);
    if (Number.isNaN(until.getTime()) || until.getTime() <= Date.now())
      return { status: 400, code: 'InvalidArgument', message: 'The retain until date must be in the future!' };
    const hasChecksum = header(req, 'content-md5') !== undefined || Object.keys(req.headers).some((h) => h.startsWith('x-amz-checksum-'));
    if (req.method === 'PUT' && !hasChecksum)
      return {
        status: 400,
        code: 'InvalidRequest',
        message: 'Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters',
      };
    return { mode, until };
  }

  /** Sets retention; a PUT over a locked object keeps the later date (the old version stays locked on S3). */
  private keep(fullKey: string, r: Retention | null): void {
    const old = this.activeRetention(fullKey);
    if (!r) return;
    if (old && old.until.getTime() >= r.until.getTime()) return;
    this.retention.set(fullKey, r);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://proxy');
      const parts = url.pathname.split('/');
      const bucket = decodeURIComponent(parts[1] ?? '');
      const key = decodeURIComponent(parts.slice(2).join('/'));
      const fullKey = `${bucket}/${key}`;
      const q = url.searchParams;
      const method = req.method ?? 'GET';
      const resource = url.pathname;

      if (key && q.has('retention') && method === 'PUT') return void this.putRetention(req, res, fullKey, body, resource);
      if (key && q.has('retention') && method === 'GET') return void this.getRetention(req, res, fullKey, resource);
      if (method === 'POST' && q.has('delete')) {
        this.events.push({ op: 'delete-multi-refused', key: `${bucket}/` });
        return this.reply(res, req, 501, 'NotImplemented', 'multi-object delete is not supported by the Object Lock test proxy', resource);
      }
      if (key && method === 'DELETE' && !q.has('uploadId')) {
        const r = this.activeRetention(fullKey);
        if (r) {
          const bypass = r.mode === 'GOVERNANCE' && header(req, 'x-amz-bypass-governance-retention') === 'true';
          if (!bypass) {
            this.events.push({ op: 'delete-refused', key: fullKey, until: r.until.toISOString() });
            return this.reply(res, req, 403, 'AccessDenied', 'Access Denied because object protected by object lock.', resource);
          }
          this.events.push({ op: 'delete-bypassed', key: fullKey, until: r.until.toISOString() });
        }
      }
      let asked: Retention | null = null;
      const isObjectPut = key && method === 'PUT' && !q.has('uploadId') && !q.has('partNumber');
      const isCreateUpload = key && method === 'POST' && q.has('uploads');
      if (isObjectPut || isCreateUpload) {
        const r = this.requested(req, bucket);
        if (r && 'status' in r) {
          this.events.push({ op: 'put-refused', key: fullKey, reason: r.message });
          return this.reply(res, req, r.status, r.code, r.message, resource);
        }
        asked = r;
      }
      this.forward(req, res, body, (status, headers, payload) => {
        const ok = status >= 200 && status < 300;
        if (ok && isObjectPut) this.keep(fullKey, asked);
        if (ok && isCreateUpload && asked) {
          const id = xmlField(payload.toString(), 'UploadId');
          if (id) this.pending.set(id, asked);
        }
        if (ok && key && method === 'POST' && q.has('uploadId')) {
          const id = q.get('uploadId')!;
          // s3rver answers a failed complete with 200 and an <Error> body, as S3 may.
          if (!/<Error>/.test(payload.toString())) {
            this.keep(fullKey, this.pending.get(id) ?? null);
            this.pending.delete(id);
          }
        }
        if (ok && key && method === 'DELETE' && q.has('uploadId')) this.pending.delete(q.get('uploadId')!);
        if (ok && key && method === 'DELETE' && !q.has('uploadId')) this.retention.delete(fullKey);
        if (ok && key && (method === 'HEAD' || method === 'GET') && this.opts.reportRetention !== false) {
          const r = this.retention.get(fullKey);
          if (r) {
            headers['x-amz-object-lock-mode'] = r.mode;
            headers['x-amz-object-lock-retain-until-date'] = r.until.toISOString();
          }
        }
        return headers;
      });
    });
  }

  private putRetention(req: http.IncomingMessage, res: http.ServerResponse, fullKey: string, body: Buffer, resource: string): void {
    const bucket = fullKey.split('/')[0];
    if (!this.locked(bucket)) return this.reply(res, req, 400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration', resource);
    const xml = body.toString();
    const mode = xmlField(xml, 'Mode');
    const date = xmlField(xml, 'RetainUntilDate');
    const until = date ? new Date(date) : null;
    if ((mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE') || !until || Number.isNaN(until.getTime()))
      return this.reply(
        res,
        req,
        400,
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema',
        resource,
      );
    if (until.getTime() <= Date.now())
      return this.reply(res, req, 400, 'InvalidArgument', 'The retain until date must be in the future!', resource);
    // The object must exist: ask s3rver (a HEAD through the same agent).
    this.upstreamHead(resource, (status) => {
      if (status === 404) return this.reply(res, req, 404, 'NoSuchKey', 'The specified key does not exist.', resource);
      const old = this.activeRetention(fullKey);
      const bypass = header(req, 'x-amz-bypass-governance-retention') === 'true';
      const shorter = old && until.getTime() < old.until.getTime();
      const weaker = old && old.mode === 'COMPLIANCE' && mode === 'GOVERNANCE';
      if (old && (shorter || weaker) && (old.mode === 'COMPLIANCE' || !bypass)) {
        this.events.push({ op: 'retention-refused', key: fullKey, until: until.toISOString(), previous: old.until.toISOString() });
        return this.reply(res, req, 403, 'AccessDenied', 'Access Denied', resource);
      }
      this.retention.set(fullKey, { mode, until });
      this.events.push({ op: 'retention-set', key: fullKey, until: until.toISOString(), previous: old?.until.toISOString() });
      res.writeHead(200, { 'content-length': 0, 'x-amz-request-id': 'objectlock-proxy' });
      res.end();
    });
  }

  private getRetention(req: http.IncomingMessage, res: http.ServerResponse, fullKey: string, resource: string): void {
    const r = this.retention.get(fullKey);
    if (!r)
      return this.reply(
        res,
        req,
        404,
        'NoSuchObjectLockConfiguration',
        'The specified object does not have a ObjectLock configuration',
        resource,
      );
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<Retention xmlns="${NS}"><Mode>${r.mode}</Mode>` +
      `<RetainUntilDate>${r.until.toISOString()}</RetainUntilDate></Retention>`;
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Whether the object exists in s3rver: a HEAD signed with the test credentials (the client's signature covers only its own request). */
  private upstreamHead(pathname: string, done: (status: number) => void): void {
    const [, bucket, ...rest] = pathname.split('/');
    this.client ??= new S3Client({
      region: S3_CREDENTIALS.AWS_REGION,
      endpoint: `http://${this.target.host}:${this.target.port}`,
      forcePathStyle: true,
      credentials: { accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
    });
    this.client.send(new HeadObjectCommand({ Bucket: decodeURIComponent(bucket), Key: decodeURIComponent(rest.join('/')) })).then(
      () => done(200),
      (e: { $metadata?: { httpStatusCode?: number } }) => done(e.$metadata?.httpStatusCode ?? 502),
    );
  }

  /** Forwards to s3rver; `edit` sees the answer and returns the headers to send on. */
  private forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    edit: (status: number, headers: http.OutgoingHttpHeaders, payload: Buffer) => http.OutgoingHttpHeaders,
  ): void {
    const up = http.request(
      { host: this.target.host, port: this.target.port, method: req.method, path: req.url, headers: req.headers, agent: this.agent },
      (upRes) => {
        const parts: Buffer[] = [];
        upRes.on('data', (c: Buffer) => parts.push(c));
        upRes.on('end', () => {
          const payload = Buffer.concat(parts);
          const status = upRes.statusCode ?? 500;
          const headers = edit(status, { ...upRes.headers }, payload);
          res.writeHead(status, headers);
          res.end(payload);
        });
      },
    );
    up.on('error', (e) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${e.message}`);
    });
    up.end(body);
  }
}
