/**
 * The equality rule (task option `compare`).
 *
 * `checksum` (the default) needs the same size and then either
 *  - the source fingerprint BucketBridge stored in the destination's metadata
 *    when it copied (source ETag, and the CRC-64 of the bytes when known)
 *    equals the source's current one, or
 *  - the contents provably match: OSS CRC-64 on both sides, single-part
 *    (MD5) ETags on both sides, or S3 full-object checksums of one algorithm
 *    on both sides (S3 gives every object written since 2025 a CRC64NVME,
 *    whatever its part layout: two S3 buckets' copies compare without a
 *    fingerprint even when their multipart ETags differ).
 * Content evidence always wins: when both sides carry a CRC-64, an MD5 ETag or
 * a checksum of one algorithm and those differ, the objects differ whatever
 * the fingerprint says (a destination altered after we copied it). A multipart ETag is never
 * compared across clouds: its value depends on the part layout.
 *
 * Client-side envelope encryption (bb-cse, src/crypto/envelope.ts) changes
 * what a replica must look like before its content is looked at at all:
 *  - a task with clientSideEncryption wants a bb-cse replica under ITS public
 *    key (bb-cse-key-id): a plaintext replica, or one encrypted for another
 *    key (the key was rotated), differs and is copied again, encrypted;
 *  - a task without it wants the source's bytes as they are: a bb-cse replica
 *    of a plaintext source differs (the task's encryption was switched off),
 *    and a verbatim copy of a bb-cse source must carry that same envelope.
 * On a replica the task encrypted, the destination's CRC-64 and MD5 ETag are
 * of the ciphertext, which no source digest can match: only the stored
 * source fingerprint decides (ETag, and CRC-64 / size when recorded).
 */
import { CSE_META, isEnvelopeEncrypted } from '../crypto/envelope.js';
import type { CompareMode } from '../config/types.js';
import type { ObjectHead } from '../storage/object-store.js';
import { FINGERPRINT_CRC64, FINGERPRINT_ETAG, FINGERPRINT_SIZE } from './metadata.js';

const MD5_HEX = /^[0-9a-f]{32}$/i;

export function isMd5Etag(head: Pick<ObjectHead, 'etag' | 'multipartEtag'>): boolean {
  return !head.multipartEtag && MD5_HEX.test(head.etag);
}

function sameHex(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

export type Equality = { equal: true; by: string } | { equal: false; reason: string };

/** What the task wants a replica to be, beyond its content. */
export interface ReplicaExpectation {
  /**
   * The task encrypts replicas client-side for the public key with this
   * fingerprint (keyFingerprint: hex SHA-256 of its SPKI). Absent: the replica
   * holds the source's bytes as they are.
   */
  cseKeyId?: string;
}

/** True when `head` carries a bb-cse envelope in its user metadata. */
export function isEncryptedReplica(head: Pick<ObjectHead, 'userMetadata'>): boolean {
  return isEnvelopeEncrypted(head.userMetadata);
}

/** Why the destination's encryption state is not what the task wants, or undefined when it is. */
function envelopeMismatch(source: ObjectHead, destination: ObjectHead, expect: ReplicaExpectation): string | undefined {
  const dst = destination.userMetadata;
  if (expect.cseKeyId !== undefined) {
    if (!isEnvelopeEncrypted(dst)) return 'replica is not client-side encrypted';
    const keyId = dst[CSE_META.keyId];
    if (keyId === undefined || !sameHex(keyId, expect.cseKeyId)) return 'replica is encrypted for another public key';
    return undefined;
  }
  const src = source.userMetadata;
  const srcEncrypted = isEnvelopeEncrypted(src);
  if (!isEnvelopeEncrypted(dst)) return srcEncrypted ? "replica lacks the source's envelope metadata" : undefined;
  if (!srcEncrypted) return 'replica is client-side encrypted; the task copies plaintext';
  // A verbatim copy of an encrypted source: the wrapped data key and counter block must be the source's.
  if (src[CSE_META.key] !== dst[CSE_META.key] || src[CSE_META.iv] !== dst[CSE_META.iv]) return "replica's envelope is not the source's";
  return undefined;
}

/** A replica the task encrypted: its digests are of ciphertext, so only the stored source fingerprint can say "equal". */
function compareEncrypted(source: ObjectHead, destination: ObjectHead): Equality {
  const meta = destination.userMetadata;
  const storedEtag = meta[FINGERPRINT_ETAG];
  if (storedEtag === undefined) return { equal: false, reason: 'encrypted replica has no source fingerprint' };
  if (!sameHex(storedEtag, source.etag)) return { equal: false, reason: 'source changed since last copy' };
  const storedSize = meta[FINGERPRINT_SIZE] ?? meta[CSE_META.plaintextSize];
  if (storedSize !== undefined && storedSize !== String(source.size)) return { equal: false, reason: 'source changed since last copy' };
  const storedCrc = meta[FINGERPRINT_CRC64] ?? meta[CSE_META.plaintextCrc64];
  if (storedCrc !== undefined && source.crc64 !== undefined && storedCrc !== source.crc64) {
    return { equal: false, reason: 'crc64 of the source differs from the one encrypted' };
  }
  return { equal: true, by: 'fingerprint (encrypted replica)' };
}

export function compareObjects(source: ObjectHead, destination: ObjectHead, mode: CompareMode, expect: ReplicaExpectation = {}): Equality {
  if (mode === 'none') return { equal: false, reason: 'compare is none' };
  if (source.size !== destination.size) return { equal: false, reason: 'size differs' };
  // Checked in every mode: a replica stored unencrypted when encryption is asked for is never "in sync".
  const mismatch = envelopeMismatch(source, destination, expect);
  if (mismatch !== undefined) return { equal: false, reason: mismatch };
  if (mode === 'size') return { equal: true, by: 'size' };
  if (expect.cseKeyId !== undefined) return compareEncrypted(source, destination);

  const crcBoth = source.crc64 !== undefined && destination.crc64 !== undefined;
  if (crcBoth && source.crc64 !== destination.crc64) return { equal: false, reason: 'crc64 differs' };
  const md5Both = isMd5Etag(source) && isMd5Etag(destination);
  if (md5Both && !sameHex(source.etag, destination.etag)) return { equal: false, reason: 'md5 differs' };
  const checksum = source.checksum?.algorithm === destination.checksum?.algorithm ? source.checksum : undefined;
  if (checksum && checksum.value !== destination.checksum!.value) return { equal: false, reason: `${checksum.algorithm} checksum differs` };

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
  if (checksum) return { equal: true, by: `${checksum.algorithm} checksum` };
  return { equal: false, reason: storedEtag !== undefined ? 'source changed since last copy' : 'no comparable checksum' };
}
