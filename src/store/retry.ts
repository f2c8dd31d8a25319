/**
 * Retries for object-store requests: exponential backoff with full jitter.
 *
 * Why our own loop instead of the AWS SDK's: the SDK retries only until it has response
 * headers, so a connection dropped while the body of a GET streams in is never retried by it;
 * its retry quota (a token bucket shared by the client) also stops retrying altogether after a
 * burst of failures, which is exactly when a long restore needs retries most. Here one attempt
 * is the whole request including reading the body, and the SDK's own retries are turned off.
 */
export interface RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number;
  /** Backoff base: attempt n waits a random time in [0, min(maxDelayMs, baseDelayMs * 2^n)). */
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 10, baseDelayMs: 250, maxDelayMs: 20_000 };

/** A body that ended before its Content-Length, or stalled: the transfer failed, try again. */
export class TransferError extends Error {
  readonly retryable = true;
  constructor(
    message: string,
    readonly code = 'ETRUNCATED',
  ) {
    super(message);
    this.name = 'TransferError';
  }
}

const RETRYABLE_NAMES = new Set([
  // throttling (the SDK's list plus S3's own)
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'ProvisionedThroughputExceededException',
  'PriorRequestNotComplete',
  'LimitExceededException',
  // transient server-side and timeouts
  'InternalError',
  'ServiceUnavailable',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'OperationAborted',
  // the client's clock was corrected from the server's answer: the next attempt is signed right
  'RequestTimeTooSkewed',
  'RequestExpired',
]);

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
  'ETRUNCATED',
  'ESTALLED',
  'ERR_HTTP2_STREAM_ERROR',
]);

/** Whether an error from one attempt is worth another attempt. */
export function isRetryable(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 5) return false;
  const e = err as {
    name?: string;
    code?: string;
    message?: string;
    retryable?: boolean;
    cause?: unknown;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
    $response?: { statusCode?: number };
  };
  if (e.name === 'AbortError') return false;
  if (e.retryable === true || e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return true;
  if (e.name && RETRYABLE_NAMES.has(e.name)) return true;
  if (e.code && RETRYABLE_CODES.has(e.code)) return true;
  // Node reports some dropped connections only by message.
  if (
    typeof e.message === 'string' &&
    /socket hang up|aborted|premature close|other side closed|EPIPE|ECONNRESET/i.test(e.message) &&
    (status === undefined || status < 400 || status >= 500)
  )
    return true;
  return isRetryable(e.cause, depth + 1);
}

export function backoffDelay(policy: RetryPolicy, attempt: number, random = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.floor(random() * ceiling);
}

export interface RetryEvent {
  what: string;
  /** The attempt that failed (1-based); the next one is attempt + 1. */
  attempt: number;
  /** Attempts the policy allows in all. */
  attempts: number;
  delayMs: number;
  error: Error;
}

/**
 * What a program passes to see retries (the CLI prints them; a store never prints by itself):
 * a long restore over a flaky link should say it is retrying, not look hung.
 */
export type RetryListener = (ev: RetryEvent) => void;

/**
 * Runs `fn` until it succeeds, fails with a non-retryable error, or runs out of attempts.
 * `fn` gets the attempt number (1-based) so an operation can tell a first try from a retry
 * (e.g. a conditional put whose first answer was lost).
 */
export async function withRetry<T>(
  what: string,
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  onRetry?: RetryListener,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.attempts || !isRetryable(err)) {
        if (attempt > 1 && err instanceof Error && !err.message.includes('attempts')) {
          err.message = `${what}: ${err.message} (after ${attempt} attempts)`;
        }
        throw err;
      }
      const delayMs = backoffDelay(policy, attempt - 1);
      onRetry?.({ what, attempt, attempts: policy.attempts, delayMs, error: err as Error });
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}
