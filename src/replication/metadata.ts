/**
 * What a copy carries: the standard content headers, user metadata, the
 * storage class (mapped across clouds, or the task's override), and the
 * source fingerprint that lets later comparisons skip unchanged objects.
 */
import type { ObjectHead, PutOptions, StorageClass } from '../storage/object-store.js';

/** User-metadata keys BucketBridge writes on every copy (lower-case, provider prefix added by the adapter). */
export const FINGERPRINT_ETAG = 'bb-source-etag';
export const FINGERPRINT_CRC64 = 'bb-source-crc64';
export const FINGERPRINT_SIZE = 'bb-source-size';

export function putOptionsFor(
  head: ObjectHead,
  options: { storageClass?: Exclude<StorageClass, 'OTHER'> } = {},
): PutOptions {
  const userMetadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(head.userMetadata)) {
    // Never carry a stale fingerprint from a source that is itself a replica.
    if (k !== FINGERPRINT_ETAG && k !== FINGERPRINT_CRC64 && k !== FINGERPRINT_SIZE) userMetadata[k] = v;
  }
  userMetadata[FINGERPRINT_ETAG] = head.etag;
  userMetadata[FINGERPRINT_SIZE] = String(head.size);
  if (head.crc64) userMetadata[FINGERPRINT_CRC64] = head.crc64;
  // An archived source is restored to be read; the copy keeps its class unless overridden.
  const storageClass = options.storageClass ?? (head.storageClass === 'OTHER' ? undefined : head.storageClass);
  return {
    contentType: head.contentType,
    contentEncoding: head.contentEncoding,
    contentDisposition: head.contentDisposition,
    contentLanguage: head.contentLanguage,
    cacheControl: head.cacheControl,
    expires: head.expires,
    userMetadata,
    storageClass: storageClass === 'STANDARD' ? undefined : storageClass,
  };
}
