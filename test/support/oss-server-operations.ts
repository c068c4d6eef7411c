/**
 * Maps an authenticated request (method + addressed level + signed
 * sub-resources) to the OSS operation that handles it.
 *
 * Matching on sub-resources, not on arbitrary query parameters, mirrors OSS:
 * `?uploads` selects an operation, `?prefix=` merely parameterises one. A
 * request carrying a sub-resource no route knows (e.g. `?acl`, `?tagging`)
 * gets 501 NotImplemented, so a test hitting an unsupported API fails loudly
 * instead of silently being treated as a plain GET/PUT.
 */
import { SIGNED_SUBRESOURCES } from './oss-server-auth.js';
import { deleteBucket, getBucketInfo, getBucketLocation, listBuckets, putBucket } from './oss-server-buckets.js';
import { OssError } from './oss-server-errors.js';
import { requestHeader, type RequestContext } from './oss-server-http.js';
import { listObjectsV1, listObjectsV2 } from './oss-server-list.js';
import {
  abortMultipartUpload,
  completeMultipartUpload,
  initiateMultipartUpload,
  listMultipartUploads,
  listParts,
  uploadPart,
} from './oss-server-multipart.js';
import {
  appendObject,
  copyObject,
  deleteMultipleObjects,
  deleteObject,
  getObject,
  getObjectMeta,
  putObject,
  restoreObject,
} from './oss-server-objects.js';

type Level = 'service' | 'bucket' | 'object';
export type OperationHandler = (ctx: RequestContext) => void | Promise<void>;

interface Route {
  readonly name: string;
  readonly method: string;
  readonly level: Level;
  /** Sub-resources that must all be present. */
  readonly requires?: readonly string[];
  /** Further sub-resources tolerated alongside them. */
  readonly allows?: readonly string[];
  /** Extra discriminator for routes that share method, level and sub-resources. */
  readonly when?: (ctx: RequestContext) => boolean;
  readonly handler: OperationHandler;
}

const RESPONSE_OVERRIDES = [
  'response-content-type',
  'response-content-language',
  'response-expires',
  'response-cache-control',
  'response-content-disposition',
  'response-content-encoding',
];

const ROUTES: readonly Route[] = [
  { name: 'ListBuckets', method: 'GET', level: 'service', handler: listBuckets },

  { name: 'PutBucket', method: 'PUT', level: 'bucket', handler: putBucket },
  { name: 'DeleteBucket', method: 'DELETE', level: 'bucket', handler: deleteBucket },
  { name: 'GetBucketInfo', method: 'GET', level: 'bucket', requires: ['bucketInfo'], handler: getBucketInfo },
  { name: 'GetBucketLocation', method: 'GET', level: 'bucket', requires: ['location'], handler: getBucketLocation },
  { name: 'ListMultipartUploads', method: 'GET', level: 'bucket', requires: ['uploads'], handler: listMultipartUploads },
  {
    name: 'ListObjectsV2',
    method: 'GET',
    level: 'bucket',
    allows: ['continuation-token'],
    when: (ctx) => ctx.query.get('list-type') === '2',
    handler: listObjectsV2,
  },
  { name: 'ListObjects', method: 'GET', level: 'bucket', handler: listObjectsV1 },
  { name: 'DeleteMultipleObjects', method: 'POST', level: 'bucket', requires: ['delete'], handler: deleteMultipleObjects },

  { name: 'UploadPart', method: 'PUT', level: 'object', requires: ['partNumber', 'uploadId'], handler: uploadPart },
  {
    name: 'CopyObject',
    method: 'PUT',
    level: 'object',
    when: (ctx) => requestHeader(ctx, 'x-oss-copy-source') !== undefined,
    handler: copyObject,
  },
  { name: 'PutObject', method: 'PUT', level: 'object', handler: putObject },
  { name: 'ListParts', method: 'GET', level: 'object', requires: ['uploadId'], handler: listParts },
  { name: 'GetObject', method: 'GET', level: 'object', allows: RESPONSE_OVERRIDES, handler: getObject },
  { name: 'GetObjectMeta', method: 'HEAD', level: 'object', requires: ['objectMeta'], handler: getObjectMeta },
  { name: 'HeadObject', method: 'HEAD', level: 'object', handler: getObject },
  { name: 'AbortMultipartUpload', method: 'DELETE', level: 'object', requires: ['uploadId'], handler: abortMultipartUpload },
  { name: 'DeleteObject', method: 'DELETE', level: 'object', handler: deleteObject },
  { name: 'InitiateMultipartUpload', method: 'POST', level: 'object', requires: ['uploads'], handler: initiateMultipartUpload },
  { name: 'CompleteMultipartUpload', method: 'POST', level: 'object', requires: ['uploadId'], handler: completeMultipartUpload },
  { name: 'RestoreObject', method: 'POST', level: 'object', requires: ['restore'], handler: restoreObject },
  { name: 'AppendObject', method: 'POST', level: 'object', requires: ['append', 'position'], handler: appendObject },
];

function levelOf(ctx: RequestContext): Level {
  if (ctx.target.bucket === undefined) return 'service';
  return ctx.target.key === undefined ? 'bucket' : 'object';
}

/** Picks the operation for a request, or throws NotImplemented/MethodNotAllowed. */
export function selectOperation(ctx: RequestContext): OperationHandler {
  const level = levelOf(ctx);
  const present = new Set([...ctx.query.keys()].filter((name) => SIGNED_SUBRESOURCES.has(name)));
  const route = ROUTES.find((candidate) => {
    if (candidate.method !== ctx.method || candidate.level !== level) return false;
    const requires = candidate.requires ?? [];
    if (!requires.every((name) => present.has(name))) return false;
    const known = new Set([...requires, ...(candidate.allows ?? [])]);
    if (![...present].every((name) => known.has(name))) return false;
    return candidate.when?.(ctx) ?? true;
  });
  if (route !== undefined) return route.handler;

  if (!ROUTES.some((candidate) => candidate.method === ctx.method)) {
    throw new OssError('MethodNotAllowed', `The specified method is not allowed against this resource: ${ctx.method}.`);
  }
  const subresources = present.size > 0 ? ` ?${[...present].sort().join('&')}` : '';
  throw new OssError('NotImplemented', `The OSS test server does not implement ${ctx.method} on a ${level}${subresources}.`);
}
