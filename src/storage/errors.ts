/**
 * One error type for every storage failure, so replication decides retry or
 * fail-fast in one place instead of parsing SDK errors.
 */
export type StorageErrorCode =
  | 'NoSuchKey'
  | 'NoSuchBucket'
  | 'NoSuchUpload'
  | 'AccessDenied'
  | 'SignatureDoesNotMatch'
  | 'InvalidAccessKeyId'
  | 'PreconditionFailed'
  | 'InvalidObjectState'
  | 'BadDigest'
  | 'InvalidRequest'
  | 'SlowDown'
  | 'ServerError'
  | 'NetworkError'
  | 'Timeout'
  | 'IntegrityMismatch'
  /** The object is encrypted with a customer-provided key (SSE-C) and no (or no matching) key was given. */
  | 'SseCustomerKeyRequired'
  | 'Unknown';

const RETRYABLE: ReadonlySet<StorageErrorCode> = new Set([
  'SlowDown',
  'ServerError',
  'NetworkError',
  'Timeout',
  'BadDigest',
  'IntegrityMismatch',
  'PreconditionFailed',
]);

export class StorageError extends Error {
  override readonly name = 'StorageError';
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    /** HTTP status the server answered, when there was an answer. */
    readonly status?: number,
    /** Provider's own error code, kept for the operator. */
    readonly providerCode?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Transient failures are retried with backoff; everything else fails at once. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code) || (this.code === 'Unknown' && (this.status === undefined || this.status >= 500));
  }
}

/** Classify an HTTP status (and provider code) into our error codes. */
export function codeFromStatus(status: number | undefined, providerCode?: string): StorageErrorCode {
  switch (providerCode) {
    case 'NoSuchKey':
    case 'NoSuchBucket':
    case 'NoSuchUpload':
    case 'AccessDenied':
    case 'SignatureDoesNotMatch':
    case 'InvalidAccessKeyId':
    case 'PreconditionFailed':
    case 'InvalidObjectState':
    case 'BadDigest':
    case 'SlowDown':
      return providerCode;
    case 'NotFound':
      return 'NoSuchKey';
    case 'Forbidden':
      return 'AccessDenied';
    case 'InvalidDigest':
    case 'InvalidPartContent':
    // The signed payload hash is not the body's: bytes damaged on the way, as for Content-MD5.
    case 'XAmzContentSHA256Mismatch':
      return 'BadDigest';
    case 'Throttling':
    case 'ThrottlingException':
    case 'RequestTimeTooSkewed':
      return 'SlowDown';
    case 'RequestTimeout':
    case 'ResponseTimeout':
    case 'ConnectionTimeoutError':
    case 'TimeoutError':
      return 'Timeout';
    case 'InternalError':
    case 'ServiceUnavailable':
      return 'ServerError';
    case 'ECONNRESET':
    case 'ECONNREFUSED':
    case 'EPIPE':
    case 'ETIMEDOUT':
    case 'RequestError':
    case 'ResponseError':
      return 'NetworkError';
    default:
      break;
  }
  if (status === undefined) return 'NetworkError';
  if (status === 404) return 'NoSuchKey';
  if (status === 403) return 'AccessDenied';
  if (status === 412) return 'PreconditionFailed';
  if (status === 429 || status === 503) return 'SlowDown';
  if (status >= 500) return 'ServerError';
  if (status >= 400) return 'InvalidRequest';
  return 'Unknown';
}

/**
 * An entry of a listing asked for with `prefix` must name a key under it. One
 * that does not was damaged on the way (a flipped byte in its key): refuse the
 * whole answer, which cannot be trusted to hold what the server sent, rather
 * than quietly skip the entry as "another key" (for ListMultipartUploads that
 * would hide an upload left open: src/queue/upload-intents.ts). Retryable.
 */
export function checkListedKey(listed: string | undefined, prefix: string, what: string): void {
  if (listed !== undefined && !listed.startsWith(prefix)) {
    throw new StorageError('IntegrityMismatch', `${what}: the answer lists ${JSON.stringify(listed)}, not under the prefix asked for; it was damaged in transit`);
  }
}
