/**
 * Admin API senders: the server generates the secret and shows it once; it is
 * stored encrypted (BB_MASTER_KEY, AES-256-GCM) and never listed; the intake
 * accepts API senders at once (and other processes after a refresh); rotation
 * keeps the old secret until its expiry; disable and delete cut a sender off;
 * config-file senders are read-only; without a master key creation is refused.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { signedPost } from '../src/auth/signed-client.js';
import { parseMasterKey, SecretBox } from '../src/auth/secret-box.js';
import { SenderDirectory } from '../src/auth/senders.js';
import { loadEnv } from '../src/config/env.js';
import { createPool } from '../src/db/pool.js';
import { RegistryRefresher } from '../src/db/registry-refresh.js';
import { SenderRepo } from '../src/db/sender-repo.js';
import { startStack, testTask, type Stack } from './support/stack.js';

const configSecret = randomBytes(24).toString('hex');

let stack: Stack;
t.before(async () => {
  stack = await startStack({
    tasks: [testTask('t1'), testTask('t2')],
    senders: [{ accessKeyId: 'cfg-sender', secrets: [configSecret], tasks: ['t1'], source: 'config' }],
  });
});
t.teardown(() => stack.close());

async function notify(accessKeyId: string, secret: string, key = `k-${randomBytes(4).toString('hex')}`) {
  return signedPost(`${stack.url}/sync?task=t1`, JSON.stringify({ key, size: 1 }), { accessKeyId, secret });
}

t.test('create: 201 with a generated secret, shown once; the intake accepts it at once', async (t) => {
  const res = await stack.admin('POST', '/admin/senders', { accessKeyId: 'lambda-a', tasks: ['t1'], description: 'S3 trigger' });
  t.equal(res.status, 201, JSON.stringify(res.body));
  t.equal(res.headers.get('cache-control'), 'no-store');
  t.equal(res.headers.get('location'), '/admin/senders/lambda-a');
  t.match(res.body, { accessKeyId: 'lambda-a', tasks: ['t1'], managedBy: 'api', disabled: false, description: 'S3 trigger', rotatedAt: null, previousSecretExpiresAt: null });
  t.match(res.body.secret, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  const accepted = await notify('lambda-a', res.body.secret);
  t.equal(accepted.status, 202, accepted.text);

  // Never shown again, and not stored in clear.
  const listed = await stack.admin('GET', '/admin/senders');
  t.notMatch(JSON.stringify(listed.body), res.body.secret);
  t.same(listed.body.senders.map((s: { accessKeyId: string; managedBy: string }) => [s.accessKeyId, s.managedBy]), [
    ['cfg-sender', 'config'],
    ['lambda-a', 'api'],
  ]);
  t.notOk('secret' in (await stack.admin('GET', '/admin/senders/lambda-a')).body);
  const { rows } = await stack.pool.query<{ secret_enc: Buffer }>(`SELECT secret_enc FROM bb_senders WHERE access_key_id = 'lambda-a'`);
  t.notOk(rows[0]!.secret_enc.includes(Buffer.from(res.body.secret)), 'ciphertext at rest');
  t.equal(new SecretBox(stack.masterKey!).open(rows[0]!.secret_enc, 'lambda-a'), res.body.secret, 'sealed with the master key');
  t.throws(() => new SecretBox(stack.masterKey!).open(rows[0]!.secret_enc, 'other-key'), 'bound to its access key id');

  const generated = await stack.admin('POST', '/admin/senders', { tasks: ['t1', 't2'] });
  t.equal(generated.status, 201);
  t.match(generated.body.accessKeyId, /^bb-[0-9a-f]{16}$/, 'access key generated when absent');
});

t.test('create: bad bodies and conflicts', async (t) => {
  const cases: [string, unknown, number, string, string?][] = [
    ['no tasks', { accessKeyId: 'x-1' }, 400, 'VALIDATION_FAILED', 'body.tasks'],
    ['tasks of the wrong type', { tasks: 't1' }, 400, 'VALIDATION_FAILED', 'body.tasks'],
    ['empty task list', { tasks: [] }, 400, 'VALIDATION_FAILED', 'body.tasks'],
    ['unknown task', { tasks: ['t1', 'nope'] }, 400, 'VALIDATION_FAILED', 'body.tasks[1]'],
    ['invalid access key', { accessKeyId: 'a b', tasks: ['t1'] }, 400, 'VALIDATION_FAILED', 'body.accessKeyId'],
    ['a secret supplied by the client', { tasks: ['t1'], secret: 'mine' }, 400, 'VALIDATION_FAILED', 'body.secret'],
    ['taken by a config sender', { accessKeyId: 'cfg-sender', tasks: ['t1'] }, 409, 'SENDER_EXISTS'],
    ['taken by an API sender', { accessKeyId: 'lambda-a', tasks: ['t1'] }, 409, 'SENDER_EXISTS'],
  ];
  for (const [name, body, status, code, field] of cases) {
    const res = await stack.admin('POST', '/admin/senders', body);
    t.equal(res.status, status, `${name}: status`);
    t.equal(res.body.error?.code, code, `${name}: code`);
    if (field) t.equal(res.body.error?.field, field, `${name}: field`);
  }
  const malformed = await stack.admin('POST', '/admin/senders', '{"tasks": [');
  t.equal(malformed.body.error.code, 'INVALID_JSON');
});

t.test('rotate: new secret works at once, the old one until the given time', async (t) => {
  const created = await stack.admin('POST', '/admin/senders', { accessKeyId: 'rot-1', tasks: ['t1'] });
  const oldSecret = created.body.secret as string;
  const until = new Date(Date.now() + 1500);
  const rotated = await stack.admin('POST', '/admin/senders/rot-1/rotate', { previousSecretValidUntil: until.toISOString() });
  t.equal(rotated.status, 200, JSON.stringify(rotated.body));
  t.equal(rotated.headers.get('cache-control'), 'no-store');
  t.not(rotated.body.secret, oldSecret);
  t.equal(rotated.body.previousSecretExpiresAt, until.toISOString());
  t.ok(rotated.body.rotatedAt);
  t.equal((await notify('rot-1', rotated.body.secret)).status, 202, 'new secret');
  t.equal((await notify('rot-1', oldSecret)).status, 202, 'old secret during the overlap');
  await new Promise((r) => setTimeout(r, until.getTime() - Date.now() + 100));
  const late = await notify('rot-1', oldSecret);
  t.equal(late.status, 401, 'old secret after its expiry');
  t.equal((late.body as { error: { code: string } }).error.code, 'SIGNATURE_INVALID');
  t.equal((await notify('rot-1', rotated.body.secret)).status, 202);
  t.equal((await stack.admin('GET', '/admin/senders/rot-1')).body.previousSecretExpiresAt, null, 'expired overlap not reported');

  // Default overlap: 24 hours. A past time revokes the old secret at once.
  const def = await stack.admin('POST', '/admin/senders/rot-1/rotate');
  t.ok(Math.abs(Date.parse(def.body.previousSecretExpiresAt) - (Date.now() + 24 * 3600_000)) < 60_000);
  const now = await stack.admin('POST', '/admin/senders/rot-1/rotate', { previousSecretValidUntil: new Date(Date.now() - 1000).toISOString() });
  t.equal(now.body.previousSecretExpiresAt, null);
  t.equal((await notify('rot-1', def.body.secret)).status, 401, 'revoked immediately');
  t.equal((await notify('rot-1', now.body.secret)).status, 202);

  const bad = await stack.admin('POST', '/admin/senders/rot-1/rotate', { previousSecretValidUntil: 'tomorrow' });
  t.equal(bad.status, 400);
  t.equal(bad.body.error.field, 'body.previousSecretValidUntil');
  const far = await stack.admin('POST', '/admin/senders/rot-1/rotate', { previousSecretValidUntil: new Date(Date.now() + 40 * 86400_000).toISOString() });
  t.equal(far.status, 400);
  t.equal(far.body.error.code, 'VALIDATION_FAILED');
  t.equal((await stack.admin('POST', '/admin/senders/nope/rotate')).status, 404);
});

t.test('disable, enable and delete', async (t) => {
  const created = await stack.admin('POST', '/admin/senders', { accessKeyId: 'dis-1', tasks: ['t1'] });
  const secret = created.body.secret as string;
  const disabled = await stack.admin('POST', '/admin/senders/dis-1/disable');
  t.equal(disabled.status, 200);
  t.equal(disabled.body.disabled, true);
  const refused = await notify('dis-1', secret);
  t.equal(refused.status, 401);
  t.equal((refused.body as { error: { code: string } }).error.code, 'UNKNOWN_ACCESS_KEY');
  t.ok((await stack.admin('GET', '/admin/senders')).body.senders.find((s: { accessKeyId: string; disabled: boolean }) => s.accessKeyId === 'dis-1').disabled, 'listed as disabled');
  t.equal((await stack.admin('POST', '/admin/senders/dis-1/enable')).body.disabled, false);
  t.equal((await notify('dis-1', secret)).status, 202, 'enabled again with the same secret');
  t.equal((await stack.admin('DELETE', '/admin/senders/dis-1')).status, 204);
  t.equal((await notify('dis-1', secret)).status, 401, 'deleted');
  t.equal((await stack.admin('GET', '/admin/senders/dis-1')).status, 404);
  for (const [method, path] of [
    ['DELETE', '/admin/senders/dis-1'],
    ['POST', '/admin/senders/dis-1/disable'],
    ['POST', '/admin/senders/dis-1/enable'],
  ] as const) {
    const res = await stack.admin(method, path);
    t.equal(res.status, 404, `${method} ${path}`);
    t.equal(res.body.error.code, 'NOT_FOUND');
  }
});

t.test('config-file senders are listed and read-only', async (t) => {
  const got = await stack.admin('GET', '/admin/senders/cfg-sender');
  t.same(got.body, {
    accessKeyId: 'cfg-sender',
    tasks: ['t1'],
    managedBy: 'config',
    disabled: false,
    description: null,
    createdAt: null,
    updatedAt: null,
    rotatedAt: null,
    previousSecretExpiresAt: null,
  });
  for (const [method, path] of [
    ['POST', '/admin/senders/cfg-sender/rotate'],
    ['POST', '/admin/senders/cfg-sender/disable'],
    ['DELETE', '/admin/senders/cfg-sender'],
  ] as const) {
    const res = await stack.admin(method, path);
    t.equal(res.status, 409, `${method} ${path}`);
    t.equal(res.body.error.code, 'MANAGED_BY_CONFIG');
  }
  t.equal((await notify('cfg-sender', configSecret)).status, 202, 'still works');
});

t.test('another process accepts an API sender after its refresh', async (t) => {
  const pool = createPool(stack.db.url, 2);
  const sendersB = new SenderDirectory();
  const repo = new SenderRepo(pool, new SecretBox(stack.masterKey!));
  const refresher = new RegistryRefresher(pool, { senders: () => sendersB.loadApiSenders(repo) }, { intervalMs: 100 });
  await refresher.start();
  t.teardown(async () => {
    await refresher.stop();
    await pool.end();
  });
  const created = await stack.admin('POST', '/admin/senders', { accessKeyId: 'multi-1', tasks: ['t1'] });
  const deadline = Date.now() + 5_000;
  while (!sendersB.secretsOf('multi-1') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.same(sendersB.secretsOf('multi-1'), [created.body.secret]);
  await stack.admin('POST', '/admin/senders/multi-1/disable');
  while (sendersB.secretsOf('multi-1') && Date.now() < deadline + 5_000) await new Promise((r) => setTimeout(r, 50));
  t.equal(sendersB.secretsOf('multi-1'), undefined, 'disable reaches it too');
  // A process with another master key cannot use the sender: skipped, not crashed.
  const wrongKey = new SenderRepo(pool, new SecretBox(randomBytes(32)));
  const errors: string[] = [];
  const log = { error: (_o: unknown, m: string) => errors.push(m), warn: () => {} } as unknown as import('pino').Logger;
  t.same((await wrongKey.loadForIntake(log)).map((s) => s.accessKeyId), []);
  t.ok(errors.length > 0 && /cannot decrypt/.test(errors[0]!));
});

t.test('without BB_MASTER_KEY: API senders are refused with a clear error, config senders work', async (t) => {
  const secret = randomBytes(24).toString('hex');
  const s = await startStack({
    tasks: [testTask('t1')],
    senders: [{ accessKeyId: 'cfg', secrets: [secret], tasks: ['t1'], source: 'config' }],
    admin: { masterKey: null },
  });
  t.teardown(() => s.close());
  const res = await s.admin('POST', '/admin/senders', { tasks: ['t1'] });
  t.equal(res.status, 503);
  t.equal(res.body.error.code, 'MASTER_KEY_REQUIRED');
  t.match(res.body.error.message, /BB_MASTER_KEY/);
  t.equal((await s.admin('GET', '/admin/senders')).status, 200, 'listing still works');
  const sent = await signedPost(`${s.url}/sync?task=t1`, JSON.stringify({ key: 'a', size: 1 }), { accessKeyId: 'cfg', secret });
  t.equal(sent.status, 202);
});

t.test('BB_MASTER_KEY: 32 bytes as base64, base64url or hex; anything else refused at start', async (t) => {
  const key = randomBytes(32);
  t.same(parseMasterKey(key.toString('base64')), key);
  t.same(parseMasterKey(key.toString('base64url')), key);
  t.same(parseMasterKey(key.toString('hex')), key);
  t.same(loadEnv({ BB_MASTER_KEY: key.toString('base64') }).masterKey, key);
  for (const bad of [randomBytes(16).toString('base64'), randomBytes(33).toString('hex'), 'not a key!', randomBytes(31).toString('hex')]) {
    let field: string | undefined;
    try {
      loadEnv({ BB_MASTER_KEY: bad });
    } catch (err) {
      field = (err as { field: string }).field;
    }
    t.equal(field, 'BB_MASTER_KEY', `refused: ${bad.length} chars`);
  }
  const box = new SecretBox(key);
  const sealed = box.seal('hello', 'ak');
  t.equal(box.open(sealed, 'ak'), 'hello');
  const tampered = Buffer.from(sealed);
  tampered[tampered.length - 1]! ^= 1;
  t.throws(() => box.open(tampered, 'ak'), 'tampering detected');
  t.not(box.seal('hello', 'ak').toString('hex'), sealed.toString('hex'), 'fresh IV each time');
});
