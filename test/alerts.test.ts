/**
 * Alerts against a local receiver, from the real process: a key that fails
 * permanently and the dead-letter queue becoming non-empty each send one signed
 * JSON alert (SDK-HMAC-SHA256, verified here with the server's own verify());
 * the same failure again is deduplicated; a burst of failures is rate-limited
 * and the held-back count reported in the next alert; replication lag past
 * `lagSeconds` alerts; and a receiver that fails or hangs gets the alert later,
 * retried, while replication goes on undisturbed.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verify } from '../src/auth/sdk-hmac.js';
import { signedPost } from '../src/auth/signed-client.js';
import { startFaultProxy, type FaultProxy } from './support/fault-proxy.js';
import { startOssServer, type OssServer } from './support/oss-server.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { eventually, startService, type ServiceProcess } from './support/service.js';
import { startS3Server, type S3Server } from './support/s3-server.js';
import { Inspector, notify, putAll, REPLICATED, s3Client, s3Event, type Fixture } from './support/chaos.js';

const sender = { accessKeyId: 'alert-sender', secret: randomBytes(24).toString('hex') };
const ALERT_KEY = 'bb-alerts';
const ALERT_SECRET = randomBytes(24).toString('hex');

interface Received {
  at: number;
  verified: boolean;
  accessKey?: string;
  body: { id: string; type: string; taskId: string; key?: string; suppressed?: number; error?: { code: string }; [k: string]: unknown };
}

/** A receiver that verifies signatures and can be told to fail (503) or hang. */
async function startReceiver() {
  const received: Received[] = [];
  let mode: 'ok' | 'fail' | 'hang' = 'ok';
  let attempts = 0;
  let hungTotal = 0;
  let failedTotal = 0;
  const hung: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts++;
      if (mode === 'hang') {
        hungTotal++;
        hung.push(res);
        return;
      }
      if (mode === 'fail') {
        failedTotal++;
        res.writeHead(503).end('busy');
        return;
      }
      const body = Buffer.concat(chunks);
      const url = new URL(req.url ?? '/', 'http://x');
      let verified = false;
      let accessKey: string | undefined;
      try {
        accessKey = verify({ method: req.method ?? 'POST', path: url.pathname, query: url.search.slice(1), headers: req.headers, body }, (ak) => (ak === ALERT_KEY ? [ALERT_SECRET] : undefined)).accessKeyId;
        verified = true;
      } catch {
        verified = false;
      }
      received.push({ at: Date.now(), verified, accessKey, body: JSON.parse(body.toString('utf8')) as Received['body'] });
      res.writeHead(verified ? 204 : 401).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/bucketbridge`,
    received,
    attempts: () => attempts,
    hung: () => hungTotal,
    failed: () => failedTotal,
    setMode(m: typeof mode) {
      mode = m;
      if (m !== 'hang') for (const res of hung.splice(0)) res.writeHead(503).end('was hung');
    },
    close: () =>
      new Promise<void>((r) => {
        for (const res of hung.splice(0)) res.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

let s3: S3Server;
let oss: OssServer;
let dst: FaultProxy;
let db: TestDatabase;
let inspect: Inspector;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let svc: ServiceProcess;

function object(key: string): Fixture {
  const body = randomBytes(2_000);
  return { key, body, md5: '' };
}

t.before(async () => {
  s3 = await startS3Server({ buckets: ['al-src-fail', 'al-src-lag'] });
  oss = await startOssServer({ buckets: ['al-dst'] });
  dst = await startFaultProxy({ target: oss.endpoint });
  db = await createTestDatabase();
  inspect = new Inspector(db.url);
  receiver = await startReceiver();
  const s3e = (bucket: string) => ({ provider: 's3', bucket, region: 'us-east-1', endpoint: s3.endpoint, forcePathStyle: true, credentials: { accessKeyIdEnv: 'A_S3_AK', secretAccessKeyEnv: 'A_S3_SK' } });
  const osse = { provider: 'oss', bucket: 'al-dst', region: 'oss-cn-hangzhou', endpoint: dst.endpoint, credentials: { accessKeyIdEnv: 'A_OSS_AK', secretAccessKeyEnv: 'A_OSS_SK' } };
  const alerts = { url: receiver.url, secretEnv: 'A_ALERT_SK', accessKeyId: ALERT_KEY };
  svc = await startService({
    config: {
      tasks: [
        { id: 'failing', source: s3e('al-src-fail'), destination: osse, options: { alerts: { ...alerts, maxPerMinute: 4 } } },
        { id: 'lagging', source: s3e('al-src-lag'), destination: osse, options: { alerts: { ...alerts, lagSeconds: 2 } } },
      ],
      senders: [{ accessKeyId: sender.accessKeyId, secretEnv: 'A_SENDER_SK', tasks: ['failing', 'lagging'] }],
    },
    env: {
      DATABASE_URL: db.url,
      A_S3_AK: s3.accessKeyId,
      A_S3_SK: s3.secretAccessKey,
      A_OSS_AK: oss.accessKeyId,
      A_OSS_SK: oss.accessKeySecret,
      A_SENDER_SK: sender.secret,
      A_ALERT_SK: ALERT_SECRET,
      BB_ALERT_POLL_SECONDS: '1',
      BB_ALERT_RETRY_SECONDS: '1',
      BB_RETRY_LIMIT: '1',
      BB_RETRY_DELAY_SECONDS: '0',
    },
  });
});

t.teardown(async () => {
  await svc?.stop();
  await inspect?.close();
  await receiver?.close();
  await dst?.close();
  await s3?.close();
  await oss?.close();
  await db?.drop();
});

const ofType = (type: string, taskId: string) => receiver.received.filter((r) => r.body.type === type && r.body.taskId === taskId);

t.test('a key failing permanently and the dead-letter queue becoming non-empty: one signed alert each; the same failure again: none', async (t) => {
  // The destination refuses writes under denied/: AccessDenied is permanent (no retry).
  dst.add({ match: { method: 'PUT', path: /\/denied\// }, action: { type: 'status', status: 403, code: 'AccessDenied' } });
  const client = s3Client(s3);
  await putAll(client, 'al-src-fail', [object('denied/first.bin')]);
  client.destroy();
  await notify(svc.url, 'al-src-fail', ['denied/first.bin'], sender);
  const [failed] = await eventually(async () => (ofType('key_failed', 'failing').length > 0 ? ofType('key_failed', 'failing') : undefined), 30_000, 'key_failed alert');
  const [dead] = await eventually(async () => (ofType('dead_letter', 'failing').length > 0 ? ofType('dead_letter', 'failing') : undefined), 30_000, 'dead_letter alert');
  t.ok(failed!.verified && dead!.verified, 'both verify as SDK-HMAC-SHA256 with the configured secret');
  t.equal(failed!.accessKey, ALERT_KEY, 'signed with the configured access key');
  t.match(failed!.body, { type: 'key_failed', taskId: 'failing', key: 'denied/first.bin', error: { code: 'AccessDenied' }, id: /^bb-alert-\d+$/ }, 'key_failed names the task, key and error');
  t.match(dead!.body, { type: 'dead_letter', taskId: 'failing', deadLetters: 1 }, 'dead_letter says how many');

  // The same key fails again (a new event): deduplicated; the dead-letter queue was already non-empty.
  const before = receiver.received.length;
  // A new event for the key, with its own sequencer as S3 would send it: the first event's exact body,
  // signed within the same second (workers start at once since they are woken by NOTIFY, so the first
  // failure can be over by then), is the same signed request and rightly answered as a replay.
  const again = JSON.parse(s3Event('al-src-fail', ['denied/first.bin'])) as { Records: { s3: { object: { sequencer: string } } }[] };
  again.Records[0]!.s3.object.sequencer = '0B';
  const res = await signedPost(`${svc.url}/sync`, JSON.stringify(again), sender);
  t.equal(res.status, 202, 'the new event is accepted');
  await inspect.settled('failing', ['denied/first.bin'], 30_000);
  await eventually(async () => ((await inspect.deadLetters()) >= 2 ? true : undefined), 30_000, 'second dead letter');
  await new Promise((r) => setTimeout(r, 2_500)); // two monitor polls and dispatcher rounds
  t.equal(receiver.received.length, before, 'no second alert for the same failure');
});

t.test('a burst of failures is rate-limited; the held-back count comes with the next alert', async (t) => {
  const keys = Array.from({ length: 8 }, (_, i) => `denied/burst-${i}.bin`);
  const client = s3Client(s3);
  await putAll(client, 'al-src-fail', keys.map(object));
  await notify(svc.url, 'al-src-fail', keys, sender, 8);
  await inspect.settled('failing', keys, 30_000);
  await new Promise((r) => setTimeout(r, 1_500));
  const { rows } = await inspect.pool.query<{ raised: number; suppressed: number }>("SELECT raised, suppressed FROM bb_alert_limits WHERE task_id = 'failing'");
  const burst = ofType('key_failed', 'failing').filter((r) => String(r.body.key).startsWith('denied/burst-'));
  t.equal(rows[0]!.raised, 4, 'the task\'s alerts this minute stop at maxPerMinute (4)');
  t.equal(burst.length + rows[0]!.suppressed, keys.length, `every failure is either alerted (${burst.length}) or counted as held back (${rows[0]!.suppressed})`);
  // A minute later (simulated: the window is moved back), the next alert carries the count.
  await inspect.pool.query("UPDATE bb_alert_limits SET window_start = now() - interval '2 minutes' WHERE task_id = 'failing'");
  await putAll(client, 'al-src-fail', [object('denied/next-minute.bin')]);
  client.destroy();
  await notify(svc.url, 'al-src-fail', ['denied/next-minute.bin'], sender);
  const next = await eventually(async () => ofType('key_failed', 'failing').find((r) => r.body.key === 'denied/next-minute.bin'), 30_000, 'alert of the next minute');
  t.equal(next.body.suppressed, rows[0]!.suppressed, 'it reports how many were held back');
});

t.test('replication lag past lagSeconds alerts; a hanging, then failing receiver is retried later and never holds up replication', async (t) => {
  receiver.setMode('hang');
  // Copies of l/slow crawl (5 s): lag builds up.
  const slow = dst.add({ match: { method: 'PUT', path: /\/l\/slow/ }, action: { type: 'delay', ms: 5_000 } });
  const client = s3Client(s3);
  const fast = Array.from({ length: 10 }, (_, i) => object(`l/fast-${i}.bin`));
  await putAll(client, 'al-src-lag', [object('l/slow.bin'), ...fast]);
  client.destroy();
  await notify(svc.url, 'al-src-lag', ['l/slow.bin'], sender);
  await eventually(async () => (receiver.hung() > 0 ? true : undefined), 30_000, 'the lag alert\'s delivery hanging in the receiver');

  // While the alert cannot be delivered, replication goes on.
  const started = Date.now();
  await notify(svc.url, 'al-src-lag', fast.map((o) => o.key), sender);
  await eventually(
    async () => {
      const rows = await inspect.statuses('lagging');
      return fast.every((o) => REPLICATED.has(rows.get(o.key)?.status ?? '')) ? true : undefined;
    },
    30_000,
    'the other objects replicated',
  );
  t.pass(`replication went on while the receiver hung (${fast.length} objects in ${Date.now() - started} ms)`);
  t.equal(ofType('replication_lag', 'lagging').length, 0, 'the alert is not delivered yet');

  // The hung delivery is released with a 503, the retries fail twice more, then the receiver recovers.
  receiver.setMode('fail');
  await eventually(async () => (receiver.failed() >= 2 ? true : undefined), 30_000, 'two failed deliveries');
  receiver.setMode('ok');
  const lag = await eventually(async () => ofType('replication_lag', 'lagging')[0], 30_000, 'replication_lag alert after the receiver recovers');
  t.ok(lag.verified, 'signed');
  t.match(lag.body, { type: 'replication_lag', taskId: 'lagging', thresholdSeconds: 2 }, 'names the threshold');
  t.ok(Number(lag.body.lagSeconds) > 2, `and the lag (${String(lag.body.lagSeconds)} s)`);
  // The receiver holds the alert before its 200 reaches the service, which records the delivery after that: wait for the record.
  const outboxRows = async () =>
    (await inspect.pool.query<{ attempts: number; state: string }>("SELECT attempts, state FROM bb_alert_outbox WHERE task_id = 'lagging' AND kind = 'replication_lag'")).rows;
  const outbox = await eventually(async () => {
    const rows = await outboxRows();
    return rows.some((r) => r.state !== 'pending') ? rows : undefined;
  }, 10_000, 'the lag alert\'s delivery recorded');
  t.equal(outbox.length, 1, 'one lag alert');
  t.equal(outbox[0]!.state, 'delivered', 'recorded delivered');
  t.ok(outbox[0]!.attempts >= 3, `after ${outbox[0]!.attempts} attempts (hung, failed, failed, delivered)`);
  slow.remove();
  await inspect.settled('lagging', ['l/slow.bin'], 30_000);
  const all = await inspect.pool.query<{ state: string; n: number }>('SELECT state, count(*)::int AS n FROM bb_alert_outbox GROUP BY 1');
  t.comment(`outbox: ${all.rows.map((r) => `${r.state} ${r.n}`).join(', ')}; receiver saw ${receiver.attempts()} delivery attempts (${receiver.hung()} hung, ${receiver.failed()} failed), ${receiver.received.length} alerts`);
});

t.test('the alerts option is validated like the rest of a task', async (t) => {
  const { validateTask } = await import('../src/config/validate.js');
  const task = (alerts: unknown) => ({
    id: 'v',
    source: { provider: 's3', bucket: 'v-src' },
    destination: { provider: 's3', bucket: 'v-dst' },
    options: { alerts },
  });
  const ok = validateTask(task({ url: 'https://alerts.example.com/bb', secretEnv: 'V_ALERT_SK', lagSeconds: 300 }), 'task', { V_ALERT_SK: 's' });
  t.match(ok.options.alerts, { url: 'https://alerts.example.com/bb', secretEnv: 'V_ALERT_SK', lagSeconds: 300, accessKeyId: 'bucketbridge', dedupeSeconds: 3600, maxPerMinute: 20 }, 'defaults filled in');
  const fieldOf = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (err) {
      return (err as { field?: string }).field;
    }
    return undefined;
  };
  t.equal(fieldOf(() => validateTask(task({ url: 'https://a.example.com', secretEnv: 'V_ALERT_SK' }), 'task', {})), 'task.options.alerts.secretEnv', 'the secret env var must be set');
  t.equal(fieldOf(() => validateTask(task({ url: 'ftp://a.example.com', secretEnv: 'V_ALERT_SK' }), 'task', { V_ALERT_SK: 's' })), 'task.options.alerts.url', 'http(s) receivers only');
  t.equal(fieldOf(() => validateTask(task({ url: 'https://a.example.com', secretEnv: 'V_ALERT_SK', lagSeconds: 0 }), 'task', { V_ALERT_SK: 's' })), 'task.options.alerts.lagSeconds', 'a positive lag threshold');
  t.equal(fieldOf(() => validateTask(task({ url: 'https://a.example.com' }), 'task', {})), 'task.options.alerts.secretEnv', 'secretEnv is required');
});
