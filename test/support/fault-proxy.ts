/**
 * An HTTP reverse proxy for fault injection in tests: put it in front of a
 * real server (s3rver, the OSS test server, the service itself) and it
 * forwards every request unchanged (method, path, query, all headers incl.
 * Host, so signatures still verify) until a rule says otherwise.
 *
 * A rule matches requests (method, path, query, headers, or any predicate)
 * and acts on a window of its matches (`nth`, or `after` + `times`):
 *   - flip one byte of the response body or of the request body (in transit:
 *     lengths and headers are kept, so only a checksum can tell);
 *   - answer itself with an error status and an S3/OSS-style XML error body
 *     (500 InternalError, 503 SlowDown, 403 AccessDenied, ...);
 *   - reset the connection (before forwarding, or after N response bytes);
 *   - stall (never answer until released or closed), or delay;
 *   - change response headers (e.g. the checksum a server reports);
 *   - run an async hook before forwarding (e.g. overwrite the object the
 *     request is about to read, then let it through), or in the middle of a
 *     response (e.g. overwrite the object a GET is streaming).
 * Every request is logged with the rules that fired on it, so tests can
 * count "parts uploaded" without a server-side log.
 *
 *   const proxy = await startFaultProxy({ target: s3.endpoint });
 *   const flip = proxy.add({ match: { method: 'GET', path: /\/src\/big/ }, nth: 1, action: { type: 'flip-response-byte' } });
 *   // ... run the copy against proxy.endpoint ...
 *   t.equal(flip.fired, 1);
 */
import { Agent, createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';

export interface ProxyRequestInfo {
  /** 1-based sequence number over all requests this proxy saw. */
  seq: number;
  method: string;
  /** Raw path, percent-encoded as sent (no query). */
  rawPath: string;
  /** Path with percent-encoding decoded (falls back to the raw path when it is not valid encoding). */
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
}

export interface RequestMatch {
  method?: string | string[];
  /** Tested against the decoded path; a string must be equal, a RegExp must match. */
  path?: string | RegExp;
  /** Every named parameter must be present; a string value must also be equal, a RegExp must match. */
  query?: Record<string, string | RegExp | true>;
  /** Every named header (lower-case) must be present; a string value must be equal, a RegExp must match. */
  headers?: Record<string, string | RegExp | true>;
  test?: (info: ProxyRequestInfo) => boolean;
}

export type FaultAction =
  /** Flip (xor 0xff) the byte at `offset` of the response body (default: the middle byte). Bodies shorter than that pass unchanged. */
  | { type: 'flip-response-byte'; offset?: number }
  /**
   * Flip the byte at `offset` of the request body (default: the middle byte).
   * `dropHeaders` removes request headers (e.g. 'content-md5') and `setHeaders`
   * replaces some (e.g. a signed payload hash by UNSIGNED-PAYLOAD) so the server
   * cannot see the damage and stores it: the check must then come from what it answers.
   */
  | { type: 'flip-request-byte'; offset?: number; dropHeaders?: string[]; setHeaders?: Record<string, string> }
  /** Answer without forwarding. `code` and `message` go into an XML error body (not for HEAD). */
  | { type: 'status'; status: number; code?: string; message?: string; headers?: Record<string, string> }
  /** Destroy the client connection: before forwarding (`afterBytes` unset) or after that many response body bytes. */
  | { type: 'reset'; afterBytes?: number }
  /** Hold the request unanswered until `release()` / `close()` (the client sees a timeout or its own abort). */
  | { type: 'stall' }
  /** Wait `ms` before forwarding. */
  | { type: 'delay'; ms: number }
  /** Forward, then change the response headers (e.g. a checksum the server reports). Names are lower-case. */
  | { type: 'response-headers'; set?: Record<string, string>; remove?: string[] }
  /** Run `hook` before forwarding; the request waits for it. A throw answers 500. */
  | { type: 'hook'; hook: (info: ProxyRequestInfo) => Promise<void> | void }
  /** Forward; once `afterBytes` bytes of a 200/206 response body have been passed on, hold the rest until `hook` has run. */
  | { type: 'hook-mid-response'; afterBytes: number; hook: (info: ProxyRequestInfo) => Promise<void> | void };

export interface FaultRule {
  match?: RequestMatch;
  /** Act on the Nth matching request only (1-based); shorthand for `after: nth - 1, times: 1`. */
  nth?: number;
  /** Let this many matching requests pass before acting. Default 0. */
  after?: number;
  /** Act on this many matching requests (after `after`). Default: unlimited (1 with `nth`). */
  times?: number;
  action: FaultAction;
}

export interface RuleHandle {
  readonly rule: FaultRule;
  /** Matching requests seen so far. */
  readonly matched: number;
  /** Times the action ran. */
  readonly fired: number;
  remove(): void;
}

export interface ProxyLogEntry extends ProxyRequestInfo {
  /** Status sent to the client (undefined while in flight, or after a reset/stall). */
  status?: number;
  /** Indexes (in add order) of the rules whose action ran on this request. */
  faults: string[];
}

export interface FaultProxy {
  endpoint: string;
  port: number;
  /** Every request, in arrival order. */
  log: ProxyLogEntry[];
  add(rule: FaultRule): RuleHandle;
  /** Remove every rule. */
  clear(): void;
  /** Let stalled requests go on (they are forwarded). */
  release(): void;
  close(): Promise<void>;
}

export interface FaultProxyOptions {
  /** Base URL of the server behind the proxy, e.g. http://127.0.0.1:9000 (http only). */
  target: string;
}

interface Rule extends RuleHandle {
  matched: number;
  fired: number;
  name: string;
}

function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

function valueMatches(expected: string | RegExp | true, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  if (expected === true) return true;
  return typeof expected === 'string' ? expected === actual : expected.test(actual);
}

function matches(m: RequestMatch | undefined, info: ProxyRequestInfo): boolean {
  if (!m) return true;
  if (m.method !== undefined) {
    const methods = Array.isArray(m.method) ? m.method : [m.method];
    if (!methods.some((x) => x.toUpperCase() === info.method)) return false;
  }
  if (m.path !== undefined && !(typeof m.path === 'string' ? m.path === info.path : m.path.test(info.path))) return false;
  for (const [name, expected] of Object.entries(m.query ?? {})) {
    if (!valueMatches(expected, info.query[name])) return false;
  }
  for (const [name, expected] of Object.entries(m.headers ?? {})) {
    const v = info.headers[name.toLowerCase()];
    if (!valueMatches(expected, Array.isArray(v) ? v.join(',') : v)) return false;
  }
  return m.test ? m.test(info) : true;
}

/** Flips one byte at a body offset, whatever the chunking. */
function flipper(offset: number | undefined, length: number | undefined, onFlip: () => void): Transform {
  let at = offset ?? (length !== undefined && length > 0 ? Math.floor(length / 2) : 0);
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      if (at >= seen && at < seen + chunk.length) {
        const copy = Buffer.from(chunk);
        copy[at - seen] = copy[at - seen]! ^ 0xff;
        at = -1;
        onFlip();
        seen += chunk.length;
        cb(null, copy);
        return;
      }
      seen += chunk.length;
      cb(null, chunk);
    },
  });
}

/** Passes a body on, holding it at `afterBytes` until `hook` has run. */
function midResponseHook(afterBytes: number, hook: () => Promise<void> | void, onFire: () => void): Transform {
  let seen = 0;
  let fired = false;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      if (fired || seen + chunk.length <= afterBytes) {
        seen += chunk.length;
        cb(null, chunk);
        return;
      }
      fired = true;
      const before = chunk.subarray(0, afterBytes - seen);
      seen += chunk.length;
      if (before.length > 0) this.push(before);
      Promise.resolve()
        .then(hook)
        .then(
          () => {
            onFire();
            cb(null, chunk.subarray(before.length));
          },
          (err: unknown) => cb(err as Error),
        );
    },
  });
}

function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const DEFAULT_CODES: Record<number, string> = {
  400: 'InvalidRequest',
  403: 'AccessDenied',
  404: 'NoSuchKey',
  409: 'Conflict',
  412: 'PreconditionFailed',
  500: 'InternalError',
  503: 'SlowDown',
};

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:') throw new Error('fault proxy: only http targets');
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const rules: Rule[] = [];
  const log: ProxyLogEntry[] = [];
  const stalled = new Set<() => void>();
  const sockets = new Set<Socket>();
  let seq = 0;
  let ruleCount = 0;

  function firing(info: ProxyRequestInfo, entry: ProxyLogEntry): Rule[] {
    const out: Rule[] = [];
    for (const rule of rules) {
      if (!matches(rule.rule.match, info)) continue;
      rule.matched++;
      const after = rule.rule.nth !== undefined ? rule.rule.nth - 1 : (rule.rule.after ?? 0);
      const times = rule.rule.times ?? (rule.rule.nth !== undefined ? 1 : Number.POSITIVE_INFINITY);
      if (rule.matched > after && rule.matched <= after + times) {
        out.push(rule);
        entry.faults.push(rule.name);
      }
    }
    return out;
  }

  function sendError(req: IncomingMessage, res: ServerResponse, status: number, code?: string, message?: string, headers: Record<string, string> = {}): void {
    const c = code ?? DEFAULT_CODES[status] ?? 'InternalError';
    const body =
      req.method === 'HEAD'
        ? ''
        : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(c)}</Code><Message>${xmlEscape(message ?? `injected by the fault proxy (${status})`)}</Message><RequestId>FAULTPROXY</RequestId></Error>`;
    req.resume();
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    const query = Object.fromEntries(new URLSearchParams(q === -1 ? '' : url.slice(q + 1)));
    const info: ProxyRequestInfo = { seq: ++seq, method: (req.method ?? 'GET').toUpperCase(), rawPath, path: decodePath(rawPath), query, headers: req.headers };
    const entry: ProxyLogEntry = { ...info, faults: [] };
    log.push(entry);
    const fired = firing(info, entry);

    let flipResponse: { offset: number | undefined; rule: Rule } | undefined;
    let flipRequest: { offset: number | undefined; rule: Rule } | undefined;
    let midHook: { afterBytes: number; hook: () => Promise<void> | void; rule: Rule } | undefined;
    let resetAfter: number | undefined;
    let rewrite: { set: Record<string, string>; remove: string[]; rule: Rule } | undefined;
    const headers = { ...req.headers };
    for (const rule of fired) {
      const a = rule.rule.action;
      switch (a.type) {
        case 'status':
          rule.fired++;
          entry.status = a.status;
          sendError(req, res, a.status, a.code, a.message, a.headers);
          return;
        case 'reset':
          if (a.afterBytes === undefined) {
            rule.fired++;
            req.socket.destroy();
            return;
          }
          rule.fired++;
          resetAfter = a.afterBytes;
          break;
        case 'stall':
          rule.fired++;
          await new Promise<void>((resolve) => {
            stalled.add(resolve);
            req.socket.once('close', () => {
              stalled.delete(resolve);
              resolve();
            });
          });
          if (req.socket.destroyed) return;
          break;
        case 'delay':
          rule.fired++;
          await new Promise((r) => setTimeout(r, a.ms));
          break;
        case 'hook':
          rule.fired++;
          try {
            await a.hook(info);
          } catch (err) {
            sendError(req, res, 500, 'InternalError', `fault proxy hook failed: ${(err as Error).message}`);
            return;
          }
          break;
        case 'hook-mid-response':
          midHook = { afterBytes: a.afterBytes, hook: () => a.hook(info), rule };
          break;
        case 'response-headers':
          rewrite = { set: a.set ?? {}, remove: (a.remove ?? []).map((n) => n.toLowerCase()), rule };
          break;
        case 'flip-response-byte':
          flipResponse = { offset: a.offset, rule };
          break;
        case 'flip-request-byte':
          flipRequest = { offset: a.offset, rule };
          for (const h of a.dropHeaders ?? []) delete headers[h.toLowerCase()];
          for (const [h, v] of Object.entries(a.setHeaders ?? {})) headers[h.toLowerCase()] = v;
          break;
      }
    }
    if (req.socket.destroyed) return;

    const upstream = httpRequest({
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: url,
      headers,
      agent,
    });
    upstream.on('error', () => {
      if (!res.headersSent) sendError(req, res, 502, 'BadGateway', 'fault proxy: upstream failed');
      else res.destroy();
    });
    upstream.on('response', (up) => {
      entry.status = up.statusCode;
      if (rewrite) {
        const headers: Record<string, string | string[] | undefined> = {};
        for (const [name, value] of Object.entries(up.headers)) if (!rewrite.remove.includes(name)) headers[name] = value;
        Object.assign(headers, rewrite.set);
        rewrite.rule.fired++;
        res.writeHead(up.statusCode ?? 502, headers);
      } else {
        res.writeHead(up.statusCode ?? 502, up.rawHeaders);
      }
      let body: NodeJS.ReadableStream = up;
      if (flipResponse && (up.statusCode === 200 || up.statusCode === 206)) {
        const r = flipResponse.rule;
        const length = Number(up.headers['content-length'] ?? NaN);
        body = up.pipe(flipper(flipResponse.offset, Number.isFinite(length) ? length : undefined, () => r.fired++));
      }
      if (midHook && (up.statusCode === 200 || up.statusCode === 206)) {
        const r = midHook.rule;
        body = body.pipe(midResponseHook(midHook.afterBytes, midHook.hook, () => r.fired++));
      }
      if (resetAfter !== undefined) {
        let sent = 0;
        const limit = resetAfter;
        body.on('data', (chunk: Buffer) => {
          if (sent + chunk.length >= limit) {
            res.write(chunk.subarray(0, Math.max(0, limit - sent)));
            sent = limit;
            up.destroy();
            req.socket.destroy();
            return;
          }
          sent += chunk.length;
          res.write(chunk);
        });
        body.on('end', () => res.end());
        return;
      }
      body.pipe(res);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    if (flipRequest) {
      const r = flipRequest.rule;
      const length = Number(req.headers['content-length'] ?? NaN);
      req.pipe(flipper(flipRequest.offset, Number.isFinite(length) ? length : undefined, () => r.fired++)).pipe(upstream);
    } else {
      req.pipe(upstream);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    log,
    add(rule: FaultRule): RuleHandle {
      const r: Rule = {
        rule,
        matched: 0,
        fired: 0,
        name: `#${ruleCount++}:${rule.action.type}`,
        remove() {
          const i = rules.indexOf(r);
          if (i !== -1) rules.splice(i, 1);
        },
      };
      rules.push(r);
      return r;
    },
    clear(): void {
      rules.length = 0;
    },
    release(): void {
      for (const go of [...stalled]) go();
      stalled.clear();
    },
    async close(): Promise<void> {
      for (const go of [...stalled]) go();
      stalled.clear();
      const closing = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closing;
    },
  };
}
