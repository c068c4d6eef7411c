#!/usr/bin/env node
/**
 * What s3rver's CompleteMultipartUpload costs, and whether it depends on the
 * client that uploaded the parts: one fresh s3rver (its own process), then, per
 * client in `--clients` order, `--reps` uploads of `--mib` MiB in 8 MiB parts
 * (4 in flight) followed by the complete. Clients: `lean` (S3Store's own
 * requests, s3-requests.ts) and `sdk` (S3Store with `leanRequests: false`).
 * Prints per upload the seconds and s3rver CPU-s of the parts and of the
 * complete (where s3rver concatenates the part files and hashes the result).
 *
 *   node bench/copy/complete-cost.mjs [--mib=1024] [--reps=2] [--clients=lean,sdk] [--dist=DIR]
 */
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { startS3rverProcess } from './s3rver-process.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const MIB = Number(arg('mib', '1024'));
const REPS = Number(arg('reps', '2'));
const CLIENTS = arg('clients', 'lean,sdk').split(',');
const DIST = resolve(arg('dist', join(HERE, '../../dist')));
const { S3Store } = await import(pathToFileURL(join(DIST, 'storage/s3-store.js')).href);

const PART = 8 * 1024 * 1024;
const PARTS = Math.ceil((MIB * 1024 * 1024) / PART);
const server = await startS3rverProcess('complete-cost');
const { endpoint } = server;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
await new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials }).send(new CreateBucketCommand({ Bucket: 'bench' }));

const data = randomBytes(PART);
let n = 0;
try {
  for (const client of CLIENTS) {
    for (let rep = 1; rep <= REPS; rep++) {
      const store = new S3Store({ bucket: 'bench', region: 'us-east-1', endpoint, forcePathStyle: true, credentials, leanRequests: client === 'lean' });
      const key = `object-${++n}`;
      const uploadId = await store.createMultipartUpload(key);
      const parts = [];
      let next = 1;
      const c0 = server.cpuSeconds();
      const t0 = Date.now();
      const worker = async () => {
        for (let p = next++; p <= PARTS; p = next++) parts.push({ partNumber: p, etag: (await store.uploadPart(key, uploadId, p, data)).etag });
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      const c1 = server.cpuSeconds();
      const t1 = Date.now();
      await store.completeMultipartUpload(key, uploadId, parts.sort((a, b) => a.partNumber - b.partNumber));
      const c2 = server.cpuSeconds();
      const t2 = Date.now();
      await store.close();
      console.log(`complete-cost: upload ${n} (${client} ${rep}): parts ${(t1 - t0) / 1000} s, s3rver ${(c1 - c0).toFixed(2)} CPU-s; complete ${(t2 - t1) / 1000} s, s3rver ${(c2 - c1).toFixed(2)} CPU-s`);
    }
  }
} finally {
  await server.stop();
}
