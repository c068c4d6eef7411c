/**
 * Admin API authentication and authorization: bearer JWTs verified with jose
 * (HS256 secret or a JWKS), exact status and code for every way a token can be
 * wrong, scopes per method, issuer/audience, the disabled mode, and the
 * `bucketbridge token` command that mints tokens.
 */
import t from 'tap';
import { createServer, type Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { jwtVerify } from 'jose';
import { mintAdminToken, scopesOf } from '../src/auth/admin-jwt.js';
import { command as tokenCmd, parseTtl, tokenCommand } from '../src/cli/token.js';
import { loadEnv } from '../src/config/env.js';
import { startStack, type Stack } from './support/stack.js';

let stack: Stack;
t.before(async () => {
  stack = await startStack();
});
t.teardown(() => stack.close());

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

async function get(token: string | null, path = '/admin/tasks', raw?: string) {
  const headers: Record<string, string> = {};
  if (raw !== undefined) headers.authorization = raw;
  else if (token !== null) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${stack.url}${path}`, { headers });
  return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } }, headers: res.headers };
}

t.test('a valid HS256 token with bb:read lists tasks', async (t) => {
  const res = await get(await stack.token(['bb:read']));
  t.equal(res.status, 200);
  t.same(res.body, { tasks: [] });
});

t.test('missing, malformed and forged tokens: 401 UNAUTHENTICATED', async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const payload = { scope: 'bb:read bb:write', iat: now, exp: now + 300, sub: 'mallory' };
  const otherKey = await mintAdminToken({ secret: randomBytes(32).toString('hex'), scopes: ['bb:read'], ttlSeconds: 300 });
  const good = await stack.token(['bb:read']);
  const [h, p] = good.split('.');
  const cases: [string, string | null, string | undefined][] = [
    ['no Authorization header', null, undefined],
    ['Basic scheme', null, 'Basic dXNlcjpwYXNz'],
    ['Bearer without a token', null, 'Bearer '],
    ['not a JWT', 'not-a-jwt', undefined],
    ['signed with another key', otherKey, undefined],
    ['alg none (unsigned)', `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`, undefined],
    ['alg none with the signature of a real token', `${b64({ alg: 'none', typ: 'JWT' })}.${p}.${good.split('.')[2]}`, undefined],
    ['payload swapped under a valid signature', `${h}.${b64({ ...payload, sub: 'admin' })}.${good.split('.')[2]}`, undefined],
    ['HS512 (not an accepted algorithm)', await new SignJWT(payload).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(stack.adminSecret!)), undefined],
    ['no exp claim', await new SignJWT({ scope: 'bb:read' }).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(stack.adminSecret!)), undefined],
  ];
  for (const [name, token, raw] of cases) {
    const res = await get(token, '/admin/tasks', raw);
    t.equal(res.status, 401, `${name}: status`);
    t.equal(res.body.error?.code, 'UNAUTHENTICATED', `${name}: code`);
    t.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/, `${name}: WWW-Authenticate`);
  }
});

t.test('an expired token: 401 TOKEN_EXPIRED', async (t) => {
  const expired = await mintAdminToken({ secret: stack.adminSecret!, scopes: ['bb:read'], ttlSeconds: 60, now: new Date(Date.now() - 3600_000) });
  const res = await get(expired);
  t.equal(res.status, 401);
  t.equal(res.body.error?.code, 'TOKEN_EXPIRED');
  // Expired AND signed with another key: the signature is checked first.
  const forgedExpired = await mintAdminToken({ secret: randomBytes(32).toString('hex'), scopes: ['bb:read'], ttlSeconds: 60, now: new Date(Date.now() - 3600_000) });
  t.equal((await get(forgedExpired)).body.error?.code, 'UNAUTHENTICATED');
});

t.test('scopes: bb:read for GET, bb:write for everything else, 403 INSUFFICIENT_SCOPE otherwise', async (t) => {
  const readOnly = await stack.token(['bb:read']);
  const writeOnly = await stack.token(['bb:write']);
  const none = await stack.token([]);
  const post = await stack.admin('POST', '/admin/tasks/none/pause', undefined, readOnly);
  t.equal(post.status, 403);
  t.equal(post.body.error.code, 'INSUFFICIENT_SCOPE');
  t.match(post.body.error.message, /bb:write/);
  const del = await stack.admin('DELETE', '/admin/senders/x', undefined, readOnly);
  t.equal(del.status, 403);
  const getWithWrite = await get(writeOnly);
  t.equal(getWithWrite.status, 403);
  t.equal(getWithWrite.body.error?.code, 'INSUFFICIENT_SCOPE');
  t.equal((await get(none)).status, 403);
  // With the right scope the same write reaches the handler (404: no such task).
  const ok = await stack.admin('POST', '/admin/tasks/none/pause', undefined, writeOnly);
  t.equal(ok.status, 404);
  t.equal(ok.body.error.code, 'NOT_FOUND');
});

t.test('scope claim forms: space-separated scope, scp array, scp string', async (t) => {
  const key = new TextEncoder().encode(stack.adminSecret!);
  const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime('5m').sign(key);
  t.equal((await get(await sign({ scp: ['bb:read'] }))).status, 200, 'scp array');
  t.equal((await get(await sign({ scp: 'bb:write bb:read' }))).status, 200, 'scp string');
  t.equal((await get(await sign({ scope: 'openid bb:read' }))).status, 200, 'scope string');
  t.equal((await get(await sign({ scope: 'bb:readx' }))).status, 403, 'no prefix matching');
  t.same(scopesOf({ scope: 'a  b', scp: ['c', 'a', 7] }).sort(), ['a', 'b', 'c']);
});

t.test('issuer and audience are checked when configured', async (t) => {
  const s = await startStack({ admin: { issuer: 'https://idp.example', audience: 'bucketbridge' } });
  t.teardown(() => s.close());
  t.equal((await s.admin('GET', '/admin/tasks')).status, 200, 'matching iss and aud');
  const wrongAud = await s.admin('GET', '/admin/tasks', undefined, await s.token(['bb:read'], { audience: 'other' }));
  t.equal(wrongAud.status, 401);
  t.equal(wrongAud.body.error.code, 'UNAUTHENTICATED');
  const wrongIss = await s.admin('GET', '/admin/tasks', undefined, await s.token(['bb:read'], { issuer: 'https://evil.example' }));
  t.equal(wrongIss.status, 401);
  const noIss = await s.admin('GET', '/admin/tasks', undefined, await mintAdminToken({ secret: s.adminSecret!, scopes: ['bb:read'], ttlSeconds: 60, audience: 'bucketbridge' }));
  t.equal(noIss.status, 401, 'issuer missing');
});

t.test('JWKS: tokens of the identity provider are verified with its published keys', async (t) => {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let jwksUp = true;
  const server: Server = createServer((req, res) => {
    if (!jwksUp) {
      res.writeHead(500).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`;
  const s = await startStack({ admin: { secret: null, jwksUrl, issuer: 'https://idp.example', audience: 'bb' } });
  t.teardown(() => s.close());
  const idpToken = (kid: string, claims: Record<string, unknown> = { scope: 'bb:read' }) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('https://idp.example').setAudience('bb').setIssuedAt().setExpirationTime('5m').sign(privateKey);
  t.equal((await s.admin('GET', '/admin/tasks', undefined, await idpToken('k1'))).status, 200, 'IdP token accepted');
  const unknownKid = await s.admin('GET', '/admin/tasks', undefined, await idpToken('k2'));
  t.equal(unknownKid.status, 401, 'unknown kid');
  t.equal(unknownKid.body.error.code, 'UNAUTHENTICATED');
  // Without BB_ADMIN_JWT_SECRET an HS256 token is not accepted, whatever it is signed with.
  const hs = await new SignJWT({ scope: 'bb:read' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).setIssuer('https://idp.example').setAudience('bb').setExpirationTime('5m').sign(new TextEncoder().encode(JSON.stringify(jwk)));
  t.equal((await s.admin('GET', '/admin/tasks', undefined, hs)).status, 401, 'HS256 refused when only a JWKS is configured');
  const otherPair = await generateKeyPair('ES256');
  const forged = await new SignJWT({ scope: 'bb:read' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://idp.example').setAudience('bb').setExpirationTime('5m').sign(otherPair.privateKey);
  t.equal((await s.admin('GET', '/admin/tasks', undefined, forged)).status, 401, 'signed by another key with the same kid');
  const expired = await new SignJWT({ scope: 'bb:read' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://idp.example').setAudience('bb').setExpirationTime(Math.floor(Date.now() / 1000) - 600).sign(privateKey);
  t.equal((await s.admin('GET', '/admin/tasks', undefined, expired)).body.error.code, 'TOKEN_EXPIRED');
  // The identity provider unreachable and its keys not cached: 503, so the caller retries.
  jwksUp = false;
  const s2 = await startStack({ admin: { secret: null, jwksUrl, issuer: 'https://idp.example', audience: 'bb' } });
  t.teardown(() => s2.close());
  const down = await s2.admin('GET', '/admin/tasks', undefined, await idpToken('k1'));
  t.equal(down.status, 503);
  t.equal(down.body.error.code, 'AUTH_UNAVAILABLE');
});

t.test('neither a secret nor a JWKS: every admin call is 503 ADMIN_DISABLED', async (t) => {
  const s = await startStack({ admin: { secret: null } });
  t.teardown(() => s.close());
  const token = await mintAdminToken({ secret: randomBytes(32).toString('hex'), scopes: ['bb:read', 'bb:write'], ttlSeconds: 60 });
  for (const [method, path] of [
    ['GET', '/admin/tasks'],
    ['POST', '/admin/tasks'],
    ['GET', '/admin/senders'],
    ['GET', '/admin/intake'],
  ] as const) {
    const res = await s.admin(method, path, undefined, token);
    t.equal(res.status, 503, `${method} ${path}`);
    t.equal(res.body.error.code, 'ADMIN_DISABLED');
  }
  const anon = await s.admin('GET', '/admin/tasks', undefined, null);
  t.equal(anon.body.error.code, 'ADMIN_DISABLED');
  // The rest of the service is unaffected.
  t.equal((await fetch(`${s.url}/healthz`)).status, 200);
});

t.test('env: a short BB_ADMIN_JWT_SECRET is refused at start', async (t) => {
  const err = (() => {
    try {
      loadEnv({ BB_ADMIN_JWT_SECRET: 'short' });
    } catch (e) {
      return e as { field: string };
    }
  })();
  t.equal(err?.field, 'BB_ADMIN_JWT_SECRET');
  t.equal(loadEnv({ BB_ADMIN_JWT_SECRET: 'x'.repeat(32) }).adminJwtSecret, 'x'.repeat(32));
});

function captureIo(argv: string[], env: NodeJS.ProcessEnv) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => (out += c.toString()));
  stderr.on('data', (c: Buffer) => (err += c.toString()));
  return { io: { argv, env, stdin: new PassThrough(), stdout, stderr }, out: () => out, err: () => err };
}

t.test('bucketbridge token mints a token the server accepts, with the requested scopes and lifetime', async (t) => {
  const env = { BB_ADMIN_JWT_SECRET: stack.adminSecret! };
  const c = captureIo(['--scope', 'bb:read', '--ttl', '10m', '--subject', 'ops-alice'], env);
  t.equal(await tokenCmd.run(c.io), 0);
  const token = c.out().trim();
  t.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'only the token on stdout');
  const { payload } = await jwtVerify(token, new TextEncoder().encode(stack.adminSecret!));
  t.equal(payload.scope, 'bb:read');
  t.equal(payload.sub, 'ops-alice');
  t.equal(payload.exp! - payload.iat!, 600);
  t.equal((await get(token)).status, 200, 'accepted by the server');
  t.equal((await stack.admin('POST', '/admin/tasks/x/pause', undefined, token)).status, 403, 'bb:read cannot write');

  const both = captureIo(['--scope', 'bb:read bb:write'], env);
  await tokenCmd.run(both.io);
  const p2 = (await jwtVerify(both.out().trim(), new TextEncoder().encode(stack.adminSecret!))).payload;
  t.equal(p2.scope, 'bb:read bb:write');
  t.equal(p2.exp! - p2.iat!, 3600, 'default lifetime 1h');

  const help = captureIo(['--help'], {});
  t.equal(await tokenCmd.run(help.io), 0);
  t.match(help.out(), /Usage: bucketbridge token/);
});

t.test('bucketbridge token: wrong invocations exit 2 with a message', async (t) => {
  const secret = stack.adminSecret!;
  await t.rejects(tokenCmd.run(captureIo(['--scope', 'bb:admin'], { BB_ADMIN_JWT_SECRET: secret }).io), /unknown scope "bb:admin"/);
  await t.rejects(tokenCmd.run(captureIo([], {}).io), /BB_ADMIN_JWT_SECRET is not set/);
  await t.rejects(tokenCmd.run(captureIo(['--ttl', 'soon'], { BB_ADMIN_JWT_SECRET: secret }).io), /--ttl/);
  await t.rejects(tokenCmd.run(captureIo(['--bogus'], { BB_ADMIN_JWT_SECRET: secret }).io), /bogus/);
  t.equal(parseTtl('90s'), 90);
  t.equal(parseTtl('2h'), 7200);
  t.equal(parseTtl('7d'), 604800);
  t.throws(() => parseTtl('31d'));
  // The standalone form: exit code 2, message on stderr.
  const saved = process.env.BB_ADMIN_JWT_SECRET;
  const write = process.stderr.write;
  let stderr = '';
  process.env.BB_ADMIN_JWT_SECRET = secret;
  process.stderr.write = ((chunk: string) => ((stderr += chunk), true)) as typeof process.stderr.write;
  try {
    t.equal(await tokenCommand(['--scope', 'nope']), 2);
  } finally {
    process.stderr.write = write;
    if (saved === undefined) delete process.env.BB_ADMIN_JWT_SECRET;
    else process.env.BB_ADMIN_JWT_SECRET = saved;
  }
  t.match(stderr, /unknown scope "nope"/);
});

t.test('mintAdminToken refuses an empty secret and a non-positive lifetime', async (t) => {
  await t.rejects(mintAdminToken({ secret: '', scopes: ['bb:read'], ttlSeconds: 60 }));
  await t.rejects(mintAdminToken({ secret: 'x'.repeat(32), scopes: ['bb:read'], ttlSeconds: 0 }));
});
