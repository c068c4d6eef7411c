/**
 * The client-side encryption key of a task, as the copy path and the
 * comparison need it: the RSA public key and its fingerprint (the
 * bb-cse-key-id a replica encrypted for it carries).
 *
 * Read from the file on every use rather than cached: config validation
 * checked the file when the task was saved, but a file replaced or removed
 * later must stop the copies at once (nothing is uploaded unencrypted), and a
 * rotated key must take effect without a restart. A read is one small file.
 */
import type { KeyObject } from 'node:crypto';
import type { TaskOptions } from '../config/types.js';
import { keyFingerprint, loadPublicKey } from '../crypto/keys.js';

export interface TaskEncryptionKey {
  publicKey: KeyObject;
  /** keyFingerprint of the public key (hex SHA-256 of its SPKI DER). */
  keyId: string;
}

/**
 * The task's public key, or undefined when it does not encrypt client-side.
 * Throws KeyMaterialError (naming the file and what is wrong) when the file
 * is unreadable or does not hold an acceptable RSA public key.
 */
export function taskEncryptionKey(options: Pick<TaskOptions, 'clientSideEncryption'>): TaskEncryptionKey | undefined {
  const cse = options.clientSideEncryption;
  if (!cse) return undefined;
  const publicKey = loadPublicKey(cse.publicKeyFile);
  return { publicKey, keyId: keyFingerprint(publicKey) };
}
