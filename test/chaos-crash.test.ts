/**
 * Crash: the real process (`node dist/main.js`) is killed with SIGKILL while
 * dozens of copies are in flight, multipart ones among them, and started again.
 * Afterwards every object is byte-identical on the destination, every status
 * row is final, and no multipart upload is left open on the destination nor
 * recorded in the database.
 *
 * BB_LEASE_STALE_SECONDS is far beyond the test's patience, so the restarted
 * process can only take the dead one's jobs back through the "dead pid on this
 * host" rule (src/queue/leases.ts), at once. The long version (200 objects) is
 * `bench/chaos.mjs crash`.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { eventually, startService, type ServiceProcess } from './support/service.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { fixtures, Inspector, notify, putAll, REPLICATED, s3Client } from './support/chaos.js';

const KIB = 1024;
const PART = 128 * KIB;
const TASK = 'crash';
const sender = { accessKeyId: 'crash-sender', secret: randomBytes(24).toString('hex') };
const objects = fixtures('crash', 48, { seed: 7, maxSmall: 160 * KIB, large: 5 * PART + 1000, multipartEvery: 8 });

let s3: S3Server;
let oss: OssServer;
let dstProxy: FaultProxy;
let db: TestDatabase;
let inspect: Inspector;
const services: ServiceProcess[] = [];

t.before(async () => {
  s3 = await startS3Server({ buckets: ['crash-src'] });
  oss = await startOssServer({ buckets: ['crash-dst'], minPartSize: PART });
  dstProxy = await startFaultProxy({ target: oss.endpoint });
  db = await createTestDatabase();
  inspect = new Inspector(db.url);
  const client = s3Client(s3);
  await putAll(client, 'crash-src', objects);
  client.destroy();
});

t.teardown(async () => {
  for (const s of services) await s.stop().catch(() => {});
  await inspect?.close();
  await dstProxy?.close();
  await s3?.close();
  await oss?.close();
  await db?.drop();
});

function start(): Promise<ServiceProcess> {
  return startService({
    config: {
      tasks: [
        {
          id: TASK,
          source: { provider: 's3', bucket: 'crash-src', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'C_S3_AK', secretAccessKeyEnv: 'C_S3_SK' } },
          destination: { provider: 'oss', bucket: 'crash-dst', region: 'oss-cn-hangzhou', endpoint: dstProxy.endpoint, credentials: { accessKeyIdEnv: 'C_OSS_AK', secretAccessKeyEnv: 'C_OSS_SK' } },
          options: { multipartThresholdBytes: 4 * PART, partSizeBytes: PART, partConcurrency: 2 },
        },
      ],
      senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'C_SENDER_SK', tasks: [TASK] }],
    },
    env: {
      DATABASE_URL: db.url,
      C_S3_AK: s3.accessKeyId,
      C_S3_SK: s3.secretAccessKey,
      C_OSS_AK: oss.accessKeyId,
      C_OSS_SK: oss.accessKeySecret,
      C_SENDER_SK: sender.secret,
      BB_WORKER_CONCURRENCY: '8',
      BB_RETRY_DELAY_SECONDS: '0',
      BB_LEASE_HEARTBEAT_SECONDS: '1',
      BB_LEASE_STALE_SECONDS: '600',
    },
  }).then((s) => {
    services.push(s);
    return s;
  });
}

t.test(`SIGKILL with ${objects.length} objects in flight (${objects.filter((o) => o.body.length > 4 * PART).length} multipart), restart: all byte-identical, all final, no orphaned uploads`, async (t) => {
  // Slow every write down, so the kill lands with many copies (and parts) in flight.
  const slow = dstProxy.add({ match: { method: 'PUT' }, action: { type: 'delay', ms: 150 } });
  const first = await start();
  await notify(first.url, 'crash-src', objects.map((o) => o.key), sender, 12);

  // Kill once some copies are done, several are running and a multipart upload is open.
  const atKill = await eventually(
    async () => {
      const done = [...(await inspect.statuses(TASK)).values()].filter((r) => REPLICATED.has(r.status)).length;
      const active = await inspect.activeJobs();
      const uploads = oss.pendingUploads('crash-dst');
      return done >= 6 && active >= 4 && uploads >= 1 ? { done, active, uploads } : undefined;
    },
    60_000,
    'copies done, in flight and a multipart upload open',
  );
  await first.kill();
  const recorded = await inspect.multipartRecords();
  t.comment(`killed with ${atKill.done} objects done, ${atKill.active} jobs running, ${oss.pendingUploads('crash-dst')} multipart uploads open (${recorded} recorded)`);
  t.ok(atKill.active >= 4, 'copies were in flight at the kill');
  t.ok(oss.pendingUploads('crash-dst') >= 1, 'a multipart upload was open at the kill');

  slow.remove();
  const second = await start();
  const rows = await inspect.settled(TASK, objects.map((o) => o.key), 120_000);
  const notReplicated = objects.filter((o) => !REPLICATED.has(rows.get(o.key)!.status)).map((o) => `${o.key}: ${JSON.stringify(rows.get(o.key))}`);
  t.same(notReplicated, [], 'every status is final and says replicated');
  const wrong = objects.filter((o) => !oss.getObject('crash-dst', o.key)?.body.equals(o.body)).map((o) => o.key);
  t.same(wrong, [], `all ${objects.length} objects are byte-identical on the destination`);
  t.equal(oss.pendingUploads('crash-dst'), 0, 'no multipart upload left open on the destination');
  t.equal(await inspect.multipartRecords(), 0, 'no multipart upload left recorded');
  t.equal(await inspect.deadLetters(), 0, 'nothing dead-lettered');
  t.match(second.output(), /handed back jobs of a dead worker/, 'the new process took the dead one\'s jobs back');
  const retries = await inspect.retryCounts();
  t.comment(`figures: objects ${objects.length}, in flight at kill ${atKill.active}, job retries after restart ${retries.total} (max ${retries.max} per job), losses 0`);
});

t.test('the answer to InitiateMultipartUpload is lost (the upload exists, its id never arrives): the next attempt aborts it, none is left', async (t) => {
  const svc = services[services.length - 1]!;
  const key = 'lost-create/big object.bin';
  const body = randomBytes(5 * PART + 123);
  const client = s3Client(s3);
  await putAll(client, 'crash-src', [{ key, body, md5: '' }]);
  client.destroy();
  // The destination creates the upload; the connection dies before the answer is through.
  const lost = dstProxy.add({ match: { method: 'POST', query: { uploads: true }, path: /lost-create/ }, nth: 1, action: { type: 'reset', afterBytes: 1 } });
  const logBefore = svc.output().length;
  await notify(svc.url, 'crash-src', [key], sender);
  const rows = await inspect.settled(TASK, [key], 60_000);
  t.equal(lost.fired, 1, 'the create answer was cut');
  t.equal(rows.get(key)!.status, 'completed', 'the object was copied on a later attempt');
  t.ok(oss.getObject('crash-dst', key)?.body.equals(body), 'byte-identical');
  t.equal(oss.pendingUploads('crash-dst'), 0, 'the upload whose id was lost was aborted: none left');
  t.match(svc.output().slice(logBefore), /aborted a multipart upload left by an interrupted start/, 'and the service says so');
  t.equal((await inspect.pool.query('SELECT 1 FROM bb_upload_intents')).rowCount, 0, 'no intent left');
});
