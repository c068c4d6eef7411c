/**
 * direct-http.ts against raw TCP servers on loopback that write exact bytes:
 * Content-Length, chunked (extensions, trailers, chunks split anywhere) and
 * close-delimited bodies, read with readInto and as a stream; a buffer
 * boundary inside a chunk; interim 1xx answers; keep-alive reuse (and no reuse
 * after a body left unread, a Connection: close, or a server that closed the
 * idle connection); failures before and inside the body with the codes the
 * S3 path retries on; an oversized head; an idle timeout. The S3 store's use of
 * it runs in every S3 test (storage-s3*, sequential-source, replication-*, tls).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { DirectHttpClient, type DirectResponse } from '../src/storage/direct-http.js';

/** A server that answers each request (a head ending in a blank line) with `answer`; counts connections. */
interface RawServer {
  port: number;
  connections: number;
  requests: string[];
  close(): Promise<void>;
}

async function rawServer(answer: (socket: Socket, request: string, n: number) => void): Promise<RawServer> {
  const state = { connections: 0, requests: [] as string[] };
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = '';
    socket.on('data', (d) => {
      buffered += d.toString('latin1');
      let end;
      while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
        const request = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        state.requests.push(request);
        answer(socket, request, state.requests.length);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const result = {
    port,
    get connections() {
      return state.connections;
    },
    requests: state.requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  t.teardown(() => result.close());
  return result;
}

function client(port: number, overrides: { socketTimeoutMs?: number } = {}): DirectHttpClient {
  const c = new DirectHttpClient({ https: false, hostname: '127.0.0.1', port, host: `127.0.0.1:${port}`, socketTimeoutMs: 5000, connectionTimeoutMs: 5000, ...overrides });
  t.teardown(() => c.close());
  return c;
}

/** Read a body with readInto in buffers of `size`; the bytes and what the sink saw must agree. */
async function readAllInto(res: DirectResponse, size: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for (;;) {
    const buf = Buffer.alloc(size);
    const seen: Buffer[] = [];
    const n = await res.readInto(buf, (p) => seen.push(Buffer.from(p)));
    if (!Buffer.concat(seen).equals(buf.subarray(0, n))) throw new Error('the sink saw other bytes than the buffer holds');
    out.push(buf.subarray(0, n));
    if (n < size) return Buffer.concat(out);
  }
}

async function readAllStream(res: DirectResponse): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `body` in chunked coding, cut into chunks of `size`, with an extension and a trailer. */
function chunked(body: Buffer, size: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i += size) {
    const c = body.subarray(i, i + size);
    parts.push(Buffer.from(`${c.length.toString(16)};ext=1\r\n`), c, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\nx-trailer: yes\r\n\r\n'));
  return Buffer.concat(parts);
}

/** Write `bytes` in pieces of `piece` bytes, a tick apart (so they arrive in many reads). */
async function dribble(socket: Socket, bytes: Buffer, piece: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += piece) {
    socket.write(bytes.subarray(i, i + piece));
    await new Promise((r) => setImmediate(r));
  }
}

const body = randomBytes(300_001);

t.test('a Content-Length body: readInto fills the buffers straight from the socket, the stream reads the same bytes', async (t) => {
  const server = await rawServer((socket) => {
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\netag: "x"\r\nx-amz-meta-a: 1\r\nx-amz-meta-a: 2\r\n\r\n`);
    void dribble(socket, body, 70_000);
  });
  const c = client(server.port);
  const first = await c.get('/b/k?x=1', { 'x-test': 'yes' });
  t.equal(first.statusCode, 200);
  t.equal(first.headers['etag'], '"x"');
  t.equal(first.headers['x-amz-meta-a'], '1, 2', 'repeated headers joined as node:http does');
  t.match(server.requests[0], /^GET \/b\/k\?x=1 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nx-test: yes$/);
  t.ok((await readAllInto(first, 65_537)).equals(body), 'readInto: every byte once, across buffer and read boundaries');
  t.ok((await readAllStream(await c.get('/b/k', {}))).equals(body), 'as a stream');
  t.equal(server.connections, 1, 'both on one kept-alive connection');
});

t.test('chunked bodies (extensions, trailers, split anywhere) and close-delimited ones', async (t) => {
  const coded = chunked(body, 50_000);
  const server = await rawServer((socket, request) => {
    if (request.includes('/chunked')) {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
      void dribble(socket, coded, request.includes('tiny') ? 7 : 9_999);
    } else {
      socket.write('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n');
      void dribble(socket, body, 30_000).then(() => socket.end());
    }
  });
  const c = client(server.port);
  t.ok((await readAllInto(await c.get('/chunked', {}), 40_000)).equals(body), 'chunked, readInto with a buffer boundary inside a chunk');
  t.ok((await readAllStream(await c.get('/chunked', {}))).equals(body), 'chunked, as a stream');
  const small = randomBytes(2_000);
  const smallServer = await rawServer((socket) => {
    socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n');
    void dribble(socket, chunked(small, 100), 3);
  });
  t.ok((await readAllInto(await client(smallServer.port).get('/chunked', {}), 333)).equals(small), 'chunked, 3 bytes per read');
  t.equal(server.connections, 1, 'chunked responses keep the connection');
  t.ok((await readAllInto(await c.get('/close', {}), 64_000)).equals(body), 'ended by the connection closing');
  t.ok((await readAllStream(await c.get('/close', {}))).equals(body), 'the same, as a stream');
  // The first of them went out on the chunked responses' kept connection, which it then ended.
  t.equal(server.connections, 2, 'a close-delimited body ends its connection');
});

t.test('interim 1xx answers are skipped; a 204 and a 0-length body end at once', async (t) => {
  const server = await rawServer((socket, _request, n) => {
    if (n === 1) socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello');
    else if (n === 2) socket.write('HTTP/1.1 204 No Content\r\n\r\n');
    else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n');
  });
  const c = client(server.port);
  const res = await c.get('/', {});
  t.equal(res.statusCode, 200);
  t.equal((await readAllInto(res, 100)).toString(), 'hello');
  t.equal((await readAllInto(await c.get('/', {}), 10)).length, 0, '204');
  t.equal((await readAllStream(await c.get('/', {}))).length, 0, 'content-length: 0');
  t.equal(server.connections, 1);
});

t.test('no reuse after a body left unread, after Connection: close, or of a connection the server closed', async (t) => {
  const server = await rawServer((socket, request) => {
    const close = request.includes('/close');
    socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${close ? 'connection: close\r\n' : ''}\r\n`);
    void dribble(socket, body, 100_000);
    if (request.includes('/drop')) setTimeout(() => socket.destroy(), 100);
  });
  const c = client(server.port);
  const unread = await c.get('/a', {});
  await unread.readInto(Buffer.alloc(10), () => {});
  unread.destroy();
  await readAllInto(await c.get('/b', {}), 1 << 20);
  t.equal(server.connections, 2, 'a body destroyed part way takes its connection with it');
  await readAllInto(await c.get('/close', {}), 1 << 20);
  await readAllInto(await c.get('/c', {}), 1 << 20);
  t.equal(server.connections, 3, 'Connection: close is honoured');
  await readAllInto(await c.get('/drop', {}), 1 << 20);
  await new Promise((r) => setTimeout(r, 300)); // the server closes the idle connection meanwhile
  t.ok((await readAllInto(await c.get('/d', {}), 1 << 20)).equals(body), 'the next request opens a new one');
  t.equal(server.connections, 4);
});

t.test('failures: before the answer (ECONNRESET, retried by the S3 path), inside the body (mapped), a bad head, an idle socket', async (t) => {
  const server = await rawServer((socket, request) => {
    if (request.includes('/hangup')) socket.destroy();
    else if (request.includes('/garbage')) socket.write('SSH-2.0-OpenSSH\r\n\r\n');
    else if (request.includes('/huge')) socket.write(`HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(70_000)}\r\n\r\n`);
    else if (request.includes('/cut')) {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n\r\n`);
      socket.write(body.subarray(0, 100_000), () => setTimeout(() => socket.destroy(), 50));
    } else if (request.includes('/long')) {
      socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789extra`);
    } else if (request.includes('/badchunk')) {
      socket.write('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n');
    }
    // /silent: no answer at all
  });
  const c = client(server.port, { socketTimeoutMs: 300 });
  const codeOf = async (p: Promise<unknown>): Promise<string | undefined> => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e as { code?: string },
    );
    return err?.code;
  };
  t.equal(await codeOf(c.get('/hangup', {})), 'ECONNRESET', 'closed before any answer');
  t.equal(await codeOf(c.get('/garbage', {})), 'HPE_INVALID_CONSTANT', 'not HTTP');
  t.equal(await codeOf(c.get('/huge', {})), 'HPE_HEADER_OVERFLOW', 'a head over 64 KiB');
  t.equal(await codeOf(c.get('/silent', {})), 'TimeoutError', 'no answer within the idle timeout');
  await t.rejects(c.get('/x', { 'x-bad': 'a\r\nx-injected: 1' }), { code: 'ERR_INVALID_CHAR' }, 'a header that would split the request');

  const cut = await c.get('/cut', {});
  cut.mapErrors((err) => Object.assign(new Error(`mapped: ${(err as Error).message}`), { code: 'Mapped' }));
  let delivered = 0;
  const err = await cut.readInto(Buffer.alloc(body.length), (p) => (delivered += p.length)).catch((e: unknown) => e as { code?: string; message: string });
  t.equal((err as { code?: string }).code, 'Mapped', `the body's error reaches readInto through mapErrors (${(err as Error).message})`);
  t.equal(delivered, 100_000, 'the bytes that arrived before the break were delivered, once');

  const long = await c.get('/long', {});
  t.equal((await readAllInto(long, 10)).toString(), '0123456789', 'the body is its Content-Length');
  t.equal(await codeOf(c.get('/badchunk', {}).then((r) => readAllInto(r, 100))), 'HPE_INVALID_CHUNK_SIZE', 'a bad chunk size');
});

t.test('an idle pooled connection does not keep the process alive (as with node’s agent)', async (t) => {
  const server = await rawServer((socket) => socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\nkeep-alive: timeout=60\r\n\r\nok'));
  const module = new URL('../src/storage/direct-http.ts', import.meta.url).href;
  const script = `
    import { DirectHttpClient } from ${JSON.stringify(module)};
    const c = new DirectHttpClient({ https: false, hostname: '127.0.0.1', port: ${server.port}, host: 'h', socketTimeoutMs: 60000, connectionTimeoutMs: 5000 });
    let body = '';
    for await (const chunk of await c.get('/', {})) body += chunk;
    console.log(body);`;
  const started = Date.now();
  // Not spawnSync: the server answering it runs in this process.
  const child = await new Promise<{ stdout: string; stderr: string; status: number | null; signal: string | null }>((resolve) => {
    const p = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', script], { timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += String(d)));
    p.stderr.on('data', (d) => (stderr += String(d)));
    p.on('close', (status, signal) => resolve({ stdout, stderr, status, signal }));
  });
  t.equal(child.stdout.trim(), 'ok', child.stderr);
  t.equal(child.signal, null, 'it exited by itself, not killed at the timeout');
  t.equal(child.status, 0);
  t.ok(Date.now() - started < 30_000, 'well before the server’s 60 s keep-alive');
});
