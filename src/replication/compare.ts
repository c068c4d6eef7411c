/**
 * The equality rule (task option `compare`). `checksum` trusts, in order: the
 * fingerprint BucketBridge stored on the destination when it copied, OSS CRC-64
 * on both sides, then single-part (MD5) ETags on both sides. A multipart ETag
 * is never compared across clouds: its value depends on the part layout.
 */
import type { CompareMode } from '../config/types.js';
import type { ObjectHead } from '../storage/object-store.js';
import { FINGERPRINT_CRC64, FINGERPRINT_ETAG } from './metadata.js';

const MD5_HEX = /^[0-9a-f]{32}$/i;

export function isMd5Etag(head: Pick<ObjectHead, 'etag' | 'multipartEtag'>): boolean {
  return !head.multipartEtag && MD5_HEX.test(head.etag);
}

export type Equality = { equal: true; by: string } | { equal: false; reason: string };

export function compareObjects(source: ObjectHead, destination: ObjectHead, mode: CompareMode): Equality {
  if (mode === 'none') return { equal: false, reason: 'compare is none' };
  if (source.size !== destination.size) return { equal: false, reason: 'size differs' };
  if (mode === 'size') return { equal: true, by: 'size' };
  const storedEtag = destination.userMetadata[FINGERPRINT_ETAG];
  if (storedEtag !== undefined) {
    const storedCrc = destination.userMetadata[FINGERPRINT_CRC64];
    if (storedEtag.toLowerCase() === source.etag.toLowerCase() && (!storedCrc || !source.crc64 || storedCrc === source.crc64)) {
      return { equal: true, by: 'fingerprint' };
    }
    // A fingerprint that no longer matches means the source changed since we copied.
    return { equal: false, reason: 'source changed since last copy' };
  }
  if (source.crc64 && destination.crc64) {
    return source.crc64 === destination.crc64 ? { equal: true, by: 'crc64' } : { equal: false, reason: 'crc64 differs' };
  }
  if (isMd5Etag(source) && isMd5Etag(destination)) {
    return source.etag.toLowerCase() === destination.etag.toLowerCase()
      ? { equal: true, by: 'md5' }
      : { equal: false, reason: 'md5 differs' };
  }
  return { equal: false, reason: 'no comparable checksum' };
}
