/**
 * ListObjects (V1, `marker`) and ListObjectsV2 (`list-type=2`,
 * `continuation-token`), sharing one walk over the bucket's keys in UTF-8
 * byte order.
 */
import { restoreHeader } from './oss-server-attributes.js';
import { quoteEtag } from './oss-server-digest.js';
import { invalidArgument } from './oss-server-errors.js';
import { isoTime, keyEncoder, type RequestContext, requireBucket, sendXml } from './oss-server-http.js';
import { type BucketState, compareKeys, OWNER_ID, type StoredObject } from './oss-server-store.js';
import type { XmlElement } from './oss-server-xml.js';

const DEFAULT_MAX_KEYS = 100;
const MAX_MAX_KEYS = 1000;

/** Owner reported in listings; OSS shows the bucket owner's account. */
const OWNER: readonly XmlElement[] = [
  ['ID', OWNER_ID],
  ['DisplayName', OWNER_ID],
];

interface ListRequest {
  readonly prefix: string;
  readonly delimiter: string;
  /** Only names strictly after this (byte order) are listed. */
  readonly after: string;
  readonly maxKeys: number;
}

interface ListPage {
  readonly contents: StoredObject[];
  readonly commonPrefixes: string[];
  readonly truncated: boolean;
  /** The last key or common prefix on the page: where the next page resumes. */
  readonly last: string | undefined;
}

/** Index of the first key strictly greater than `after` in the sorted list. */
function firstIndexAfter(keys: readonly string[], after: string): number {
  let low = 0;
  let high = keys.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareKeys(keys[mid] ?? '', after) <= 0) low = mid + 1;
    else high = mid;
  }
  return low;
}

/**
 * One page of a listing. A common prefix counts as one entry; when the
 * resume point is itself a common prefix (the previous page ended on it),
 * the keys rolled up under it are skipped rather than reported again.
 */
function walk(bucket: BucketState, request: ListRequest): ListPage {
  const keys = bucket.keysInByteOrder();
  const contents: StoredObject[] = [];
  const commonPrefixes: string[] = [];
  let last: string | undefined;
  let truncated = false;

  for (let i = firstIndexAfter(keys, request.after); i < keys.length; i++) {
    const key = keys[i] ?? '';
    if (!key.startsWith(request.prefix)) {
      // Keys sharing a prefix are contiguous in byte order: once past them, stop.
      if (compareKeys(key, request.prefix) > 0) break;
      continue;
    }
    let entry: string = key;
    if (request.delimiter !== '') {
      const cut = key.indexOf(request.delimiter, request.prefix.length);
      if (cut !== -1) {
        const commonPrefix = key.slice(0, cut + request.delimiter.length);
        if (commonPrefix === last || commonPrefix === request.after) continue;
        entry = commonPrefix;
      }
    }
    if (contents.length + commonPrefixes.length >= request.maxKeys) {
      truncated = true;
      break;
    }
    if (entry === key) {
      const object = bucket.getObject(key);
      if (object !== undefined) contents.push(object);
    } else {
      commonPrefixes.push(entry);
    }
    last = entry;
  }
  return { contents, commonPrefixes, truncated, last };
}

function maxKeysParam(ctx: RequestContext): number {
  const raw = ctx.query.get('max-keys');
  if (raw === null || raw === '') return DEFAULT_MAX_KEYS;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value > MAX_MAX_KEYS) {
    throw invalidArgument(`max-keys must be an integer from 0 to ${MAX_MAX_KEYS}.`, 'max-keys', raw);
  }
  return value;
}

function contentsElement(object: StoredObject, encode: (text: string) => string, withOwner: boolean): XmlElement {
  const restore = restoreHeader(object);
  return [
    'Contents',
    [
      ['Key', encode(object.key)],
      ['LastModified', isoTime(object.lastModified)],
      ['ETag', quoteEtag(object.etag)],
      ['Type', object.type],
      ['Size', object.body.length],
      ['StorageClass', object.attributes.storageClass],
      ['Owner', withOwner ? OWNER : undefined],
      ['RestoreInfo', restore],
    ],
  ];
}

function prefixesElements(prefixes: readonly string[], encode: (text: string) => string): XmlElement[] {
  return prefixes.map((prefix): XmlElement => ['CommonPrefixes', [['Prefix', encode(prefix)]]]);
}

/** Continuation tokens are opaque to clients; ours is the resume point, base64url-encoded. */
function encodeToken(last: string): string {
  return Buffer.from(last, 'utf8').toString('base64url');
}

function decodeToken(token: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw invalidArgument('The continuation token is not valid.', 'continuation-token', token);
  return Buffer.from(token, 'base64url').toString('utf8');
}

export function listObjectsV2(ctx: RequestContext): void {
  const bucket = requireBucket(ctx);
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const startAfter = ctx.query.get('start-after');
  const token = ctx.query.get('continuation-token');
  const encodingType = ctx.query.get('encoding-type');
  const encode = keyEncoder(encodingType);
  const withOwner = ctx.query.get('fetch-owner') === 'true';
  const maxKeys = maxKeysParam(ctx);

  // A continuation token wins over start-after (it is always further along).
  const after = token !== null && token !== '' ? decodeToken(token) : (startAfter ?? '');
  const page = walk(bucket, { prefix, delimiter, after, maxKeys });

  sendXml(ctx, 200, 'ListBucketResult', [
    ['Name', bucket.name],
    ['Prefix', encode(prefix)],
    ['StartAfter', startAfter === null ? undefined : encode(startAfter)],
    ['ContinuationToken', token ?? undefined],
    ['MaxKeys', maxKeys],
    ['Delimiter', encode(delimiter)],
    ['EncodingType', encodingType || undefined],
    ['IsTruncated', page.truncated],
    ['NextContinuationToken', page.truncated && page.last !== undefined ? encodeToken(page.last) : undefined],
    ['KeyCount', page.contents.length + page.commonPrefixes.length],
    ...page.contents.map((object) => contentsElement(object, encode, withOwner)),
    ...prefixesElements(page.commonPrefixes, encode),
  ]);
}

export function listObjectsV1(ctx: RequestContext): void {
  const bucket = requireBucket(ctx);
  const prefix = ctx.query.get('prefix') ?? '';
  const delimiter = ctx.query.get('delimiter') ?? '';
  const marker = ctx.query.get('marker') ?? '';
  const encodingType = ctx.query.get('encoding-type');
  const encode = keyEncoder(encodingType);
  const maxKeys = maxKeysParam(ctx);

  const page = walk(bucket, { prefix, delimiter, after: marker, maxKeys });

  sendXml(ctx, 200, 'ListBucketResult', [
    ['Name', bucket.name],
    ['Prefix', encode(prefix)],
    ['Marker', encode(marker)],
    ['MaxKeys', maxKeys],
    ['Delimiter', encode(delimiter)],
    ['EncodingType', encodingType || undefined],
    ['IsTruncated', page.truncated],
    ['NextMarker', page.truncated && page.last !== undefined ? encode(page.last) : undefined],
    ...page.contents.map((object) => contentsElement(object, encode, true)),
    ...prefixesElements(page.commonPrefixes, encode),
  ]);
}
