/**
 * Translating between an object's stored attributes and HTTP headers:
 * what a PUT/initiate/REPLACE-copy request sets, and what GET/HEAD report.
 */
import type { IncomingHttpHeaders } from 'node:http';

import { quoteEtag } from './oss-server-digest.js';
import { invalidArgument } from './oss-server-errors.js';
import {
  CONTENT_HEADERS,
  type ObjectAttributes,
  restoreStatus,
  STORAGE_CLASSES,
  type StorageClass,
  type StoredObject,
} from './oss-server-store.js';

const META_PREFIX = 'x-oss-meta-';
const ENCRYPTION_ALGORITHMS = ['AES256', 'KMS', 'SM4'] as const;

function single(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** Storage class from `x-oss-storage-class` (OSS accepts any letter case), or undefined when absent. */
export function storageClassFromHeaders(headers: IncomingHttpHeaders): StorageClass | undefined {
  const raw = single(headers, 'x-oss-storage-class');
  if (raw === undefined) return undefined;
  const match = STORAGE_CLASSES.find((candidate) => candidate.toLowerCase() === raw.trim().toLowerCase());
  if (match === undefined) throw invalidArgument(`Unsupported storage class: ${raw}`, 'x-oss-storage-class', raw);
  return match;
}

export function encryptionFromHeaders(headers: IncomingHttpHeaders): ObjectAttributes['encryption'] {
  const algorithm = single(headers, 'x-oss-server-side-encryption');
  const keyId = single(headers, 'x-oss-server-side-encryption-key-id');
  if (algorithm === undefined) {
    if (keyId !== undefined) {
      throw invalidArgument('x-oss-server-side-encryption-key-id requires x-oss-server-side-encryption: KMS', 'x-oss-server-side-encryption-key-id', keyId);
    }
    return undefined;
  }
  const known = ENCRYPTION_ALGORITHMS.find((candidate) => candidate === algorithm.trim());
  if (known === undefined) throw invalidArgument(`Unsupported server-side encryption: ${algorithm}`, 'x-oss-server-side-encryption', algorithm);
  if (keyId !== undefined && known !== 'KMS') {
    throw invalidArgument('A key id is only valid with KMS encryption.', 'x-oss-server-side-encryption-key-id', keyId);
  }
  return keyId === undefined ? { algorithm: known } : { algorithm: known, keyId };
}

/** Everything the uploader decides about an object: content headers, user metadata, storage class, encryption. */
export function attributesFromHeaders(headers: IncomingHttpHeaders): ObjectAttributes {
  const contentHeaders: Record<string, string> = {};
  for (const name of CONTENT_HEADERS) {
    const value = single(headers, name);
    if (value !== undefined) contentHeaders[name] = value;
  }
  // OSS, like S3, stores a default rather than leaving GET without a type.
  contentHeaders['content-type'] ??= 'application/octet-stream';

  const meta: Record<string, string> = {};
  for (const name of Object.keys(headers)) {
    if (name.startsWith(META_PREFIX) && name.length > META_PREFIX.length) {
      meta[name.slice(META_PREFIX.length)] = single(headers, name) ?? '';
    }
  }

  const encryption = encryptionFromHeaders(headers);
  return {
    contentHeaders,
    meta,
    storageClass: storageClassFromHeaders(headers) ?? 'Standard',
    ...(encryption === undefined ? {} : { encryption }),
  };
}

/** The object's own headers as GET/HEAD report them, excluding `x-oss-meta-*`. */
export function objectHeaders(object: StoredObject, now = Date.now()): Record<string, string> {
  const { attributes } = object;
  const headers: Record<string, string> = {
    ...attributes.contentHeaders,
    'content-length': String(object.body.length),
    etag: quoteEtag(object.etag),
    'last-modified': object.lastModified.toUTCString(),
    'accept-ranges': 'bytes',
    'x-oss-hash-crc64ecma': object.crc64,
    'x-oss-object-type': object.type,
    'x-oss-storage-class': attributes.storageClass,
  };
  if (object.contentMd5 !== undefined) headers['content-md5'] = object.contentMd5.toString('base64');
  if (object.type === 'Appendable') headers['x-oss-next-append-position'] = String(object.body.length);
  if (attributes.encryption !== undefined) {
    headers['x-oss-server-side-encryption'] = attributes.encryption.algorithm;
    if (attributes.encryption.keyId !== undefined) {
      headers['x-oss-server-side-encryption-key-id'] = attributes.encryption.keyId;
    }
  }
  const restore = restoreHeader(object, now);
  if (restore !== undefined) headers['x-oss-restore'] = restore;
  return headers;
}

/** `x-oss-restore` as OSS formats it, or undefined when no restore is in effect. */
export function restoreHeader(object: StoredObject, now = Date.now()): string | undefined {
  const status = restoreStatus(object, now);
  if (status === 'none' || object.restore === undefined) return undefined;
  if (status === 'ongoing') return 'ongoing-request="true"';
  return `ongoing-request="false", expiry-date="${new Date(object.restore.expiresAt).toUTCString()}"`;
}

export function metaHeaders(object: StoredObject): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(object.attributes.meta)) headers[`${META_PREFIX}${name}`] = value;
  return headers;
}
