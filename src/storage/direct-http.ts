/**
 * HTTP/1.1 GETs whose response bodies are read from the socket straight into
 * the caller's buffers: the source reads of a copy (S3 lean path, s3-requests.ts).
 *
 * Why not node:http: its socket reads land in a fresh 64 KiB ArrayBuffer each
 * (16,000 per GiB), which its parser slices and our reader then copies into the
 * part buffer. Reading 1 GiB from s3rver with the copy's hashing
 * (bench/copy/read-paths.mjs) took 4.8–5.8 client CPU-s and 52–54 mark-compacts
 * that way, against 3.2–3.3 CPU-s and none here: when those buffers are not
 * freed fast enough V8 collects over and over on "external memory pressure"
 * (in the copy bench, GC storms on a quarter of the 1 GiB runs, 2–3 CPU-s
 * each). Here a socket is created with `onread`: libuv reads into the buffer we
 * name — the caller's part buffer itself for a Content-Length body, one reused
 * 64 KiB scratch buffer otherwise (headers, chunked bodies, stream reads).
 *
 * Pacing: the caller's `sink` (the copy's hashing) runs inside the read
 * callback, so the next read happens only after this one's bytes are hashed and
 * finds whatever arrived meanwhile. A reader that is always waiting takes each
 * of the sender's 64 KiB writes on its own wake-up, which cost s3rver twice the
 * CPU in session 8's attempt; with the hashing in line it costs s3rver 0.2
 * CPU-s more per GiB than node:http (1.7–2.0 against 1.5–1.8).
 *
 * What it speaks: one request at a time per connection, no body sent (GET);
 * responses framed by Content-Length, chunked transfer coding (decoded through
 * the scratch buffer) or the connection's end; 1xx answers skipped; headers up
 * to 64 KiB. Connections are kept alive in a small pool of their own (node's
 * agents cannot hand out an `onread` socket): a connection goes back after a
 * body read to its end, unless the answer said `Connection: close` or was ended
 * by the connection closing. An idle one does not keep the process alive (as
 * with node's agent) and is closed when the server closes it, when the
 * server's Keep-Alive timeout (less a second) or 4 s passes, or when more than
 * `maxIdle` wait. A request on a pooled connection that the server closed just
 * then fails before any answer with ECONNRESET, which the caller retries once
 * (as with node:http).
 * https goes through node:tls with the same `onread` and the https agent's
 * trust settings (a task's CA bundle).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/** Scratch buffer per connection: response heads, chunked and stream-mode bodies. */
const SCRATCH_BYTES = 64 * 1024;
/** The largest response head accepted (status line and headers). */
const MAX_HEAD_BYTES = SCRATCH_BYTES;
/** How long an idle connection is kept when the server does not say (node's agent uses the same hint). */
const DEFAULT_IDLE_MS = 4_000;

export interface DirectHttpOptions {
  https: boolean;
  hostname: string;
  port?: number;
  /** The Host header. */
  host: string;
  /** TLS options of https connections (ca, rejectUnauthorized...). */
  tls?: ConnectionOptions;
  /** Idle time on a socket (connecting, waiting, streaming) before the request fails with TimeoutError. */
  socketTimeoutMs: number;
  connectionTimeoutMs: number;
  /** Idle connections kept for reuse. */
  maxIdle?: number;
}

function connectionError(message: string, code = 'ECONNRESET'): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * A socket that went quiet for too long (TimeoutError), or a connection not made
 * in time (ConnectionTimeoutError); named as the SDK names them (map to Timeout).
 * Shared with s3-requests.ts's node:http path.
 */
export function timeoutError(what: string, ms: number, name: 'TimeoutError' | 'ConnectionTimeoutError' = 'TimeoutError'): Error {
  return Object.assign(new Error(`${what} for ${ms} ms`), { name, code: name });
}

type Framing = { kind: 'length'; remaining: number } | { kind: 'chunked' } | { kind: 'close' };

/** States of the chunked-coding decoder (RFC 9112 §7.1). */
const enum Chunk {
  Size,
  Data,
  DataEnd,
  Trailer,
  Done,
}

/** One response being read. */
export class DirectResponse extends Readable {
  statusCode = 0;
  headers: IncomingHttpHeaders = {};
  /** The connection it is read from; undefined once released or destroyed. */
  #conn: Connection | undefined;
  #headLen = 0;
  #inBody = false;
  #framing: Framing = { kind: 'close' };
  #keepAlive = true;
  #idleMs = DEFAULT_IDLE_MS;
  #done = false;
  /** Raw bytes received into the scratch buffer and not yet decoded: [start, end). */
  #pendingStart = 0;
  #pendingEnd = 0;
  /** Chunked decoder state. */
  #chunk = Chunk.Size;
  #chunkLeft = 0;
  #line = '';
  /** The caller of readInto, while one waits. */
  #into: { buf: Buffer; filled: number; sink: (piece: Buffer) => void; resolve: (n: number) => void; reject: (err: Error) => void } | undefined;
  /** Stream mode: the consumer asked for data (_read) and has not been pushed a refusal since. */
  #wanted = false;
  #mapError: ((err: unknown) => Error) | undefined;
  #onHead: { resolve: (r: DirectResponse) => void; reject: (err: Error) => void } | undefined;

  constructor(conn: Connection, onHead: { resolve: (r: DirectResponse) => void; reject: (err: Error) => void }) {
    super({ highWaterMark: SCRATCH_BYTES });
    // A failure reaches its reader as readInto's rejection or through the stream's own consumers
    // (iterator, pipe); a body nobody reads yet must not turn it into an uncaught 'error' event.
    this.on('error', () => {});
    this.#conn = conn;
    this.#onHead = onHead;
  }

  /** Errors of the body from now on reach its readers as `map(err)` (StorageError). */
  mapErrors(map: (err: unknown) => Error): void {
    this.#mapError = map;
  }

  /**
   * Fill `buf` with the body's next bytes, straight from the socket when the
   * body has a Content-Length, giving each piece to `sink` as it lands (the
   * hashing runs in the read, which paces it: module comment). Resolves with
   * the bytes filled: `buf.length`, or fewer when the body ended.
   */
  readInto(buf: Buffer, sink: (piece: Buffer) => void): Promise<number> {
    if (this.errored) return Promise.reject(this.errored);
    if (this.destroyed) return Promise.reject(this.#mapped(connectionError('response body read after it was released')));
    if (this.#into) return Promise.reject(new Error('readInto while another is pending'));
    if (buf.length === 0 || (this.#done && this.#pendingStart === this.#pendingEnd)) return Promise.resolve(0);
    return new Promise<number>((resolve, reject) => {
      this.#into = { buf, filled: 0, sink, resolve, reject };
      try {
        this.#drainPending();
      } catch (err) {
        this.#fail(err);
        return;
      }
      if (this.#into) this.#finishIfDone();
      if (this.#into) this.#conn?.socket.resume();
    });
  }

  override _read(): void {
    this.#wanted = true;
    try {
      this.#drainPending();
    } catch (err) {
      this.#fail(err);
      return;
    }
    this.#finishIfDone();
    if (!this.#done && this.#wanted) this.#conn?.socket.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const conn = this.#conn;
    this.#conn = undefined;
    // A body not read to its end leaves bytes on the wire: that connection cannot serve another request.
    if (conn && !(this.#done && this.#pendingStart === this.#pendingEnd)) conn.destroy();
    const into = this.#into;
    this.#into = undefined;
    if (into) into.reject(err ?? this.#mapped(connectionError('response body released before it was read')));
    callback(err);
  }

  // ---- called by the connection ----

  /** Where the next socket read goes. */
  readTarget(scratch: Buffer): Buffer {
    if (!this.#inBody) return scratch.subarray(this.#headLen);
    const into = this.#into;
    if (into && this.#framing.kind === 'length' && this.#pendingStart === this.#pendingEnd) {
      const room = Math.min(into.buf.length - into.filled, this.#framing.remaining);
      if (room > 0) return into.buf.subarray(into.filled, into.filled + room);
    }
    return scratch;
  }

  /**
   * `n` bytes arrived in `target` (what readTarget gave). Returns false to
   * pause the socket: nobody waits for bytes now.
   */
  received(n: number, target: Buffer, scratch: Buffer): boolean {
    try {
      if (!this.#inBody) return this.#receivedHead(n, scratch);
      if (target === scratch) {
        this.#pendingStart = 0;
        this.#pendingEnd = n;
        this.#drainPending();
      } else {
        // A Content-Length body read straight into the caller's buffer.
        const into = this.#into!;
        const piece = target.subarray(0, n);
        (this.#framing as { remaining: number }).remaining -= n;
        into.filled += n;
        into.sink(piece);
        if ((this.#framing as { remaining: number }).remaining === 0) this.#done = true;
      }
      this.#finishIfDone();
      // Done and given back: the connection reads on while idle (a close is seen at once).
      if (this.#done) return this.#conn === undefined;
      return (this.#into !== undefined || this.#wanted) && this.#pendingStart === this.#pendingEnd;
    } catch (err) {
      this.#fail(err);
      return false;
    }
  }

  /** The connection ended (EOF) or failed. */
  ended(err: Error | undefined): void {
    if (this.#conn === undefined) return;
    if (err === undefined && this.#inBody && this.#framing.kind === 'close' && !this.#done) {
      this.#done = true;
      this.#keepAlive = false;
      this.#finishIfDone();
      return;
    }
    if (this.#done) return;
    this.#fail(err ?? connectionError(this.#inBody ? 'connection closed before the response body ended' : 'socket hang up'));
  }

  // ---- internals ----

  #mapped(err: unknown): Error {
    return this.#mapError ? this.#mapError(err) : (err as Error);
  }

  #fail(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    const onHead = this.#onHead;
    this.#onHead = undefined;
    if (onHead) {
      // No response yet: the request fails (the caller's retry decides).
      const conn = this.#conn;
      this.#conn = undefined;
      conn?.destroy();
      onHead.reject(e);
      this.destroy();
      return;
    }
    if (!this.destroyed) this.destroy(this.#mapped(e));
  }

  #receivedHead(n: number, scratch: Buffer, searchFrom = Math.max(0, this.#headLen - 3)): boolean {
    this.#headLen += n;
    const end = scratch.subarray(0, this.#headLen).indexOf('\r\n\r\n', searchFrom, 'latin1');
    if (end < 0) {
      if (this.#headLen >= MAX_HEAD_BYTES) throw connectionError(`response head larger than ${MAX_HEAD_BYTES} bytes`, 'HPE_HEADER_OVERFLOW');
      return true;
    }
    const bodyStart = end + 4;
    this.#parseHead(scratch.toString('latin1', 0, end));
    if (this.statusCode < 200) {
      // 1xx: an interim answer; the real one follows. Keep what came after it.
      scratch.copy(scratch, 0, bodyStart, this.#headLen);
      this.#headLen -= bodyStart;
      return this.#headLen > 0 ? this.#receivedHead(0, scratch, 0) : true;
    }
    this.#inBody = true;
    this.#pendingStart = bodyStart;
    this.#pendingEnd = this.#headLen;
    if (this.#framing.kind === 'length' && this.#framing.remaining === 0) this.#done = this.#pendingStart === this.#pendingEnd;
    const onHead = this.#onHead!;
    this.#onHead = undefined;
    onHead.resolve(this);
    // Nobody reads the body yet: hold the socket until someone does (readInto or the stream).
    this.#finishIfDone();
    return false;
  }

  #parseHead(text: string): void {
    const lines = text.split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? '');
    if (!status) throw connectionError(`not an HTTP/1.1 response: ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`, 'HPE_INVALID_CONSTANT');
    this.statusCode = Number(status[1]);
    const headers: IncomingHttpHeaders = {};
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon <= 0) throw connectionError(`malformed response header line ${JSON.stringify(line.slice(0, 80))}`, 'HPE_INVALID_HEADER_TOKEN');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      const prev = headers[name];
      if (name === 'set-cookie') headers[name] = [...((prev as string[] | undefined) ?? []), value];
      else headers[name] = prev === undefined ? value : `${prev as string}, ${value}`;
    }
    this.headers = headers;
    if (this.statusCode < 200) return;
    const connection = String(headers['connection'] ?? '').toLowerCase();
    this.#keepAlive = status[0].startsWith('HTTP/1.1') ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
    const hint = /\btimeout=(\d+)/.exec(String(headers['keep-alive'] ?? ''));
    if (hint) this.#idleMs = Math.max(0, Number(hint[1]) * 1000 - 1000);
    const te = headers['transfer-encoding'];
    const length = headers['content-length'];
    if (this.statusCode === 204 || this.statusCode === 304) this.#framing = { kind: 'length', remaining: 0 };
    else if (te !== undefined) {
      if (!/(^|,)\s*chunked\s*$/i.test(String(te))) throw connectionError(`unsupported Transfer-Encoding ${String(te)}`, 'HPE_INVALID_TRANSFER_ENCODING');
      this.#framing = { kind: 'chunked' };
    } else if (length !== undefined) {
      if (!/^\d+$/.test(String(length))) throw connectionError(`invalid Content-Length ${String(length)}`, 'HPE_INVALID_CONTENT_LENGTH');
      this.#framing = { kind: 'length', remaining: Number(length) };
    } else {
      this.#framing = { kind: 'close' };
      this.#keepAlive = false;
    }
  }

  /** Hand the undecoded bytes in the scratch buffer to whoever reads, as far as they take them. */
  #drainPending(): void {
    const conn = this.#conn;
    if (!conn || !this.#inBody) return;
    const scratch = conn.scratch;
    while (this.#pendingStart < this.#pendingEnd && (this.#into || this.#wanted)) {
      const raw = scratch.subarray(this.#pendingStart, this.#pendingEnd);
      const used = this.#framing.kind === 'chunked' ? this.#decodeChunked(raw) : this.#deliverRaw(raw);
      this.#pendingStart += used;
      if (used === 0) break;
    }
    if (this.#pendingStart === this.#pendingEnd) this.#pendingStart = this.#pendingEnd = 0;
  }

  /** Identity-coded bytes: deliver what the reader takes; the rest stays pending. */
  #deliverRaw(raw: Buffer): number {
    const framing = this.#framing;
    if (framing.kind === 'length') {
      const taken = this.#deliver(raw.length > framing.remaining ? raw.subarray(0, framing.remaining) : raw);
      framing.remaining -= taken;
      if (framing.remaining > 0) return taken;
      this.#done = true;
      // Bytes past the Content-Length belong to no request: drop them, and the connection with them.
      if (raw.length > taken) this.#keepAlive = false;
      return raw.length;
    }
    return this.#deliver(raw);
  }

  /** Decode chunked coding from `raw`; returns the raw bytes used. */
  #decodeChunked(raw: Buffer): number {
    let i = 0;
    while (i < raw.length && this.#chunk !== Chunk.Done) {
      if (this.#chunk === Chunk.Data) {
        const piece = raw.subarray(i, i + Math.min(this.#chunkLeft, raw.length - i));
        const taken = this.#deliver(piece);
        i += taken;
        this.#chunkLeft -= taken;
        if (this.#chunkLeft === 0) this.#chunk = Chunk.DataEnd;
        if (taken < piece.length) return i; // the reader is full
        continue;
      }
      // Line-oriented states: a size line, the CRLF after data, trailer lines.
      const nl = raw.indexOf(10, i);
      const part = raw.toString('latin1', i, nl < 0 ? raw.length : nl);
      this.#line += part;
      if (this.#line.length > 4096) throw connectionError('chunked coding line too long', 'HPE_CHUNK_EXTENSIONS_OVERFLOW');
      if (nl < 0) return raw.length;
      i = nl + 1;
      const line = this.#line.replace(/\r$/, '');
      this.#line = '';
      if (this.#chunk === Chunk.Size) {
        const size = /^([0-9a-fA-F]{1,12})\s*(;.*)?$/.exec(line);
        if (!size) throw connectionError(`invalid chunk size line ${JSON.stringify(line.slice(0, 40))}`, 'HPE_INVALID_CHUNK_SIZE');
        this.#chunkLeft = parseInt(size[1]!, 16);
        this.#chunk = this.#chunkLeft === 0 ? Chunk.Trailer : Chunk.Data;
      } else if (this.#chunk === Chunk.DataEnd) {
        if (line !== '') throw connectionError('chunk data longer than its size', 'HPE_INVALID_CHUNK_SIZE');
        this.#chunk = Chunk.Size;
      } else if (line === '') {
        this.#chunk = Chunk.Done;
        this.#done = true;
      }
    }
    if (this.#chunk === Chunk.Done && i < raw.length) {
      // As after a Content-Length body: bytes nobody asked for; the connection is not reused.
      this.#keepAlive = false;
      return raw.length;
    }
    return i;
  }

  /** Give body bytes to the reader: copied into readInto's buffer, or pushed (as a copy) to the stream. Returns the bytes taken. */
  #deliver(data: Buffer): number {
    if (data.length === 0) return 0;
    const into = this.#into;
    if (into) {
      const take = Math.min(data.length, into.buf.length - into.filled);
      const piece = into.buf.subarray(into.filled, into.filled + take);
      data.copy(piece, 0, 0, take);
      into.filled += take;
      into.sink(piece);
      if (into.filled === into.buf.length) this.#settleInto();
      return take;
    }
    if (this.#wanted) {
      // The scratch buffer is read into again: the stream gets its own copy.
      if (!this.push(Buffer.from(data))) this.#wanted = false;
      return data.length;
    }
    return 0;
  }

  #settleInto(): void {
    const into = this.#into;
    if (!into) return;
    this.#into = undefined;
    into.resolve(into.filled);
  }

  /** After the last body byte: settle the reader, end the stream, give the connection back. */
  #finishIfDone(): void {
    if (!this.#done) {
      if (this.#into && this.#into.filled === this.#into.buf.length) this.#settleInto();
      return;
    }
    if (this.#pendingStart !== this.#pendingEnd) return; // decoded but not yet taken
    this.#settleInto();
    const conn = this.#conn;
    if (conn) {
      this.#conn = undefined;
      conn.release(this.#keepAlive, this.#idleMs);
    }
    if (!this.readableEnded) this.push(null);
  }
}

/** One socket and its scratch buffer; serves one response at a time. */
class Connection {
  readonly scratch = Buffer.allocUnsafe(SCRATCH_BYTES);
  socket!: Socket;
  #response: DirectResponse | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #client: DirectHttpClient;

  constructor(client: DirectHttpClient) {
    this.#client = client;
  }

  /** The `onread` option of the socket this connection is created with. */
  onread(): { buffer: () => Buffer; callback: (n: number, buf: Buffer) => boolean } {
    return {
      // Called after each read for the next one's buffer (node's onStreamRead), and once at connect.
      buffer: () => (this.#response ? this.#response.readTarget(this.scratch) : this.scratch),
      callback: (n: number, buf: Buffer) => {
        const response = this.#response;
        if (!response) {
          // Bytes on an idle connection: nothing may be sent unasked; this connection is unusable.
          this.destroy();
          return false;
        }
        return response.received(n, buf, this.scratch);
      },
    };
  }

  attach(socket: Socket, timeoutMs: number): void {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(timeoutMs, () => {
      if (this.#response) this.#response.ended(timeoutError('socket idle', timeoutMs));
      else this.destroy();
    });
    // The response hears of the end on 'close' (which follows 'end' and 'error'); an error first, so it fails with it.
    socket.on('end', () => this.destroy());
    socket.on('error', (err) => {
      if (this.#response) this.#response.ended(err);
      this.destroy();
    });
    socket.on('close', () => {
      if (this.#response) this.#response.ended(undefined);
      this.#client.forget(this);
    });
  }

  get usable(): boolean {
    return !this.socket.destroyed;
  }

  /** Send a request; resolves with the response once its head arrived. */
  send(head: string): Promise<DirectResponse> {
    clearTimeout(this.#idleTimer);
    this.socket.ref();
    return new Promise<DirectResponse>((resolve, reject) => {
      this.#response = new DirectResponse(this, { resolve, reject });
      this.socket.write(head, 'latin1');
      this.socket.resume();
    });
  }

  /** The response read its body to the end: keep the connection for the next request, or close it. */
  release(keepAlive: boolean, idleMs: number): void {
    this.#response = undefined;
    if (!keepAlive || idleMs <= 0 || !this.usable) {
      this.destroy();
      return;
    }
    // Idle: keep reading, so that the server closing it is seen at once; and let the process exit.
    this.socket.resume();
    this.socket.unref();
    this.#idleTimer = setTimeout(() => this.destroy(), idleMs);
    this.#idleTimer.unref();
    this.#client.idle(this);
  }

  destroy(): void {
    clearTimeout(this.#idleTimer);
    this.socket?.destroy();
    this.#client.forget(this);
  }
}

export class DirectHttpClient {
  readonly #options: DirectHttpOptions;
  readonly #idle: Connection[] = [];
  #closed = false;

  constructor(options: DirectHttpOptions) {
    this.#options = options;
  }

  /** GET `target` (path and query, already encoded) with `headers` (lower-case; Host is added). */
  async get(target: string, headers: Record<string, string>): Promise<DirectResponse> {
    if (this.#closed) throw connectionError('client closed');
    let head = `GET ${target} HTTP/1.1\r\nhost: ${this.#options.host}\r\n`;
    for (const [name, value] of Object.entries(headers)) {
      if (name === 'host') continue;
      // What node:http refuses too: a header that would split the request.
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw Object.assign(new TypeError(`invalid character in header ${JSON.stringify(name)}`), { code: 'ERR_INVALID_CHAR' });
      head += `${name}: ${value}\r\n`;
    }
    head += '\r\n';
    let conn: Connection | undefined;
    while ((conn = this.#idle.pop()) && !conn.usable);
    conn ??= await this.#connect();
    return conn.send(head);
  }

  #connect(): Promise<Connection> {
    const { https, hostname, port, tls, socketTimeoutMs, connectionTimeoutMs } = this.#options;
    const conn = new Connection(this);
    return new Promise<Connection>((resolve, reject) => {
      const onread = conn.onread();
      const socket = https
        ? // node:tls takes onread like node:net (its typings leave it out); SNI defaults to the host name.
          tlsConnect({ ...tls, host: hostname, port: port ?? 443, ALPNProtocols: ['http/1.1'], onread } as ConnectionOptions)
        : netConnect({ host: hostname, port: port ?? 80, onread });
      const timer = setTimeout(() => {
        socket.destroy(timeoutError('connecting took longer than', connectionTimeoutMs, 'ConnectionTimeoutError'));
      }, connectionTimeoutMs);
      const failed = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      socket.once('error', failed);
      socket.once(https ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', failed);
        conn.attach(socket, socketTimeoutMs);
        resolve(conn);
      });
    });
  }

  idle(conn: Connection): void {
    if (this.#closed) {
      conn.destroy();
      return;
    }
    this.#idle.push(conn);
    const max = this.#options.maxIdle ?? 32;
    while (this.#idle.length > max) this.#idle.shift()!.destroy();
  }

  forget(conn: Connection): void {
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  /** Close idle connections; responses being read keep theirs until they end. */
  close(): void {
    this.#closed = true;
    for (const conn of this.#idle.splice(0)) conn.destroy();
  }
}
