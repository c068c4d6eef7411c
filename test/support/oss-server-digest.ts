/**
 * The checksums OSS reports: MD5-based ETags and `x-oss-hash-crc64ecma`.
 */
import { createHash } from 'node:crypto';

import { createCRC64, type IHasher } from 'hash-wasm';

/**
 * OSS's "CRC-64/ECMA" is the catalogue's CRC-64/XZ: reflected polynomial
 * 0x42F0E1EBA9EA3693, init and xor-out all ones, check value
 * 0x995DC9BBDF1939FA for "123456789". hash-wasm's default polynomial
 * (c96c5795d7870f42, the bit-reversed form of 0x42F0E1EBA9EA3693) with its
 * fixed all-ones init/xor-out is exactly that, so no parameters are passed.
 */
let crcHasher: Promise<IHasher> | undefined;

/** Computes the CRC over `chunks` in order, as OSS's unsigned decimal string. */
export type Crc64Function = (chunks: readonly Uint8Array[]) => string;

/**
 * Loads the WASM hasher once. The returned function is synchronous, so one
 * shared hasher is safe: init/update/digest can never interleave between
 * requests on Node's single thread.
 */
export async function loadCrc64(): Promise<Crc64Function> {
  crcHasher ??= createCRC64();
  const hasher = await crcHasher;
  return (chunks) => {
    hasher.init();
    for (const chunk of chunks) hasher.update(chunk);
    return BigInt(`0x${hasher.digest('hex')}`).toString(10);
  };
}

export function md5(chunks: readonly Uint8Array[]): Buffer {
  const hash = createHash('md5');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest();
}

/** OSS ETag of a simple upload: upper-case hex MD5 of the bytes (unquoted here; quoted on the wire). */
export function simpleEtag(contentMd5: Buffer): string {
  return contentMd5.toString('hex').toUpperCase();
}

/** OSS ETag of a completed multipart upload: MD5 of the concatenated binary part MD5s, then `-N`. */
export function multipartEtag(partMd5s: readonly Buffer[]): string {
  return `${md5(partMd5s).toString('hex').toUpperCase()}-${partMd5s.length}`;
}

/** `"ETAG"` as sent in headers and XML. */
export function quoteEtag(etag: string): string {
  return `"${etag}"`;
}

/** Strips quotes and a weak-validator prefix so client-supplied ETags compare against stored ones. */
export function normalizeEtag(raw: string): string {
  return raw
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1')
    .toUpperCase();
}
