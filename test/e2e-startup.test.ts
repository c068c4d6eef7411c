/**
 * Start-up and shutdown of the real process: the embedded database default,
 * bad configuration, a busy port, and a graceful stop that leaves no
 * PostgreSQL running behind it.
 */
import t from 'tap';
import { createServer } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { freePort } from '../src/db/embedded.js';
import { startService } from './support/service.js';

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
}

t.test('with no DATABASE_URL it starts on embedded PostgreSQL, answers /healthz, and stops cleanly on SIGTERM', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'bb-embedded-'));
  const svc = await startService({ env: { DATABASE_URL: undefined, BB_DATA_DIR: dataDir }, readyTimeoutMs: 30_000 });
  const health = await fetch(`${svc.url}/healthz`);
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  t.ok(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'embedded cluster running under BB_DATA_DIR/postgres');
  const { code, signal } = await svc.stop();
  t.equal(signal, null, 'exited by itself, not killed');
  t.equal(code, 0, 'exit code 0 after SIGTERM');
  t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'embedded PostgreSQL stopped');
  t.ok(existsSync(join(dataDir, 'postgres', 'PG_VERSION')), 'cluster kept for the next run');

  // Kept between runs: a second start reuses the cluster.
  const again = await startService({ env: { DATABASE_URL: undefined, BB_DATA_DIR: dataDir }, readyTimeoutMs: 30_000 });
  t.equal((await fetch(`${again.url}/readyz`)).status, 200, 'restarts on the kept cluster');
  await again.stop();
});

t.test('invalid config exits non-zero with one line naming the field', async (t) => {
  const base = {
    id: 'x',
    source: { provider: 's3', bucket: 'src-bucket' },
    destination: { provider: 's3', bucket: 'dst-bucket' },
  };
  const cases: [string, unknown, string][] = [
    ['unknown provider', { tasks: [{ ...base, source: { provider: 'ftp', bucket: 'src-bucket' } }] }, 'tasks[0].source.provider'],
    ['missing bucket', { tasks: [{ ...base, destination: { provider: 's3' } }] }, 'tasks[0].destination.bucket'],
    [
      'credentials env var not set',
      { tasks: [{ ...base, source: { provider: 's3', bucket: 'src-bucket', credentials: { accessKeyIdEnv: 'BB_TEST_UNSET_AK', secretAccessKeyEnv: 'BB_TEST_UNSET_SK' } } }] },
      'tasks[0].source.credentials.accessKeyIdEnv',
    ],
  ];
  for (const [name, config, field] of cases) {
    const svc = await startService({ config, noWait: true, env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' } });
    const { code } = await svc.exited;
    const out = lines(svc.output());
    t.not(code, 0, `${name}: non-zero exit`);
    t.equal(out.length, 1, `${name}: one line (${JSON.stringify(out)})`);
    t.match(out[0], field, `${name}: names ${field}`);
    await svc.stop();
  }
});

t.test('a port already in use exits non-zero with a clear message and the embedded database stopped', async (t) => {
  const port = await freePort();
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const dataDir = mkdtempSync(join(tmpdir(), 'bb-busy-'));
  const svc = await startService({ port, noWait: true, env: { DATABASE_URL: undefined, BB_DATA_DIR: dataDir } });
  const { code } = await svc.exited;
  t.not(code, 0, 'non-zero exit');
  t.match(svc.output(), `port ${port} on 127.0.0.1 is already in use`);
  t.ok(existsSync(join(dataDir, 'postgres', 'PG_VERSION')), 'the embedded database had started');
  t.notOk(existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'and was stopped before exit');
  await svc.stop();
});
