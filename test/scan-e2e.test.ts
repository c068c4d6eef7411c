/**
 * The real process (`node dist/main.js`): a task with `schedule: once` is
 * reconciled by its first scan with no event at all, and a scan started
 * through the admin API afterwards finds nothing to do.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mintAdminToken } from '../src/auth/admin-jwt.js';
import { createStore } from '../src/storage/create-store.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { eventually, startService, type ServiceProcess } from './support/service.js';

const secret = randomBytes(32).toString('hex');
let s3: S3Server;
let oss: OssServer;
let db: TestDatabase;
let svc: ServiceProcess;
const keys = Array.from({ length: 40 }, (_, i) => `in/${i}`).concat(['a', 'a/', 'a.b', 'a-b', '\u{1F600}', '\uFF5E', '100%']);

t.before(async () => {
  s3 = await startS3Server({ buckets: ['once-src'] });
  oss = await startOssServer({ buckets: ['once-dst'] });
  db = await createTestDatabase();
  const env = { E2E_S3_AK: s3.accessKeyId, E2E_S3_SK: s3.secretAccessKey, E2E_OSS_AK: oss.accessKeyId, E2E_OSS_SK: oss.accessKeySecret };
  const source = createStore({ provider: 's3', bucket: 'once-src', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'E2E_S3_AK', secretAccessKeyEnv: 'E2E_S3_SK' } }, env);
  for (const k of keys) await source.put(k, Buffer.from(`body of ${k}`), Buffer.byteLength(`body of ${k}`));
  await source.close();
  svc = await startService({
    config: {
      tasks: [
        {
          id: 'once',
          source: { provider: 's3', bucket: 'once-src', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'E2E_S3_AK', secretAccessKeyEnv: 'E2E_S3_SK' } },
          destination: { provider: 'oss', bucket: 'once-dst', region: 'oss-cn-hangzhou', endpoint: oss.endpoint, credentials: { accessKeyIdEnv: 'E2E_OSS_AK', secretAccessKeyEnv: 'E2E_OSS_SK' } },
          schedule: { mode: 'once' },
        },
      ],
    },
    env: { DATABASE_URL: db.url, BB_ADMIN_JWT_SECRET: secret, ...env },
  });
});

t.teardown(async () => {
  await svc?.stop();
  await s3?.close();
  await oss?.close();
  await db?.drop();
});

t.test('a once task is copied by its first scan; an API scan then finds nothing', async (t) => {
  for (const k of keys) {
    const copy = await eventually(async () => oss.getObject('once-dst', k), 60_000, `${k} on OSS`);
    t.equal(copy.body.toString(), `body of ${k}`);
  }
  const token = await mintAdminToken({ secret, scopes: ['bb:read', 'bb:write'], ttlSeconds: 300 });
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const list = await eventually(async () => {
    const res = await fetch(`${svc.url}/admin/tasks/once/scans`, { headers });
    const body = (await res.json()) as { scans: { trigger: string; state: string; differences: { missing: number } }[] };
    return body.scans.length === 1 && body.scans[0]!.state === 'completed' ? body.scans : undefined;
  }, 30_000, 'the once scan to be recorded as completed');
  t.equal(list[0]!.trigger, 'once');
  t.equal(list[0]!.differences.missing, keys.length);

  const started = await fetch(`${svc.url}/admin/tasks/once/scans`, { method: 'POST', headers, body: JSON.stringify({}) });
  t.equal(started.status, 202);
  const { id } = (await started.json()) as { id: string };
  const done = await eventually(async () => {
    const res = await fetch(`${svc.url}/admin/tasks/once/scans/${id}`, { headers });
    const body = (await res.json()) as { state: string; differences: { total: number }; jobs: { queued: number }; listed: { source: number } };
    return body.state === 'completed' ? body : undefined;
  }, 30_000, 'the API scan');
  t.equal(done.listed.source, keys.length);
  t.equal(done.differences.total, 0);
  t.equal(done.jobs.queued, 0);
});
