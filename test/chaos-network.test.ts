/**
 * Network chaos: fault-injecting proxies in front of the source (S3) and the
 * destination (OSS) fail about one request in five, seeded: 500
 * InternalError, 503 SlowDown, connection resets (before forwarding, and in
 * the middle of a GET body), stalls of up to 1.5 s, and a few flipped bytes
 * (in a GET body, which only the service's own MD5 / CRC-64 check can catch,
 * or in a PUT body, which the server refuses by its Content-MD5). Every object must end byte-identical, none may be marked
 * completed while wrong, and no job may retry past the configured limit.
 *
 * Then the source object deleted between the event and the copy: before the
 * worker looks (the event is stale), and between the worker's HEAD and its
 * GET. Both end `source_missing` in one attempt, without retries, dead
 * letters or error logs. The long version is `bench/chaos.mjs network`.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { startService, type ServiceProcess } from './support/service.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { addFaultMix, fixtures, Inspector, notify, putAll, REPLICATED, s3Client } from './support/chaos.js';

const KIB = 1024;
const PART = 128 * KIB;
const TASK = 'chaos';
const RETRY_LIMIT = 25;
const sender = { accessKeyId: 'chaos-sender', secret: randomBytes(24).toString('hex') };
const objects = fixtures('net', 40, { seed: 23, maxSmall: 200 * KIB, large: 4 * PART + 500, multipartEvery: 10 });

let s3: S3Server;
let oss: OssServer;
let srcProxy: FaultProxy;
let dstProxy: FaultProxy;
let db: TestDatabase;
let inspect: Inspector;
let svc: ServiceProcess;

t.before(async () => {
  s3 = await startS3Server({ buckets: ['net-src'] });
  oss = await startOssServer({ buckets: ['net-dst'], minPartSize: PART });
  srcProxy = await startFaultProxy({ target: s3.endpoint });
  dstProxy = await startFaultProxy({ target: oss.endpoint });
  db = await createTestDatabase();
  inspect = new Inspector(db.url);
  const client = s3Client(s3);
  await putAll(client, 'net-src', objects);
  client.destroy();
  svc = await startService({
    config: {
      tasks: [
        {
          id: TASK,
          source: { provider: 's3', bucket: 'net-src', region: 'us-east-1', endpoint: srcProxy.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'N_S3_AK', secretAccessKeyEnv: 'N_S3_SK' } },
          destination: { provider: 'oss', bucket: 'net-dst', region: 'oss-cn-hangzhou', endpoint: dstProxy.endpoint, credentials: { accessKeyIdEnv: 'N_OSS_AK', secretAccessKeyEnv: 'N_OSS_SK' } },
          options: { multipartThresholdBytes: 3 * PART, partSizeBytes: PART, partConcurrency: 2 },
        },
      ],
      senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'N_SENDER_SK', tasks: [TASK] }],
    },
    env: {
      DATABASE_URL: db.url,
      N_S3_AK: s3.accessKeyId,
      N_S3_SK: s3.secretAccessKey,
      N_OSS_AK: oss.accessKeyId,
      N_OSS_SK: oss.accessKeySecret,
      N_SENDER_SK: sender.secret,
      BB_WORKER_CONCURRENCY: '8',
      BB_RETRY_LIMIT: String(RETRY_LIMIT),
      BB_RETRY_DELAY_SECONDS: '0',
    },
  });
});

t.teardown(async () => {
  await svc?.stop();
  await inspect?.close();
  await srcProxy?.close();
  await dstProxy?.close();
  await s3?.close();
  await oss?.close();
  await db?.drop();
});

t.test(`${objects.length} objects through ~20% faults on both sides: all correct, none completed while wrong, retries within the limit`, async (t) => {
  const srcFaults = addFaultMix(srcProxy, { seed: 101, rate: 0.2, stallMs: [300, 1_500], corrupt: true });
  const dstFaults = addFaultMix(dstProxy, { seed: 202, rate: 0.2, stallMs: [300, 1_500], corrupt: true });
  const srcBefore = srcProxy.log.length;
  const dstBefore = dstProxy.log.length;
  await notify(svc.url, 'net-src', objects.map((o) => o.key), sender, 10);
  const rows = await inspect.settled(TASK, objects.map((o) => o.key), 150_000);
  srcFaults.remove();
  dstFaults.remove();

  const notReplicated = objects.filter((o) => !REPLICATED.has(rows.get(o.key)!.status)).map((o) => `${o.key}: ${JSON.stringify(rows.get(o.key))}`);
  t.same(notReplicated, [], 'every object ends replicated');
  // Completed rows are final (the job is done): their bytes now are the bytes they were completed with.
  const completedWrong = objects.filter((o) => rows.get(o.key)!.status === 'completed' && !oss.getObject('net-dst', o.key)?.body.equals(o.body)).map((o) => o.key);
  t.same(completedWrong, [], 'no object is marked completed while its bytes are wrong');
  const wrong = objects.filter((o) => !oss.getObject('net-dst', o.key)?.body.equals(o.body)).map((o) => o.key);
  t.same(wrong, [], 'every object is byte-identical on the destination');
  const retries = await inspect.retryCounts();
  t.ok(retries.max <= RETRY_LIMIT, `no job retried past the limit (max ${retries.max} of ${RETRY_LIMIT})`);
  t.equal(await inspect.deadLetters(), 0, 'nothing dead-lettered');
  t.equal(oss.pendingUploads('net-dst'), 0, 'no multipart upload left open');
  t.equal(await inspect.multipartRecords(), 0, 'no multipart upload left recorded');
  const faults = { src: srcFaults.counts(), dst: dstFaults.counts() };
  const injected = srcFaults.total() + dstFaults.total();
  const requests = srcProxy.log.length - srcBefore + (dstProxy.log.length - dstBefore);
  t.ok(injected >= 20, `faults were injected (${injected} of ${requests} requests)`);
  t.comment(`figures: objects ${objects.length}, requests ${requests}, faults injected ${injected} (${((100 * injected) / requests).toFixed(1)}%): source ${JSON.stringify(faults.src)}, destination ${JSON.stringify(faults.dst)}; job retries ${retries.total} (max ${retries.max} per job, limit ${RETRY_LIMIT}); losses 0`);
});

t.test('the source object is deleted between the event and the copy: source_missing, one attempt, no error storm', async (t) => {
  const client = s3Client(s3);
  t.teardown(() => client.destroy());
  const stale = 'gone/before the worker looked.bin';
  const racing = 'gone/between head and get.bin';
  for (const key of [stale, racing]) await client.send(new PutObjectCommand({ Bucket: 'net-src', Key: key, Body: randomBytes(50_000) }));
  // Stale event: the object is already gone when the worker looks.
  await client.send(new DeleteObjectCommand({ Bucket: 'net-src', Key: stale }));
  // Race: the object disappears after the worker's HEAD saw it, just before its GET.
  const race = srcProxy.add({
    match: { method: 'GET', path: new RegExp(`/net-src/${racing}$`) },
    nth: 1,
    action: { type: 'hook', hook: async () => void (await client.send(new DeleteObjectCommand({ Bucket: 'net-src', Key: racing }))) },
  });
  const logBefore = svc.output().length;
  const srcBefore = srcProxy.log.length;
  await notify(svc.url, 'net-src', [stale, racing], sender);
  const rows = await inspect.settled(TASK, [stale, racing], 60_000);
  t.equal(race.fired, 1, 'the object was deleted between HEAD and GET');
  for (const key of [stale, racing]) {
    const row = rows.get(key)!;
    t.equal(row.status, 'source_missing', `${key}: source_missing`);
    t.equal(oss.getObject('net-dst', key), undefined, `${key}: nothing written to the destination`);
  }
  const { rows: jobs } = await inspect.pool.query<{ key: string; retry_count: number; state: string }>(
    "SELECT data->>'key' AS key, retry_count, state::text FROM pgboss.job WHERE name = 'bb-replicate' AND data->>'key' = ANY($1)",
    [[stale, racing]],
  );
  t.same(jobs.map((j) => [j.key, j.state]).sort(), [[stale, 'completed'], [racing, 'completed']].sort(), 'each job completed');
  const retried = jobs.filter((j) => j.retry_count > 0).map((j) => `${j.key}: ${j.retry_count}`);
  t.same(retried, [], 'without a retry');
  t.equal(await inspect.deadLetters(), 0, 'nothing dead-lettered');
  const requests = srcProxy.log.slice(srcBefore).filter((r) => r.path.includes('/gone/')).length;
  t.ok(requests <= 6, `a handful of source requests for the two keys (${requests})`);
  const log = svc.output().slice(logBefore);
  t.notMatch(log, /"level":50/, 'no error logged');
  t.notMatch(log, /replication attempt failed/, 'no failed attempt logged');
});
