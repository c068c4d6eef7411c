#!/usr/bin/env node
/**
 * One large object read by S3Store from one plain s3rver (its own process),
 * the way a multipart copy reads it: part buffers of `--part-mib`, each piece
 * hashed on arrival with the copy's one-pass MD5 + CRC-64 hasher and a SHA-256
 * (the payload hash of the part's upload). Two ways, alternating `--runs`
 * times:
 *  - `node-http`: the body through node:http (S3Store `directGets: false`),
 *    each chunk copied into the part buffer, as before direct-http.ts;
 *  - `direct`: readInto, the socket reading straight into the part buffer
 *    (the default).
 * Prints per run MB/s, this process's CPU-s (user + system), the s3rver's
 * CPU-s, and V8's collections during the read (scavenges, mark-compacts).
 *
 *   node bench/copy/read-paths.mjs [--mib=1024] [--part-mib=8] [--runs=3] [--dist=DIR]
 */
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { startS3rverProcess } from './s3rver-process.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const MIB = Number(arg('mib', '1024'));
const PART = Number(arg('part-mib', '8')) * 1024 * 1024;
const RUNS = Number(arg('runs', '3'));
const DIST = resolve(arg('dist', join(HERE, '../../dist')));
const { S3Store } = await import(pathToFileURL(join(DIST, 'storage/s3-store.js')).href);
const { SegmentHasher } = await import(pathToFileURL(join(DIST, 'storage/segment-hasher.js')).href);
const { fillsBuffers } = await import(pathToFileURL(join(DIST, 'storage/object-store.js')).href);

const server = await startS3rverProcess('read-paths');
const { endpoint } = server;
// s3rver does not check signatures; an unsigned CreateBucket is enough.
await fetch(`${endpoint}/bench`, { method: 'PUT' }).catch(() => {});
const storeOptions = {
  bucket: 'bench',
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
};

const SIZE = MIB * 1024 * 1024;
{
  // The object, written part by part (s3rver keeps it as one file).
  const writer = new S3Store(storeOptions);
  const uploadId = await writer.createMultipartUpload('big');
  const parts = [];
  const chunk = randomBytes(PART);
  for (let n = 1, off = 0; off < SIZE; n++, off += PART) {
    const body = chunk.subarray(0, Math.min(PART, SIZE - off));
    const { etag } = await writer.uploadPart('big', uploadId, n, body);
    parts.push({ partNumber: n, etag });
  }
  await writer.completeMultipartUpload('big', uploadId, parts);
  await writer.close();
}

const gc = { minor: 0, major: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind;
    if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
    else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
  }
}).observe({ entryTypes: ['gc'] });

const buffers = [Buffer.alloc(PART), Buffer.alloc(PART)];

async function readOnce(mode) {
  const store = new S3Store({ ...storeOptions, directGets: mode === 'direct' });
  const hasher = new SegmentHasher();
  let sha = createHash('sha256');
  const hash = (piece) => {
    hasher.update(piece);
    sha.update(piece);
  };
  const endPart = () => {
    hasher.endSegment();
    sha.digest();
    sha = createHash('sha256');
  };
  await new Promise((r) => setTimeout(r, 200));
  gc.minor = gc.major = 0;
  const s0 = server.cpuSeconds();
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const body = await store.get('big');
  let total = 0;
  if (mode === 'direct') {
    if (!fillsBuffers(body)) throw new Error('the direct path did not answer with a BufferFillingBody');
    for (let part = 0; total < SIZE; part++) {
      const buf = buffers[part & 1].subarray(0, Math.min(PART, SIZE - total));
      total += await body.readInto(buf, hash);
      endPart();
    }
  } else {
    let filled = 0;
    let part = 0;
    for await (const chunk of body) {
      for (let off = 0; off < chunk.length; ) {
        const take = Math.min(chunk.length - off, PART - filled);
        const piece = chunk.subarray(off, off + take);
        piece.copy(buffers[part & 1], filled);
        hash(piece);
        filled += take;
        off += take;
        total += take;
        if (filled === PART) {
          endPart();
          filled = 0;
          part++;
        }
      }
    }
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(c0);
  const s3rver = server.cpuSeconds() - s0;
  await store.close();
  if (total !== SIZE) throw new Error(`${mode}: read ${total} of ${SIZE} bytes`);
  return { mode, mbps: +(SIZE / 1e6 / seconds).toFixed(1), cpu: +((cpu.user + cpu.system) / 1e6).toFixed(2), s3rver: +s3rver.toFixed(2), scavenges: gc.minor, markCompacts: gc.major };
}

const results = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    for (const mode of run % 2 ? ['node-http', 'direct'] : ['direct', 'node-http']) {
      const r = await readOnce(mode);
      results.push(r);
      console.log(`read-paths: ${MIB} MiB, ${mode} run ${run}: ${r.mbps} MB/s, client ${r.cpu} CPU-s, s3rver ${r.s3rver} CPU-s, ${r.scavenges} scavenges, ${r.markCompacts} mark-compacts`);
    }
  }
} finally {
  await server.stop();
}
