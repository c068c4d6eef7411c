/**
 * Database unreachable: the intake answers 503 DATABASE_UNAVAILABLE, writes
 * nothing half, and recovers without a restart when the database is back.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { signedPost } from '../src/auth/signed-client.js';
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
