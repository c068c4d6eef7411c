/**
 * Database outage under load: the real process reaches PostgreSQL through a
 * TCP proxy that is cut (open connections dropped, new ones refused: what a
 * stopped server looks like to its clients) and restored while signed
 * notifications keep arriving and copies are running. During the outage every
 * notification is answered 503 DATABASE_UNAVAILABLE; afterwards the same
 * process (no restart) accepts again, its workers and pg-boss resume, and every
 * notification that got a 2xx is replicated. The sender's retries of the 503s
 * are replicated too. The long version (a dedicated PostgreSQL really stopped
 * and started) is `bench/chaos.mjs db`.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { signedPost } from '../src/auth/signed-client.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { startService, type ServiceProcess } from './support/service.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { startTcpProxy, viaProxy, type TcpProxy } from './support/tcp-proxy.js';
import { fixtures, Inspector, putAll, REPLICATED, s3Client, s3Event } from './support/chaos.js';

const KIB = 1024;
const TASK = 'outage';
const OUTAGE_MS = 5_000;
const sender = { accessKeyId: 'outage-sender', secret: randomBytes(24).toString('hex') };
const objects = fixtures('outage', 40, { seed: 11, maxSmall: 64 * KIB, large: 700 * KIB, multipartEvery: 10 });

let s3: S3Server;
let oss: OssServer;
let dstProxy: FaultProxy;
let db: TestDatabase;
let pgProxy: TcpProxy;
let inspect: Inspector;
let svc: ServiceProcess;

t.before(async () => {
  s3 = await startS3Server({ buckets: ['outage-src'] });
  oss = await startOssServer({ buckets: ['outage-dst'], minPartSize: 128 * KIB });
  dstProxy = await startFaultProxy({ target: oss.endpoint });
  db = await createTestDatabase();
  pgProxy = await startTcpProxy(Number(new URL(db.url).port));
  inspect = new Inspector(db.url);
  const client = s3Client(s3);
  await putAll(client, 'outage-src', objects);
  client.destroy();
  svc = await startService({
    config: {
      tasks: [
        {
          id: TASK,
          source: { provider: 's3', bucket: 'outage-src', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'O_S3_AK', secretAccessKeyEnv: 'O_S3_SK' } },
          destination: { provider: 'oss', bucket: 'outage-dst', region: 'oss-cn-hangzhou', endpoint: dstProxy.endpoint, credentials: { accessKeyIdEnv: 'O_OSS_AK', secretAccessKeyEnv: 'O_OSS_SK' } },
          options: { multipartThresholdBytes: 256 * KIB, partSizeBytes: 128 * KIB, partConcurrency: 2 },
        },
      ],
      senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'O_SENDER_SK', tasks: [TASK] }],
    },
    env: {
      DATABASE_URL: viaProxy(db.url, pgProxy),
      O_S3_AK: s3.accessKeyId,
      O_S3_SK: s3.secretAccessKey,
      O_OSS_AK: oss.accessKeyId,
      O_OSS_SK: oss.accessKeySecret,
      O_SENDER_SK: sender.secret,
      BB_WORKER_CONCURRENCY: '4',
      BB_RETRY_DELAY_SECONDS: '1',
      BB_LEASE_HEARTBEAT_SECONDS: '1',
    },
  });
});

t.teardown(async () => {
  await svc?.stop();
  await inspect?.close();
  await pgProxy?.close();
  await dstProxy?.close();
  await s3?.close();
  await oss?.close();
  await db?.drop();
});

interface Sent {
  key: string;
  sentAt: number;
  answeredAt: number;
  status: number;
  code?: string;
}

t.test(`PostgreSQL cut for ${OUTAGE_MS / 1000} s during a stream of notifications: 503 meanwhile, recovery without restart, every 2xx replicated`, async (t) => {
  // Copies take a while, so some are running when the database goes away.
  dstProxy.add({ match: { method: 'PUT' }, action: { type: 'delay', ms: 100 } });
  const pid = svc.child.pid;
  const sent: Sent[] = [];
  const send = async (key: string): Promise<Sent> => {
    const sentAt = Date.now();
    let status: number;
    let code: string | undefined;
    try {
      const res = await signedPost(`${svc.url}/sync`, s3Event('outage-src', [key]), sender, { timeoutMs: 20_000 });
      status = res.status;
      code = (res.body as { error?: { code?: string } }).error?.code;
    } catch {
      status = 0; // no answer at all
    }
    const s = { key, sentAt, answeredAt: Date.now(), status, code };
    sent.push(s);
    return s;
  };

  let cutAt = 0;
  let restoredAt = 0;
  const outage = (async () => {
    // Let a third of the stream in first.
    while (sent.length < 12) await new Promise((r) => setTimeout(r, 20));
    await pgProxy.cut();
    cutAt = Date.now();
    await new Promise((r) => setTimeout(r, OUTAGE_MS));
    await pgProxy.restore();
    restoredAt = Date.now();
  })();
  // The stream, through the outage and after it: every 80 ms, every 400 ms while the database is away.
  for (const o of objects) {
    await send(o.key);
    await new Promise((r) => setTimeout(r, cutAt > 0 && restoredAt === 0 ? 400 : 80));
  }
  await outage;

  const during = sent.filter((s) => cutAt > 0 && s.sentAt > cutAt + 100 && s.answeredAt < restoredAt);
  const accepted = sent.filter((s) => s.status >= 200 && s.status < 300);
  const refused = sent.filter((s) => s.status === 503);
  const other = sent.filter((s) => !(s.status >= 200 && s.status < 300) && s.status !== 503);
  t.comment(`stream: ${sent.length} notifications, ${accepted.length} accepted, ${refused.length} answered 503, ${during.length} sent during the outage`);
  t.ok(during.length >= 3, 'notifications arrived during the outage');
  t.same(
    during.filter((s) => s.status !== 503 || s.code !== 'DATABASE_UNAVAILABLE').map((s) => `${s.key}: ${s.status} ${s.code}`),
    [],
    'every one of them was answered 503 DATABASE_UNAVAILABLE',
  );
  t.same(other.map((s) => `${s.key}: ${s.status} ${s.code}`), [], 'no other answer (no 500, no dropped connection)');

  // Recovery, same process: readiness, intake, workers.
  if (svc.child.exitCode !== null || svc.child.signalCode !== null) {
    // Diagnose a death: the last lines the service wrote.
    t.comment(`service exited (${svc.child.exitCode ?? svc.child.signalCode}); last output:\n${svc.output().slice(-4000)}`);
  }
  t.equal(svc.child.exitCode, null, 'the process kept running');
  t.equal(svc.child.pid, pid, 'no restart');
  let ready = 0;
  for (let i = 0; i < 100 && ready !== 200; i++) {
    ready = await fetch(`${svc.url}/readyz`).then((r) => r.status).catch(() => 0);
    if (ready !== 200) await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(ready, 200, 'ready again after the outage');

  const acceptedKeys = [...new Set(accepted.map((s) => s.key))];
  const rows = await inspect.settled(TASK, acceptedKeys, 120_000);
  t.same(acceptedKeys.filter((k) => !REPLICATED.has(rows.get(k)!.status)), [], `every notification answered 2xx (${acceptedKeys.length}) is replicated`);

  // The sender retries what was refused (as senders do on 503).
  const retried = [...new Set(refused.map((s) => s.key))].filter((k) => !acceptedKeys.includes(k));
  for (const key of retried) {
    const s = await send(key);
    t.equal(s.status, 202, `retry of ${key} accepted`);
  }
  const all = objects.map((o) => o.key);
  const final = await inspect.settled(TASK, all, 120_000);
  t.same(all.filter((k) => !REPLICATED.has(final.get(k)!.status)), [], 'after the retries every object is replicated');
  const wrong = objects.filter((o) => !oss.getObject('outage-dst', o.key)?.body.equals(o.body)).map((o) => o.key);
  t.same(wrong, [], 'byte-identical on the destination');
  t.equal(oss.pendingUploads('outage-dst'), 0, 'no multipart upload left open');
  t.equal(await inspect.deadLetters(), 0, 'nothing dead-lettered');
  const queueErrors = (svc.output().match(/"msg":"queue error"/g) ?? []).length;
  const warnings = new Map<string, number>();
  for (const line of svc.output().split('\n')) {
    const m = /"level":(40|50|60).*?"msg":"([^"]*)"/.exec(line);
    if (m) warnings.set(m[2]!, (warnings.get(m[2]!) ?? 0) + 1);
  }
  t.comment(`warnings and errors logged: ${[...warnings.entries()].map(([m, n]) => `${m} ×${n}`).join('; ')}`);
  const retries = await inspect.retryCounts();
  t.comment(`figures: outage ${((restoredAt - cutAt) / 1000).toFixed(1)} s, ${refused.length} answered 503 (all retried and replicated), ${accepted.length} accepted → ${acceptedKeys.length} replicated, pg-boss errors logged ${queueErrors}, job retries ${retries.total}, losses 0`);
});
