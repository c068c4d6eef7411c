/**
 * The request/response plumbing shared by every OSS operation handler:
 * the per-request context, body reading with digests, Content-MD5 checks
 * and the wire format of replies and errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import type { ResourceTarget } from './oss-server-auth.js';
import { type Crc64Function, md5 } from './oss-server-digest.js';
import { noSuchBucket, OssError } from './oss-server-errors.js';
import type { BucketState, OssStore } from './oss-server-store.js';
import { renderXmlDocument, type XmlElement } from './oss-server-xml.js';

/** Server-wide knobs that change protocol behaviour (not part of any single request). */
export interface ServerBehaviour {
  /** Parts other than the last must be at least this big at Complete time (OSS: 100 KiB). */
  readonly minPartSize: number;
  /** How long an archive restore stays `ongoing-request="true"` before the object is readable. */
  readonly restoreDelayMs: number;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  readonly query: URLSearchParams;
  readonly target: ResourceTarget;
  readonly store: OssStore;
  readonly crc64: Crc64Function;
  readonly behaviour: ServerBehaviour;
}

/** Request bodies that are XML documents are small; cap them instead of buffering whatever arrives. */
export const MAX_XML_BODY_BYTES = 2 * 1024 * 1024;

/** A single request header as a string (node lower-cases names), or undefined when absent. */
export function requestHeader(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

export function requireBucket(ctx: RequestContext): BucketState {
  const name = ctx.target.bucket;
  if (name === undefined) throw new OssError('MethodNotAllowed', 'The specified method is not allowed against this resource.');
  const bucket = ctx.store.bucket(name);
  if (bucket === undefined) throw noSuchBucket(name);
  return bucket;
}

/** The object key of an object-level request (routing guarantees one exists when called). */
export function requireKey(ctx: RequestContext): string {
  const key = ctx.target.key;
  if (key === undefined) throw new OssError('InvalidObjectName', 'The object name is empty.');
  if (Buffer.byteLength(key, 'utf8') > 1023) throw new OssError('KeyTooLong', 'The object name is longer than 1023 bytes.');
  return key;
}

export interface ReceivedBody {
  readonly body: Buffer;
  readonly md5: Buffer;
}

/**
 * Reads the whole request body (chunked or with Content-Length) and checks
 * Content-MD5 when the client sent one. `maxBytes` bounds bodies that are
 * parsed rather than stored, so a runaway client cannot exhaust memory.
 */
export async function readBody(ctx: RequestContext, maxBytes = Number.POSITIVE_INFINITY): Promise<ReceivedBody> {
  const declared = Number(requestHeader(ctx, 'content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    throw new OssError('InvalidArgument', `Request body of ${declared} bytes exceeds the ${maxBytes}-byte limit for this operation.`);
  }
  const chunks: Buffer[] = [];
  let received = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > maxBytes) {
      throw new OssError('InvalidArgument', `Request body exceeds the ${maxBytes}-byte limit for this operation.`);
    }
    chunks.push(chunk);
  }
  const body = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, received);
  const digest = md5([body]);
  verifyContentMd5(requestHeader(ctx, 'content-md5'), digest);
  return { body, md5: digest };
}

function verifyContentMd5(header: string | undefined, actual: Buffer): void {
  if (header === undefined) return;
  const claimed = Buffer.from(header, 'base64');
  if (claimed.length !== 16 || claimed.toString('base64') !== header.trim()) {
    throw new OssError('InvalidDigest', 'The Content-MD5 you specified is not valid.', { 'Content-MD5': header });
  }
  if (!claimed.equals(actual)) {
    throw new OssError('InvalidDigest', 'The Content-MD5 you specified did not match what we received.', {
      'Content-MD5': header,
      CalculatedMD5: actual.toString('base64'),
    });
  }
}

export type ResponseHeaders = Readonly<Record<string, string | number>>;

export function sendEmpty(ctx: RequestContext, status: number, headers: ResponseHeaders = {}): void {
  ctx.res.writeHead(status, { ...headers, 'content-length': headers['content-length'] ?? 0 });
  ctx.res.end();
}

export function sendXml(
  ctx: RequestContext,
  status: number,
  rootName: string,
  content: readonly XmlElement[] | string,
  headers: ResponseHeaders = {},
): void {
  const body = Buffer.from(renderXmlDocument(rootName, content), 'utf8');
  ctx.res.writeHead(status, { ...headers, 'content-type': 'application/xml', 'content-length': body.length });
  ctx.res.end(body);
}

/** Renders an OssError as OSS does: XML body, or for HEAD an `x-oss-err` header carrying that XML in base64. */
export function sendError(res: ServerResponse, method: string, err: OssError, requestId: string, hostId: string): void {
  const xml = renderXmlDocument('Error', [
    ['Code', err.code],
    ['Message', err.message],
    ['RequestId', requestId],
    ['HostId', hostId],
    ...Object.entries(err.details),
  ]);
  const body = Buffer.from(xml, 'utf8');
  if (method === 'HEAD') {
    // A HEAD reply has no body, so OSS smuggles the error document in a header
    // (ali-oss decodes it for statuses other than 404/412).
    res.writeHead(err.status, { 'x-oss-err': body.toString('base64'), 'content-length': 0 });
    res.end();
    return;
  }
  res.writeHead(err.status, { 'content-type': 'application/xml', 'content-length': body.length });
  res.end(body);
}

/** `encoding-type=url` asks for keys percent-encoded in list/delete responses (XML 1.0 cannot carry every key). */
export function keyEncoder(encodingType: string | undefined | null): (text: string) => string {
  if (encodingType === 'url') return (text) => encodeURIComponent(text);
  if (encodingType === undefined || encodingType === null || encodingType === '') return (text) => text;
  throw new OssError('InvalidArgument', 'The encoding-type must be url.', { ArgumentName: 'encoding-type', ArgumentValue: encodingType });
}

/** ISO 8601 with milliseconds, the format OSS uses inside XML. */
export function isoTime(date: Date): string {
  return date.toISOString();
}
