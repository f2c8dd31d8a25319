import type { StoreOptions } from './open.js';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.js';

/**
 * Everything the S3 backend needs, resolved once from the repository URL, the options (CLI
 * flags) and the environment. Flags win over the environment; nothing here reads credentials
 * (they come from the SDK's default chain: env, shared config/profile, SSO, instance role).
 */
export interface S3Settings {
  bucket: string;
  /** Key prefix inside the bucket: '' or ending in '/'. */
  prefix: string;
  endpoint?: string;
  region: string;
  pathStyle: boolean;
  /** 'WHEN_REQUIRED' (default) keeps third-party servers happy; 'WHEN_SUPPORTED' is the SDK's default. */
  checksums: 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';
  /** Requests in flight at once (per process), which also bounds memory for bodies. */
  concurrency: number;
  multipartThreshold: number;
  partSize: number;
  /** Socket idle timeout and body stall timeout. */
  timeoutMs: number;
  retry: RetryPolicy;
  /** Retention of new objects in days (0: none). A fraction only under SNAPFILL_TEST_OBJECT_LOCK_SECONDS. */
  objectLockDays: number;
  objectLockMode: 'COMPLIANCE' | 'GOVERNANCE';
  /** 'auto': probe whether the server honours If-None-Match on PUT; 'on' trusts it; 'off' uses HEAD-then-PUT. */
  conditionalWrites: 'auto' | 'on' | 'off';
}

const MiB = 1024 * 1024;

function envNum(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name}: "${v}" is not a non-negative number`);
  return n;
}

function envBool(env: NodeJS.ProcessEnv, name: string): boolean | undefined {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw new Error(`${name}: "${v}" is not a boolean (use 1 or 0)`);
}

function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined || v === '') return dflt;
  const up = v.toUpperCase().replace(/-/g, '_');
  const hit = allowed.find((a) => a.toUpperCase() === up);
  if (!hit) throw new Error(`${name}: "${v}" is not one of ${allowed.join(', ')}`);
  return hit;
}

/** Parses `s3://bucket[/prefix]`. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) throw new Error(`invalid S3 repository URL "${url}": use s3://bucket/prefix`);
  const bucket = m[1];
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new Error(`invalid S3 bucket name "${bucket}" in ${url}: 3-63 characters of a-z, 0-9, "." and "-"`);
  }
  let prefix = (m[2] ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  if (prefix.split('/').some((p) => p === '.' || p === '..')) throw new Error(`invalid S3 prefix in ${url}`);
  if (prefix) prefix += '/';
  return { bucket, prefix };
}

export function resolveS3Settings(url: string, opts: StoreOptions = {}, env: NodeJS.ProcessEnv = process.env): S3Settings {
  const { bucket, prefix } = parseS3Url(url);
  const endpoint = opts.s3Endpoint ?? (env.SNAPFILL_S3_ENDPOINT || undefined);
  if (endpoint && !/^https?:\/\//.test(endpoint)) throw new Error(`S3 endpoint "${endpoint}" must start with http:// or https://`);
  const region = opts.s3Region ?? (env.SNAPFILL_S3_REGION || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1');
  // A custom endpoint is almost always a MinIO/Ceph/other server reached by IP or one host
  // name, where virtual-host addressing cannot work: default to path style there.
  const pathStyle = opts.s3PathStyle ?? envBool(env, 'SNAPFILL_S3_PATH_STYLE') ?? Boolean(endpoint);
  const partSize = envNum(env, 'SNAPFILL_S3_PART_SIZE') ?? 8 * MiB;
  if (partSize < 5 * MiB) throw new Error('SNAPFILL_S3_PART_SIZE must be at least 5 MiB (the S3 minimum part size)');
  let lockDays = opts.objectLockDays ?? envNum(env, 'SNAPFILL_OBJECT_LOCK_DAYS') ?? 0;
  if (!Number.isInteger(lockDays) || lockDays < 0) throw new Error(`object lock days must be a whole number of days, got ${lockDays}`);
  // Test-only, undocumented: a retention period in seconds (a fraction of a day), so tests can
  // watch retention run out and extension happen against the Object Lock proxy
  // (test/support/objectlock-proxy.ts). Replaces the days above.
  const testLockSeconds = envNum(env, 'SNAPFILL_TEST_OBJECT_LOCK_SECONDS');
  if (testLockSeconds) lockDays = testLockSeconds / 86_400;
  return {
    bucket,
    prefix,
    endpoint,
    region,
    pathStyle,
    checksums: oneOf('SNAPFILL_S3_CHECKSUMS', env.SNAPFILL_S3_CHECKSUMS, ['WHEN_REQUIRED', 'WHEN_SUPPORTED'] as const, 'WHEN_REQUIRED'),
    concurrency: Math.max(1, envNum(env, 'SNAPFILL_S3_CONCURRENCY') ?? 8),
    multipartThreshold: envNum(env, 'SNAPFILL_S3_MULTIPART_THRESHOLD') ?? 16 * MiB,
    partSize,
    timeoutMs: envNum(env, 'SNAPFILL_S3_TIMEOUT_MS') ?? 60_000,
    retry: {
      attempts: Math.max(1, envNum(env, 'SNAPFILL_S3_RETRIES') ?? DEFAULT_RETRY.attempts),
      baseDelayMs: envNum(env, 'SNAPFILL_S3_RETRY_BASE_MS') ?? DEFAULT_RETRY.baseDelayMs,
      maxDelayMs: envNum(env, 'SNAPFILL_S3_RETRY_MAX_MS') ?? DEFAULT_RETRY.maxDelayMs,
    },
    objectLockDays: lockDays,
    objectLockMode: oneOf(
      'SNAPFILL_S3_OBJECT_LOCK_MODE',
      opts.objectLockMode ?? env.SNAPFILL_S3_OBJECT_LOCK_MODE,
      ['COMPLIANCE', 'GOVERNANCE'] as const,
      'COMPLIANCE',
    ),
    conditionalWrites: oneOf('SNAPFILL_S3_CONDITIONAL_WRITES', env.SNAPFILL_S3_CONDITIONAL_WRITES, ['auto', 'on', 'off'] as const, 'auto'),
  };
}
