/**
 * Shared pieces of the fault tests (test/chaos-*.test.ts) and of their long
 * versions (bench/chaos): a seeded PRNG, object fixtures on the S3 test server,
 * signed S3 events, a direct database handle for assertions, a seeded fault mix
 * for the fault proxy, and a pass-through proxy that watches for two copies of
 * one key at once.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, Agent, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import pg from 'pg';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { signedPost, type SignedResponse } from '../../src/auth/signed-client.js';
import type { Credentials } from '../../src/auth/sdk-hmac.js';
import type { FaultAction, FaultProxy, ProxyRequestInfo, RuleHandle } from './fault-proxy.js';
import type { S3Server } from './s3-server.js';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Fixture {
  key: string;
  body: Buffer;
  md5: string;
}

/** `count` objects under `prefix`: small ones of 1 byte–`maxSmall`, every `multipartEvery`-th one `large` bytes. */
export function fixtures(prefix: string, count: number, o: { seed: number; maxSmall: number; large: number; multipartEvery: number }): Fixture[] {
  const rand = mulberry32(o.seed);
  const out: Fixture[] = [];
  for (let i = 0; i < count; i++) {
    const size = i % o.multipartEvery === o.multipartEvery - 1 ? o.large + Math.floor(rand() * 4096) : 1 + Math.floor(rand() * o.maxSmall);
    const body = randomBytes(size);
    // Keys with spaces, '+' and non-ASCII, as real buckets have.
    const key = `${prefix}/${String(i).padStart(4, '0')} ${['photo', 'doc+v2', 'naïve', 'data'][i % 4]}.bin`;
    out.push({ key, body, md5: createHash('md5').update(body).digest('hex') });
  }
  return out;
}

export function s3Client(s3: S3Server): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

export async function putAll(client: S3Client, bucket: string, objects: Fixture[], concurrency = 8): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < objects.length) {
        const o = objects[next++]!;
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: o.key, Body: o.body, ContentLength: o.body.length, ContentType: 'application/octet-stream' }));
      }
    }),
  );
}

/** S3 form-encodes keys in events: space → '+', '+' → '%2B'. */
export function s3EventKey(key: string): string {
  return encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
}

export function s3Event(bucket: string, keys: string[]): string {
  return JSON.stringify({
    Records: keys.map((key) => ({
      eventVersion: '2.1',
      eventSource: 'aws:s3',
      eventName: 'ObjectCreated:Put',
      s3: { bucket: { name: bucket }, object: { key: s3EventKey(key), size: 1, eTag: 'x', sequencer: '0A' } },
    })),
  });
}

/** POST signed S3 events for `keys` in batches; every answer must be 202. */
export async function notify(url: string, bucket: string, keys: string[], sender: Credentials, batch = 10): Promise<SignedResponse[]> {
  const out: SignedResponse[] = [];
  for (let i = 0; i < keys.length; i += batch) {
    const res = await signedPost(`${url}/sync`, s3Event(bucket, keys.slice(i, i + batch)), sender);
    if (res.status !== 202) throw new Error(`notification answered ${res.status}: ${res.text}`);
    out.push(res);
  }
  return out;
}

export interface StatusRow {
  key: string;
  status: string;
  attempts: number;
  last_error_code: string | null;
}

/** A small pool straight to the test database, for assertions (never through a cut proxy). */
export class Inspector {
  readonly pool: pg.Pool;
  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 3 });
    this.pool.on('error', () => {});
  }

  async statuses(taskId: string): Promise<Map<string, StatusRow>> {
    const { rows } = await this.pool.query<StatusRow>('SELECT key, status, attempts, last_error_code FROM bb_object_status WHERE task_id = $1', [taskId]);
    return new Map(rows.map((r) => [r.key, r]));
  }

  /** Jobs of the replicate queue not yet finished (queued, retrying or running). */
  async openJobs(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bb-replicate' AND state IN ('created', 'retry', 'active')");
    return rows[0]!.n;
  }

  async activeJobs(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bb-replicate' AND state = 'active'");
    return rows[0]!.n;
  }

  /** Retries per job: pg-boss's retry_count of every replicate job. */
  async retryCounts(): Promise<{ total: number; max: number; jobs: number }> {
    const { rows } = await this.pool.query<{ total: number; max: number; jobs: number }>(
      "SELECT COALESCE(sum(retry_count), 0)::int AS total, COALESCE(max(retry_count), 0)::int AS max, count(*)::int AS jobs FROM pgboss.job WHERE name = 'bb-replicate'",
    );
    return rows[0]!;
  }

  async deadLetters(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bb-replicate-dead'");
    return rows[0]!.n;
  }

  async multipartRecords(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM bb_multipart_uploads');
    return rows[0]!.n;
  }

  /** Wait until every key has a final status and nothing is queued, running or retrying. */
  async settled(taskId: string, keys: string[], timeoutMs: number, final = FINAL): Promise<Map<string, StatusRow>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await this.statuses(taskId);
      const done = keys.every((k) => final.has(rows.get(k)?.status ?? ''));
      if (done && (await this.openJobs()) === 0) return rows;
      if (Date.now() > deadline) {
        const missing = keys.filter((k) => !final.has(rows.get(k)?.status ?? '')).slice(0, 10);
        throw new Error(`not settled in ${timeoutMs} ms: ${missing.length} keys not final, e.g. ${JSON.stringify(missing.map((k) => rows.get(k) ?? k))}; open jobs ${await this.openJobs()}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

export const FINAL = new Set(['completed', 'in_sync', 'deleted', 'source_missing', 'archived', 'failed']);
export const REPLICATED = new Set(['completed', 'in_sync']);

// ---------------------------------------------------------------------------------------------
// A seeded mix of faults on a fault proxy

export type FaultKind = 'error-500' | 'slowdown-503' | 'reset' | 'reset-mid-body' | 'stall' | 'corrupt';

export interface FaultMixOptions {
  seed: number;
  /** Share of requests that get a fault (0–1). */
  rate: number;
  /** Stall length range (ms): the request waits, then goes through. */
  stallMs?: [number, number];
  /** Allow byte flips (response bodies of GETs, request bodies of PUTs), as a share of the faults. */
  corrupt?: boolean;
}

export interface FaultMix {
  /** Faults injected so far, by kind. */
  counts(): Record<FaultKind, number>;
  total(): number;
  remove(): void;
}

/**
 * Decide per request (by the proxy's sequence number, from a seeded PRNG) whether
 * and how it fails: 500 InternalError, 503 SlowDown, a reset before forwarding, a
 * reset after the first byte of the answer (GET, and POST: the create or complete
 * of a multipart upload happened, its answer is lost), a stall, or (optionally) one
 * flipped byte (in a GET response body or a PUT request body). The order of requests is up to the service, so the run is not
 * replayable request for request, but the mix and its rate are.
 */
export function addFaultMix(proxy: FaultProxy, o: FaultMixOptions): FaultMix {
  const rand = mulberry32(o.seed);
  const decisions = new Map<number, FaultKind | null>();
  const [stallMin, stallMax] = o.stallMs ?? [500, 2_000];
  const decide = (info: ProxyRequestInfo): FaultKind | null => {
    let d = decisions.get(info.seq);
    if (d !== undefined) return d;
    d = null;
    if (rand() < o.rate) {
      const r = rand();
      const isGet = info.method === 'GET';
      const isPut = info.method === 'PUT';
      // Answers with a body worth cutting: GET, and POST (create / complete multipart upload).
      const hasBody = isGet || info.method === 'POST';
      if (o.corrupt && r < 0.15 && (isGet || isPut)) d = 'corrupt';
      else if (r < 0.33) d = 'error-500';
      else if (r < 0.58) d = 'slowdown-503';
      else if (r < 0.73) d = 'reset';
      else if (r < 0.83 && hasBody) d = 'reset-mid-body';
      else d = 'stall';
    }
    decisions.set(info.seq, d);
    return d;
  };
  const is = (kind: FaultKind, extra?: (info: ProxyRequestInfo) => boolean) => ({ test: (info: ProxyRequestInfo) => decide(info) === kind && (extra ? extra(info) : true) });
  const handles: [FaultKind, RuleHandle][] = [];
  const add = (kind: FaultKind, action: FaultAction, extra?: (info: ProxyRequestInfo) => boolean) => handles.push([kind, proxy.add({ match: is(kind, extra), action })]);
  add('error-500', { type: 'status', status: 500, code: 'InternalError' });
  add('slowdown-503', { type: 'status', status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' });
  add('reset', { type: 'reset' });
  // The request is done on the server; the answer is cut after its first byte.
  add('reset-mid-body', { type: 'reset', afterBytes: 1 });
  // Stalls of a few lengths (an action has one fixed delay).
  const steps = 4;
  for (let i = 0; i < steps; i++) {
    const ms = Math.round(stallMin + ((stallMax - stallMin) * i) / (steps - 1));
    add('stall', { type: 'delay', ms }, (info) => info.seq % steps === i);
  }
  // A flipped byte in a GET body reaches the service: only its own MD5 / CRC-64 check can tell.
  add('corrupt', { type: 'flip-response-byte' }, (info) => info.method === 'GET');
  // A flipped byte in a PUT body: the server's Content-MD5 check refuses it (BadDigest). (Dropping
  // Content-MD5 to make the server store the damage would also break the OSS V1 signature, which
  // covers it: a fault no network produces.)
  add('corrupt', { type: 'flip-request-byte' }, (info) => info.method === 'PUT');
  return {
    counts() {
      const c: Record<FaultKind, number> = { 'error-500': 0, 'slowdown-503': 0, reset: 0, 'reset-mid-body': 0, stall: 0, corrupt: 0 };
      for (const [kind, h] of handles) c[kind] += h.fired;
      return c;
    },
    total() {
      return handles.reduce((n, [, h]) => n + h.fired, 0);
    },
    remove() {
      for (const [, h] of handles) h.remove();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Two copies of one key at once?

export interface OverlapWatch {
  endpoint: string;
  /** Writes seen (single PUTs and part uploads). */
  writes(): number;
  /** Keys that had writes of two different copies (a single PUT, or one multipart upload id) in flight at once. */
  overlaps(): string[];
  close(): Promise<void>;
}

/**
 * A pass-through HTTP proxy in front of a storage server that records, per object
 * path, which copies are writing right now: a single PUT is a copy of its own, part
 * uploads belong to the copy of their uploadId. Two copies of one key writing at
 * the same moment is what "copied by both at once" looks like from the bucket.
 */
export async function startOverlapWatch(target: string): Promise<OverlapWatch> {
  const t = new URL(target);
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const inFlight = new Map<string, Map<string, number>>();
  const overlapped = new Set<string>();
  const sockets = new Set<Socket>();
  let writes = 0;
  let seq = 0;
  const server = createServer((req: IncomingMessage, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    // ali-oss with an IP endpoint names the bucket in Host only; keep Host in the identity.
    const path = `${String(req.headers.host).split('.')[0]}${url.pathname}`;
    const isWrite = req.method === 'PUT' && !url.searchParams.has('uploads');
    let copy: string | undefined;
    if (isWrite) {
      writes++;
      copy = url.searchParams.get('uploadId') ?? `single-${++seq}`;
      const copies = inFlight.get(path) ?? new Map<string, number>();
      copies.set(copy, (copies.get(copy) ?? 0) + 1);
      inFlight.set(path, copies);
      if (copies.size > 1) overlapped.add(decodeURIComponent(path));
    }
    let done = false;
    const finish = () => {
      if (done || !copy) return;
      done = true;
      const copies = inFlight.get(path)!;
      const n = (copies.get(copy) ?? 1) - 1;
      if (n <= 0) copies.delete(copy);
      else copies.set(copy, n);
      if (copies.size === 0) inFlight.delete(path);
    };
    const up = httpRequest({ host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.rawHeaders);
      upRes.pipe(res);
      upRes.on('end', finish);
    });
    up.on('error', () => {
      finish();
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', finish);
    req.pipe(up);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    writes: () => writes,
    overlaps: () => [...overlapped],
    async close() {
      const closing = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      agent.destroy();
      await closing;
    },
  };
}

/** Read VmRSS (KiB) of a process from /proc. */
export async function rssKib(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}
