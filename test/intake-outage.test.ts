/**
 * Database unreachable: the intake answers 503 DATABASE_UNAVAILABLE, writes
 * nothing half (also when the database goes away under a batch of requests
 * waiting for one statement), and recovers without a restart when the
 * database is back.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { signedHeaders, signedPost } from '../src/auth/signed-client.js';
import { startStack, testTask } from './support/stack.js';

t.test('503 while PostgreSQL is unreachable, 202 again after', async (t) => {
  const secret = randomBytes(24).toString('hex');
  const stack = await startStack({
    tasks: [testTask('photos')],
    senders: [{ accessKeyId: 'fn', secrets: [secret], tasks: ['photos'], source: 'config' }],
    dbProxy: true,
  });
  t.teardown(() => stack.close());
  const creds = { accessKeyId: 'fn', secret };
  const event = (key: string) =>
    JSON.stringify({ Records: [{ eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'photos-src' }, object: { key, size: 1 } } }] });

  t.equal((await signedPost(`${stack.url}/sync`, event('before'), creds)).status, 202);
  await stack.dbProxy!.cut();
  const during = await signedPost(`${stack.url}/sync`, event('during'), creds);
  t.equal(during.status, 503, during.text);
  t.equal((during.body as { error: { code: string } }).error.code, 'DATABASE_UNAVAILABLE');
  const ready = await fetch(`${stack.url}/readyz`);
  t.equal(ready.status, 503, 'not ready while the database is down');
  await stack.dbProxy!.restore();
  let after;
  for (let i = 0; i < 50; i++) {
    after = await signedPost(`${stack.url}/sync`, event('after'), creds);
    if (after.status === 202) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  t.equal(after!.status, 202, 'recovers without a restart');
  t.same((await stack.jobs()).map((j) => j.key).sort(), ['after', 'before'], 'nothing from the outage was half-written');
});

t.test('the database cut while a batch is waiting: all its requests 503, nothing half-written, the retries land exactly once', async (t) => {
  const secret = randomBytes(24).toString('hex');
  const stack = await startStack({
    tasks: [testTask('photos')],
    senders: [{ accessKeyId: 'fn', secrets: [secret], tasks: ['photos'], source: 'config' }],
    dbProxy: true,
  });
  // The test's own connection bypasses the proxy: it holds a lock and reads the outcome.
  const direct = new pg.Pool({ connectionString: stack.db.url, max: 2 });
  t.teardown(async () => {
    await direct.end();
    await stack.close();
  });
  const creds = { accessKeyId: 'fn', secret };
  const url = new URL(`${stack.url}/sync`);
  const requests = Array.from({ length: 20 }, (_, i) => {
    const body = JSON.stringify({ Records: [{ eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'photos-src' }, object: { key: `cut/${i}`, size: 1 } } }] });
    const { host: _host, ...headers } = signedHeaders('POST', url, body, creds);
    return { key: `cut/${i}`, body, headers };
  });
  const send = async (r: (typeof requests)[number]) => {
    const res = await fetch(url, { method: 'POST', headers: r.headers, body: r.body });
    return { status: res.status, body: (await res.json()) as { error?: { code: string }; replayed?: boolean; requestId?: string } };
  };
  const until = async (what: string, condition: () => boolean | Promise<boolean>) => {
    while (!(await condition())) await new Promise((r) => setTimeout(r, 5));
    t.comment(`reached: ${what}`);
  };

  // Statements block on the lock before writing; the other requests gather behind them.
  const lock = await direct.connect();
  await lock.query('BEGIN');
  await lock.query('LOCK TABLE bb_intake_ledger IN EXCLUSIVE MODE');
  const before = stack.enqueuer.stats();
  const answers = Promise.all(requests.map(send));
  await until('all 20 requests are inside the enqueuer', () => {
    const s = stack.enqueuer.stats();
    return s.waiting + s.inFlight === 20;
  });
  await stack.dbProxy!.cut();
  const during = await answers;
  t.same(during.map((a) => a.status), Array(20).fill(503), 'every request of the failed batches: 503');
  t.ok(during.every((a) => a.body.error?.code === 'DATABASE_UNAVAILABLE'), 'DATABASE_UNAVAILABLE');
  const after = stack.enqueuer.stats();
  t.equal(after.failedRequests - before.failedRequests, 20);
  const failed = after.failedBatches - before.failedBatches;
  t.ok(failed >= 1 && failed <= 3, `20 requests failed in ${failed} statements (batches, not one by one)`);
  t.equal(after.batches, before.batches, 'no statement reported success');

  // The statements that reached PostgreSQL before the cut may still commit once the lock is
  // gone (the server cannot know the client left): that is why a 503 asks for a retry, and
  // why a retry must find the first answer. What must never happen is half a batch.
  await lock.query('COMMIT');
  lock.release();
  await until('the cut connections are gone from the server', async () => {
    const { rows } = await direct.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'bucketbridge'",
    );
    return rows[0]!.n === 0;
  });
  const committed = async () => {
    const jobs = await direct.query<{ key: string }>("SELECT data->>'key' AS key FROM pgboss.job WHERE name = 'bb-replicate' AND data->>'key' LIKE 'cut/%'");
    const ledger = await direct.query<{ key: string }>("SELECT response->'jobs'->0->>'key' AS key FROM bb_intake_ledger WHERE response->'jobs'->0->>'key' LIKE 'cut/%'");
    return { jobs: jobs.rows.map((r) => r.key).sort(), ledger: ledger.rows.map((r) => r.key).sort() };
  };
  const written = await committed();
  t.same(written.jobs, written.ledger, 'each request is either fully written (job and ledger row) or not at all');
  t.comment(`${written.jobs.length} of the 20 were committed by PostgreSQL after the client was cut off`);

  await stack.dbProxy!.restore();
  // The senders retry the same signed requests: the committed ones are replays, the others new.
  const retried = [];
  for (const r of requests) {
    let answer = await send(r);
    while (answer.status === 503) {
      // until the pool reconnects
      await new Promise((res) => setTimeout(res, 20));
      answer = await send(r);
    }
    retried.push({ key: r.key, ...answer });
  }
  t.same(
    retried.filter((a) => a.status === 200).map((a) => a.key).sort(),
    written.jobs,
    'exactly the committed requests answer 200 replayed',
  );
  t.ok(retried.every((a) => (a.status === 200 && a.body.replayed === true) || (a.status === 202 && a.body.replayed === undefined)), '202 or 200 replayed, nothing else');
  const final = await committed();
  t.equal(final.jobs.length, 20, 'every event is queued once');
  t.same(final.ledger, final.jobs, 'with one ledger row each');
});
