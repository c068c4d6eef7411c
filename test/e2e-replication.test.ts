/**
 * The thin end-to-end slice, against the real process: an object put into an
 * S3 server is replicated to an OSS server after a signed S3 event, and the
 * other way round after a signed OSS Function Compute event.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { S3Client, PutObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import OSS from 'ali-oss';
import { signedPost } from '../src/auth/signed-client.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { eventually, startService, type ServiceProcess } from './support/service.js';

const senderSecret = randomBytes(24).toString('hex');
const sender = { accessKeyId: 'lambda-e2e', secret: senderSecret };

let s3: S3Server;
let oss: OssServer;
let db: TestDatabase;
let svc: ServiceProcess;
let s3Client: S3Client;
let ossClient: OSS;

t.before(async () => {
  s3 = await startS3Server({ buckets: ['photos-src', 'back-dst'] });
  oss = await startOssServer({ buckets: ['photos-dst', 'back-src'] });
  db = await createTestDatabase();
  s3Client = new S3Client({
    region: 'us-east-1',
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
  ossClient = new OSS({
    region: 'oss-cn-hangzhou',
    endpoint: oss.endpoint,
    accessKeyId: oss.accessKeyId,
    accessKeySecret: oss.accessKeySecret,
    bucket: 'back-src',
    secure: false,
  });
  const s3Endpoint = { region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'E2E_S3_AK', secretAccessKeyEnv: 'E2E_S3_SK' } };
  const ossEndpoint = { region: 'oss-cn-hangzhou', endpoint: oss.endpoint, credentials: { accessKeyIdEnv: 'E2E_OSS_AK', secretAccessKeyEnv: 'E2E_OSS_SK' } };
  svc = await startService({
    config: {
      tasks: [
        { id: 's3-to-oss', source: { provider: 's3', bucket: 'photos-src', ...s3Endpoint }, destination: { provider: 'oss', bucket: 'photos-dst', ...ossEndpoint } },
        { id: 'oss-to-s3', source: { provider: 'oss', bucket: 'back-src', ...ossEndpoint }, destination: { provider: 's3', bucket: 'back-dst', ...s3Endpoint } },
      ],
      senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'E2E_SENDER_SK', tasks: ['s3-to-oss', 'oss-to-s3'] }],
    },
    env: {
      DATABASE_URL: db.url,
      E2E_S3_AK: s3.accessKeyId,
      E2E_S3_SK: s3.secretAccessKey,
      E2E_OSS_AK: oss.accessKeyId,
      E2E_OSS_SK: oss.accessKeySecret,
      E2E_SENDER_SK: senderSecret,
    },
  });
});

t.teardown(async () => {
  await svc?.stop();
  s3Client?.destroy();
  await s3?.close();
  await oss?.close();
  await db?.drop();
});

async function statusOf(taskId: string, key: string): Promise<{ status: string; last_error_code: string | null } | undefined> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const { rows } = await c.query('SELECT status, last_error_code FROM bb_object_status WHERE task_id = $1 AND key = $2', [taskId, key]);
    return rows[0];
  } finally {
    await c.end();
  }
}

t.test('S3 → OSS: a signed S3 event replicates bytes, Content-Type and user metadata', async (t) => {
  const key = 'albums/2024/summer day+1.jpg';
  const body = randomBytes(300_000);
  await s3Client.send(
    new PutObjectCommand({
      Bucket: 'photos-src',
      Key: key,
      Body: body,
      ContentType: 'image/jpeg',
      Metadata: { camera: 'x100', owner: 'ana' },
    }),
  );
  const event = {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        // S3 form-encodes keys in events: space → '+', '+' → '%2B'.
        s3: { bucket: { name: 'photos-src' }, object: { key: 'albums/2024/summer+day%2B1.jpg', size: body.length, eTag: 'x', sequencer: '0A' } },
      },
    ],
  };
  const res = await signedPost(`${svc.url}/sync`, JSON.stringify(event), sender);
  t.equal(res.status, 202, res.text);
  t.equal((res.body as { accepted: number }).accepted, 1);
  const copy = await eventually(async () => oss.getObject('photos-dst', key), 30_000, 'object on OSS');
  t.ok(copy.body.equals(body), 'same bytes');
  t.equal(copy.headers['content-type'], 'image/jpeg');
  t.equal(copy.meta.camera, 'x100');
  t.equal(copy.meta.owner, 'ana');
  const status = await eventually(async () => {
    const s = await statusOf('s3-to-oss', key);
    return s?.status === 'completed' ? s : undefined;
  }, 10_000, 'completed status row');
  t.equal(status.status, 'completed');
});

t.test('OSS → S3: a signed OSS Function Compute event replicates the other way', async (t) => {
  const key = 'reports/q3 €.csv';
  const body = Buffer.from('id,amount\n1,42\n'.repeat(5000));
  await ossClient.put(key, body, { mime: 'text/csv', meta: { source: 'erp', uid: 0, pid: 0 } as unknown as OSS.UserMeta });
  const event = {
    events: [
      {
        eventName: 'ObjectCreated:PutObject',
        eventSource: 'acs:oss',
        eventTime: new Date().toISOString(),
        region: 'cn-hangzhou',
        oss: { bucket: { name: 'back-src' }, object: { key, size: body.length, eTag: 'ABC', deltaSize: body.length } },
      },
    ],
  };
  const res = await signedPost(`${svc.url}/sync`, JSON.stringify(event), sender);
  t.equal(res.status, 202, res.text);
  const got = await eventually(async () => {
    try {
      return await s3Client.send(new GetObjectCommand({ Bucket: 'back-dst', Key: key }));
    } catch {
      return undefined;
    }
  }, 30_000, 'object on S3');
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  t.ok(bytes.equals(body), 'same bytes');
  t.equal(got.ContentType, 'text/csv');
  t.equal(got.Metadata?.source, 'erp');
  const status = await eventually(async () => {
    const s = await statusOf('oss-to-s3', key);
    return s?.status === 'completed' ? s : undefined;
  }, 10_000, 'completed status row');
  t.equal(status.status, 'completed');
});

t.test('a second event for an unchanged object is recorded in_sync, nothing re-sent', async (t) => {
  const key = 'albums/2024/summer day+1.jpg';
  const putsBefore = oss.requests.filter((r) => r.method === 'PUT' && r.key === key).length;
  const event = {
    Records: [
      { eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'photos-src' }, object: { key: 'albums/2024/summer+day%2B1.jpg', size: 1 } } },
    ],
  };
  const res = await signedPost(`${svc.url}/sync`, JSON.stringify(event), sender);
  t.equal(res.status, 202, res.text);
  await eventually(async () => ((await statusOf('s3-to-oss', key))?.status === 'in_sync' ? true : undefined), 20_000, 'in_sync');
  t.equal(oss.requests.filter((r) => r.method === 'PUT' && r.key === key).length, putsBefore, 'no PUT to the destination');
});
