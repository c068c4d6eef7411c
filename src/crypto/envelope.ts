/**
 * Client-side envelope encryption of replicas ("bb-cse", format version 1).
 *
 * Each object gets a fresh random 256-bit data key and a fresh random 128-bit
 * initial counter block; the bytes are encrypted with AES-256-CTR, and the data
 * key is wrapped with the task's RSA public key (RSA-OAEP) and stored, with
 * everything else needed to decrypt, in the object's user metadata. This is the
 * scheme of Alibaba Cloud's OSS client-side encryption guide (AES-256-CTR data,
 * RSA-wrapped data key in `x-oss-meta-*`), with OAEP-SHA-256 wrapping.
 *
 * Why CTR and not GCM:
 *  - the ciphertext is exactly as long as the plaintext, so sizes, part
 *    layouts and the size check of the comparison rule are unchanged;
 *  - any byte range can be encrypted on its own: the part that starts at
 *    offset `o` uses counter block IV + floor(o / 16) and skips o mod 16
 *    keystream bytes, so multipart parts are encrypted independently, in
 *    parallel, and a retried part yields the same bytes;
 *  - GCM would need a tag per part (ciphertext longer than plaintext, every
 *    size comparison and range computation shifted) or one tag over the whole
 *    object, computed only after the last part, when S3/OSS metadata is
 *    already fixed (it is set at CreateMultipartUpload).
 * What CTR does not give is authentication. Here it could not mean much
 * anyway: the wrapping key is public, so anyone who may write the bucket can
 * encrypt a substitute object for it. Integrity is checked on decryption
 * against the plaintext digests recorded at write time (`bb-cse-plaintext-crc64`
 * / `-md5`, whichever the copy knew when it wrote the metadata), and the
 * store's own CRC-64/MD5 cover the ciphertext. The source fingerprint
 * (`bb-source-*`) is deliberately NOT a fallback check: when an encrypted
 * replica is itself replicated verbatim, the copy's fingerprint describes the
 * ciphertext it was copied from, not the plaintext.
 *
 * Metadata (user metadata names, lower case; x-amz-meta- / x-oss-meta- added by the adapter):
 *   bb-cse-alg              "AES-256-CTR"
 *   bb-cse-wrap-alg         "RSA-OAEP-SHA256" (OAEP, SHA-256 hash and MGF1-SHA-256, no label)
 *   bb-cse-key              base64 of RSA-OAEP(publicKey, dataKey[32])
 *   bb-cse-iv               base64 of the 16-byte initial counter block (big-endian, +1 per 16-byte block, mod 2^128)
 *   bb-cse-key-id           hex SHA-256 of the public key's DER SubjectPublicKeyInfo (names the key pair)
 *   bb-cse-plaintext-size   decimal byte count (= ciphertext size)
 *   bb-cse-plaintext-crc64  optional: CRC-64/XZ of the plaintext, unsigned decimal
 *   bb-cse-plaintext-md5    optional: MD5 of the plaintext, lower-case hex
 * The source fingerprint (`bb-source-etag`, `bb-source-crc64`, `bb-source-size`)
 * is written as for any replica: scans compare it with the source as before.
 *
 * Decrypting without BucketBridge (OpenSSL 1.1+/3):
 *   base64 -d <<<"$BB_CSE_KEY" | openssl pkeyutl -decrypt -inkey private.pem \
 *     -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256 | xxd -p -c64
 *   openssl enc -d -aes-256-ctr -K <that hex> -iv <hex of bb-cse-iv> -in object.bin -out plain.bin
 */
import {
  constants,
  createCipheriv,
  createHash,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type Cipher,
  type KeyObject,
} from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Crc64 } from '../storage/crc64.js';
import { keyFingerprint } from './keys.js';

export const CSE_ALGORITHM = 'AES-256-CTR';
export const CSE_WRAP_ALGORITHM = 'RSA-OAEP-SHA256';

/** User-metadata names of the format (lower case). */
export const CSE_META = {
  alg: 'bb-cse-alg',
  wrapAlg: 'bb-cse-wrap-alg',
  key: 'bb-cse-key',
  iv: 'bb-cse-iv',
  keyId: 'bb-cse-key-id',
  plaintextSize: 'bb-cse-plaintext-size',
  plaintextCrc64: 'bb-cse-plaintext-crc64',
  plaintextMd5: 'bb-cse-plaintext-md5',
} as const;

const KEY_BYTES = 32;
const BLOCK = 16;
const COUNTER_MOD = 1n << 128n;

export type EnvelopeErrorCode = 'NOT_ENCRYPTED' | 'UNSUPPORTED' | 'MALFORMED' | 'WRONG_KEY' | 'INTEGRITY';

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  constructor(
    readonly code: EnvelopeErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** The per-object secret: data key and initial counter block. */
export interface DataKey {
  key: Buffer;
  iv: Buffer;
}

export function newDataKey(): DataKey {
  return { key: randomBytes(KEY_BYTES), iv: randomBytes(BLOCK) };
}

/** What is known about the plaintext when the metadata is written. */
export interface PlaintextInfo {
  size: number;
  crc64?: string;
  md5Hex?: string;
}

const OAEP = { padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' } as const;

/** The bb-cse-* user metadata for an object encrypted with `dataKey` for `publicKey`. */
export function envelopeMetadata(dataKey: DataKey, publicKey: KeyObject, plaintext: PlaintextInfo): Record<string, string> {
  const wrapped = publicEncrypt({ key: publicKey, ...OAEP }, dataKey.key);
  const meta: Record<string, string> = {
    [CSE_META.alg]: CSE_ALGORITHM,
    [CSE_META.wrapAlg]: CSE_WRAP_ALGORITHM,
    [CSE_META.key]: wrapped.toString('base64'),
    [CSE_META.iv]: dataKey.iv.toString('base64'),
    [CSE_META.keyId]: keyFingerprint(publicKey),
    [CSE_META.plaintextSize]: String(plaintext.size),
  };
  if (plaintext.crc64 !== undefined) meta[CSE_META.plaintextCrc64] = plaintext.crc64;
  if (plaintext.md5Hex !== undefined) meta[CSE_META.plaintextMd5] = plaintext.md5Hex.toLowerCase();
  return meta;
}

/** The counter block for the 16-byte block that holds byte `offset`, and how far into that block `offset` is. */
export function counterAt(iv: Buffer, offset: number): { counter: Buffer; skip: number } {
  if (iv.length !== BLOCK) throw new EnvelopeError('MALFORMED', `the initial counter block must be ${BLOCK} bytes, got ${iv.length}`);
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`invalid offset ${offset}`);
  const value = (BigInt(`0x${iv.toString('hex')}`) + BigInt(Math.floor(offset / BLOCK))) % COUNTER_MOD;
  return { counter: Buffer.from(value.toString(16).padStart(BLOCK * 2, '0'), 'hex'), skip: offset % BLOCK };
}

/** An AES-256-CTR keystream positioned at byte `offset` of the object (encrypts and decrypts alike). */
function cipherAt(dataKey: DataKey, offset: number): Cipher {
  if (dataKey.key.length !== KEY_BYTES) throw new EnvelopeError('MALFORMED', `the data key must be ${KEY_BYTES} bytes`);
  const { counter, skip } = counterAt(dataKey.iv, offset);
  const cipher = createCipheriv('aes-256-ctr', dataKey.key, counter);
  if (skip > 0) cipher.update(Buffer.alloc(skip));
  return cipher;
}

/**
 * Encrypt (or decrypt: CTR is its own inverse) `data`, which sits at byte
 * `offset` of the object. For one buffered upload unit (a small object or a part).
 */
export function cryptAt(dataKey: DataKey, offset: number, data: Buffer): Buffer {
  const cipher = cipherAt(dataKey, offset);
  const out = cipher.update(data);
  const tail = cipher.final();
  return tail.length === 0 ? out : Buffer.concat([out, tail]);
}

/** The digests of an encrypted upload unit, as its destination will see it. */
export interface CipherDigests {
  md5: Buffer;
  crc64: string;
}

const SLICE = 64 * 1024;

/**
 * Encrypt `buf` (which sits at byte `offset` of the object) IN PLACE, hashing
 * the ciphertext (MD5 + CRC-64) in the same pass: an upload unit costs no
 * second buffer, and the caller gets the Content-MD5 and the CRC the
 * destination must report. Hash the plaintext before calling this.
 */
export async function encryptInPlace(dataKey: DataKey, offset: number, buf: Buffer): Promise<CipherDigests> {
  const cipher = cipherAt(dataKey, offset);
  const md5 = createHash('md5');
  const crc = await Crc64.create();
  for (let at = 0; at < buf.length; at += SLICE) {
    const slice = buf.subarray(at, Math.min(buf.length, at + SLICE));
    const out = cipher.update(slice);
    out.copy(slice);
    md5.update(slice);
    crc.update(slice);
  }
  cipher.final();
  return { md5: md5.digest(), crc64: crc.digest() };
}

/** A streaming AES-256-CTR transform starting at byte `offset`; memory is one chunk. */
export function cryptStream(dataKey: DataKey, offset = 0): Transform {
  const cipher = cipherAt(dataKey, offset);
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      done(null, cipher.update(chunk));
    },
    flush(done: TransformCallback) {
      const tail = cipher.final();
      done(null, tail.length > 0 ? tail : undefined);
    },
  });
}

/** True when the user metadata describes a bb-cse object. */
export function isEnvelopeEncrypted(meta: Record<string, string>): boolean {
  return meta[CSE_META.alg] !== undefined || meta[CSE_META.key] !== undefined;
}

/** What opening an envelope yields: the data key and what to check the plaintext against. */
export interface OpenedEnvelope {
  dataKey: DataKey;
  keyId?: string;
  plaintextSize: number;
  /** Expected CRC-64/XZ of the plaintext and where it came from. */
  crc64?: { value: string; from: string };
  /** Expected MD5 (hex) of the plaintext and where it came from. */
  md5?: { value: string; from: string };
}

function lower(meta: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(meta).map(([k, v]) => [k.toLowerCase(), v]));
}

function base64Field(meta: Record<string, string>, name: string): Buffer {
  const v = meta[name];
  if (v === undefined) throw new EnvelopeError('MALFORMED', `metadata ${name} is missing`);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(v.trim())) throw new EnvelopeError('MALFORMED', `metadata ${name} is not base64`);
  return Buffer.from(v.trim(), 'base64');
}

/**
 * Unwrap the data key of an object from its user metadata (names with or
 * without the x-amz-meta- / x-oss-meta- prefix are accepted, any case).
 */
export function openEnvelope(metadata: Record<string, string>, privateKey: KeyObject): OpenedEnvelope {
  const meta = lower(metadata);
  for (const prefix of ['x-amz-meta-', 'x-oss-meta-']) {
    for (const [k, v] of Object.entries(meta)) if (k.startsWith(prefix)) meta[k.slice(prefix.length)] ??= v;
  }
  if (!isEnvelopeEncrypted(meta)) {
    throw new EnvelopeError('NOT_ENCRYPTED', 'the object has no bb-cse-* metadata: it was not written with client-side encryption');
  }
  const alg = meta[CSE_META.alg];
  if (alg !== CSE_ALGORITHM) throw new EnvelopeError('UNSUPPORTED', `unsupported content algorithm ${JSON.stringify(alg)} (this version reads ${CSE_ALGORITHM})`);
  const wrapAlg = meta[CSE_META.wrapAlg];
  if (wrapAlg !== CSE_WRAP_ALGORITHM) {
    throw new EnvelopeError('UNSUPPORTED', `unsupported key wrapping ${JSON.stringify(wrapAlg)} (this version reads ${CSE_WRAP_ALGORITHM})`);
  }
  const keyId = meta[CSE_META.keyId];
  const mine = keyFingerprint(privateKey);
  if (keyId !== undefined && keyId.toLowerCase() !== mine) {
    throw new EnvelopeError(
      'WRONG_KEY',
      `the object was encrypted for key ${keyId.slice(0, 16)}…, but the private key given is ${mine.slice(0, 16)}… (bb-cse-key-id: SHA-256 of the public key)`,
    );
  }
  const wrapped = base64Field(meta, CSE_META.key);
  const iv = base64Field(meta, CSE_META.iv);
  if (iv.length !== BLOCK) throw new EnvelopeError('MALFORMED', `metadata ${CSE_META.iv} must hold ${BLOCK} bytes, holds ${iv.length}`);
  let key: Buffer;
  try {
    key = privateDecrypt({ key: privateKey, ...OAEP }, wrapped);
  } catch {
    throw new EnvelopeError('WRONG_KEY', 'RSA-OAEP unwrapping of the data key failed: this is not the private key the object was encrypted for, or bb-cse-key is damaged');
  }
  if (key.length !== KEY_BYTES) throw new EnvelopeError('MALFORMED', `the unwrapped data key is ${key.length} bytes, expected ${KEY_BYTES}`);
  const sizeText = meta[CSE_META.plaintextSize];
  if (sizeText === undefined || !/^\d+$/.test(sizeText)) throw new EnvelopeError('MALFORMED', `metadata ${CSE_META.plaintextSize} is missing or not a number`);
  const opened: OpenedEnvelope = { dataKey: { key, iv }, plaintextSize: Number(sizeText) };
  if (keyId !== undefined) opened.keyId = keyId;
  const crc = meta[CSE_META.plaintextCrc64];
  if (crc !== undefined && /^\d+$/.test(crc)) opened.crc64 = { value: crc, from: CSE_META.plaintextCrc64 };
  const md5 = meta[CSE_META.plaintextMd5];
  if (md5 !== undefined && /^[0-9a-f]{32}$/i.test(md5)) opened.md5 = { value: md5.toLowerCase(), from: CSE_META.plaintextMd5 };
  return opened;
}

/** What a decrypting stream verified, available once it has ended. */
export interface DecryptReport {
  bytes: number;
  crc64: string;
  md5Hex: string;
  /** Names of the metadata fields the plaintext was checked against (empty: nothing to check). */
  verifiedAgainst: string[];
}

/**
 * A transform that decrypts the whole ciphertext of `opened` and, at its end,
 * checks the byte count and the plaintext digests; a mismatch fails the stream
 * with EnvelopeError INTEGRITY. Memory is one chunk.
 */
export async function decryptStream(opened: OpenedEnvelope): Promise<Transform & { report(): DecryptReport }> {
  const cipher = cipherAt(opened.dataKey, 0);
  const crc = await Crc64.create();
  const md5 = createHash('md5');
  let bytes = 0;
  let report: DecryptReport | undefined;
  const consume = (plain: Buffer): Buffer => {
    bytes += plain.length;
    crc.update(plain);
    md5.update(plain);
    return plain;
  };
  const stream = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      done(null, consume(cipher.update(chunk)));
    },
    flush(done: TransformCallback) {
      const tail = cipher.final();
      if (tail.length > 0) this.push(consume(tail));
      const crcValue = crc.digest();
      const md5Hex = md5.digest('hex');
      const verified: string[] = [];
      if (bytes !== opened.plaintextSize) {
        done(new EnvelopeError('INTEGRITY', `decrypted ${bytes} bytes, ${CSE_META.plaintextSize} says ${opened.plaintextSize}`));
        return;
      }
      verified.push(CSE_META.plaintextSize);
      if (opened.crc64) {
        if (opened.crc64.value !== crcValue) {
          done(new EnvelopeError('INTEGRITY', `plaintext CRC-64 is ${crcValue}, ${opened.crc64.from} says ${opened.crc64.value}: wrong data key or damaged object`));
          return;
        }
        verified.push(opened.crc64.from);
      }
      if (opened.md5) {
        if (opened.md5.value !== md5Hex) {
          done(new EnvelopeError('INTEGRITY', `plaintext MD5 is ${md5Hex}, ${opened.md5.from} says ${opened.md5.value}: wrong data key or damaged object`));
          return;
        }
        verified.push(opened.md5.from);
      }
      report = { bytes, crc64: crcValue, md5Hex, verifiedAgainst: verified };
      done();
    },
  });
  return Object.assign(stream, {
    report(): DecryptReport {
      if (!report) throw new Error('decryptStream.report() before the stream ended');
      return report;
    },
  });
}
