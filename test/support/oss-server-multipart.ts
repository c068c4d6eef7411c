/**
 * Multipart upload operations: Initiate, UploadPart, UploadPartCopy,
 * Complete, Abort, ListParts and ListMultipartUploads.
 */
import { randomBytes } from 'node:crypto';

import { attributesFromHeaders } from './oss-server-attributes.js';
import { parseRange } from './oss-server-conditions.js';
import { md5, multipartEtag, normalizeEtag, quoteEtag, simpleEtag } from './oss-server-digest.js';
import { invalidArgument, noSuchUpload, OssError } from './oss-server-errors.js';
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
import { assertMayWrite, readCopySource } from './oss-server-objects.js';
import {
  compareKeys,
  type MultipartUpload,
  SERVER_REGION,
  type StoredObject,
  type StoredPart,
  wholeSecondsNow,
} from './oss-server-store.js';
import { childList, childText, parseXmlBody, type XmlElement } from './oss-server-xml.js';

const MAX_PART_NUMBER = 10_000;
const MAX_LIST_ENTRIES = 1000;

/** Reads an optional integer query parameter within [min, max], or the default when absent. */
function integerParam(ctx: RequestContext, name: string, fallback: number, min: number, max: number): number {
  const raw = ctx.query.get(name);
  if (raw === null || raw === '') return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw invalidArgument(`${name} must be an integer from ${min} to ${max}.`, name, raw);
  }
  return value;
}

/** The upload named by ?uploadId, which must belong to this bucket AND key. */
function findUpload(ctx: RequestContext): MultipartUpload {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const uploadId = ctx.query.get('uploadId') ?? '';
  const upload = bucket.uploads.get(uploadId);
  if (upload === undefined || upload.key !== key) throw noSuchUpload(uploadId);
  return upload;
}

export async function initiateMultipartUpload(ctx: RequestContext): Promise<void> {
  const bucket = requireBucket(ctx);
  const key = requireKey(ctx);
  const encodingType = ctx.query.get('encoding-type');
  const encode = keyEncoder(encodingType);
  const attributes = attributesFromHeaders(ctx.req.headers);
  await readBody(ctx, MAX_XML_BODY_BYTES);
  const uploadId = randomBytes(16).toString('hex').toUpperCase();
  bucket.uploads.set(uploadId, { uploadId, key, initiated: new Date(), attributes, parts: new Map() });
  sendXml(ctx, 200, 'InitiateMultipartUploadResult', [
    ['Bucket', bucket.name],
    ['Key', encode(key)],
    ['UploadId', uploadId],
    ...(encodingType ? ([['EncodingType', encodingType]] as const) : []),
  ]);
}

function partNumberParam(ctx: RequestContext): number {
  const raw = ctx.query.get('partNumber') ?? '';
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > MAX_PART_NUMBER) {
    throw invalidArgument(`partNumber must be an integer from 1 to ${MAX_PART_NUMBER}.`, 'partNumber', raw);
  }
  return value;
}

/** UploadPart (PUT ?partNumber&uploadId); with x-oss-copy-source it is UploadPartCopy. */
export async function uploadPart(ctx: RequestContext): Promise<void> {
  const partNumber = partNumberParam(ctx);
  findUpload(ctx);
  if (requestHeader(ctx, 'x-oss-copy-source') !== undefined) {
    await uploadPartCopy(ctx, partNumber);
    return;
  }
  const { body, md5: digest } = await readBody(ctx);
  // Re-resolve: the upload may have been completed or aborted while the body streamed in.
  const upload = findUpload(ctx);
  const part: StoredPart = {
    partNumber,
    body,
    md5: digest,
    etag: simpleEtag(digest),
    crc64: ctx.crc64([body]),
    lastModified: wholeSecondsNow(),
  };
  upload.parts.set(partNumber, part);
  sendEmpty(ctx, 200, {
    etag: quoteEtag(part.etag),
    'x-oss-hash-crc64ecma': part.crc64,
    'content-md5': digest.toString('base64'),
  });
}

async function uploadPartCopy(ctx: RequestContext, partNumber: number): Promise<void> {
  await readBody(ctx, MAX_XML_BODY_BYTES);
  const source = readCopySource(ctx);
  if (source === 'not-modified') {
    sendEmpty(ctx, 304);
    return;
  }
  const rangeHeader = requestHeader(ctx, 'x-oss-copy-source-range');
  const range = parseRange(rangeHeader, source.body.length);
  const body = range === undefined ? source.body : source.body.subarray(range.start, range.end + 1);
  const digest = md5([body]);
  const part: StoredPart = {
    partNumber,
    body,
    md5: digest,
    etag: simpleEtag(digest),
    crc64: ctx.crc64([body]),
    lastModified: wholeSecondsNow(),
  };
  findUpload(ctx).parts.set(partNumber, part);
  sendXml(
    ctx,
    200,
    'CopyPartResult',
    [
      ['LastModified', isoTime(part.lastModified)],
      ['ETag', quoteEtag(part.etag)],
    ],
    { etag: quoteEtag(part.etag), 'x-oss-hash-crc64ecma': part.crc64 },
  );
}

/** The parts a Complete request names, validated against what was uploaded, in order. */
function selectParts(ctx: RequestContext, upload: MultipartUpload, body: Buffer): StoredPart[] {
  // `x-oss-complete-all: yes` means "every uploaded part", and forbids a body.
  if (requestHeader(ctx, 'x-oss-complete-all')?.toLowerCase() === 'yes') {
    if (body.length > 0) throw invalidArgument('x-oss-complete-all must not be combined with a part list.', 'x-oss-complete-all', 'yes');
    return [...upload.parts.values()].sort((a, b) => a.partNumber - b.partNumber);
  }
  const requested = childList(parseXmlBody(body, 'CompleteMultipartUpload').Part).map((entry) => {
    const numberText = childText(entry, 'PartNumber')?.trim() ?? '';
    const etag = childText(entry, 'ETag');
    if (!/^\d+$/.test(numberText) || etag === undefined) {
      throw new OssError('MalformedXML', 'Each <Part> needs a <PartNumber> and an <ETag>.');
    }
    return { partNumber: Number(numberText), etag: normalizeEtag(etag) };
  });
  if (requested.length === 0) throw new OssError('MalformedXML', 'CompleteMultipartUpload lists no parts.');

  let previous = 0;
  return requested.map(({ partNumber, etag }) => {
    if (partNumber <= previous) {
      throw new OssError('InvalidPartOrder', 'The list of parts was not in ascending order. Parts must be ordered by part number.');
    }
    previous = partNumber;
    const part = upload.parts.get(partNumber);
    if (part === undefined || part.etag !== etag) {
      throw new OssError('InvalidPart', 'One or more of the specified parts could not be found or the specified entity tag might not have matched the part\'s entity tag.', {
        PartNumber: String(partNumber),
        ETag: etag,
      });
    }
    return part;
  });
}

export async function completeMultipartUpload(ctx: RequestContext): Promise<void> {
  findUpload(ctx);
  const { body } = await readBody(ctx, MAX_XML_BODY_BYTES);
  const upload = findUpload(ctx);
  const bucket = requireBucket(ctx);
  const encodingType = ctx.query.get('encoding-type');
  const encode = keyEncoder(encodingType);

  const parts = selectParts(ctx, upload, body);
  if (parts.length === 0) throw new OssError('InvalidPart', 'No parts have been uploaded.');
  parts.slice(0, -1).forEach((part) => {
    if (part.body.length < ctx.behaviour.minPartSize) {
      throw new OssError('EntityTooSmall', `Your proposed upload is smaller than the minimum allowed size (${ctx.behaviour.minPartSize} bytes for all but the last part).`, {
        PartNumber: String(part.partNumber),
        ProposedSize: String(part.body.length),
      });
    }
  });
  assertMayWrite(ctx, bucket, upload.key);

  const object: StoredObject = {
    key: upload.key,
    body: Buffer.concat(parts.map((part) => part.body)),
    attributes: upload.attributes,
    etag: multipartEtag(parts.map((part) => part.md5)),
    crc64: ctx.crc64(parts.map((part) => part.body)),
    lastModified: wholeSecondsNow(),
    type: 'Multipart',
  };
  bucket.putObject(object);
  bucket.uploads.delete(upload.uploadId);

  const children: XmlElement[] = [];
  if (encodingType) children.push(['EncodingType', encodingType]);
  children.push(
    ['Location', `http://${bucket.name}.${SERVER_REGION}.aliyuncs.com/${encodeURIComponent(upload.key)}`],
    ['Bucket', bucket.name],
    ['Key', encode(upload.key)],
    ['ETag', quoteEtag(object.etag)],
  );
  sendXml(ctx, 200, 'CompleteMultipartUploadResult', children, {
    etag: quoteEtag(object.etag),
    'x-oss-hash-crc64ecma': object.crc64,
  });
}

export function abortMultipartUpload(ctx: RequestContext): void {
  const upload = findUpload(ctx);
  requireBucket(ctx).uploads.delete(upload.uploadId);
  sendEmpty(ctx, 204);
}

export function listParts(ctx: RequestContext): void {
  const upload = findUpload(ctx);
  const maxParts = integerParam(ctx, 'max-parts', MAX_LIST_ENTRIES, 1, MAX_LIST_ENTRIES);
  const marker = integerParam(ctx, 'part-number-marker', 0, 0, MAX_PART_NUMBER);
  const encodingType = ctx.query.get('encoding-type');
  const encode = keyEncoder(encodingType);

  const after = [...upload.parts.values()].filter((part) => part.partNumber > marker).sort((a, b) => a.partNumber - b.partNumber);
  const page = after.slice(0, maxParts);
  const truncated = after.length > page.length;
  const last = page.at(-1);
  sendXml(ctx, 200, 'ListPartsResult', [
    ['Bucket', requireBucket(ctx).name],
    ['Key', encode(upload.key)],
    ['UploadId', upload.uploadId],
    ['PartNumberMarker', marker],
    ['NextPartNumberMarker', last?.partNumber ?? marker],
    ['MaxParts', maxParts],
    ['IsTruncated', truncated],
    ...(encodingType ? ([['EncodingType', encodingType]] as const) : []),
    ...page.map(
      (part): XmlElement => [
        'Part',
        [
          ['PartNumber', part.partNumber],
          ['LastModified', isoTime(part.lastModified)],
          ['ETag', quoteEtag(part.etag)],
          ['HashCrc64ecma', part.crc64],
          ['Size', part.body.length],
        ],
      ],
    ),
  ]);
}

/** ListMultipartUploads (GET /?uploads): by key (byte order), then initiation time. */
export function listMultipartUploads(ctx: RequestContext): void {
  const bucket = requireBucket(ctx);
  const prefix = ctx.query.get('prefix') ?? '';
  const keyMarker = ctx.query.get('key-marker') ?? '';
  const uploadIdMarker = ctx.query.get('upload-id-marker') ?? '';
  const maxUploads = integerParam(ctx, 'max-uploads', MAX_LIST_ENTRIES, 1, MAX_LIST_ENTRIES);
  const encodingType = ctx.query.get('encoding-type');
  const encode = keyEncoder(encodingType);

  const ordered = [...bucket.uploads.values()]
    .filter((upload) => upload.key.startsWith(prefix))
    .sort((a, b) => compareKeys(a.key, b.key) || a.initiated.getTime() - b.initiated.getTime() || a.uploadId.localeCompare(b.uploadId));
  // Resume strictly after (key-marker, upload-id-marker); without an
  // upload-id-marker every upload of the marker key itself is skipped.
  const markerPosition = ordered.findIndex((upload) => upload.key === keyMarker && upload.uploadId === uploadIdMarker);
  const remaining = ordered.filter((upload, index) => {
    if (keyMarker === '') return true;
    const byKey = compareKeys(upload.key, keyMarker);
    if (byKey !== 0) return byKey > 0;
    if (uploadIdMarker === '') return false;
    return markerPosition === -1 ? upload.uploadId > uploadIdMarker : index > markerPosition;
  });
  const page = remaining.slice(0, maxUploads);
  const truncated = remaining.length > page.length;
  const last = page.at(-1);

  sendXml(ctx, 200, 'ListMultipartUploadsResult', [
    ['Bucket', bucket.name],
    ['KeyMarker', encode(keyMarker)],
    ['UploadIdMarker', uploadIdMarker],
    ['NextKeyMarker', truncated && last ? encode(last.key) : ''],
    ['NextUploadIdMarker', truncated && last ? last.uploadId : ''],
    ['Delimiter', ''],
    ['Prefix', encode(prefix)],
    ['MaxUploads', maxUploads],
    ['IsTruncated', truncated],
    ...(encodingType ? ([['EncodingType', encodingType]] as const) : []),
    ...page.map(
      (upload): XmlElement => [
        'Upload',
        [
          ['Key', encode(upload.key)],
          ['UploadId', upload.uploadId],
          ['StorageClass', upload.attributes.storageClass],
          ['Initiated', isoTime(upload.initiated)],
        ],
      ],
    ),
  ]);
}
