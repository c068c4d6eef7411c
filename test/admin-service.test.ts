/**
 * The admin API as the service assembles it (src/service.ts, in-process over a
 * real database): the start-up log says once when the admin API is disabled;
 * with a secret and a master key, a sender created through one process is
 * accepted by another process on the same database after its refresh, and
 * /metrics carries the queue gauges (and the settle batch metrics, at 0).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { mintAdminToken } from '../src/auth/admin-jwt.js';
import { signedPost } from '../src/auth/signed-client.js';
import { loadEnv } from '../src/config/env.js';
import { freePort } from '../src/db/embedded.js';
import { createLogger } from '../src/logger.js';
import { startService, type RunningService } from '../src/service.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { validateTask } from '../src/config/validate.js';
import { testTask } from './support/stack.js';

let db: TestDatabase;
t.before(async () => {
  db = await createTestDatabase();
});
t.teardown(() => db.drop());

async function start(env: Record<string, string>) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const config = {
    env: loadEnv({ DATABASE_URL: db.url, PORT: String(await freePort()), BB_WORKERS: 'false', BB_SHUTDOWN_GRACE_MS: '1000', ...env }),
    file: { tasks: [validateTask(testTask('svc-task'), 'tasks[0]')], senders: [] },
  };
  const svc: RunningService = await startService(config as Parameters<typeof startService>[0], createLogger('info', sink));
  return { svc, lines, url: svc.address };
}

t.test('without BB_ADMIN_JWT_SECRET or BB_ADMIN_JWKS_URL: said once at start, every call 503 ADMIN_DISABLED', async (t) => {
  const { svc, lines, url } = await start({});
  t.teardown(() => svc.stop());
  const said = lines.filter((l) => /admin API disabled/.test(String(l.msg)));
  t.equal(said.length, 1, 'one log line');
  t.equal(said[0]?.level, 40, 'at warn level');
  const res = await fetch(`${url}/admin/tasks`, { headers: { authorization: 'Bearer x.y.z' } });
  t.equal(res.status, 503);
  t.equal(((await res.json()) as { error: { code: string } }).error.code, 'ADMIN_DISABLED');
  await fetch(`${url}/admin/senders`);
  t.equal(lines.filter((l) => /admin API disabled/.test(String(l.msg))).length, 1, 'not repeated per request');
});

t.test('two processes on one database: a sender created on one is accepted by the other; gauges on /metrics', async (t) => {
  const secret = randomBytes(32).toString('hex');
  const env = { BB_ADMIN_JWT_SECRET: secret, BB_MASTER_KEY: randomBytes(32).toString('base64'), BB_REFRESH_INTERVAL_MS: '200' };
  const a = await start(env);
  t.teardown(() => a.svc.stop());
  const b = await start(env);
  t.teardown(() => b.svc.stop());
  t.ok(a.lines.some((l) => l.msg === 'admin API enabled' && l.auth === 'hs256-secret'));
  const token = await mintAdminToken({ secret, scopes: ['bb:read', 'bb:write'], ttlSeconds: 60, subject: 'ops-test' });
  const created = await fetch(`${a.url}/admin/senders`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tasks: ['svc-task'] }),
  });
  t.equal(created.status, 201);
  const { accessKeyId, secret: senderSecret } = (await created.json()) as { accessKeyId: string; secret: string };
  t.ok(a.lines.some((l) => l.msg === 'admin change' && l.sub === 'ops-test' && l.method === 'POST'), 'audit line with the token subject');
  t.notOk(JSON.stringify(a.lines).includes(senderSecret), 'the secret is never logged');

  let status = 0;
  const deadline = Date.now() + 5_000;
  while (status !== 202 && Date.now() < deadline) {
    status = (await signedPost(`${b.url}/sync?task=svc-task`, JSON.stringify({ key: `k-${Date.now()}`, size: 1 }), { accessKeyId, secret: senderSecret })).status;
    if (status !== 202) await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(status, 202, 'the other process accepts the new sender after its refresh');

  const metrics = await (await fetch(`${b.url}/metrics`)).text();
  t.match(metrics, /^bb_queue_jobs\{task="svc-task",state="queued"\} [1-9]/m);
  t.match(metrics, /^bb_replication_lag_seconds\{task="svc-task"\} /m);
  // Settle group commit (counts checked through the workers in replication-settle-batch.test.ts): registered, failure series from 0.
  t.match(metrics, /^# TYPE bb_settle_batch_jobs histogram$/m);
  for (const action of ['retry', 'split', 'give_up']) t.match(metrics, new RegExp(`^bb_settle_batch_failures_total\\{action="${action}"\\} 0$`, 'm'), `failures (${action}) shown at 0`);
});
