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
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

const HERE = dirname(fileURLToPath(import.meta.url));
const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const MIB = Number(arg('mib', '1024'));
const REPS = Number(arg('reps', '2'));
const CLIENTS = arg('clients', 'lean,sdk').split(',');
const DIST = resolve(arg('dist', join(HERE, '../../dist')));
const { S3Store } = await import(pathToFileURL(join(DIST, 'storage/s3-store.js')).href);

const PART = 8 * 1024 * 1024;
const PARTS = Math.ceil((MIB * 1024 * 1024) / PART);
const dir = mkdtempSync(join(tmpdir(), 'bb-complete-cost-'));
const server = spawn(process.execPath, ['--openssl-legacy-provider', join(HERE, 's3rver.mjs'), dir], { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((res, rej) => {
  server.stdout.once('data', (d) => res(JSON.parse(String(d)).port));
  server.once('exit', (c) => rej(new Error(`s3rver exited ${c}`)));
});
const endpoint = `http://127.0.0.1:${port}`;
const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
await new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials }).send(new CreateBucketCommand({ Bucket: 'bench' }));

function serverCpu() {
  const fields = readFileSync(`/proc/${server.pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

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
      const c0 = serverCpu();
      const t0 = Date.now();
      const worker = async () => {
        for (let p = next++; p <= PARTS; p = next++) parts.push({ partNumber: p, etag: (await store.uploadPart(key, uploadId, p, data)).etag });
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      const c1 = serverCpu();
      const t1 = Date.now();
      await store.completeMultipartUpload(key, uploadId, parts.sort((a, b) => a.partNumber - b.partNumber));
      const c2 = serverCpu();
      const t2 = Date.now();
      await store.close();
      console.log(`complete-cost: upload ${n} (${client} ${rep}): parts ${(t1 - t0) / 1000} s, s3rver ${(c1 - c0).toFixed(2)} CPU-s; complete ${(t2 - t1) / 1000} s, s3rver ${(c2 - c1).toFixed(2)} CPU-s`);
    }
  }
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
