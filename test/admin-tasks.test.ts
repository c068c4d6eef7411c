/**
 * Admin API tasks: create, read, replace, delete, pause, resume; validated by
 * the config file's validator (same errors, same fields); config-file tasks
 * read-only; replication loops refused; pause/resume reaching every process
 * through the registry refresh; a paused task still accepting events.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { signedPost } from '../src/auth/signed-client.js';
import { SenderDirectory } from '../src/auth/senders.js';
import { ConfigError, validateConfigFile, validateTask } from '../src/config/validate.js';
import { createPool } from '../src/db/pool.js';
import { RegistryRefresher } from '../src/db/registry-refresh.js';
import { SenderRepo } from '../src/db/sender-repo.js';
import { TaskRegistry } from '../src/tasks/registry.js';
import { startStack, testTask, type Stack } from './support/stack.js';

const senderSecret = randomBytes(24).toString('hex');
const env: NodeJS.ProcessEnv = { ...process.env, BBT_AK: randomBytes(8).toString('hex'), BBT_SK: randomBytes(16).toString('hex') };
delete env.BBT_MISSING;

let stack: Stack;
t.before(async () => {
  stack = await startStack({
    env,
    tasks: [testTask('cfg-task')],
    senders: [{ accessKeyId: 'fn-1', secrets: [senderSecret], tasks: ['cfg-task', 'api-paused'], source: 'config' }],
  });
});
t.teardown(() => stack.close());

function apiTask(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return testTask(id, overrides);
}

t.test('config-file tasks are listed with managedBy config', async (t) => {
  const res = await stack.admin('GET', '/admin/tasks');
  t.equal(res.status, 200);
  t.equal(res.body.tasks.length, 1);
  t.match(res.body.tasks[0], { id: 'cfg-task', managedBy: 'config', paused: false, options: { compare: 'checksum', deletes: false }, schedule: { mode: 'none' } });
  t.ok(Date.parse(res.body.tasks[0].createdAt) > 0);
});

t.test('create: 201 with defaults applied, readable, listed in id order', async (t) => {
  const res = await stack.admin('POST', '/admin/tasks', apiTask('api-1', { options: { deletes: true } }));
  t.equal(res.status, 201, JSON.stringify(res.body));
  t.equal(res.headers.get('location'), '/admin/tasks/api-1');
  t.match(res.body, { id: 'api-1', managedBy: 'api', paused: false, options: { deletes: true, compare: 'checksum', partConcurrency: 4 }, schedule: { mode: 'none' } });
  const got = await stack.admin('GET', '/admin/tasks/api-1');
  t.equal(got.status, 200);
  t.same(got.body, res.body);
  t.same((await stack.admin('GET', '/admin/tasks')).body.tasks.map((x: { id: string }) => x.id), ['api-1', 'cfg-task']);
  t.ok(stack.tasks.get('api-1'), 'this process routes to it at once');
  const withCreds = await stack.admin('POST', '/admin/tasks', apiTask('api-creds', {
    destination: { provider: 'oss', bucket: 'oss-dst', region: 'oss-cn-hangzhou', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyIdEnv: 'BBT_AK', secretAccessKeyEnv: 'BBT_SK' } },
  }));
  t.equal(withCreds.status, 201, 'credential env vars present on the server');
});

t.test('create: an id already taken (API or config) is 409 TASK_EXISTS', async (t) => {
  for (const id of ['api-1', 'cfg-task']) {
    const res = await stack.admin('POST', '/admin/tasks', apiTask(id));
    t.equal(res.status, 409, id);
    t.equal(res.body.error.code, 'TASK_EXISTS');
  }
});

t.test('bad task bodies: 400 with the code and field the config file loader reports', async (t) => {
  const base = apiTask('bad');
  const src = base.source as Record<string, unknown>;
  const cases: [string, unknown, string, string][] = [
    ['not an object', [1, 2], 'VALIDATION_FAILED', 'body'],
    ['missing destination', { id: 'bad', source: src }, 'VALIDATION_FAILED', 'body.destination'],
    ['bucket of the wrong type', { ...base, source: { ...src, bucket: 123 } }, 'VALIDATION_FAILED', 'body.source.bucket'],
    ['invalid bucket name', { ...base, source: { ...src, bucket: 'Bad_Bucket' } }, 'VALIDATION_FAILED', 'body.source.bucket'],
    ['bucket name too short', { ...base, destination: { ...src, bucket: 'ab' } }, 'VALIDATION_FAILED', 'body.destination.bucket'],
    ['unknown provider', { ...base, source: { ...src, provider: 'gcs' } }, 'VALIDATION_FAILED', 'body.source.provider'],
    ['unknown field', { ...base, extra: true }, 'VALIDATION_FAILED', 'body.extra'],
    ['option of the wrong type', { ...base, options: { partConcurrency: 'four' } }, 'VALIDATION_FAILED', 'body.options.partConcurrency'],
    ['unknown compare mode', { ...base, options: { compare: 'md5' } }, 'VALIDATION_FAILED', 'body.options.compare'],
    ['cron without expression', { ...base, schedule: { mode: 'cron' } }, 'VALIDATION_FAILED', 'body.schedule.expression'],
    ['endpoint not a URL', { ...base, source: { ...src, endpoint: 'ftp://x' } }, 'VALIDATION_FAILED', 'body.source.endpoint'],
    ['invalid id', { ...base, id: '../etc' }, 'VALIDATION_FAILED', 'body.id'],
    ['credential env var not set on the server', { ...base, source: { ...src, credentials: { accessKeyIdEnv: 'BBT_MISSING', secretAccessKeyEnv: 'BBT_SK' } } }, 'VALIDATION_FAILED', 'body.source.credentials.accessKeyIdEnv'],
    ['oss without credentials', { ...base, destination: { provider: 'oss', bucket: 'dst-b', endpoint: 'http://127.0.0.1:9' } }, 'VALIDATION_FAILED', 'body.destination.credentials'],
    ['destination is the source', { ...base, destination: { ...src } }, 'REPLICATION_LOOP', 'body.destination'],
    ['overlapping prefixes in one bucket', { ...base, source: { ...src, prefixes: ['a/'] }, destination: { ...src, prefixes: ['a/copy/'] } }, 'REPLICATION_LOOP', 'body.destination'],
    ['whole bucket onto a prefix of itself', { ...base, destination: { ...src, prefixes: ['backup/'] } }, 'REPLICATION_LOOP', 'body.destination'],
  ];
  for (const [name, body, code, field] of cases) {
    const res = await stack.admin('POST', '/admin/tasks', body);
    t.equal(res.status, 400, `${name}: status`);
    t.equal(res.body.error?.code, code, `${name}: code`);
    t.equal(res.body.error?.field, field, `${name}: field`);
    // The config file loader says the same about the same task.
    let fileError: ConfigError | undefined;
    try {
      validateConfigFile({ tasks: [structuredClone(body)] }, env);
    } catch (err) {
      fileError = err as ConfigError;
    }
    t.equal(fileError?.reason, (() => {
      try {
        validateTask(structuredClone(body), 'body', env);
      } catch (err) {
        return (err as ConfigError).reason;
      }
    })(), `${name}: same reason as the config loader`);
    t.equal(res.body.error?.message, `${field}: ${fileError?.reason}`, `${name}: message`);
  }
  const malformed = await stack.admin('POST', '/admin/tasks', '{"id": "x", ');
  t.equal(malformed.status, 400);
  t.equal(malformed.body.error.code, 'INVALID_JSON');
  const empty = await stack.admin('POST', '/admin/tasks', '');
  t.equal(empty.status, 400);
  t.equal(empty.body.error.code, 'VALIDATION_FAILED');
  const text = await fetch(`${stack.url}/admin/tasks`, { method: 'POST', headers: { authorization: `Bearer ${await stack.token()}`, 'content-type': 'text/plain' }, body: 'id=x' });
  t.equal(text.status, 415);
  t.equal(((await text.json()) as { error: { code: string } }).error.code, 'UNSUPPORTED_MEDIA_TYPE');
  // Same bucket name on another endpoint is another store: not a loop.
  const otherEndpoint = await stack.admin('POST', '/admin/tasks', { ...base, id: 'two-stores', destination: { ...src, endpoint: 'http://127.0.0.2:9' } });
  t.equal(otherEndpoint.status, 201);
  t.notOk((await stack.admin('GET', '/admin/tasks')).body.tasks.some((x: { id: string }) => x.id === 'bad'), 'nothing created by bad bodies');
});

t.test('replace (PUT): full definition, id from the path, paused state kept', async (t) => {
  await stack.admin('POST', '/admin/tasks', apiTask('api-put'));
  await stack.admin('POST', '/admin/tasks/api-put/pause');
  const { id: _id, ...withoutId } = apiTask('api-put', { options: { compare: 'size' } });
  const res = await stack.admin('PUT', '/admin/tasks/api-put', withoutId);
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.match(res.body, { id: 'api-put', paused: true, options: { compare: 'size' } });
  t.ok(Date.parse(res.body.updatedAt) >= Date.parse(res.body.createdAt));
  t.equal(stack.tasks.get('api-put')?.options.compare, 'size', 'cache reloaded');
  const mismatch = await stack.admin('PUT', '/admin/tasks/api-put', apiTask('other-id'));
  t.equal(mismatch.status, 400);
  t.same(mismatch.body.error, { code: 'VALIDATION_FAILED', message: 'body.id: must equal the task id in the path', field: 'body.id' });
  const invalid = await stack.admin('PUT', '/admin/tasks/api-put', { ...withoutId, source: { provider: 's3', bucket: 'UPPER' } });
  t.equal(invalid.status, 400);
  t.equal(invalid.body.error.field, 'body.source.bucket');
  const loop = await stack.admin('PUT', '/admin/tasks/api-put', { ...withoutId, destination: withoutId.source });
  t.equal(loop.body.error.code, 'REPLICATION_LOOP');
  const cfg = await stack.admin('PUT', '/admin/tasks/cfg-task', apiTask('cfg-task'));
  t.equal(cfg.status, 409);
  t.equal(cfg.body.error.code, 'MANAGED_BY_CONFIG');
  const unknown = await stack.admin('PUT', '/admin/tasks/nope', apiTask('nope'));
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'NOT_FOUND');
});

t.test('unknown task ids: 404 NOT_FOUND on every task route', async (t) => {
  for (const [method, path] of [
    ['GET', '/admin/tasks/nope'],
    ['DELETE', '/admin/tasks/nope'],
    ['POST', '/admin/tasks/nope/pause'],
    ['POST', '/admin/tasks/nope/resume'],
    ['GET', '/admin/tasks/nope/status'],
    ['GET', '/admin/tasks/nope/objects'],
    ['GET', '/admin/tasks/nope/objects/a%2Fb'],
    ['POST', '/admin/tasks/nope/objects/a%2Fb/retry'],
    ['POST', '/admin/tasks/nope/retry-failed'],
  ] as const) {
    const res = await stack.admin(method, path);
    t.equal(res.status, 404, `${method} ${path}`);
    t.equal(res.body.error.code, 'NOT_FOUND', `${method} ${path}`);
  }
});

t.test('delete: API task and its queued jobs and records go; config tasks are read-only', async (t) => {
  await stack.admin('POST', '/admin/tasks', apiTask('api-del'));
  await stack.admin('POST', '/admin/tasks/api-del/objects/k1/retry');
  await stack.pool.query(`INSERT INTO bb_object_status (task_id, key, status) VALUES ('api-del', 'k1', 'failed')`);
  t.equal((await stack.jobs()).filter((j) => j.taskId === 'api-del').length, 1);
  const res = await stack.admin('DELETE', '/admin/tasks/api-del');
  t.equal(res.status, 204);
  t.equal((await stack.admin('GET', '/admin/tasks/api-del')).status, 404);
  t.equal((await stack.jobs()).filter((j) => j.taskId === 'api-del').length, 0, 'queued jobs removed');
  t.equal((await stack.pool.query(`SELECT 1 FROM bb_object_status WHERE task_id = 'api-del'`)).rowCount, 0, 'records removed');
  t.equal(stack.tasks.get('api-del'), undefined);
  t.equal((await stack.admin('DELETE', '/admin/tasks/api-del')).status, 404, 'twice: 404');
  const cfg = await stack.admin('DELETE', '/admin/tasks/cfg-task');
  t.equal(cfg.status, 409);
  t.equal(cfg.body.error.code, 'MANAGED_BY_CONFIG');
  t.ok((await stack.admin('GET', '/admin/tasks/cfg-task')).status === 200, 'config task still there');
});

t.test('pause and resume reach another process through the registry refresh', async (t) => {
  // A second "process": its own pool, registry, sender directory and refresher.
  const pool = createPool(stack.db.url, 2);
  const tasksB = new TaskRegistry(pool);
  const sendersB = new SenderDirectory();
  const refresher = new RegistryRefresher(pool, { tasks: () => tasksB.load(), senders: () => sendersB.loadApiSenders(new SenderRepo(pool)) }, { intervalMs: 100 });
  await refresher.start();
  t.teardown(async () => {
    await refresher.stop();
    await pool.end();
  });
  const created = await stack.admin('POST', '/admin/tasks', apiTask('api-paused'));
  t.equal(created.status, 201);
  const until = async (cond: () => boolean, what: string) => {
    const deadline = Date.now() + 5_000;
    while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.ok(cond(), what);
  };
  await until(() => tasksB.get('api-paused')?.paused === false, 'the other process sees the new task');
  const paused = await stack.admin('POST', '/admin/tasks/api-paused/pause');
  t.equal(paused.status, 200);
  t.equal(paused.body.paused, true);
  t.equal(stack.tasks.get('api-paused')?.paused, true, 'this process at once');
  await until(() => tasksB.get('api-paused')?.paused === true, 'the other process within the refresh interval');
  t.equal((await stack.admin('POST', '/admin/tasks/api-paused/pause')).status, 200, 'idempotent');

  // Paused: events are still accepted and queued (the worker holds them until resumed).
  const res = await signedPost(`${stack.url}/sync?task=api-paused`, JSON.stringify({ key: 'held/a.bin', size: 1 }), { accessKeyId: 'fn-1', secret: senderSecret });
  t.equal(res.status, 202, res.text);
  t.ok((await stack.jobs()).some((j) => j.taskId === 'api-paused' && j.key === 'held/a.bin'), 'queued while paused');
  const status = await stack.admin('GET', '/admin/tasks/api-paused/status');
  t.equal(status.body.paused, true);
  t.equal(status.body.jobs.queued, 1);

  const resumed = await stack.admin('POST', '/admin/tasks/api-paused/resume');
  t.equal(resumed.body.paused, false);
  await until(() => tasksB.get('api-paused')?.paused === false, 'resume reaches the other process');
  const cfg = await stack.admin('POST', '/admin/tasks/cfg-task/pause');
  t.equal(cfg.status, 409);
  t.equal(cfg.body.error.code, 'MANAGED_BY_CONFIG');
  // A write made outside the service (psql) is picked up too.
  await stack.pool.query(`UPDATE bb_tasks SET paused = true WHERE id = 'api-1'`);
  await until(() => tasksB.get('api-1')?.paused === true, 'direct SQL change picked up');
});

t.test('the refresher survives a database error and reports it once', async (t) => {
  const pool = createPool(stack.db.url, 1);
  const warnings: string[] = [];
  const log = { warn: (_o: unknown, m: string) => warnings.push(m), info: () => {} } as unknown as import('pino').Logger;
  let fail = false;
  const refresher = new RegistryRefresher(pool, { tasks: async () => { if (fail) throw new Error('boom'); } }, { intervalMs: 10_000, log });
  await refresher.start();
  await stack.pool.query(`UPDATE bb_tasks SET updated_at = now() WHERE id = 'cfg-task'`);
  fail = true;
  t.same(await refresher.check(), []);
  t.same(await refresher.check(), []);
  t.equal(warnings.length, 1, 'one warning per outage');
  fail = false;
  t.same(await refresher.check(), ['tasks'], 'retried on the next poll');
  await refresher.stop();
  await pool.end();
});
