/**
 * Checking the bytes read against the full-object checksum an S3 source
 * reports (ObjectHead.checksum): S3 has computed a CRC64NVME for every object
 * written since 2025, whatever its part layout, and keeps the one an uploader
 * chose (CRC32, CRC32C, SHA-1, SHA-256).
 *
 * Used for a source whose bytes nothing cheaper describes: an OSS CRC-64 or a
 * single-part MD5 ETag are checked as they were; a checksum comes next (no
 * extra request, and the CRCs hash at wasm speed: hash-wasm, which
 * src/storage/crc64.ts also uses, takes any reflected polynomial); the
 * multipart ETag of source-parts.ts last, or there, when that ETag is not an
 * MD5 (SSE-KMS, SSE-C), a composite checksum: the checksum of the part
 * checksums, computed with createChecksumHasher.
 *
 * CRC-64/NVME: reflected polynomial 0x9A6C9329AC4BC9B5 (0xAD93D23594C93659
 * bit-reversed), init and xor-out all ones, check("123456789") =
 * 0xAE8B14860A799888. S3 sends every checksum as base64 of the big-endian digest.
 */
import { createHash } from 'node:crypto';
import { createCRC32, createCRC64, type IHasher } from 'hash-wasm';
import type { ObjectHead, S3ChecksumAlgorithm } from '../storage/object-store.js';
import { isMd5Etag } from './compare.js';
import { IntegrityError } from './integrity-error.js';

const CRC64NVME_REFLECTED_POLY = '9a6c9329ac4bc9b5';
const CRC32_REFLECTED_POLY = 0xedb88320;
const CRC32C_REFLECTED_POLY = 0x82f63b78;

/** A running checksum of one algorithm, fed bytes in order. */
export interface SourceChecksum {
  readonly algorithm: S3ChecksumAlgorithm;
  update(piece: Uint8Array): void;
  /** Base64 of the big-endian digest, S3's form. Once. */
  digest(): string;
}

/** A digest that starts over after each one (a part's digest, then the next part's). */
export interface RestartingDigest {
  update(piece: Uint8Array): void;
  /** The raw (big-endian) digest of the bytes given since the last digest (or creation); starts over. */
  digestRaw(): Buffer;
}

/** A reusable checksum hasher: composite checksums digest part digests. */
export interface ChecksumHasher extends RestartingDigest {
  readonly algorithm: S3ChecksumAlgorithm;
}

/** A node:crypto hash as a RestartingDigest (MD5 for multipart ETags, SHA-1/SHA-256 for checksums). */
export function restartingHash(name: 'md5' | 'sha1' | 'sha256'): RestartingDigest {
  let h = createHash(name);
  return {
    update: (piece) => void h.update(piece),
    digestRaw: () => {
      const d = h.digest();
      h = createHash(name);
      return d;
    },
  };
}

export async function createChecksumHasher(algorithm: S3ChecksumAlgorithm): Promise<ChecksumHasher> {
  const wasm = async (created: Promise<IHasher>): Promise<ChecksumHasher> => {
    const h = await created;
    h.init();
    return {
      algorithm,
      update: (piece) => void h.update(piece),
      digestRaw: () => {
        const d = Buffer.from(h.digest('binary'));
        h.init();
        return d;
      },
    };
  };
  const node = (name: 'sha1' | 'sha256'): ChecksumHasher => ({ algorithm, ...restartingHash(name) });
  switch (algorithm) {
    case 'CRC64NVME':
      return wasm(createCRC64(CRC64NVME_REFLECTED_POLY));
    case 'CRC32':
      return wasm(createCRC32(CRC32_REFLECTED_POLY));
    case 'CRC32C':
      return wasm(createCRC32(CRC32C_REFLECTED_POLY));
    case 'SHA1':
      return node('sha1');
    case 'SHA256':
      return node('sha256');
  }
}

export async function createSourceChecksum(algorithm: S3ChecksumAlgorithm): Promise<SourceChecksum> {
  const h = await createChecksumHasher(algorithm);
  return { algorithm, update: (piece) => h.update(piece), digest: () => h.digestRaw().toString('base64') };
}

/** The checksum to check the source's bytes with, when one is reported and nothing cheaper describes them. */
export function checksumToVerify(head: ObjectHead): ObjectHead['checksum'] {
  if (head.crc64 !== undefined || isMd5Etag(head)) return undefined;
  return head.checksum;
}

/** Compare the checksum of the bytes read with the one the source reported. */
export function verifySourceChecksum(head: ObjectHead, computed: SourceChecksum): void {
  const reported = head.checksum;
  if (!reported || reported.algorithm !== computed.algorithm) throw new Error('verifySourceChecksum: not the reported algorithm');
  const digest = computed.digest();
  if (digest !== reported.value) {
    throw new IntegrityError('source', `bytes read have ${computed.algorithm} ${digest}, source reports ${reported.value}`);
  }
}
