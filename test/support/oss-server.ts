/**
 * An in-process Alibaba Cloud OSS server for tests: a real node:http server
 * on 127.0.0.1 that verifies OSS V1 signatures and implements the object,
 * listing and multipart APIs with OSS's semantics (upper-case ETags,
 * `x-oss-hash-crc64ecma`, archive restore, OSS error XML).
 *
 * Talking to it with ali-oss 6.x:
 *
 *   new OSS({ region: 'oss-cn-hangzhou', endpoint: server.endpoint, bucket,
 *             accessKeyId: server.accessKeyId, accessKeySecret: server.accessKeySecret })
 *
 * With an IP endpoint ali-oss sends `PUT /key` and names the bucket only in
 * `Host: bucket.oss-cn-hangzhou.aliyuncs.com`; the server understands that,
 * plain path style (`/bucket/key`) and `Host: bucket.127.0.0.1:PORT`.
 * See oss-server-routing.ts.
 *
 * The implementation is split by job: routing (which bucket/key), auth
 * (signature), operations (which handler), objects/multipart/list/buckets
 * (the handlers), store (state), attributes/conditions/digest/xml (helpers).
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import OSS from 'ali-oss';

import { objectHeaders } from './oss-server-attributes.js';
import { authenticate, type Credentials, type ResourceTarget, type SignedRequest } from './oss-server-auth.js';
import { loadCrc64 } from './oss-server-digest.js';
import { OssError } from './oss-server-errors.js';
import { type RequestContext, sendError, type ServerBehaviour } from './oss-server-http.js';
import { selectOperation } from './oss-server-operations.js';
import { routeCandidates } from './oss-server-routing.js';
import { OssStore } from './oss-server-store.js';

export interface OssServer {
  endpoint: string; // 'http://127.0.0.1:PORT'
  port: number;
  accessKeyId: string;
  accessKeySecret: string; // the credentials it accepts
  createBucket(name: string): void;
  /** Every request seen (method, path, query, headers lower-cased), for tests that assert headers (e.g. SSE). */
  requests: {
    method: string;
    bucket?: string;
    key?: string;
    query: Record<string, string>;
    headers: Record<string, string | string[] | undefined>;
  }[];
  /**
   * Direct read of stored state for assertions: undefined when missing.
   * `etag` is unquoted upper-case hex (`…-N` for multipart); `crc64` is the
   * unsigned decimal CRC-64/XZ; `headers` are the object's own GET headers
   * (content-type, cache-control, …, x-oss-storage-class,
   * x-oss-server-side-encryption[-key-id], x-oss-object-type, …) without
   * `x-oss-meta-*`; `meta` maps the lower-cased name without the prefix to
   * the value. Header and meta values are decoded as UTF-8 when their wire
   * bytes are valid UTF-8.
   */
  getObject(
    bucket: string,
    key: string,
  ): { body: Buffer; headers: Record<string, string>; meta: Record<string, string>; etag: string; crc64: string } | undefined;
  /** Count of multipart uploads still in progress in a bucket (to assert "no orphans"). */
  pendingUploads(bucket: string): number;
  /** An ali-oss client for `bucket` on this server (one per bucket, reused; its sockets are released by close()). */
  client(bucket: string): OSS;
  close(): Promise<void>;
}

export interface StartOssServerOptions {
  accessKeyId?: string;
  accessKeySecret?: string;
  buckets?: string[];
  /** Minimum size of every part but the last at Complete time. Default 100 KiB, as in OSS. */
  minPartSize?: number;
  /** Time an archive restore stays in progress before the object is readable. Default 0 (immediate). */
  restoreDelayMs?: number;
}

const DEFAULT_MIN_PART_SIZE = 100 * 1024;

/** Request ids look like OSS's: 24 upper-case hex digits. */
function newRequestId(): string {
  return randomBytes(12).toString('hex').toUpperCase();
}

/**
 * Header values reach node:http as latin1 (one char per byte). For
 * assertions, show them as the UTF-8 text the client most likely meant,
 * falling back to the raw form when the bytes are not UTF-8.
 */
function wireToText(value: string): string {
  const bytes = Buffer.from(value, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes) ? text : value;
}

function mapValues(record: Readonly<Record<string, string>>, fn: (value: string) => string): Record<string, string> {
  return Object.fromEntries(Object.entries(record).map(([name, value]) => [name, fn(value)]));
}

function splitUrl(rawUrl: string): { rawPath: string; query: URLSearchParams } {
  const queryStart = rawUrl.indexOf('?');
  return queryStart === -1
    ? { rawPath: rawUrl, query: new URLSearchParams() }
    : { rawPath: rawUrl.slice(0, queryStart), query: new URLSearchParams(rawUrl.slice(queryStart + 1)) };
}

/**
 * Routes and authenticates a request. On failure the error is returned, not
 * thrown, together with the best guess at the target so the request log
 * still says which bucket/key a rejected request was aimed at.
 */
function resolveTarget(
  request: SignedRequest,
  hostHeader: string | undefined,
  rawPath: string,
  credentials: Credentials,
): { target: ResourceTarget; failure?: unknown } {
  let target: ResourceTarget = {};
  try {
    const candidates = routeCandidates(hostHeader, rawPath);
    target = candidates[0] ?? {};
    return { target: authenticate(request, candidates, credentials) };
  } catch (failure) {
    return { target, failure };
  }
}

export async function startOssServer(opts: StartOssServerOptions = {}): Promise<OssServer> {
  // Random per server so no test can come to depend on (or leak) fixed keys.
  const credentials: Credentials = {
    accessKeyId: opts.accessKeyId ?? `test-ak-${randomBytes(8).toString('hex')}`,
    accessKeySecret: opts.accessKeySecret ?? `test-sk-${randomBytes(18).toString('base64url')}`,
  };
  const behaviour: ServerBehaviour = {
    minPartSize: opts.minPartSize ?? DEFAULT_MIN_PART_SIZE,
    restoreDelayMs: opts.restoreDelayMs ?? 0,
  };
  const store = new OssStore();
  for (const bucket of opts.buckets ?? []) store.createBucket(bucket);
  const crc64 = await loadCrc64();
  const requests: OssServer['requests'] = [];

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const method = (req.method ?? 'GET').toUpperCase();
    res.setHeader('x-oss-request-id', requestId);
    res.setHeader('server', 'AliyunOSS');
    res.setHeader('date', new Date().toUTCString());

    const { rawPath, query } = splitUrl(req.url ?? '/');
    const { target, failure } = resolveTarget({ method, headers: req.headers, query }, req.headers.host, rawPath, credentials);
    requests.push({
      method,
      ...(target.bucket === undefined ? {} : { bucket: target.bucket }),
      ...(target.key === undefined ? {} : { key: target.key }),
      query: Object.fromEntries(query),
      headers: { ...req.headers },
    });
    try {
      if (failure !== undefined) throw failure;
      const ctx: RequestContext = { req, res, method, query, target, store, crc64, behaviour };
      await selectOperation(ctx)(ctx);
    } catch (err) {
      const ossError = err instanceof OssError ? err : new OssError('InternalError', `Test server failure: ${(err as Error).message}`);
      // Unread request bodies are drained so a keep-alive connection stays usable.
      req.resume();
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendError(res, method, ossError, requestId, req.headers.host ?? '127.0.0.1');
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const clients = new Map<string, OSS>();

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    accessKeyId: credentials.accessKeyId,
    accessKeySecret: credentials.accessKeySecret,
    requests,
    createBucket(name: string): void {
      store.createBucket(name);
    },
    getObject(bucket, key) {
      const object = store.bucket(bucket)?.getObject(key);
      if (object === undefined) return undefined;
      return {
        body: object.body,
        headers: mapValues(objectHeaders(object), wireToText),
        meta: mapValues(object.attributes.meta, wireToText),
        etag: object.etag,
        crc64: object.crc64,
      };
    },
    pendingUploads(bucket: string): number {
      return store.bucket(bucket)?.uploads.size ?? 0;
    },
    client(bucket: string): OSS {
      let c = clients.get(bucket);
      if (!c) {
        c = new OSS({ region: 'oss-cn-hangzhou', endpoint: `http://127.0.0.1:${port}`, accessKeyId: credentials.accessKeyId, accessKeySecret: credentials.accessKeySecret, bucket, secure: false });
        clients.set(bucket, c);
      }
      return c;
    },
    close(): Promise<void> {
      for (const c of clients.values()) (c as unknown as { agent?: { destroy(): void } }).agent?.destroy();
      clients.clear();
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // ali-oss keeps connections alive; without this close() would wait for them to idle out.
        server.closeAllConnections();
      });
    },
  };
}
