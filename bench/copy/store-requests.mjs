#!/usr/bin/env node
/**
 * Client CPU per S3Store request: HEAD (present / missing), GET and PUT of
 * small objects against one plain s3rver in its own process (so only the
 * client's CPU is counted), `--count` requests of each kind at `--concurrency`.
 * Prints CPU-ms per request of this process (user + system) and of the s3rver
 * process serving it, and requests/s.
 *
 *   node bench/copy/store-requests.mjs [--count=2000] [--concurrency=16] [--kib=64] [--dist=DIR]
 *
 * `--dist` points at another build (e.g. a snapshot of the previous commit) to
 * compare two versions of the adapter on the same machine, one after the other.
 */
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { startS3rverProcess } from './s3rver-process.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const COUNT = Number(arg('count', '2000'));
const CONCURRENCY = Number(arg('concurrency', '16'));
const KIB = Number(arg('kib', '64'));
const DIST = resolve(arg('dist', join(HERE, '../../dist')));
const { S3Store } = await import(pathToFileURL(join(DIST, 'storage/s3-store.js')).href);

const server = await startS3rverProcess('store-requests');
const { endpoint } = server;
const store = new S3Store({
  bucket: 'bench',
  region: 'us-east-1',
  endpoint,
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
await fetch(`${endpoint}/bench`, { method: 'PUT' }).catch(() => {});
// s3rver does not check signatures; an unsigned CreateBucket is enough.

const body = randomBytes(KIB * 1024);
const md5 = createHash('md5').update(body).digest('base64');

async function phase(name, op) {
  let next = 0;
  const server0 = server.cpuSeconds();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < COUNT) await op(next++);
    }),
  );
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const ms = (cpu.user + cpu.system) / 1000 / COUNT;
  const serverMs = ((server.cpuSeconds() - server0) * 1000) / COUNT;
  console.log(`${name.padEnd(14)} client ${ms.toFixed(3)} CPU-ms/request  s3rver ${serverMs.toFixed(2)} CPU-ms/request  ${(COUNT / wall).toFixed(0)} requests/s`);
  return ms;
}

const drain = async (stream) => {
  for await (const _ of stream);
};
try {
  // Warm-up: sockets, JIT.
  for (let i = 0; i < 200; i++) await store.put(`warm/${i}`, body, body.length, { contentMd5: md5 });
  await phase('put', (i) => store.put(`o/${i}`, body, body.length, { contentMd5: md5, contentType: 'application/octet-stream', userMetadata: { a: 'b' } }));
  await phase('head', (i) => store.head(`o/${i}`));
  await phase('head-missing', (i) => store.head(`missing/${i}`));
  await phase('get', async (i) => drain(await store.get(`o/${i}`, { ifMatch: createHash('md5').update(body).digest('hex') })));
  await phase('get-range', async (i) => drain(await store.get(`o/${i}`, { range: { start: 0, end: 4095 } })));
} finally {
  await store.close();
  await server.stop();
}
