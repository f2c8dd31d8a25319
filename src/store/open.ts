import { LocalStore } from './local.js';
import type { ObjectStore } from './store.js';
import type { RetryListener } from './retry.js';
import { OptionError } from '../util/errors.js';

export interface StoreOptions {
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  objectLockDays?: number;
  objectLockMode?: 'COMPLIANCE' | 'GOVERNANCE';
  /** Told of every retried request (S3); the store itself prints nothing. */
  onRetry?: RetryListener;
}

/** Opens the store a repository URL names: a directory path, or `s3://bucket/prefix`. */
export async function openStore(url: string, opts: StoreOptions = {}): Promise<ObjectStore> {
  if (url.startsWith('s3://')) {
    let mod: { S3Store: { fromUrl(url: string, opts: StoreOptions): ObjectStore } };
    try {
      const s3Module = './s3.js'; // loaded on demand: local users never pay for the AWS SDK
      mod = await import(s3Module);
    } catch (e) {
      throw new Error(`S3 repositories are not available in this build: ${(e as Error).message}`, { cause: e });
    }
    return mod.S3Store.fromUrl(url, opts);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url))
    throw new Error(`unsupported repository URL scheme: ${url} (use a directory path or s3://bucket/prefix)`);
  // Asking for immutability where it cannot be had must not pass silently. SNAPFILL_OBJECT_LOCK_DAYS
  // is an operator setting (docs/S3.md), read from the environment like the other S3 settings
  // (src/store/s3config.ts); here it only has to be refused.
  if (opts.objectLockDays || Number(process.env.SNAPFILL_OBJECT_LOCK_DAYS)) {
    throw new OptionError(
      (n) =>
        `${n('objectLockDays')} / SNAPFILL_OBJECT_LOCK_DAYS needs an S3 repository (with Object Lock enabled); ${url} is a local directory`,
    );
  }
  return new LocalStore(url);
}
