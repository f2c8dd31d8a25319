import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP proxy that sits between the S3 client and a real S3 server and injects the
 * failures real networks and servers produce: 500 and 503 (SlowDown) answers, connections
 * dropped in the middle of a response body (after the server applied the request), and delayed
 * responses. Faults are drawn from a seeded generator, so a failing run can be replayed.
 * It also counts and records requests, which the benchmarks use to count GETs per file.
 */
export interface FaultRates {
  /** Probability of answering 500 InternalError without forwarding. */
  error500?: number;
  /** Probability of answering 503 SlowDown without forwarding. */
  error503?: number;
  /** Probability of forwarding, then cutting the connection half way through the response body. */
  drop?: number;
  /** Probability of holding the response back by `delayMs`. */
  delay?: number;
  delayMs?: number;
  /** Only requests for which this returns true get faults (default: all). */
  only?: (r: RecordedRequest) => boolean;
}

export interface RecordedRequest {
  method: string;
  path: string;
  /** The object key part of a path-style URL, without the bucket. */
  key: string;
  query: string;
  headers: http.IncomingHttpHeaders;
  fault: 'none' | '500' | '503' | 'drop' | 'delay';
  status?: number;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function s3Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>faultproxy</RequestId></Error>`;
}

export class FaultProxy {
  private server: http.Server;
  private rand: () => number;
  private agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  faults: FaultRates = {};
  readonly log: RecordedRequest[] = [];
  recordLog = true;
  counts = { requests: 0, get: 0, put: 0, head: 0, list: 0, delete: 0, post: 0, faults: 0 };
  port = 0;

  constructor(
    private readonly target: { host: string; port: number },
    seed = 1,
  ) {
    this.rand = mulberry32(seed);
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
  }

  resetCounts(): void {
    for (const k of Object.keys(this.counts) as (keyof FaultProxy['counts'])[]) this.counts[k] = 0;
    this.log.length = 0;
  }

  private pick(r: RecordedRequest): RecordedRequest['fault'] {
    const f = this.faults;
    if (f.only && !f.only(r)) return 'none';
    const x = this.rand();
    let acc = 0;
    for (const [name, p] of [
      ['500', f.error500],
      ['503', f.error503],
      ['drop', f.drop],
      ['delay', f.delay],
    ] as const) {
      acc += p ?? 0;
      if (x < acc) return name;
    }
    return 'none';
  }

  private count(r: RecordedRequest): void {
    this.counts.requests++;
    const isList = r.method === 'GET' && (r.key === '' || /(^|&)(list-type|prefix)=/.test(r.query));
    if (isList) this.counts.list++;
    else if (r.method === 'GET') this.counts.get++;
    else if (r.method === 'PUT') this.counts.put++;
    else if (r.method === 'HEAD') this.counts.head++;
    else if (r.method === 'DELETE') this.counts.delete++;
    else if (r.method === 'POST') this.counts.post++;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const [path, query = ''] = url.split('?', 2);
      const key = decodeURIComponent(path.split('/').slice(2).join('/'));
      const rec: RecordedRequest = { method: req.method ?? 'GET', path, key, query, headers: req.headers, fault: 'none' };
      rec.fault = this.pick(rec);
      this.count(rec);
      if (rec.fault !== 'none') this.counts.faults++;
      if (this.recordLog) this.log.push(rec);
      if (rec.fault === '500' || rec.fault === '503') {
        const body =
          rec.fault === '500' ? s3Error('InternalError', 'injected failure') : s3Error('SlowDown', 'Please reduce your request rate.');
        rec.status = Number(rec.fault);
        res.writeHead(rec.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
        return;
      }
      const body = Buffer.concat(chunks);
      const up = http.request(
        {
          host: this.target.host,
          port: this.target.port,
          method: req.method,
          path: url,
          headers: req.headers,
          agent: this.agent,
        },
        (upRes) => {
          const parts: Buffer[] = [];
          upRes.on('data', (c: Buffer) => parts.push(c));
          upRes.on('end', () => {
            const payload = Buffer.concat(parts);
            rec.status = upRes.statusCode;
            const send = () => {
              if (rec.fault === 'drop') {
                // The server has applied the request; the client sees a broken answer.
                if (payload.length > 1 && req.method !== 'HEAD') {
                  res.writeHead(upRes.statusCode ?? 500, upRes.headers);
                  res.write(payload.subarray(0, Math.floor(payload.length / 2)), () => res.socket?.destroy());
                } else {
                  res.socket?.destroy();
                }
                return;
              }
              res.writeHead(upRes.statusCode ?? 500, upRes.headers);
              res.end(payload);
            };
            if (rec.fault === 'delay') setTimeout(send, this.faults.delayMs ?? 500);
            else send();
          });
        },
      );
      up.on('error', (e) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${e.message}`);
      });
      up.end(body);
    });
  }
}
