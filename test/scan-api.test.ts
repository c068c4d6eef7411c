/**
 * Scans through the admin API (JWT scopes, request/response schemas, 202 /
 * 409 skipped / 404 / 400, cancel, progress) and through `bucketbridge scan`
 * (queue and wait, JSON output, skipped and failed exit codes, usage errors).
 */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { mintAdminToken, AdminAuth } from '../src/auth/admin-jwt.js';
import { createLogger } from '../src/logger.js';
import { ScanRunner } from '../src/scan/runner.js';
import { ScanService } from '../src/scan/scans.js';
import { ScanWorkers } from '../src/scan/worker.js';
import { command as scanCli } from '../src/cli/scan.js';
import type { CliIo } from '../src/cli/command.js';
import { buildTestApp } from './support/app.js';
import { startStack, testTask, type Stack } from './support/stack.js';
import { eventually } from './support/service.js';
import { FakeStores, numbered, slowed } from './support/fake-stores.js';
import { FakeLister } from './support/fake-lister.js';
import type { FastifyInstance } from 'fastify';

const log = createLogger(process.env.BB_TEST_LOG_LEVEL ?? 'silent');
const secret = randomBytes(32).toString('hex');

let stack: Stack;
let app: FastifyInstance;
let scans: ScanService;
let runner: ScanRunner;
const stores = new FakeStores();
let write: string;
let read: string;

t.before(async () => {
  stack = await startStack({ tasks: ['api-task', 'busy', 'cli-task', 'cli-fail'].map((id) => testTask(id)) });
  scans = new ScanService(stack.pool, stack.boss, stack.tasks, log);
  stores.set('api-task', numbered(120), numbered(100));
  stores.set('busy', slowed(new FakeLister('busy-src', numbered(400)), () => 60), numbered(400));
  stores.set('cli-task', numbered(30), numbered(25));
  runner = new ScanRunner({ pool: stack.pool, boss: stack.boss, tasks: stack.tasks, stores, log, options: { progressIntervalMs: 50, pageSize: 10, chunkSize: 20 } });
  app = await buildTestApp({
    logger: log,
    pool: stack.pool,
    boss: stack.boss,
    enqueuer: stack.enqueuer,
    tasks: stack.tasks,
    admin: { auth: new AdminAuth({ secret }) },
    scans,
  });
  write = await mintAdminToken({ secret, scopes: ['bb:read', 'bb:write'], ttlSeconds: 600, subject: 'ops@example.com' });
  read = await mintAdminToken({ secret, scopes: ['bb:read'], ttlSeconds: 600 });
});

t.teardown(async () => {
  await app?.close();
  await stack?.close();
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

t.test('POST starts a scan (bb:write), records the caller, validates the body', async (t) => {
  const noToken = await app.inject({ method: 'POST', url: '/admin/tasks/api-task/scans' });
  t.equal(noToken.statusCode, 401);
  t.equal(noToken.json().error.code, 'UNAUTHENTICATED');
  const readOnly = await app.inject({ method: 'POST', url: '/admin/tasks/api-task/scans', headers: auth(read) });
  t.equal(readOnly.statusCode, 403);
  t.equal(readOnly.json().error.code, 'INSUFFICIENT_SCOPE');

  for (const [body, code] of [
    [{ prefixes: ['a/'], prefixList: { key: 'l' } }, 'INVALID_SCAN_REQUEST'],
    [{ include: ['{x'] }, 'INVALID_SCAN_REQUEST'],
    [{ minSize: -1 }, 'VALIDATION_FAILED'],
    [{ modifiedAfter: 'yesterday' }, 'VALIDATION_FAILED'],
    [{ bogus: true }, 'VALIDATION_FAILED'],
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/admin/tasks/api-task/scans', headers: { ...auth(write), 'content-type': 'application/json' }, payload: JSON.stringify(body) });
    t.equal(res.statusCode, 400, JSON.stringify(body));
    t.equal(res.json().error.code, code, JSON.stringify(body));
  }
  const unknown = await app.inject({ method: 'POST', url: '/admin/tasks/nope/scans', headers: auth(write) });
  t.equal(unknown.statusCode, 404);

  const res = await app.inject({
    method: 'POST',
    url: '/admin/tasks/api-task/scans',
    headers: { ...auth(write), 'content-type': 'application/json' },
    payload: JSON.stringify({ prefixes: ['k/'], exclude: ['*.tmp'], minSize: 1 }),
  });
  t.equal(res.statusCode, 202, res.body);
  const scan = res.json();
  t.equal(scan.state, 'queued');
  t.equal(scan.trigger, 'api');
  t.equal(scan.requestedBy, 'ops@example.com');
  t.same(scan.scope, { mode: 'prefixes', prefixes: ['k/'], exclude: ['*.tmp'], minSize: 1 });
  t.equal(res.headers.location, `/admin/tasks/api-task/scans/${scan.id}`);

  const again = await app.inject({ method: 'POST', url: '/admin/tasks/api-task/scans', headers: auth(write) });
  t.equal(again.statusCode, 409, 'a second scan while one is queued');
  t.equal(again.json().error.code, 'SCAN_ALREADY_ACTIVE');
  t.match(again.json().error.message, new RegExp(`scan ${scan.id} of task api-task is already queued or running; this request was recorded as skipped scan [0-9a-f-]{36}`));

  const done = await runner.run(scan.id);
  t.equal(done?.state, 'completed');
  const got = await app.inject({ method: 'GET', url: `/admin/tasks/api-task/scans/${scan.id}`, headers: auth(read) });
  t.equal(got.statusCode, 200);
  const body = got.json();
  t.equal(body.state, 'completed');
  t.same(body.listed, { source: 120, destination: 100, requests: body.listed.requests });
  t.same(body.differences, { missing: 20, size: 0, content: 0, extra: 0, uncompared: 0, total: 20 });
  t.same(body.jobs, { queued: 20, alreadyQueued: 0 });
  t.ok(body.startedAt && body.finishedAt);

  const list = await app.inject({ method: 'GET', url: '/admin/tasks/api-task/scans?limit=10', headers: auth(read) });
  t.equal(list.statusCode, 200);
  t.same(list.json().scans.map((s: { state: string }) => s.state), ['skipped', 'completed'], 'newest first, the skipped request recorded');
  const skipped = await app.inject({ method: 'GET', url: '/admin/tasks/api-task/scans?state=skipped', headers: auth(read) });
  t.equal(skipped.json().scans[0].skippedFor, scan.id);
  t.equal((await app.inject({ method: 'GET', url: '/admin/tasks/api-task/scans/not-a-uuid', headers: auth(read) })).statusCode, 400);
  t.equal((await app.inject({ method: 'GET', url: `/admin/tasks/api-task/scans/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}`, headers: auth(read) })).statusCode, 404);
  t.equal((await app.inject({ method: 'GET', url: '/admin/tasks/nope/scans', headers: auth(read) })).statusCode, 404);
});

t.test('DELETE cancels a running scan (bb:write); a finished one answers 409', async (t) => {
  const started = await app.inject({ method: 'POST', url: '/admin/tasks/busy/scans', headers: auth(write) });
  const id = started.json().id as string;
  const running = runner.run(id);
  await eventually(async () => ((await scans.get('busy', id))?.state === 'running' ? true : undefined), 5_000, 'running');
  const progress = await eventually(async () => {
    const r = await app.inject({ method: 'GET', url: `/admin/tasks/busy/scans/${id}`, headers: auth(read) });
    const view = r.json() as { state: string; listed: { source: number } };
    return view.listed.source > 0 ? view : undefined;
  }, 5_000, 'progress');
  t.equal(progress.state, 'running', 'progress is visible while it runs');
  t.equal((await app.inject({ method: 'DELETE', url: `/admin/tasks/busy/scans/${id}`, headers: auth(read) })).statusCode, 403);
  const del = await app.inject({ method: 'DELETE', url: `/admin/tasks/busy/scans/${id}`, headers: auth(write) });
  t.equal(del.statusCode, 200);
  t.equal(del.json().state, 'cancelled');
  t.equal((await running)?.state, 'cancelled');
  const again = await app.inject({ method: 'DELETE', url: `/admin/tasks/busy/scans/${id}`, headers: auth(write) });
  t.equal(again.statusCode, 409);
  t.equal(again.json().error.code, 'SCAN_FINISHED');
});

t.test('the OpenAPI document describes the scan routes', async (t) => {
  const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
  t.ok(doc.paths['/admin/tasks/{id}/scans'].post);
  t.ok(doc.paths['/admin/tasks/{id}/scans'].get);
  t.ok(doc.paths['/admin/tasks/{id}/scans/{scanId}'].get);
  t.ok(doc.paths['/admin/tasks/{id}/scans/{scanId}'].delete);
  t.ok(doc.paths['/admin/tasks/{id}/scans'].post.responses['409']);
});

function io(argv: string[], env: NodeJS.ProcessEnv): { io: CliIo; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (c: Buffer) => (o += c.toString()));
  stderr.on('data', (c: Buffer) => (e += c.toString()));
  return { io: { argv, env, stdin: new PassThrough(), stdout, stderr }, out: () => o, err: () => e };
}

t.test('bucketbridge scan TASK: queue and wait, skipped, failed, usage errors', async (t) => {
  const env = { DATABASE_URL: stack.db.url, LOG_LEVEL: 'silent' };
  const workers = new ScanWorkers(stack.boss, runner, log, { concurrency: 1, pollingIntervalSeconds: 0.5 });
  await workers.start();
  try {
    const waited = io(['cli-task', '--prefix', 'k/', '--wait', '--json'], env);
    t.equal(await scanCli.run(waited.io), 0, waited.err());
    const record = JSON.parse(waited.out());
    t.equal(record.state, 'completed');
    t.equal(record.trigger, 'cli');
    t.equal(record.counters.missing, 5);
    t.match(waited.err(), /scan [0-9a-f-]+ of cli-task queued/);
    t.match(waited.err(), /completed · listed 30 source \/ 25 destination · differences 5 \(missing 5, size 0, content 0, extra 0\) · jobs queued 5/);
  } finally {
    await workers.stop();
  }
  const queued = io(['cli-task'], env);
  t.equal(await scanCli.run(queued.io), 0);
  t.match(queued.out(), /^[0-9a-f-]{36}\n$/, 'without --wait: the id of the queued scan');
  const skipped = io(['cli-task'], env);
  t.equal(await scanCli.run(skipped.io), 1, 'skipped: exit 1');
  t.match(skipped.err(), /already queued or running; this request was recorded as skipped scan/);
  await scans.cancel('cli-task', queued.out().trim());

  // Run here against endpoints nobody listens on: the scan fails, exit 1, with the reason.
  const failed = io(['cli-fail', '--run'], { ...env, BB_TEST_UNUSED: '1' });
  t.equal(await scanCli.run(failed.io), 1);
  t.match(failed.err(), /cli-fail: failed · .*error: /);

  await t.rejects(scanCli.run(io([], env).io), { name: 'UsageError', message: /name the task/ });
  await t.rejects(scanCli.run(io(['cli-task', '--min-size', 'lots'], env).io), { name: 'UsageError', message: /--min-size/ });
  await t.rejects(scanCli.run(io(['cli-task', '--include', '{x'], env).io), { name: 'UsageError', message: /include/ });
  await t.rejects(scanCli.run(io(['cli-task', '--bogus'], env).io), { name: 'UsageError' });
  const unknown = io(['nope'], env);
  t.equal(await scanCli.run(unknown.io), 2);
  t.match(unknown.err(), /task nope does not exist/);
  const help = io(['--help'], env);
  t.equal(await scanCli.run(help.io), 0);
  t.match(help.out(), /^Usage: bucketbridge scan TASK/);
});
