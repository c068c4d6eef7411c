/**
 * A reverse proxy for data-protection tests: forwards every request unchanged
 * (method, URL, all headers incl. Host, so signatures still verify) to an
 * http server (s3rver, the OSS test server), and
 *  - records each request's method, URL and headers, so a test can assert
 *    what a store client SENT (s3rver ignores SSE headers, so this is where
 *    `x-amz-server-side-encryption` is seen);
 *  - optionally terminates TLS with a given certificate (an https endpoint
 *    with a private CA, for `caBundleFile`);
 *  - optionally answers a request itself (`respond`) or adds headers to the
 *    upstream's answer (`responseHeaders`), to play S3 behaviour s3rver lacks
 *    (SSE-C refusals, the SSE-C headers S3 echoes).
 * For fault injection (errors, resets, stalls) see fault-proxy.ts.
 */
import { Agent, createServer as createHttpServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  /** Lower-cased names, as node parsed them. */
  headers: IncomingMessage['headers'];
}

export interface ProxyAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface RecordingProxyOptions {
  /** http base URL of the server behind the proxy. */
  target: string;
  /** Serve https with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Answer without forwarding when this returns an answer. */
  respond?: (req: RecordedRequest) => ProxyAnswer | undefined;
  /** Extra headers for a forwarded answer. */
  responseHeaders?: (req: RecordedRequest, status: number) => Record<string, string> | undefined;
}

export interface RecordingProxy {
  endpoint: string;
  port: number;
  requests: RecordedRequest[];
  /** Requests whose method is `method` and whose URL path (without query) matches `path`. */
  find(method: string, path?: RegExp): RecordedRequest[];
  close(): Promise<void>;
}

export async function startRecordingProxy(options: RecordingProxyOptions): Promise<RecordingProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:') throw new Error('recording proxy: only http targets');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const recorded: RecordedRequest = { method: (req.method ?? 'GET').toUpperCase(), url: req.url ?? '/', headers: { ...req.headers } };
    requests.push(recorded);
    const answer = options.respond?.(recorded);
    if (answer) {
      req.resume();
      const body = recorded.method === 'HEAD' ? '' : (answer.body ?? '');
      res.writeHead(answer.status, { 'content-length': String(Buffer.byteLength(body)), ...answer.headers });
      res.end(body);
      return;
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: recorded.url, headers: req.headers, agent });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    upstream.on('response', (up) => {
      const extra = options.responseHeaders?.(recorded, up.statusCode ?? 0) ?? {};
      const raw = [...up.rawHeaders];
      for (const [k, v] of Object.entries(extra)) raw.push(k, v);
      res.writeHead(up.statusCode ?? 502, raw);
      up.pipe(res);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  const server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handle) : createHttpServer(handle);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  // Failed handshakes (a client refusing our certificate) are expected in tests.
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    port,
    requests,
    find(method: string, path?: RegExp): RecordedRequest[] {
      return requests.filter((r) => r.method === method.toUpperCase() && (!path || path.test(r.url.split('?')[0] ?? '')));
    },
    async close(): Promise<void> {
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closing;
    },
  };
}
