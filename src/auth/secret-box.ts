/**
 * BB_MASTER_KEY and what is derived from it: AES-256-GCM encryption of sender
 * secrets at rest, and an HMAC key for pagination cursors that every process
 * sharing the key accepts. The master key itself is never used directly: each
 * purpose gets its own HKDF-SHA256 subkey.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

export const MASTER_KEY_BYTES = 32;

/** Thrown for a BB_MASTER_KEY that is not 32 bytes of base64 or hex. */
export class MasterKeyError extends Error {
  override readonly name = 'MasterKeyError';
}

/**
 * Parse BB_MASTER_KEY: 64 hex digits, or base64 / base64url of exactly 32 bytes
 * (e.g. `openssl rand -base64 32`, `openssl rand -hex 32`).
 */
export function parseMasterKey(value: string): Buffer {
  const v = value.trim();
  if (/^[0-9a-fA-F]{64}$/.test(v)) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(v)) {
    const bytes = Buffer.from(v, 'base64');
    if (bytes.length === MASTER_KEY_BYTES) return bytes;
    throw new MasterKeyError(`must be 32 bytes; this base64 value decodes to ${bytes.length}`);
  }
  throw new MasterKeyError('must be 32 bytes as base64 or 64 hex digits (try: openssl rand -base64 32)');
}

/** A 32-byte subkey of `master` for one purpose (HKDF-SHA256, no salt, `info` = purpose). */
export function deriveKey(master: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `bucketbridge/${purpose}`, 32));
}

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Authenticated encryption of short secrets. The blob is
 * `0x01 | iv(12) | tag(16) | ciphertext`; `context` (e.g. the access key id) is
 * bound as additional data, so a ciphertext cannot be moved to another row.
 */
export class SecretBox {
  private readonly key: Buffer;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== MASTER_KEY_BYTES) throw new MasterKeyError('must be 32 bytes');
    this.key = deriveKey(masterKey, 'sender-secrets/v1');
  }

  seal(plaintext: string, context: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), ciphertext]);
  }

  /** Throws when the blob was not sealed with this key and context. */
  open(blob: Buffer, context: string): string {
    if (blob.length < 1 + IV_BYTES + TAG_BYTES || blob[0] !== VERSION) throw new Error('unknown secret format');
    const iv = blob.subarray(1, 1 + IV_BYTES);
    const tag = blob.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(blob.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  }
}
