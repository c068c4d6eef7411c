/**
 * OSS signature V1 verification (header `Authorization: OSS ak:sig` and
 * presigned URLs with `OSSAccessKeyId`/`Expires`/`Signature`).
 *
 *   Signature = base64(HMAC-SHA1(secret,
 *       VERB \n Content-MD5 \n Content-Type \n Date \n
 *       CanonicalizedOSSHeaders CanonicalizedResource))
 *
 * The string to sign is built as bytes: header values arrive from node:http
 * as latin1 strings (one char per wire byte), while the resource is the
 * percent-decoded key, i.e. UTF-8. That is what ali-oss signs for both of its
 * `headerEncoding` modes, and what OSS does server-side.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

import { OssError } from './oss-server-errors.js';

/**
 * Query parameters that are part of the CanonicalizedResource. OSS signs only
 * these; everything else in the query (list-type, prefix, max-keys, marker…)
 * is unsigned. ali-oss has no list of its own — it signs whatever it put in
 * `params.subres` — and for every call it makes, those are drawn from this
 * list (copied from the official aliyun-oss-go-sdk `signKeyList`).
 */
export const SIGNED_SUBRESOURCES: ReadonlySet<string> = new Set([
  'acl', 'uploads', 'location', 'cors', 'logging', 'website', 'referer', 'lifecycle',
  'delete', 'append', 'tagging', 'objectMeta', 'uploadId', 'partNumber', 'security-token',
  'position', 'img', 'style', 'styleName', 'replication', 'replicationProgress',
  'replicationLocation', 'cname', 'bucketInfo', 'comp', 'qos', 'live', 'status', 'vod',
  'startTime', 'endTime', 'symlink', 'x-oss-process', 'response-content-type',
  'x-oss-traffic-limit', 'response-content-language', 'response-expires',
  'response-cache-control', 'response-content-disposition', 'response-content-encoding',
  'udf', 'udfName', 'udfImage', 'udfId', 'udfImageDesc', 'udfApplication',
  'udfApplicationLog', 'restore', 'callback', 'callback-var', 'qosInfo', 'policy', 'stat',
  'encryption', 'versions', 'versioning', 'versionId', 'requestPayment',
  'x-oss-request-payer', 'sequential', 'inventory', 'inventoryId', 'continuation-token',
  'asyncFetch', 'worm', 'wormId', 'wormExtend', 'withHashContext', 'x-oss-enable-md5',
  'x-oss-enable-sha1', 'x-oss-enable-sha256', 'x-oss-hash-ctx', 'x-oss-md5-ctx',
  'transferAcceleration', 'regionList', 'cloudboxes', 'x-oss-ac-source-ip',
  'x-oss-ac-subnet-mask', 'x-oss-ac-vpc-id', 'x-oss-ac-forward-allow', 'metaQuery',
  'resourceGroup', 'rtc', 'x-oss-async-process', 'responseHeader',
]);

/** OSS rejects header-signed requests whose date is further than this from server time. */
const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

export interface Credentials {
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
}

/** The bucket/key a request addresses; both absent for service-level requests. */
export interface ResourceTarget {
  readonly bucket?: string;
  readonly key?: string;
}

/** The parts of a request the signature covers. */
export interface SignedRequest {
  readonly method: string;
  readonly headers: IncomingHttpHeaders;
  readonly query: URLSearchParams;
}

/** `/bucket/key?sub1=v&sub2` — sub-resources sorted by name, empty values without `=`. */
export function canonicalizedResource(target: ResourceTarget, query: URLSearchParams): string {
  let resource = target.bucket === undefined ? '/' : `/${target.bucket}/${target.key ?? ''}`;
  const subresources = [...new Set(query.keys())].filter((name) => SIGNED_SUBRESOURCES.has(name)).sort();
  if (subresources.length > 0) {
    resource += `?${subresources
      .map((name) => {
        const value = query.get(name) ?? '';
        return value === '' ? name : `${name}=${value}`;
      })
      .join('&')}`;
  }
  return resource;
}

function headerValue(headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (value === undefined) return '';
  return Array.isArray(value) ? value.join(',') : value;
}

/** The exact bytes that get HMAC'd; exposed so mismatches can report it like OSS does. */
export function stringToSign(request: SignedRequest, dateLine: string, resource: string): Buffer {
  const ossHeaders = Object.keys(request.headers)
    .filter((name) => name.startsWith('x-oss-'))
    .sort()
    .map((name) => `${name}:${headerValue(request.headers, name).trim()}\n`)
    .join('');
  const head =
    `${request.method.toUpperCase()}\n` +
    `${headerValue(request.headers, 'content-md5')}\n` +
    `${headerValue(request.headers, 'content-type')}\n` +
    `${dateLine}\n` +
    ossHeaders;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(resource, 'utf8')]);
}

export function computeSignature(secret: string, toSign: Buffer): string {
  return createHmac('sha1', secret).update(toSign).digest('base64');
}

interface SignatureClaim {
  readonly accessKeyId: string;
  readonly signature: string;
  /** What goes in the Date slot: x-oss-date/Date for headers, Expires for presigned URLs. */
  readonly dateLine: string;
}

/** Reads who claims to have signed the request, rejecting stale or unsupported forms. */
function readClaim(request: SignedRequest, now: number): SignatureClaim {
  const authorization = headerValue(request.headers, 'authorization');
  if (authorization !== '') {
    const match = /^OSS ([^:\s]+):(\S+)$/.exec(authorization.trim());
    if (match === null) {
      throw new OssError(
        'AccessDenied',
        authorization.startsWith('OSS4-HMAC-SHA256')
          ? 'This test server verifies OSS signature V1 only; do not set authorizationV4.'
          : 'Authorization header is invalid.',
      );
    }
    const dateLine = headerValue(request.headers, 'x-oss-date') || headerValue(request.headers, 'date');
    const signedAt = Date.parse(dateLine);
    if (Number.isNaN(signedAt)) throw new OssError('AccessDenied', 'Invalid date format or missing Date header.');
    if (Math.abs(now - signedAt) > MAX_CLOCK_SKEW_MS) {
      throw new OssError('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
        RequestTime: dateLine,
        ServerTime: new Date(now).toUTCString(),
      });
    }
    return { accessKeyId: match[1] ?? '', signature: match[2] ?? '', dateLine };
  }

  const accessKeyId = request.query.get('OSSAccessKeyId');
  const signature = request.query.get('Signature');
  const expires = request.query.get('Expires');
  if (accessKeyId !== null && signature !== null && expires !== null) {
    if (!/^\d+$/.test(expires) || Number(expires) * 1000 < now) {
      throw new OssError('AccessDenied', 'Request has expired.', { Expires: expires });
    }
    return { accessKeyId, signature, dateLine: expires };
  }

  throw new OssError('AccessDenied', 'You have no right to access this object because of bucket acl.');
}

function signaturesEqual(a: string, b: string): boolean {
  const bufA = Buffer.from(a);
  const bufB = Buffer.from(b);
  return bufA.length === bufB.length && timingSafeEqual(bufA, bufB);
}

/**
 * Verifies the request and returns the first candidate target whose
 * canonical resource the signature covers.
 *
 * Several candidates exist because the bucket can travel in the Host header
 * or in the path, and ali-oss with an IP endpoint and `sldEnable` sends both
 * (`Host: bkt.oss-cn-hangzhou.aliyuncs.com`, path `/bkt/key`). The two
 * readings give different canonical resources, so at most one verifies and
 * the signature itself tells us which addressing the client meant.
 */
export function authenticate(
  request: SignedRequest,
  candidates: readonly ResourceTarget[],
  credentials: Credentials,
  now = Date.now(),
): ResourceTarget {
  const claim = readClaim(request, now);
  if (claim.accessKeyId !== credentials.accessKeyId) {
    throw new OssError('InvalidAccessKeyId', 'The OSS Access Key Id you provided does not exist in our records.', {
      OSSAccessKeyId: claim.accessKeyId,
    });
  }
  let firstStringToSign: Buffer | undefined;
  for (const candidate of candidates) {
    const toSign = stringToSign(request, claim.dateLine, canonicalizedResource(candidate, request.query));
    firstStringToSign ??= toSign;
    if (signaturesEqual(computeSignature(credentials.accessKeySecret, toSign), claim.signature)) return candidate;
  }
  throw new OssError('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
    StringToSign: (firstStringToSign ?? Buffer.alloc(0)).toString('utf8'),
    SignatureProvided: claim.signature,
    OSSAccessKeyId: claim.accessKeyId,
  });
}
