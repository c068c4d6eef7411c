/**
 * bench/chaos, the long versions of test/chaos-*.test.ts: the real service
 * (`node dist/main.js`) against the S3 test server (s3rver) and the OSS test
 * server, with crashes, a PostgreSQL really stopped and started, network
 * faults and two processes. Prints progress on stderr and one JSON line of
 * figures on stdout. Run through bench/chaos.mjs (it builds dist/ and adds
 * tap's TypeScript loader for the test servers).
 *
 *   crash    --crash-objects (200), --crash-kills (2): SIGKILL while copies are in
 *            flight, restart, again; then every object byte-identical, every status
 *            final, no multipart upload left open or recorded.
 *   db       --db-objects (150), --db-outage-seconds (60): a dedicated embedded
 *            PostgreSQL stopped and started during a stream of signed notifications.
 *   network  --net-objects (200), --net-rate (0.2): faults on both sides for the whole
 *            run; then objects deleted between event and copy.
 *   two      --two-objects (300): two processes, every key notified to both, one
 *            killed at ~40%.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { signedPost } from '../../src/auth/signed-client.js';
import { freePort, startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.js';
import { startFaultProxy } from '../../test/support/fault-proxy.js';
import { startOssServer } from '../../test/support/oss-server.js';
import { createTestDatabase } from '../../test/support/postgres.js';
import { startService, type ServiceProcess } from '../../test/support/service.js';
import { startS3Server } from '../../test/support/s3-server.js';
import { addFaultMix, fixtures, Inspector, notify, putAll, REPLICATED, s3Client, s3Event, startOverlapWatch, type Fixture } from '../../test/support/chaos.js';

const KIB = 1024;
const PART = 256 * KIB;

function arg(name: string, fallback: number): number {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : fallback;
}
const say = (msg: string) => process.stderr.write(`chaos: ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const sender = { accessKeyId: 'chaos-bench', secret: randomBytes(24).toString('hex') };

function serviceEnv(s3: { accessKeyId: string; secretAccessKey: string }, oss: { accessKeyId: string; accessKeySecret: string }, extra: Record<string, string>): Record<string, string> {
  return { B_S3_AK: s3.accessKeyId, B_S3_SK: s3.secretAccessKey, B_OSS_AK: oss.accessKeyId, B_OSS_SK: oss.accessKeySecret, B_SENDER_SK: sender.secret, LOG_LEVEL: 'info', ...extra };
}

function config(task: string, srcBucket: string, srcEndpoint: string, dstBucket: string, dstEndpoint: string, options: Record<string, unknown>) {
  return {
    tasks: [
      {
        id: task,
        source: { provider: 's3', bucket: srcBucket, region: 'us-east-1', endpoint: srcEndpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'B_S3_AK', secretAccessKeyEnv: 'B_S3_SK' } },
        destination: { provider: 'oss', bucket: dstBucket, region: 'oss-cn-hangzhou', endpoint: dstEndpoint, credentials: { accessKeyIdEnv: 'B_OSS_AK', secretAccessKeyEnv: 'B_OSS_SK' } },
        options,
      },
    ],
    senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'B_SENDER_SK', tasks: [task] }],
  };
}

function losses(objects: Fixture[], rows: Map<string, { status: string }>, read: (key: string) => Buffer | undefined) {
  const notReplicated = objects.filter((o) => !REPLICATED.has(rows.get(o.key)?.status ?? '')).map((o) => o.key);
  const wrong = objects.filter((o) => !read(o.key)?.equals(o.body)).map((o) => o.key);
  return { notReplicated, wrong, lost: new Set([...notReplicated, ...wrong]).size };
}

function warnings(output: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of output.split('\n')) {
    const m = /"level":(40|50|60).*?"msg":"([^"]*)"/.exec(line);
    if (m && !/admin API disabled/.test(m[2]!)) out[m[2]!] = (out[m[2]!] ?? 0) + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function crash() {
  const n = arg('crash-objects', 200);
  const kills = arg('crash-kills', 2);
  const s3 = await startS3Server({ buckets: ['bc-src'] });
  const oss = await startOssServer({ buckets: ['bc-dst'], minPartSize: PART });
  const dst = await startFaultProxy({ target: oss.endpoint });
  const db = await createTestDatabase();
  const inspect = new Inspector(db.url);
  const objects = fixtures('crash', n, { seed: 1007, maxSmall: 256 * KIB, large: 6 * PART + 777, multipartEvery: 10 });
  const client = s3Client(s3);
  await putAll(client, 'bc-src', objects, 16);
  client.destroy();
  const services: ServiceProcess[] = [];
  const start = () =>
    startService({
      config: config('crash', 'bc-src', s3.endpoint, 'bc-dst', dst.endpoint, { multipartThresholdBytes: 4 * PART, partSizeBytes: PART, partConcurrency: 3 }),
      env: { DATABASE_URL: db.url, ...serviceEnv(s3, oss, { BB_WORKER_CONCURRENCY: '16', BB_RETRY_DELAY_SECONDS: '1', BB_LEASE_HEARTBEAT_SECONDS: '1', BB_LEASE_STALE_SECONDS: '600' }) },
    }).then((s) => (services.push(s), s));
  const started = Date.now();
  try {
    const slow = dst.add({ match: { method: 'PUT' }, action: { type: 'delay', ms: 100 } });
    let svc = await start();
    await notify(svc.url, 'bc-src', objects.map((o) => o.key), sender, 25);
    const atKills: { done: number; active: number; openUploads: number }[] = [];
    for (let k = 1; k <= kills; k++) {
      const target = Math.floor((n * k) / (kills + 1));
      const at = await until(
        `kill ${k}`,
        async () => {
          const done = [...(await inspect.statuses('crash')).values()].filter((r) => REPLICATED.has(r.status)).length;
          const active = await inspect.activeJobs();
          return done >= target && active >= 4 ? { done, active, openUploads: oss.pendingUploads('bc-dst') } : undefined;
        },
        300_000,
      );
      await svc.kill();
      atKills.push(at);
      say(`crash: SIGKILL ${k} with ${at.done}/${n} done, ${at.active} running, ${at.openUploads} multipart uploads open`);
      if (k === kills) slow.remove();
      svc = await start();
    }
    const rows = await inspect.settled('crash', objects.map((o) => o.key), 600_000);
    const l = losses(objects, rows, (k) => oss.getObject('bc-dst', k)?.body);
    const retries = await inspect.retryCounts();
    return {
      objects: n,
      multipart: objects.filter((o) => o.body.length > 4 * PART).length,
      bytes: objects.reduce((s, o) => s + o.body.length, 0),
      kills: atKills,
      jobRetries: retries.total,
      maxRetriesPerJob: retries.max,
      openUploadsAfter: oss.pendingUploads('bc-dst'),
      uploadRecordsAfter: await inspect.multipartRecords(),
      uploadsAbortedAfterInterruptedCreate: services.reduce((n, s) => n + (s.output().match(/aborted a multipart upload left by an interrupted start/g) ?? []).length, 0),
      deadLetters: await inspect.deadLetters(),
      notReplicated: l.notReplicated.length,
      wrongBytes: l.wrong.length,
      losses: l.lost,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const s of services) await s.stop().catch(() => {});
    await inspect.close();
    await dst.close();
    await s3.close();
    await oss.close();
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------

async function dbOutage() {
  const n = arg('db-objects', 150);
  const outageMs = arg('db-outage-seconds', 60) * 1000;
  const dir = mkdtempSync(join(tmpdir(), 'bb-chaos-pg-'));
  const port = await freePort();
  let pgServer: EmbeddedDatabase | undefined = await startEmbeddedPostgres({ dataDir: dir, database: 'bbchaos', port });
  const url = pgServer.connectionString;
  const s3 = await startS3Server({ buckets: ['bd-src'] });
  const oss = await startOssServer({ buckets: ['bd-dst'], minPartSize: PART });
  const dst = await startFaultProxy({ target: oss.endpoint });
  const inspectUrl = url;
  const objects = fixtures('outage', n, { seed: 2011, maxSmall: 128 * KIB, large: 5 * PART + 99, multipartEvery: 15 });
  const client = s3Client(s3);
  await putAll(client, 'bd-src', objects, 16);
  client.destroy();
  let svc: ServiceProcess | undefined;
  const started = Date.now();
  try {
    svc = await startService({
      config: config('outage', 'bd-src', s3.endpoint, 'bd-dst', dst.endpoint, { multipartThresholdBytes: 4 * PART, partSizeBytes: PART }),
      env: { DATABASE_URL: url, ...serviceEnv(s3, oss, { BB_WORKER_CONCURRENCY: '8', BB_RETRY_DELAY_SECONDS: '1', BB_LEASE_HEARTBEAT_SECONDS: '2' }) },
    });
    const pid = svc.child.pid;
    // Copies take a second each, so several are finishing (and must record their outcome) while the database is down.
    dst.add({ match: { method: 'PUT' }, action: { type: 'delay', ms: 1_000 } });
    interface Sent { key: string; sentAt: number; answeredAt: number; status: number; code?: string }
    const sent: Sent[] = [];
    const send = async (key: string): Promise<Sent> => {
      const sentAt = Date.now();
      let status = 0;
      let code: string | undefined;
      try {
        const res = await signedPost(`${svc!.url}/sync`, s3Event('bd-src', [key]), sender, { timeoutMs: 30_000 });
        status = res.status;
        code = (res.body as { error?: { code?: string } }).error?.code;
      } catch {
        status = 0;
      }
      const s = { key, sentAt, answeredAt: Date.now(), status, code };
      sent.push(s);
      return s;
    };
    let stoppedAt = 0;
    let restartedAt = 0;
    const outage = (async () => {
      while (sent.length < Math.floor(n / 4)) await sleep(20);
      say(`db: stopping PostgreSQL (${sent.length} notifications sent)`);
      await pgServer!.stop();
      pgServer = undefined;
      stoppedAt = Date.now();
      await sleep(outageMs);
      pgServer = await startEmbeddedPostgres({ dataDir: dir, database: 'bbchaos', port });
      restartedAt = Date.now();
      say(`db: PostgreSQL started again after ${((restartedAt - stoppedAt) / 1000).toFixed(1)} s`);
    })();
    // The stream: all keys once, paced so that about half of it falls in the outage.
    const pace = Math.max(20, Math.floor((outageMs * 1.6) / n));
    for (const o of objects) {
      await send(o.key);
      await sleep(pace);
    }
    await outage;
    const firstAfter = sent.find((s) => s.sentAt > restartedAt && s.status === 202);
    const accepted = sent.filter((s) => s.status >= 200 && s.status < 300);
    const refused = sent.filter((s) => s.status === 503);
    const during = sent.filter((s) => s.sentAt > stoppedAt + 200 && s.answeredAt < restartedAt);
    const other = sent.filter((s) => !(s.status >= 200 && s.status < 300) && s.status !== 503);
    // Recovery without restart: readiness, then the sender's retries of every refused key.
    const readyAfter = await until('ready again', async () => ((await fetch(`${svc!.url}/readyz`).then((r) => r.status).catch(() => 0)) === 200 ? Date.now() : undefined), 120_000);
    const inspect = new Inspector(inspectUrl);
    try {
      const acceptedKeys = [...new Set(accepted.map((s) => s.key))];
      const rowsAccepted = await inspect.settled('outage', acceptedKeys, 600_000);
      const acceptedLost = acceptedKeys.filter((k) => !REPLICATED.has(rowsAccepted.get(k)!.status)).length;
      const retryKeys = [...new Set(sent.filter((s) => !(s.status >= 200 && s.status < 300)).map((s) => s.key))].filter((k) => !acceptedKeys.includes(k));
      let retryFailures = 0;
      for (const key of retryKeys) if ((await send(key)).status !== 202) retryFailures++;
      const rows = await inspect.settled('outage', objects.map((o) => o.key), 600_000);
      const l = losses(objects, rows, (k) => oss.getObject('bd-dst', k)?.body);
      const retries = await inspect.retryCounts();
      return {
        objects: n,
        outageSeconds: (restartedAt - stoppedAt) / 1000,
        notifications: sent.length,
        duringOutage: during.length,
        duringOutageNot503: during.filter((s) => s.status !== 503).length,
        answered503: refused.length,
        otherAnswers: other.map((s) => `${s.status} ${s.code ?? ''}`),
        accepted: accepted.length,
        acceptedNotReplicated: acceptedLost,
        secondsFromRestartToFirst202: firstAfter ? (firstAfter.answeredAt - restartedAt) / 1000 : null,
        secondsFromRestartToReady: (readyAfter - restartedAt) / 1000,
        retriedBySender: retryKeys.length,
        retryFailures,
        processRestarts: svc.child.pid === pid && svc.child.exitCode === null ? 0 : 1,
        jobRetries: retries.total,
        warnings: warnings(svc.output()),
        notReplicated: l.notReplicated.length,
        wrongBytes: l.wrong.length,
        losses: l.lost,
        seconds: (Date.now() - started) / 1000,
      };
    } finally {
      await inspect.close();
    }
  } finally {
    await svc?.stop().catch(() => {});
    await dst.close();
    await s3.close();
    await oss.close();
    await pgServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function network() {
  const n = arg('net-objects', 200);
  const rate = arg('net-rate', 0.2);
  const retryLimit = 25;
  const s3 = await startS3Server({ buckets: ['bn-src'] });
  const oss = await startOssServer({ buckets: ['bn-dst'], minPartSize: PART });
  const src = await startFaultProxy({ target: s3.endpoint });
  const dst = await startFaultProxy({ target: oss.endpoint });
  const db = await createTestDatabase();
  const inspect = new Inspector(db.url);
  const objects = fixtures('net', n, { seed: 3001, maxSmall: 256 * KIB, large: 5 * PART + 5, multipartEvery: 10 });
  const client = s3Client(s3);
  await putAll(client, 'bn-src', objects, 16);
  let svc: ServiceProcess | undefined;
  const started = Date.now();
  try {
    svc = await startService({
      config: config('net', 'bn-src', src.endpoint, 'bn-dst', dst.endpoint, { multipartThresholdBytes: 4 * PART, partSizeBytes: PART, partConcurrency: 3 }),
      // Retries at once (no backoff): pg-boss's exponential backoff (base × 2^n) would stretch the
      // run to many minutes for the few keys that meet five or more faults in a row.
      env: { DATABASE_URL: db.url, ...serviceEnv(s3, oss, { BB_WORKER_CONCURRENCY: '16', BB_RETRY_LIMIT: String(retryLimit), BB_RETRY_DELAY_SECONDS: '0' }) },
    });
    const srcFaults = addFaultMix(src, { seed: 41, rate, stallMs: [500, 4_000], corrupt: true });
    const dstFaults = addFaultMix(dst, { seed: 43, rate, stallMs: [500, 4_000], corrupt: true });
    await notify(svc.url, 'bn-src', objects.map((o) => o.key), sender, 20);
    const rows = await inspect.settled('net', objects.map((o) => o.key), 900_000);
    srcFaults.remove();
    dstFaults.remove();
    const requests = src.log.length + dst.log.length;
    const l = losses(objects, rows, (k) => oss.getObject('bn-dst', k)?.body);
    const completedWrong = objects.filter((o) => rows.get(o.key)?.status === 'completed' && !oss.getObject('bn-dst', o.key)?.body.equals(o.body)).length;
    const retries = await inspect.retryCounts();
    const chaosSeconds = (Date.now() - started) / 1000;
    const { rows: failures } = await inspect.pool.query<{ key: string; status: string; last_error_code: string; last_error_message: string }>(
      "SELECT key, status, last_error_code, last_error_message FROM bb_object_status WHERE task_id = 'net' AND status NOT IN ('completed', 'in_sync')",
    );

    // Deleted between the event and the copy: half before the worker looks, half between HEAD and GET.
    const gone = Array.from({ length: 20 }, (_, i) => `gone/${i}.bin`);
    for (const key of gone) await client.send(new PutObjectCommand({ Bucket: 'bn-src', Key: key, Body: randomBytes(20_000) }));
    for (const key of gone.slice(0, 10)) await client.send(new DeleteObjectCommand({ Bucket: 'bn-src', Key: key }));
    const races = gone.slice(10).map((key) =>
      src.add({ match: { method: 'GET', path: `/bn-src/${key}` }, nth: 1, action: { type: 'hook', hook: async () => void (await client.send(new DeleteObjectCommand({ Bucket: 'bn-src', Key: key }))) } }),
    );
    const retriesBefore = retries.total;
    const logBefore = svc.output().length;
    await notify(svc.url, 'bn-src', gone, sender, 20);
    const goneRows = await inspect.settled('net', gone, 120_000);
    const goneRetries = (await inspect.retryCounts()).total - retriesBefore;
    return {
      objects: n,
      multipart: objects.filter((o) => o.body.length > 4 * PART).length,
      faultRate: rate,
      requests,
      faultsInjected: srcFaults.total() + dstFaults.total(),
      faults: { source: srcFaults.counts(), destination: dstFaults.counts() },
      jobRetries: retries.total,
      maxRetriesPerJob: retries.max,
      retryLimit,
      deadLetters: await inspect.deadLetters(),
      completedWhileWrong: completedWrong,
      notReplicated: l.notReplicated.length,
      wrongBytes: l.wrong.length,
      losses: l.lost,
      openUploadsAfter: oss.pendingUploads('bn-dst'),
      uploadsAbortedAfterInterruptedCreate: (svc.output().match(/aborted a multipart upload left by an interrupted start/g) ?? []).length,
      failures,
      seconds: chaosSeconds,
      sourceDeleted: {
        keys: gone.length,
        deletedBetweenHeadAndGet: races.filter((r) => r.fired === 1).length,
        sourceMissing: gone.filter((k) => goneRows.get(k)?.status === 'source_missing').length,
        jobRetries: goneRetries,
        errorLogs: (svc.output().slice(logBefore).match(/"level":50/g) ?? []).length,
      },
    };
  } finally {
    client.destroy();
    await svc?.stop().catch(() => {});
    await inspect.close();
    await src.close();
    await dst.close();
    await s3.close();
    await oss.close();
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------

async function two() {
  const n = arg('two-objects', 300);
  const s3 = await startS3Server({ buckets: ['bt-src'] });
  const oss = await startOssServer({ buckets: ['bt-dst'], minPartSize: PART });
  const slow = await startFaultProxy({ target: oss.endpoint });
  const watch = await startOverlapWatch(slow.endpoint);
  const db = await createTestDatabase();
  const inspect = new Inspector(db.url);
  const objects = fixtures('two', n, { seed: 4001, maxSmall: 192 * KIB, large: 5 * PART + 3, multipartEvery: 12 });
  const client = s3Client(s3);
  await putAll(client, 'bt-src', objects, 16);
  client.destroy();
  const services: ServiceProcess[] = [];
  const start = () =>
    startService({
      config: config('shared', 'bt-src', s3.endpoint, 'bt-dst', watch.endpoint, { multipartThresholdBytes: 4 * PART, partSizeBytes: PART, partConcurrency: 2 }),
      env: { DATABASE_URL: db.url, ...serviceEnv(s3, oss, { BB_WORKER_CONCURRENCY: '8', BB_RETRY_DELAY_SECONDS: '1', BB_LEASE_HEARTBEAT_SECONDS: '1', BB_LEASE_STALE_SECONDS: '600' }) },
    }).then((s) => (services.push(s), s));
  const started = Date.now();
  try {
    slow.add({ match: { method: 'PUT' }, action: { type: 'delay', ms: 100 } });
    // Both start together (on a fresh database: they race to create the queues). allSettled, so a
    // failed start never leaves the other process running unnoticed.
    const starts = await Promise.allSettled([start(), start()]);
    const failedStart = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failedStart) throw failedStart.reason;
    const [a, b] = starts.map((r) => (r as PromiseFulfilledResult<ServiceProcess>).value) as [ServiceProcess, ServiceProcess];
    let done = false;
    const doubles = new Set<string>();
    let samples = 0;
    const sampling = (async () => {
      while (!done) {
        const [leases, active] = await Promise.all([
          inspect.pool.query<{ key: string }>('SELECT key FROM bb_job_leases GROUP BY task_id, key HAVING count(*) > 1'),
          inspect.pool.query<{ key: string }>("SELECT singleton_key AS key FROM pgboss.job WHERE name = 'bb-replicate' AND state = 'active' GROUP BY 1 HAVING count(*) > 1"),
        ]);
        for (const r of [...leases.rows, ...active.rows]) doubles.add(r.key);
        samples++;
        await sleep(25);
      }
    })();
    const keys = objects.map((o) => o.key);
    await Promise.all([notify(a.url, 'bt-src', keys, sender, 20), notify(b.url, 'bt-src', [...keys].reverse(), sender, 20)]);
    const reconciled = (out: string) => (out.match(/"msg":"reconciled"/g) ?? []).length;
    const atKill = await until(
      'A at 40%',
      async () => {
        const { rows } = await inspect.pool.query<{ key: string }>('SELECT l.key FROM bb_job_leases l JOIN bb_workers w ON w.id = l.worker_id WHERE w.pid = $1', [a.child.pid]);
        const finished = [...(await inspect.statuses('shared')).values()].filter((r) => REPLICATED.has(r.status)).length;
        return finished >= n * 0.4 && rows.length >= 2 ? { held: rows.map((r) => r.key), finished } : undefined;
      },
      300_000,
    );
    const aReconciled = reconciled(a.output());
    await a.kill();
    say(`two: SIGKILL A holding ${atKill.held.length} copies at ${atKill.finished}/${n}`);
    const rows = await inspect.settled('shared', keys, 600_000);
    done = true;
    await sampling;
    const l = losses(objects, rows, (k) => oss.getObject('bt-dst', k)?.body);
    return {
      objects: n,
      notificationsPerKey: 2,
      aReconciledBeforeKill: aReconciled,
      bReconciled: reconciled(b.output()),
      heldByAAtKill: atKill.held.length,
      heldByAFinished: atKill.held.filter((k) => REPLICATED.has(rows.get(k)?.status ?? '')).length,
      dbSamples: samples,
      keysWithTwoLeasesOrRunningJobs: doubles.size,
      writesWatched: watch.writes(),
      keysWrittenByTwoCopiesAtOnce: watch.overlaps().length,
      openUploadsAfter: oss.pendingUploads('bt-dst'),
      notReplicated: l.notReplicated.length,
      wrongBytes: l.wrong.length,
      losses: l.lost,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    for (const s of services) await s.stop().catch(() => {});
    await inspect.close();
    await watch.close();
    await slow.close();
    await s3.close();
    await oss.close();
    await db.drop();
  }
}

// ---------------------------------------------------------------------------------------------

const scenarios: Record<string, () => Promise<Record<string, unknown>>> = { crash, db: dbOutage, network, two };
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const selected = wanted.length > 0 ? wanted : Object.keys(scenarios);
const unknown = selected.filter((s) => !scenarios[s]);
if (unknown.length > 0) {
  say(`unknown scenario(s): ${unknown.join(', ')} (have: ${Object.keys(scenarios).join(', ')})`);
  process.exit(2);
}

// One PostgreSQL for the scenarios that need an ordinary database (db brings its own).
let shared: EmbeddedDatabase | undefined;
let sharedDir: string | undefined;
if (!process.env.BB_TEST_ADMIN_URL && selected.some((s) => s !== 'db')) {
  sharedDir = mkdtempSync(join(tmpdir(), 'bb-chaos-shared-pg-'));
  shared = await startEmbeddedPostgres({ dataDir: sharedDir, database: 'postgres' });
  process.env.BB_TEST_ADMIN_URL = shared.connectionString;
}
const results: Record<string, unknown> = {};
let failed = false;
try {
  for (const name of selected) {
    say(`${name}: starting`);
    try {
      results[name] = await scenarios[name]!();
      say(`${name}: ${JSON.stringify(results[name])}`);
    } catch (err) {
      failed = true;
      results[name] = { error: (err as Error).stack ?? String(err) };
      say(`${name}: FAILED ${(err as Error).message}`);
    }
  }
} finally {
  await shared?.stop();
  if (sharedDir) rmSync(sharedDir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify(results)}\n`);
process.exit(failed ? 1 : 0);
