/**
 * The hot S3 requests of a copy (HEAD, GET, PUT, UploadPart) sent without the
 * SDK's middleware stack: SigV4-signed with @smithy/signature-v4 (the SDK's own
 * signer) and sent on the store's keep-alive agents with node:http(s) — except
 * GETs, whose bodies are read straight into the reader's buffers on connections
 * of their own (direct-http.ts).
 *
 * Why: measured against s3rver on loopback (bench/copy/store-requests.mjs), the
 * SDK spends 1.1–1.9 ms of client CPU per request, whatever its size, in its
 * per-send machinery (the middleware stack is cloned and sorted for every
 * command, schema serde, endpoint parameters, retry and signing wrappers);
 * signing plus the HTTP exchange needs about a quarter of that. On 2 cores
 * shared with the stores, that CPU is copy throughput.
 *
 * What stays the SDK's: everything it resolves once per client. The endpoint
 * and signing scope come from the SDK's own endpoint rules for this bucket
 * (path or virtual-hosted style, FIPS, dual-stack, custom endpoints), resolved
 * once; a bucket whose rules ask for anything but plain SigV4 (S3 Express,
 * multi-region access points) is not served here (`open` answers undefined) and
 * the caller uses the SDK. Credentials are the client's provider (any source,
 * refreshed by the SDK); the clock offset is the client's (corrected here too
 * when a store says our clock is skewed).
 *
 * Behaviour kept from the SDK path (so errors map to the same StorageError
 * through s3Error): error bodies are parsed for Code and Message, a bare 404 is
 * "NotFound"; one retry, as the SDK's standard strategy with maxAttempts 2, for
 * a failure before any answer (a dropped keep-alive socket, a refused
 * connection, a timeout), 5xx and throttling, after a short jittered pause;
 * an idle-socket timeout that covers connecting, waiting and the response body;
 * a 10 s connection timeout.
 *
 * Payload: `UNSIGNED-PAYLOAD` only over https and only when the request carries
 * Content-MD5 (as botocore does): TLS protects the bytes in transit and the
 * store checks them against the signed Content-MD5. Over plain http the body's
 * SHA-256 is signed, as every AWS SDK does — S3 accepts unsigned payloads there
 * too, but then nothing but MD5 would stop an on-path rewrite of the body.
 * A caller that read the body anyway passes the hash it computed as the bytes
 * arrived (S3Exchange.payloadSha256; the copy does, ObjectStore.payloadSha256Wanted):
 * hashing an 8 MiB part again before sending reads it back from memory long
 * out of cache, and cost the 1 GiB bench copy ≈ 0.5 CPU-s more (bench/README.md,
 * "## Copy"). Otherwise a large body's SHA-256 is computed on libuv's thread
 * pool (WebCrypto), not on the event loop.
 */
import { createHash, createHmac, webcrypto, type Hash, type Hmac } from 'node:crypto';
import { request as httpRequest, type Agent as HttpAgent, type IncomingHttpHeaders, type IncomingMessage, type ClientRequest } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import type { S3Client } from '@aws-sdk/client-s3';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { getEndpointFromInstructions } from '@smithy/core/endpoints';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Readable } from 'node:stream';
import { DirectHttpClient, timeoutError } from './direct-http.js';

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** Bodies from this size on (parts, large single PUTs) are hashed off the event loop; small ones, the common case, in line: their hash is short, and a pool round trip per request would only add latency. */
const OFF_LOOP_SHA256_BYTES = 1024 * 1024;

/** Hex SHA-256 of a request body (off the event loop when large). */
async function payloadSha256(body: Buffer): Promise<string> {
  if (body.length < OFF_LOOP_SHA256_BYTES) return createHash('sha256').update(body).digest('hex');
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', body)).toString('hex');
}

/** node:crypto behind the Checksum interface SignatureV4 expects (what the SDK uses in Node). */
type SourceData = string | ArrayBuffer | ArrayBufferView;
function bytes(data: SourceData): string | Uint8Array {
  if (typeof data === 'string') return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return new Uint8Array(data);
}

class NodeSha256 {
  #secret: string | Uint8Array | undefined;
  #hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? undefined : bytes(secret);
    this.#hash = this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
  update(data: SourceData): void {
    this.#hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return this.#hash.digest();
  }
  reset(): void {
    this.#hash = this.#secret === undefined ? createHash('sha256') : createHmac('sha256', this.#secret);
  }
}

/** RFC 3986 encoding as S3 (and the SDK's serializers) use in paths and query strings. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** An answer with an error status, shaped like the SDK's service exceptions so s3Error maps both alike. */
export class S3ResponseError extends Error {
  readonly Code: string | undefined;
  readonly $metadata: { httpStatusCode: number };
  constructor(status: number, code: string | undefined, message: string | undefined) {
    super(message ?? 'UnknownError');
    // The SDK names a bare 404 NotFound and any other unparsable error Unknown.
    this.name = code ?? (status === 404 ? 'NotFound' : 'Unknown');
    this.Code = code;
    this.$metadata = { httpStatusCode: status };
  }
}

const XML_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
function xmlText(s: string): string {
  return s.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-fA-F]+|#\d+);/g, (_m, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(Number(e.slice(1))) : XML_ENTITIES[e]!,
  );
}

/** Code and Message of an S3 error document (`<Error><Code>…</Code><Message>…</Message>…`). */
export function parseErrorBody(body: string): { code?: string; message?: string } {
  const code = /<Code>([^<]*)<\/Code>/.exec(body)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
  return { ...(code !== undefined ? { code: xmlText(code) } : {}), ...(message !== undefined ? { message: xmlText(message) } : {}) };
}

const RETRY_ERROR_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'TimeoutError', 'ConnectionTimeoutError']);
const THROTTLING_CODES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestThrottled', 'TooManyRequestsException']);
const CLOCK_SKEW_CODES = new Set(['RequestTimeTooSkewed', 'RequestExpired', 'SignatureDoesNotMatch', 'AuthFailure']);
/** The SDK corrects its clock when a store's Date is this far from ours. */
const CLOCK_SKEW_MS = 300_000;

export interface S3Exchange {
  method: 'HEAD' | 'GET' | 'PUT';
  key: string;
  query?: Record<string, string>;
  /** Lower-case names; host, date, payload hash and authorization are added here. */
  headers: Record<string, string>;
  body?: Buffer;
  /** Hex SHA-256 of `body`, when the caller computed it as the bytes arrived (ObjectStore.payloadSha256Wanted); else hashed here. */
  payloadSha256?: string;
  /**
   * A HEAD whose 404 is an answer, not a failure: send() resolves null instead
   * of reading an error body and building an error (a new object's destination
   * HEAD is the common case, once per copied object; the error path cost
   * ≈ 0.07 ms of CPU each in the copy bench's profile).
   */
  missingOk?: boolean;
}

/** An answer: its status, headers and body stream (node:http's IncomingMessage, or direct-http.ts's DirectResponse for a GET). */
export type S3Response = Readable & { statusCode?: number | undefined; headers: IncomingHttpHeaders };

export interface S3RequestsOptions {
  httpAgent: HttpAgent;
  httpsAgent: HttpsAgent;
  /**
   * GETs read their bodies straight into the caller's buffers (direct-http.ts)
   * instead of through node:http. Default true; false for comparisons.
   */
  directGets?: boolean;
  /** Idle time on a socket (connecting, waiting, streaming) before the request fails with Timeout. */
  socketTimeoutMs: number;
  connectionTimeoutMs: number;
}

export class S3Requests {
  readonly #client: S3Client;
  readonly #signer: SignatureV4;
  readonly #options: S3RequestsOptions;
  readonly #https: boolean;
  readonly #hostname: string;
  readonly #port: number | undefined;
  readonly #host: string;
  /** Path of the bucket on the endpoint, without a trailing slash ("" when virtual-hosted). */
  readonly #base: string;
  /** GETs: connections of their own, read with onread (direct-http.ts); made on the first GET. */
  #direct: DirectHttpClient | undefined;

  private constructor(client: S3Client, url: URL, signing: { name: string; region: string }, options: S3RequestsOptions) {
    this.#client = client;
    this.#options = options;
    this.#https = url.protocol === 'https:';
    this.#hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    this.#port = url.port === '' ? undefined : Number(url.port);
    this.#host = url.host;
    this.#base = url.pathname.replace(/\/+$/, '');
    this.#signer = new SignatureV4({
      credentials: client.config.credentials,
      region: signing.region,
      service: signing.name,
      sha256: NodeSha256,
      // S3 signs the path as sent; keys are encoded once, here.
      uriEscapePath: false,
      applyChecksum: false,
    });
  }

  #directClient(): DirectHttpClient | undefined {
    if (this.#options.directGets === false) return undefined;
    if (this.#direct) return this.#direct;
    const agentTls = this.#options.httpsAgent.options;
    this.#direct = new DirectHttpClient({
      https: this.#https,
      hostname: this.#hostname,
      ...(this.#port !== undefined ? { port: this.#port } : {}),
      host: this.#host,
      // The https agent's trust settings (a task's caBundleFile becomes its `ca`).
      tls: {
        ...(agentTls.ca !== undefined ? { ca: agentTls.ca } : {}),
        rejectUnauthorized: agentTls.rejectUnauthorized !== false,
      },
      socketTimeoutMs: this.#options.socketTimeoutMs,
      connectionTimeoutMs: this.#options.connectionTimeoutMs,
      maxIdle: this.#options.httpAgent.maxFreeSockets,
    });
    return this.#direct;
  }

  /** Close the idle connections of direct GETs (the agents are the store's to destroy). */
  close(): void {
    this.#direct?.close();
  }

  /**
   * Requests for `bucket` through `client`'s endpoint rules, or undefined when
   * those rules want more than plain SigV4 with no extra headers.
   */
  static async open(client: S3Client, bucket: string, options: S3RequestsOptions): Promise<S3Requests | undefined> {
    const endpoint = await getEndpointFromInstructions({ Bucket: bucket, Key: 'k' }, HeadObjectCommand, client.config);
    const schemes = (endpoint.properties?.['authSchemes'] ?? []) as { name?: string; signingName?: string; signingRegion?: string }[];
    const scheme = schemes[0];
    if (!scheme || scheme.name !== 'sigv4' || Object.keys(endpoint.headers ?? {}).length > 0) return undefined;
    const region = scheme.signingRegion ?? (await client.config.region());
    return new S3Requests(client, endpoint.url, { name: scheme.signingName ?? 's3', region }, options);
  }

  get https(): boolean {
    return this.#https;
  }

  /**
   * Send one request; resolves with the response (status < 300) whose body the
   * caller consumes or destroys, rejects with S3ResponseError for an error
   * answer or the socket's error. Retried once as described above.
   */
  send(exchange: S3Exchange & { missingOk: true }): Promise<S3Response | null>;
  send(exchange: S3Exchange): Promise<S3Response>;
  async send(exchange: S3Exchange): Promise<S3Response | null> {
    const payloadHash =
      exchange.body === undefined || exchange.body.length === 0
        ? EMPTY_SHA256
        : this.#https && exchange.headers['content-md5'] !== undefined
          ? UNSIGNED_PAYLOAD
          : (exchange.payloadSha256 ?? (await payloadSha256(exchange.body)));
    const path = `${this.#base}/${exchange.key.split('/').map(uriEncode).join('/')}`;
    const query = exchange.query;
    const target = query
      ? `${path}?${Object.keys(query)
          .sort()
          .map((k) => `${uriEncode(k)}=${uriEncode(query[k]!)}`)
          .join('&')}`
      : path;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once(exchange, path, target, payloadHash);
      } catch (err) {
        const retry = attempt < 2 ? this.#retryDelay(err) : undefined;
        if (retry === undefined) throw err;
        await new Promise((r) => setTimeout(r, retry));
      }
    }
  }

  /** Milliseconds to wait before the one retry, or undefined when the failure is not worth one. */
  #retryDelay(err: unknown): number | undefined {
    if (err instanceof S3ResponseError) {
      const status = err.$metadata.httpStatusCode;
      if (err.Code !== undefined && CLOCK_SKEW_CODES.has(err.Code) && (err as { clockCorrected?: boolean }).clockCorrected) return 0;
      if (status === 429 || (err.Code !== undefined && THROTTLING_CODES.has(err.Code))) return Math.random() * 1000;
      if (status === 500 || status === 502 || status === 503 || status === 504) return Math.random() * 200;
      return undefined;
    }
    const e = err as { code?: string; name?: string };
    return RETRY_ERROR_CODES.has(e.code ?? e.name ?? '') ? Math.random() * 200 : undefined;
  }

  async #once(exchange: S3Exchange, path: string, target: string, payloadHash: string): Promise<S3Response | null> {
    const signed = await this.#signer.sign(
      {
        method: exchange.method,
        protocol: this.#https ? 'https:' : 'http:',
        hostname: this.#hostname,
        ...(this.#port !== undefined ? { port: this.#port } : {}),
        path,
        query: exchange.query ?? {},
        headers: { ...exchange.headers, host: this.#host, 'x-amz-content-sha256': payloadHash },
      },
      { signingDate: new Date(Date.now() + (this.#client.config.systemClockOffset ?? 0)) },
    );
    const direct = exchange.method === 'GET' ? this.#directClient() : undefined;
    const response = direct ? await direct.get(target, signed.headers) : await this.#exchange(exchange.method, target, signed.headers, exchange.body);
    const status = response.statusCode ?? 0;
    if (status < 300) return response;
    if (status === 404 && exchange.missingOk && exchange.method === 'HEAD') {
      response.resume();
      return null;
    }
    throw await this.#errorFrom(response, status);
  }

  async #errorFrom(response: S3Response, status: number): Promise<S3ResponseError> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const c of response) {
        // An error document is small; do not buffer a large body an odd store may send.
        if (size < 64 * 1024) chunks.push(c as Buffer);
        size += (c as Buffer).length;
      }
    } catch {
      // A broken error body still has its status.
    }
    const { code, message } = parseErrorBody(Buffer.concat(chunks).toString('utf8'));
    const err = new S3ResponseError(status, code, message);
    // As the SDK: a store whose clock is far from ours says so with its Date; sign with its time from now on.
    const date = response.headers['date'];
    const serverTime = date ? Date.parse(date) : NaN;
    if (Number.isFinite(serverTime)) {
      const config = this.#client.config as { systemClockOffset?: number };
      const offset = config.systemClockOffset ?? 0;
      if (Math.abs(serverTime - (Date.now() + offset)) >= CLOCK_SKEW_MS) {
        config.systemClockOffset = serverTime - Date.now();
        Object.assign(err, { clockCorrected: true });
      }
    }
    return err;
  }

  #exchange(method: string, path: string, headers: Record<string, string>, body: Buffer | undefined): Promise<IncomingMessage> {
    const { socketTimeoutMs, connectionTimeoutMs } = this.#options;
    return new Promise((resolve, reject) => {
      let req: ClientRequest;
      try {
        req = (this.#https ? httpsRequest : httpRequest)({
          agent: this.#https ? this.#options.httpsAgent : this.#options.httpAgent,
          method,
          hostname: this.#hostname,
          ...(this.#port !== undefined ? { port: this.#port } : {}),
          path,
          headers: body !== undefined ? { ...headers, 'content-length': String(body.length) } : headers,
        });
      } catch (err) {
        // Node refuses what it cannot send (a header with characters outside latin1...).
        reject(err);
        return;
      }
      let response: IncomingMessage | undefined;
      let connectTimer: NodeJS.Timeout | undefined;
      const fail = (err: Error): void => {
        // After the headers the error belongs to the body stream the caller reads.
        if (response) response.destroy(err);
        else req.destroy(err);
      };
      req.setTimeout(socketTimeoutMs, () => fail(timeoutError('socket idle', socketTimeoutMs)));
      req.once('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () => fail(timeoutError('connecting took longer than', connectionTimeoutMs, 'ConnectionTimeoutError')),
          connectionTimeoutMs,
        );
        socket.once(this.#https ? 'secureConnect' : 'connect', () => clearTimeout(connectTimer));
      });
      req.once('response', (res) => {
        clearTimeout(connectTimer);
        response = res;
        resolve(res);
      });
      req.on('error', (err) => {
        clearTimeout(connectTimer);
        if (!response) reject(err);
      });
      req.end(body);
    });
  }
}

/** Response headers as the SDK's HeadObject/GetObject outputs name them (the fields S3Store reads). */
export interface S3HeadFields {
  ContentLength?: number;
  ETag?: string;
  LastModified?: Date;
  Metadata?: Record<string, string>;
  StorageClass?: string;
  Restore?: string;
  ArchiveStatus?: string;
  ContentType?: string;
  ContentEncoding?: string;
  ContentDisposition?: string;
  ContentLanguage?: string;
  CacheControl?: string;
  ContentRange?: string;
  /** The raw Expires header. */
  ExpiresString?: string;
  SSECustomerAlgorithm?: string;
  ServerSideEncryption?: string;
  SSEKMSKeyId?: string;
  ChecksumCRC64NVME?: string;
  ChecksumCRC32C?: string;
  ChecksumCRC32?: string;
  ChecksumSHA1?: string;
  ChecksumSHA256?: string;
  ChecksumType?: string;
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(', ') : v;
}

export function headFields(h: IncomingHttpHeaders): S3HeadFields {
  const out: S3HeadFields = {};
  const set = <K extends keyof S3HeadFields>(k: K, v: S3HeadFields[K] | undefined): void => {
    if (v !== undefined) out[k] = v;
  };
  const length = one(h['content-length']);
  if (length !== undefined && /^\d+$/.test(length)) out.ContentLength = Number(length);
  set('ETag', one(h['etag']));
  const modified = one(h['last-modified']);
  if (modified !== undefined && Number.isFinite(Date.parse(modified))) out.LastModified = new Date(modified);
  const metadata: Record<string, string> = {};
  let hasMetadata = false;
  for (const [name, value] of Object.entries(h)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    metadata[name.slice('x-amz-meta-'.length)] = one(value)!;
    hasMetadata = true;
  }
  if (hasMetadata) out.Metadata = metadata;
  set('StorageClass', one(h['x-amz-storage-class']));
  set('Restore', one(h['x-amz-restore']));
  set('ArchiveStatus', one(h['x-amz-archive-status']));
  set('ContentType', one(h['content-type']));
  set('ContentEncoding', one(h['content-encoding']));
  set('ContentDisposition', one(h['content-disposition']));
  set('ContentLanguage', one(h['content-language']));
  set('CacheControl', one(h['cache-control']));
  set('ContentRange', one(h['content-range']));
  set('ExpiresString', one(h['expires']));
  set('SSECustomerAlgorithm', one(h['x-amz-server-side-encryption-customer-algorithm']));
  set('ServerSideEncryption', one(h['x-amz-server-side-encryption']));
  set('SSEKMSKeyId', one(h['x-amz-server-side-encryption-aws-kms-key-id']));
  set('ChecksumCRC64NVME', one(h['x-amz-checksum-crc64nvme']));
  set('ChecksumCRC32C', one(h['x-amz-checksum-crc32c']));
  set('ChecksumCRC32', one(h['x-amz-checksum-crc32']));
  set('ChecksumSHA1', one(h['x-amz-checksum-sha1']));
  set('ChecksumSHA256', one(h['x-amz-checksum-sha256']));
  set('ChecksumType', one(h['x-amz-checksum-type']));
  return out;
}
