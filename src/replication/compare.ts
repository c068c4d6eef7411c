/**
 * The equality rule (task option `compare`).
 *
 * `checksum` (the default) needs the same size and then either
 *  - the source fingerprint BucketBridge stored in the destination's metadata
 *    when it copied (source ETag, and the CRC-64 of the bytes when known)
 *    equals the source's current one, or
 *  - the contents provably match: OSS CRC-64 on both sides, or single-part
 *    (MD5) ETags on both sides.
 * Content evidence always wins: when both sides carry a CRC-64 or both carry
 * an MD5 ETag and those differ, the objects differ whatever the fingerprint
 * says (a destination altered after we copied it). A multipart ETag is never
 * compared across clouds: its value depends on the part layout.
 */
import type { CompareMode } from '../config/types.js';
import type { ObjectHead } from '../storage/object-store.js';
import { FINGERPRINT_CRC64, FINGERPRINT_ETAG } from './metadata.js';

const MD5_HEX = /^[0-9a-f]{32}$/i;

export function isMd5Etag(head: Pick<ObjectHead, 'etag' | 'multipartEtag'>): boolean {
  return !head.multipartEtag && MD5_HEX.test(head.etag);
}

function sameHex(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export type Equality = { equal: true; by: string } | { equal: false; reason: string };

export function compareObjects(source: ObjectHead, destination: ObjectHead, mode: CompareMode): Equality {
  if (mode === 'none') return { equal: false, reason: 'compare is none' };
  if (source.size !== destination.size) return { equal: false, reason: 'size differs' };
  if (mode === 'size') return { equal: true, by: 'size' };

  const crcBoth = source.crc64 !== undefined && destination.crc64 !== undefined;
  if (crcBoth && source.crc64 !== destination.crc64) return { equal: false, reason: 'crc64 differs' };
  const md5Both = isMd5Etag(source) && isMd5Etag(destination);
  if (md5Both && !sameHex(source.etag, destination.etag)) return { equal: false, reason: 'md5 differs' };

  const storedEtag = destination.userMetadata[FINGERPRINT_ETAG];
  if (storedEtag !== undefined && sameHex(storedEtag, source.etag)) {
    const storedCrc = destination.userMetadata[FINGERPRINT_CRC64];
    // The stored CRC is the CRC of the bytes copied: it must agree with the source's and the destination's own.
    const crcAgrees =
      storedCrc === undefined ||
      ((source.crc64 === undefined || storedCrc === source.crc64) && (destination.crc64 === undefined || storedCrc === destination.crc64));
    if (crcAgrees) return { equal: true, by: 'fingerprint' };
  }
  if (crcBoth) return { equal: true, by: 'crc64' };
  if (md5Both) return { equal: true, by: 'md5' };
  return { equal: false, reason: storedEtag !== undefined ? 'source changed since last copy' : 'no comparable checksum' };
}
