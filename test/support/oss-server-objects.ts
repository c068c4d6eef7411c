/**
 * Object-level OSS operations: Put, Append, Get, Head, GetObjectMeta,
 * Delete, DeleteMultipleObjects, Copy and Restore.
 */
import {
  attributesFromHeaders,
  encryptionFromHeaders,
  metaHeaders,
  objectHeaders,
  storageClassFromHeaders,
} from './oss-server-attributes.js';
import { COPY_SOURCE_CONDITIONS, evaluatePreconditions, GET_CONDITIONS, parseRange } from './oss-server-conditions.js';
import { md5, quoteEtag, simpleEtag } from './oss-server-digest.js';
import { invalidArgument, noSuchBucket, noSuchKey, OssError } from './oss-server-errors.js';
import {
  isoTime,
  keyEncoder,
  MAX_XML_BODY_BYTES,
  readBody,
  requestHeader,
  type RequestContext,
  requireBucket,
  requireKey,
  sendEmpty,
  sendXml,
} from './oss-server-http.js';
import {
  type BucketState,
  type ObjectAttributes,
  needsRestore,
  restoreStatus,
  type StoredObject,
  wholeSecondsNow,
} from './oss-server-store.js';
import { childList, childText, parseXmlBody, type XmlElement } from './oss-server-xml.js';

const DAY_MS = 24 * 60 * 60 * 1000;
/** GET query parameters that override response headers (they are signed sub-resources). */
const RESPONSE_OVERRIDES = ['content-type', 'content-language', 'expires', 'cache-control', 'content-disposition', 'content-encoding'];

/** `x-oss-forbid-overwrite: true` turns an overwrite into 409 FileAlreadyExists. */
export function assertMayWrite(ctx: RequestContext, bucket: BucketState, key: string): void {
  if (requestHeader(ctx, 'x-oss-forbid-overwrite')?.toLowerCase() === 'true' && bucket.getObject(key) !== undefined) {
    throw new OssError('FileAlreadyExists', 'The object you specified already exists and can not be overwritten.');
  }
}

/** Archived objects are unreadable until a restore completes. */
export function assertReadable(object: StoredObject): void {
  if (needsRestore(object.attributes.storageClass) && restoreStatus(object) !== 'restored') {
    throw new OssError('InvalidObjectState', "The operation is not valid for the object's state.");
  }
}

export async function putObject(ctx: RequestContext): Promise<void> {
  requireBucket(ctx);
  const key = requireKey(ctx);
  // Validate headers before accepting a potentially large body.
  const attributes = attributesFromHeaders(ctx.req.headers);
  const { body, md5: digest } = await readBody(ctx);
  const bucket = requireBucket(ctx);
  assertMayWrite(ctx, bucket, key);
  const object: StoredObject = {
    key,
    body,
    attributes,
    etag: simpleEtag(digest),
    crc64: ctx.crc64([body]),
    contentMd5: digest,
    lastModified: wholeSecondsNow(),
    type: 'Normal',
  };
  bucket.putObject(object);
  sendEmpty(ctx, 200, {
    etag: quoteEtag(object.etag),
    'x-oss-hash-crc64ecma': object.crc64,
    'content-md5': digest.toString('base64'),
  });
}

/** AppendObject (POST ?append&position=N): grows an Appendable object, creating it at position 0. */
export async function appendObject(ctx: RequestContext): Promise<void> {
  requireBucket(ctx);
  const key = requireKey(ctx);
  const positionText = ctx.query.get('position') ?? '';
  if (!/^\d+$/.test(positionText)) throw invalidArgument('position must be a non-negative integer.', 'position', positionText);
  const { body } = await readBody(ctx);
  const bucket = requireBucket(ctx);
  const existing = bucket.getObject(key);
  if (existing !== undefined && existing.type !== 'Appendable') {
    throw new OssError('ObjectNotAppendable', 'The object is not appendable.');
  }
  const currentLength = existing?.body.length ?? 0;
  if (Number(positionText) !== currentLength) {
    throw new OssError('PositionNotEqualToLength', 'Position is not equal to file length.', {
      NextAppendPosition: String(currentLength),
    });
  }
  const combined = existing === undefined ? body : Buffer.concat([existing.body, body]);
  const object: StoredObject = {
    key,
    body: combined,
    // Only the first append fixes the object's headers, as in OSS.
    attributes: existing?.attributes ?? attributesFromHeaders(ctx.req.headers),
    etag: simpleEtag(md5([combined])),
    crc64: ctx.crc64([combined]),
    lastModified: wholeSecondsNow(),
    type: 'Appendable',
  };
  bucket.putObject(object);
  sendEmpty(ctx, 200, {
    etag: quoteEtag(object.etag),
    'x-oss-hash-crc64ecma': object.crc64,
    'x-oss-next-append-position': String(combined.length),
  });
}

function findObject(ctx: RequestContext): StoredObject {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const object = bucket.getObject(key);
  if (object === undefined) throw noSuchKey(key);
  return object;
}

/** GetObject and HeadObject share validators and headers; only HEAD skips the archive check and the body. */
export function getObject(ctx: RequestContext): void {
  const object = findObject(ctx);
  const isHead = ctx.method === 'HEAD';
  const header = (name: string): string | undefined => requestHeader(ctx, name);

  if (evaluatePreconditions(object, header, GET_CONDITIONS) === 'not-modified') {
    sendEmpty(ctx, 304, { etag: quoteEtag(object.etag), 'last-modified': object.lastModified.toUTCString() });
    return;
  }
  if (!isHead) assertReadable(object);

  const headers: Record<string, string> = { ...objectHeaders(object), ...metaHeaders(object) };
  for (const name of RESPONSE_OVERRIDES) {
    const override = ctx.query.get(`response-${name}`);
    if (override !== null) headers[name] = override;
  }
  if (isHead) {
    sendEmpty(ctx, 200, headers);
    return;
  }

  const range = parseRange(header('range'), object.body.length);
  if (range === undefined) {
    ctx.res.writeHead(200, headers);
    ctx.res.end(object.body);
    return;
  }
  const slice = object.body.subarray(range.start, range.end + 1);
  ctx.res.writeHead(206, {
    ...headers,
    'content-length': String(slice.length),
    'content-range': `bytes ${range.start}-${range.end}/${object.body.length}`,
  });
  ctx.res.end(slice);
}

/** GetObjectMeta (HEAD ?objectMeta): the light-weight subset OSS documents. */
export function getObjectMeta(ctx: RequestContext): void {
  const object = findObject(ctx);
  sendEmpty(ctx, 200, {
    etag: quoteEtag(object.etag),
    // A HEAD reply's Content-Length describes the object, not the (empty) body.
    'content-length': String(object.body.length),
    'last-modified': object.lastModified.toUTCString(),
    'x-oss-hash-crc64ecma': object.crc64,
  });
}

/** DeleteObject is idempotent: 204 whether or not the key existed (the bucket must exist). */
export function deleteObject(ctx: RequestContext): void {
  const bucket = requireBucket(ctx);
  bucket.deleteObject(requireKey(ctx));
  sendEmpty(ctx, 204);
}

/** Largest key list OSS accepts in one DeleteMultipleObjects request. */
const MAX_DELETE_KEYS = 1000;

export async function deleteMultipleObjects(ctx: RequestContext): Promise<void> {
  requireBucket(ctx);
  // OSS refuses the request outright without Content-MD5 (readBody verifies it when present).
  if (requestHeader(ctx, 'content-md5') === undefined) {
    throw new OssError('InvalidDigest', 'Missing required header for this request: Content-MD5.');
  }
  const { body } = await readBody(ctx, MAX_XML_BODY_BYTES);
  const encodingType = ctx.query.get('encoding-type') ?? requestHeader(ctx, 'encoding-type');
  const encode = keyEncoder(encodingType);
  const request = parseXmlBody(body, 'Delete');
  const quiet = (childText(request, 'Quiet') ?? 'false').trim().toLowerCase() === 'true';
  const keys = childList(request.Object).map((entry) => {
    const key = childText(entry, 'Key');
    if (key === undefined || key === '') throw new OssError('MalformedXML', 'Each <Object> needs a non-empty <Key>.');
    return key;
  });
  if (keys.length === 0 || keys.length > MAX_DELETE_KEYS) {
    throw new OssError('MalformedXML', `DeleteMultipleObjects takes 1 to ${MAX_DELETE_KEYS} keys, got ${keys.length}.`);
  }
  const bucket = requireBucket(ctx);
  for (const key of keys) bucket.deleteObject(key);

  const children: XmlElement[] = [];
  if (encodingType) children.push(['EncodingType', encodingType]);
  if (!quiet) for (const key of keys) children.push(['Deleted', [['Key', encode(key)]]]);
  sendXml(ctx, 200, 'DeleteResult', children);
}

export interface CopySource {
  readonly bucket: string;
  readonly key: string;
}

/** `x-oss-copy-source: /bucket/url-encoded-key` (a `?versionId=` suffix is ignored: no versioning here). */
export function parseCopySource(ctx: RequestContext): CopySource {
  const raw = requestHeader(ctx, 'x-oss-copy-source') ?? '';
  const match = /^\/?([^/]+)\/([^?]+)(\?.*)?$/.exec(raw);
  if (match === null) throw invalidArgument('x-oss-copy-source must be /bucket/key.', 'x-oss-copy-source', raw);
  try {
    return { bucket: decodeURIComponent(match[1] ?? ''), key: decodeURIComponent(match[2] ?? '') };
  } catch {
    throw invalidArgument('x-oss-copy-source is not valid percent-encoding.', 'x-oss-copy-source', raw);
  }
}

/** Resolves and checks the copy source: exists, satisfies x-oss-copy-source-if-*, is readable. */
export function readCopySource(ctx: RequestContext): StoredObject | 'not-modified' {
  const source = parseCopySource(ctx);
  const sourceBucket = ctx.store.bucket(source.bucket);
  if (sourceBucket === undefined) throw noSuchBucket(source.bucket);
  const object = sourceBucket.getObject(source.key);
  if (object === undefined) throw noSuchKey(source.key);
  if (evaluatePreconditions(object, (name) => requestHeader(ctx, name), COPY_SOURCE_CONDITIONS) === 'not-modified') {
    return 'not-modified';
  }
  assertReadable(object);
  return object;
}

/**
 * CopyObject. COPY (default) keeps the source's content headers and
 * metadata; REPLACE takes them all from this request. Storage class and
 * encryption always come from this request (absent = Standard/none), as for
 * any new OSS object. ETag, CRC and object type follow the bytes.
 */
export async function copyObject(ctx: RequestContext): Promise<void> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  await readBody(ctx, MAX_XML_BODY_BYTES);
  const directive = (requestHeader(ctx, 'x-oss-metadata-directive') ?? 'COPY').toUpperCase();
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw invalidArgument('x-oss-metadata-directive must be COPY or REPLACE.', 'x-oss-metadata-directive', directive);
  }
  const source = readCopySource(ctx);
  if (source === 'not-modified') {
    sendEmpty(ctx, 304);
    return;
  }
  assertMayWrite(ctx, bucket, key);

  let attributes: ObjectAttributes;
  if (directive === 'REPLACE') {
    attributes = attributesFromHeaders(ctx.req.headers);
  } else {
    const encryption = encryptionFromHeaders(ctx.req.headers);
    attributes = {
      contentHeaders: source.attributes.contentHeaders,
      meta: source.attributes.meta,
      storageClass: storageClassFromHeaders(ctx.req.headers) ?? 'Standard',
      ...(encryption === undefined ? {} : { encryption }),
    };
  }
  const copy: StoredObject = {
    key,
    body: source.body,
    attributes,
    etag: source.etag,
    crc64: source.crc64,
    ...(source.contentMd5 === undefined ? {} : { contentMd5: source.contentMd5 }),
    lastModified: wholeSecondsNow(),
    type: source.type,
  };
  bucket.putObject(copy);
  sendXml(
    ctx,
    200,
    'CopyObjectResult',
    [
      ['ETag', quoteEtag(copy.etag)],
      ['LastModified', isoTime(copy.lastModified)],
    ],
    { etag: quoteEtag(copy.etag), 'x-oss-hash-crc64ecma': copy.crc64 },
  );
}

/** Longest restore OSS grants, in days. */
const MAX_RESTORE_DAYS = 365;

/**
 * RestoreObject (POST ?restore). 202 starts a restore, 409 while one is
 * running, 200 extends a completed one. The object becomes readable after
 * the server's `restoreDelayMs` (0 by default: immediately).
 */
export async function restoreObject(ctx: RequestContext): Promise<void> {
  const object = findObject(ctx);
  const { body } = await readBody(ctx, MAX_XML_BODY_BYTES);
  if (!needsRestore(object.attributes.storageClass)) {
    throw new OssError('OperationNotSupported', 'The operation is not supported for this resource (only archived objects can be restored).');
  }
  let days = 1;
  if (body.length > 0) {
    const daysText = childText(parseXmlBody(body, 'RestoreRequest'), 'Days');
    if (daysText !== undefined) {
      days = Number(daysText.trim());
      if (!Number.isInteger(days) || days < 1 || days > MAX_RESTORE_DAYS) {
        throw new OssError('MalformedXML', `Days must be an integer from 1 to ${MAX_RESTORE_DAYS}.`);
      }
    }
  }
  const now = Date.now();
  switch (restoreStatus(object, now)) {
    case 'ongoing':
      throw new OssError('RestoreAlreadyInProgress', 'The restore operation is in progress.');
    case 'restored':
      object.restore = { readyAt: now, expiresAt: now + days * DAY_MS };
      sendEmpty(ctx, 200);
      return;
    case 'none': {
      const readyAt = now + ctx.behaviour.restoreDelayMs;
      object.restore = { readyAt, expiresAt: readyAt + days * DAY_MS };
      sendEmpty(ctx, 202);
      return;
    }
  }
}
