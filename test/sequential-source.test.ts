/**
 * SequentialSource against the OSS and the S3 test server behind the fault
 * proxy (a real OssStore or S3Store does the re-opens; the S3Store's bodies are
 * read with readInto, straight from the socket: direct-http.ts): parts filled across chunk boundaries, a stream
 * broken mid-object re-opened from the first byte not yet delivered with
 * If-Match, an overwritten object refusing the re-open, a clean but early end,
 * the re-open limit, an error while the opened body waits for its first read,
 * and a source that sends more than the object's size.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { SequentialSource } from '../src/replication/sequential-source.js';
import { IntegrityError } from '../src/replication/integrity-error.js';
import { StorageError } from '../src/storage/errors.js';
import type { ObjectStore } from '../src/storage/object-store.js';
import { OssStore } from '../src/storage/oss-store.js';
import { S3Store } from '../src/storage/s3-store.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer } from './support/oss-server.js';
import { startS3Server } from './support/s3-server.js';

const BUCKET = 'seq';

/** A store read through the fault proxy, and a way to write its objects around the proxy. */
interface Backend {
  store: ObjectStore;
  proxy: FaultProxy;
  /** Write `body` at `key` directly on the server; its ETag. */
  put(key: string, body: Buffer): Promise<string>;
}

async function ossBackend(): Promise<Backend> {
  const server = await startOssServer({ buckets: [BUCKET] });
  t.teardown(() => server.close());
  const proxy = await startFaultProxy({ target: server.endpoint });
  t.teardown(() => proxy.close());
  const options = { bucket: BUCKET, region: 'oss-cn-hangzhou', credentials: { accessKeyId: server.accessKeyId, accessKeySecret: server.accessKeySecret }, timeoutMs: 20_000 };
  const store = new OssStore({ ...options, endpoint: proxy.endpoint });
  t.teardown(() => store.close());
  return {
    store,
    proxy,
    put: async (key, body) => {
      await server.client(BUCKET).put(key, body);
      return server.getObject(BUCKET, key)!.etag;
    },
  };
}

async function s3Backend(): Promise<Backend> {
  const server = await startS3Server({ buckets: [BUCKET] });
  t.teardown(() => server.close());
  const proxy = await startFaultProxy({ target: server.endpoint });
  t.teardown(() => proxy.close());
  const options = { bucket: BUCKET, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey }, requestTimeoutMs: 20_000 };
  const store = new S3Store({ ...options, endpoint: proxy.endpoint });
  const direct = new S3Store({ ...options, endpoint: server.endpoint });
  t.teardown(() => Promise.all([store.close(), direct.close()]));
  return { store, proxy, put: async (key, body) => (await direct.put(key, body, body.length)).etag };
}

for (const [name, backend] of [
  ['OSS (body read as a stream)', await ossBackend()],
  ['S3 (body read with readInto)', await s3Backend()],
] as const) {
  t.test(name, async (t) => {
    const { store, proxy } = backend;
    const putObject = backend.put;
    t.afterEach(() => proxy.clear());

    /** Read `size` bytes in parts of `part` bytes; returns the bytes handed to the sink, in order. */
    async function readAll(source: SequentialSource, size: number, part: number): Promise<Buffer> {
      const pieces: Buffer[] = [];
      for (let off = 0; off < size; off += part) {
        const buf = Buffer.alloc(Math.min(part, size - off));
        const seen: Buffer[] = [];
        await source.read(buf, (p) => seen.push(Buffer.from(p)));
        if (!Buffer.concat(seen).equals(buf)) throw new Error('the sink saw other bytes than the buffer holds');
        pieces.push(buf);
      }
      await source.finish();
      return Buffer.concat(pieces);
    }

    const gets = (key: string): FaultProxy['log'] => proxy.log.filter((r) => r.method === 'GET' && r.path.endsWith(`/${key}`));

    t.test('parts that do not line up with the stream chunks: every byte once, in order, from one GET', async (t) => {
      const body = randomBytes(300_007);
      const etag = await putObject('plain.bin', body);
      const source = new SequentialSource({ store, key: 'plain.bin', etag, size: body.length });
      t.ok((await readAll(source, body.length, 65_537)).equals(body));
      t.equal(gets('plain.bin').length, 1);
      t.equal(gets('plain.bin')[0]!.headers.range, undefined, 'the whole object');
      t.ok(gets('plain.bin')[0]!.headers['if-match'], 'with If-Match');
    });

    t.test('a stream reset mid-object is re-opened from the first byte not yet delivered, with If-Match', async (t) => {
      const body = randomBytes(400_000);
      const etag = await putObject('reset.bin', body);
      proxy.add({ match: { method: 'GET' }, nth: 1, action: { type: 'reset', afterBytes: 150_000 } });
      const reopened: number[] = [];
      const source = new SequentialSource({ store, key: 'reset.bin', etag, size: body.length, onReopen: (offset) => reopened.push(offset) });
      t.ok((await readAll(source, body.length, 100_000)).equals(body), 'the bytes are the object, none twice');
      t.equal(reopened.length, 1);
      const second = gets('reset.bin')[1]!;
      t.equal(second.headers.range, `bytes=${reopened[0]}-${body.length - 1}`, `ranged from the offset reached (${reopened[0]})`);
      t.equal(String(second.headers['if-match']).replace(/"/g, ''), etag.replace(/"/g, ''));
    });

    t.test('an object overwritten before the re-open: PreconditionFailed ends the read', async (t) => {
      const body = randomBytes(300_000);
      const etag = await putObject('over.bin', body);
      proxy.add({ match: { method: 'GET' }, nth: 1, action: { type: 'reset', afterBytes: 120_000 } });
      proxy.add({ match: { method: 'GET', headers: { range: true } }, nth: 1, action: { type: 'hook', hook: async () => void (await putObject('over.bin', randomBytes(1000))) } });
      const source = new SequentialSource({ store, key: 'over.bin', etag, size: body.length });
      const err = await readAll(source, body.length, 100_000).catch((e: unknown) => e);
      t.ok(err instanceof StorageError && err.code === 'PreconditionFailed', `PreconditionFailed (${String(err)})`);
    });

    t.test('a body that ends cleanly before the object does is read on from where it ended', async (t) => {
      const body = randomBytes(200_000);
      const etag = await putObject('short.bin', body);
      const opened = Readable.from([body.subarray(0, 70_000)]);
      const source = new SequentialSource({ store, key: 'short.bin', etag, size: body.length, opened });
      t.ok((await readAll(source, body.length, 64_000)).equals(body));
      t.equal(gets('short.bin')[0]?.headers.range, `bytes=70000-${body.length - 1}`);
    });

    t.test('a source that keeps breaking without progress fails after 3 re-opens; one that makes progress goes on', async (t) => {
      const body = randomBytes(300_000);
      const etag = await putObject('flaky.bin', body);
      proxy.add({ match: { method: 'GET' }, action: { type: 'reset', afterBytes: 1000 } });
      const stuck = new SequentialSource({ store, key: 'flaky.bin', etag, size: body.length });
      const err = await readAll(stuck, body.length, 100_000).catch((e: unknown) => e);
      t.ok(err instanceof StorageError && err.retryable, `a retryable error (${String(err)})`);
      const requests = gets('flaky.bin').length;
      t.ok(requests >= 4 && requests <= 8, `the first GET and 3 re-opens (${requests} requests: the store may try one twice)`);
      proxy.clear();
      // Breaks after 40,000 bytes each (held a moment there, so those bytes reach the reader before the
      // reset): that is progress when minProgressBytes says so, and the breaks never add up.
      proxy.add({ match: { method: 'GET' }, times: 6, action: { type: 'hook-mid-response', afterBytes: 40_000, hook: () => new Promise((r) => setTimeout(r, 30)) } });
      proxy.add({ match: { method: 'GET' }, times: 6, action: { type: 'reset', afterBytes: 40_001 } });
      const patient = new SequentialSource({ store, key: 'flaky.bin', etag, size: body.length, minProgressBytes: 10_000 });
      t.ok((await readAll(patient, body.length, 100_000)).equals(body), 'six breaks, each after progress: read to the end');
      t.equal(gets('flaky.bin').length - requests, 7, 'the first GET and six re-opens');
    });

    t.test('an error while the opened body waits for its first read reaches the reader, not the process', async (t) => {
      const body = randomBytes(100_000);
      const etag = await putObject('early.bin', body);
      const opened = new Readable({ read() {} });
      const source = new SequentialSource({ store, key: 'early.bin', etag, size: body.length, opened });
      opened.destroy(new Error('connection reset before the first read'));
      await new Promise((r) => setImmediate(r));
      t.ok((await readAll(source, body.length, 100_000)).equals(body), 'the reader re-opened from byte 0');
      t.equal(gets('early.bin').length, 1);
    });

    t.test('a source that sends more than the object size fails the read (IntegrityMismatch)', async (t) => {
      const body = randomBytes(50_000);
      const etag = await putObject('long.bin', body);
      const opened = Readable.from([body, Buffer.from('extra')]);
      const source = new SequentialSource({ store, key: 'long.bin', etag, size: body.length, opened });
      const err = await readAll(source, body.length, 50_000).catch((e: unknown) => e);
      t.ok(err instanceof IntegrityError && err.side === 'source', `IntegrityError (${String(err)})`);
    });
  });
}
