/**
 * What a copy carries: the standard content headers, user metadata, the
 * storage class (mapped across clouds, or the task's override), and the
 * source fingerprint that lets later comparisons skip unchanged objects.
 *
 * A source's own bb-cse-* envelope (it is itself a client-side encrypted
 * replica) is carried only by a verbatim copy: there it is what makes the
 * copied ciphertext decryptable. A copy the task encrypts gets its own
 * envelope (copy.ts) and must never mix in a stale one.
 */
import { CSE_META } from '../crypto/envelope.js';
import type { ObjectHead, PutOptions, StorageClass } from '../storage/object-store.js';

/** User-metadata keys BucketBridge writes on every copy (lower-case, provider prefix added by the adapter). */
export const FINGERPRINT_ETAG = 'bb-source-etag';
/** CRC-64/XZ of the bytes copied: the source's own when it reports one, else ours when known before the write. */
export const FINGERPRINT_CRC64 = 'bb-source-crc64';
export const FINGERPRINT_SIZE = 'bb-source-size';

const FINGERPRINT_KEYS = new Set([FINGERPRINT_ETAG, FINGERPRINT_CRC64, FINGERPRINT_SIZE]);
const ENVELOPE_KEYS = new Set<string>(Object.values(CSE_META));

export function putOptionsFor(
  head: ObjectHead,
  options: { storageClass?: Exclude<StorageClass, 'OTHER'>; encrypting?: boolean } = {},
): PutOptions {
  const userMetadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(head.userMetadata)) {
    // Never carry a stale fingerprint from a source that is itself a replica.
    if (FINGERPRINT_KEYS.has(k)) continue;
    if (options.encrypting && (ENVELOPE_KEYS.has(k) || k.startsWith('bb-cse-'))) continue;
    userMetadata[k] = v;
  }
  userMetadata[FINGERPRINT_ETAG] = head.etag;
  userMetadata[FINGERPRINT_SIZE] = String(head.size);
  // A single PUT adds the CRC of the bytes when the source reports none (copy.ts): it is known before the write.
  if (head.crc64) userMetadata[FINGERPRINT_CRC64] = head.crc64;
  // Mapped class (OSS Standard/IA/Archive ↔ S3 STANDARD/STANDARD_IA/GLACIER) unless the task overrides it;
  // a class with no counterpart on the other cloud leaves the destination bucket's default.
  const storageClass = options.storageClass ?? (head.storageClass === 'OTHER' ? undefined : head.storageClass);
  const out: PutOptions = { userMetadata };
  if (head.contentType !== undefined) out.contentType = head.contentType;
  if (head.contentEncoding !== undefined) out.contentEncoding = head.contentEncoding;
  if (head.contentDisposition !== undefined) out.contentDisposition = head.contentDisposition;
  if (head.contentLanguage !== undefined) out.contentLanguage = head.contentLanguage;
  if (head.cacheControl !== undefined) out.cacheControl = head.cacheControl;
  if (head.expires !== undefined) out.expires = head.expires;
  if (storageClass !== undefined) out.storageClass = storageClass;
  return out;
}
