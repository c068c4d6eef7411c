/**
 * Crash resume against the real process: a multipart copy is killed with
 * SIGKILL mid-way; a new process on the same host hands the dead process's
 * job back at once (its pid is gone) and continues the copy from the parts
 * already on the destination: their bytes are read again from the source and
 * checked against the recorded part, but they are not uploaded again. The
 * object ends byte-for-byte correct and no upload is left behind.
 *
 * BB_LEASE_STALE_SECONDS is set far beyond the test's patience, so only the
 * "dead pid on this host" hand-back can make this pass.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { signedPost } from '../src/auth/signed-client.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { eventually, startService, type ServiceProcess } from './support/service.js';
import { startS3Server, type S3Server } from './support/s3-server.js';

const KIB = 1024;
const PART = 100 * KIB;
const PARTS = 30;
const KEY = 'videos/big take 1.mov';
const sender = { accessKeyId: 'resume-test', secret: randomBytes(24).toString('hex') };

let s3: S3Server;
let oss: OssServer;
let srcProxy: FaultProxy;
let dstProxy: FaultProxy;
let db: TestDatabase;
let client: pg.Client;
const services: ServiceProcess[] = [];

t.before(async () => {
  s3 = await startS3Server({ buckets: ['resume-src'] });
  oss = await startOssServer({ buckets: ['resume-dst'], minPartSize: PART });
  srcProxy = await startFaultProxy({ target: s3.endpoint });
  dstProxy = await startFaultProxy({ target: oss.endpoint });
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

t.teardown(async () => {
  for (const s of services) await s.stop().catch(() => {});
  await client?.end();
  await srcProxy?.close();
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
          id: 'resume',
          source: {
            provider: 's3',
            bucket: 'resume-src',
            region: 'us-east-1',
            endpoint: srcProxy.endpoint,
            forcePathStyle: true,
            credentials: { accessKeyIdEnv: 'R_S3_AK', secretAccessKeyEnv: 'R_S3_SK' },
          },
          destination: {
            provider: 'oss',
            bucket: 'resume-dst',
            region: 'oss-cn-hangzhou',
            endpoint: dstProxy.endpoint,
            credentials: { accessKeyIdEnv: 'R_OSS_AK', secretAccessKeyEnv: 'R_OSS_SK' },
          },
          options: { multipartThresholdBytes: 256 * KIB, partSizeBytes: PART, partConcurrency: 1 },
        },
      ],
      senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'R_SENDER_SK', tasks: ['resume'] }],
    },
    env: {
      DATABASE_URL: db.url,
      R_S3_AK: s3.accessKeyId,
      R_S3_SK: s3.secretAccessKey,
      R_OSS_AK: oss.accessKeyId,
      R_OSS_SK: oss.accessKeySecret,
      R_SENDER_SK: sender.secret,
      BB_RETRY_DELAY_SECONDS: '0',
      BB_LEASE_HEARTBEAT_SECONDS: '1',
      BB_LEASE_STALE_SECONDS: '600',
      BB_WORKER_CONCURRENCY: '2',
    },
  }).then((s) => {
    services.push(s);
    return s;
  });
}

async function recordedParts(): Promise<number[]> {
  const { rows } = await client.query<{ part_number: number }>(
    `SELECT p.part_number FROM bb_multipart_parts p JOIN bb_multipart_uploads u USING (upload_id)
      WHERE u.task_id = 'resume' AND u.key = $1 ORDER BY 1`,
    [KEY],
  );
  return rows.map((r) => r.part_number);
}

const isPartUpload = (r: OssServer['requests'][number]) => r.method === 'PUT' && r.key === KEY && r.query.partNumber !== undefined;

t.test('kill -9 mid-multipart, restart: the copy resumes from the finished parts and ends correct', async (t) => {
  const body = randomBytes(PARTS * PART + 4321);
  const s3c = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  await s3c.send(new PutObjectCommand({ Bucket: 'resume-src', Key: KEY, Body: body, ContentLength: body.length }));
  s3c.destroy();

  // Slow part uploads down so the kill lands mid-copy.
  dstProxy.add({ match: { method: 'PUT', query: { partNumber: true } }, action: { type: 'delay', ms: 120 } });

  const first = await start();
  const event = {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        s3: { bucket: { name: 'resume-src' }, object: { key: encodeURIComponent(KEY).replace(/%20/g, '+').replace(/%2F/g, '/'), size: body.length } },
      },
    ],
  };
  const res = await signedPost(`${first.url}/sync`, JSON.stringify(event), sender);
  t.equal(res.status, 202, res.text);

  await eventually(async () => ((await recordedParts()).length >= 8 ? true : undefined), 30_000, '8 parts recorded');
  await first.kill();
  const doneBeforeKill = await recordedParts();
  const requestsAtKill = oss.requests.length;
  const uploadIds = new Set(oss.requests.filter(isPartUpload).map((r) => r.query.uploadId));
  t.equal(uploadIds.size, 1, 'one multipart upload was started');
  t.equal(oss.pendingUploads('resume-dst'), 1, 'the upload is left open by the crash');
  t.ok(doneBeforeKill.length >= 8 && doneBeforeKill.length < PARTS + 1, `killed mid-copy (${doneBeforeKill.length} of ${PARTS + 1} parts recorded)`);
  t.equal(oss.getObject('resume-dst', KEY), undefined, 'no object yet');

  dstProxy.clear();
  const sourceGetsAtRestart = srcProxy.log.length;
  const second = await start();
  const status = await eventually(
    async () => {
      const { rows } = await client.query<{ status: string; attempts: number }>(
        `SELECT status, attempts FROM bb_object_status WHERE task_id = 'resume' AND key = $1`,
        [KEY],
      );
      return rows[0]?.status === 'completed' ? rows[0] : undefined;
    },
    60_000,
    'completed after the restart',
  );
  t.equal(status.status, 'completed');

  const copy = oss.getObject('resume-dst', KEY);
  t.ok(copy?.body.equals(body), 'destination object is byte-for-byte the source');
  t.equal(oss.pendingUploads('resume-dst'), 0, 'no upload left behind');
  t.equal((await client.query('SELECT 1 FROM bb_multipart_uploads')).rowCount, 0, 'no resume record left behind');

  const after = oss.requests.slice(requestsAtKill);
  const resent = after.filter((r) => isPartUpload(r) && doneBeforeKill.includes(Number(r.query.partNumber)));
  t.same(
    resent.map((r) => r.query.partNumber),
    [],
    'parts finished before the kill were not uploaded again',
  );
  t.ok(after.every((r) => !isPartUpload(r) || uploadIds.has(r.query.uploadId)), 'the same upload was continued');
  const uploadedAfter = new Set(after.filter(isPartUpload).map((r) => Number(r.query.partNumber)));
  for (let n = 1; n <= PARTS + 1; n++) {
    if (!doneBeforeKill.includes(n) && !uploadedAfter.has(n)) t.fail(`part ${n} was neither done before the kill nor uploaded after`);
  }
  // The finished parts were re-checked: the source was read again from its first byte and each part compared with its record.
  const rereads = srcProxy.log.slice(sourceGetsAtRestart).filter((r) => r.method === 'GET' && /^(bytes=0-.*)?$/.test(String(r.headers.range ?? '')));
  t.ok(rereads.length >= 1, 'the source was read again from part 1 to re-check the finished parts');
  t.match(second.output(), /resuming multipart copy/, 'the restarted process says it resumed');
  t.match(second.output(), /handed back jobs of a dead worker/, 'and that it took over the dead worker\'s job');
});
