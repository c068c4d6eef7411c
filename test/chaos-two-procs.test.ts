/**
 * Two service processes on one database: the work is shared between them, no
 * key is ever copied by both at once, and killing one with SIGKILL mid-copy
 * leaves the other to finish everything, including the copies the dead one
 * had started.
 *
 * "At once" is watched from both ends: the database (at no moment two leases,
 * or two running jobs, for one key) and the destination bucket (a proxy in
 * front of it sees at no moment writes of two different copies of one key in
 * flight). Every key is notified to both processes, so both always have a
 * reason to take it. The long version is `bench/chaos.mjs two`.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { eventually, startService, type ServiceProcess } from './support/service.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { fixtures, Inspector, notify, putAll, REPLICATED, s3Client, startOverlapWatch, type OverlapWatch } from './support/chaos.js';

const KIB = 1024;
const PART = 128 * KIB;
const TASK = 'shared';
const sender = { accessKeyId: 'two-sender', secret: randomBytes(24).toString('hex') };
const objects = fixtures('two', 60, { seed: 31, maxSmall: 120 * KIB, large: 4 * PART + 300, multipartEvery: 12 });

let s3: S3Server;
let oss: OssServer;
let slow: FaultProxy;
let watch: OverlapWatch;
let db: TestDatabase;
let inspect: Inspector;
const services: ServiceProcess[] = [];

t.before(async () => {
  s3 = await startS3Server({ buckets: ['two-src'] });
  oss = await startOssServer({ buckets: ['two-dst'], minPartSize: PART });
  slow = await startFaultProxy({ target: oss.endpoint });
  watch = await startOverlapWatch(slow.endpoint);
  db = await createTestDatabase();
  inspect = new Inspector(db.url);
  const client = s3Client(s3);
  await putAll(client, 'two-src', objects);
  client.destroy();
});

t.teardown(async () => {
  for (const s of services) await s.stop().catch(() => {});
  await inspect?.close();
  await watch?.close();
  await slow?.close();
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
          source: { provider: 's3', bucket: 'two-src', region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'T_S3_AK', secretAccessKeyEnv: 'T_S3_SK' } },
          destination: { provider: 'oss', bucket: 'two-dst', region: 'oss-cn-hangzhou', endpoint: watch.endpoint, credentials: { accessKeyIdEnv: 'T_OSS_AK', secretAccessKeyEnv: 'T_OSS_SK' } },
          options: { multipartThresholdBytes: 3 * PART, partSizeBytes: PART, partConcurrency: 2 },
        },
      ],
      senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'T_SENDER_SK', tasks: [TASK] }],
    },
    env: {
      DATABASE_URL: db.url,
      T_S3_AK: s3.accessKeyId,
      T_S3_SK: s3.secretAccessKey,
      T_OSS_AK: oss.accessKeyId,
      T_OSS_SK: oss.accessKeySecret,
      T_SENDER_SK: sender.secret,
      BB_WORKER_CONCURRENCY: '4',
      BB_RETRY_DELAY_SECONDS: '0',
      BB_LEASE_HEARTBEAT_SECONDS: '1',
      BB_LEASE_STALE_SECONDS: '600',
    },
  }).then((s) => {
    services.push(s);
    return s;
  });
}

/** Sample the database for two leases, or two running jobs, of one key. */
function sampleDoubles(stop: () => boolean): Promise<{ samples: number; doubles: string[] }> {
  return (async () => {
    const doubles = new Set<string>();
    let samples = 0;
    while (!stop()) {
      const [leases, active] = await Promise.all([
        inspect.pool.query<{ key: string }>('SELECT key FROM bb_job_leases GROUP BY task_id, key HAVING count(*) > 1'),
        inspect.pool.query<{ key: string }>("SELECT singleton_key AS key FROM pgboss.job WHERE name = 'bb-replicate' AND state = 'active' GROUP BY 1 HAVING count(*) > 1"),
      ]);
      for (const r of [...leases.rows, ...active.rows]) doubles.add(r.key);
      samples++;
      await new Promise((r) => setTimeout(r, 25));
    }
    return { samples, doubles: [...doubles] };
  })();
}

const reconciled = (out: string) => (out.match(/"msg":"reconciled"/g) ?? []).length;

t.test(`two processes, ${objects.length} objects notified to both: shared, never one key twice at once, the survivor finishes the killed one's copies`, async (t) => {
  slow.add({ match: { method: 'PUT' }, action: { type: 'delay', ms: 120 } });
  // Both start together (on a fresh database: they race to create the queues). allSettled, so a
  // failed start never leaves the other process running unnoticed.
  const starts = await Promise.allSettled([start(), start()]);
  const failedStart = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failedStart) throw failedStart.reason;
  const [a, b] = starts.map((r) => (r as PromiseFulfilledResult<ServiceProcess>).value) as [ServiceProcess, ServiceProcess];
  let done = false;
  const sampling = sampleDoubles(() => done);
  const keys = objects.map((o) => o.key);
  // Every key to both processes, in opposite orders, so they compete for the same keys.
  await Promise.all([notify(a.url, 'two-src', keys, sender, 6), notify(b.url, 'two-src', [...keys].reverse(), sender, 6)]);

  const atKill = await eventually(
    async () => {
      const { rows } = await inspect.pool.query<{ key: string }>('SELECT l.key FROM bb_job_leases l JOIN bb_workers w ON w.id = l.worker_id WHERE w.pid = $1', [a.child.pid]);
      const finished = [...(await inspect.statuses(TASK)).values()].filter((r) => REPLICATED.has(r.status)).length;
      return rows.length >= 2 && finished >= 8 && reconciled(b.output()) > 0 ? { held: rows.map((r) => r.key), finished } : undefined;
    },
    60_000,
    'process A mid-copy, B working too',
  );
  const aDone = reconciled(a.output());
  await a.kill();
  t.comment(`killed A holding ${atKill.held.length} copies, ${atKill.finished} objects done`);

  const rows = await inspect.settled(TASK, keys, 120_000);
  done = true;
  const { samples, doubles } = await sampling;
  const bDone = reconciled(b.output());
  t.ok(aDone > 0 && bDone > 0, `the work was shared (A reconciled ${aDone} before the kill, B ${bDone})`);
  t.same(doubles, [], `no key had two leases or two running jobs at once (${samples} samples of the database)`);
  t.same(watch.overlaps(), [], `no key was written by two copies at once (${watch.writes()} writes watched)`);
  t.same(keys.filter((k) => !REPLICATED.has(rows.get(k)!.status)), [], 'every object ends replicated');
  t.same(atKill.held.filter((k) => !REPLICATED.has(rows.get(k)!.status)), [], 'including the copies A held when it was killed');
  const wrong = objects.filter((o) => !oss.getObject('two-dst', o.key)?.body.equals(o.body)).map((o) => o.key);
  t.same(wrong, [], 'all byte-identical on the destination');
  t.equal(oss.pendingUploads('two-dst'), 0, 'no multipart upload left open');
  t.equal(await inspect.multipartRecords(), 0, 'no multipart upload left recorded');
  t.match(b.output(), /handed back jobs of a dead worker/, 'B handed the dead process\'s jobs back');
  t.equal(b.child.exitCode, null, 'B still running');
  t.comment(`figures: objects ${objects.length} (each notified to both), A ${aDone} reconciles before SIGKILL holding ${atKill.held.length}, B ${bDone}, doubles 0 in ${samples} samples, overlapping writes 0 of ${watch.writes()}, losses 0`);
});
