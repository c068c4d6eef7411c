/**
 * The ready-to-deploy senders in examples/ carry their own copy of the signer.
 * These tests pin that each copy signs exactly like src/auth/sdk-hmac.ts, and that
 * each handler delivers a real event to a live intake (and fails loudly when it
 * cannot), so the examples cannot rot while the service evolves.
 */
import t from 'tap';
import fc from 'fast-check';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sign, verify } from '../src/auth/sdk-hmac.js';
import { parseNotification } from '../src/events/index.js';
import { handler as lambdaHandler, signRequest as lambdaSign } from '../examples/aws-lambda/index.mjs';
import { startStack, testTask, type Stack } from './support/stack.js';

const FC_DIR = fileURLToPath(new URL('../examples/aliyun-fc/', import.meta.url));
const secret = randomBytes(24).toString('hex');
const wrongSecret = randomBytes(24).toString('hex');
const FIXED_DATE = new Date('2024-05-01T12:34:56Z');

// One live intake for the handler tests; declared before any test so it is up before they run.
let stack: Stack;
t.before(async () => {
  stack = await startStack({
    tasks: [
      testTask('photos'),
      testTask('oss-docs', {
        source: {
          provider: 'oss',
          bucket: 'oss-docs-src',
          region: 'oss-cn-hangzhou',
          endpoint: 'http://127.0.0.1:9',
          credentials: { accessKeyIdEnv: 'EXAMPLES_OSS_AK', secretAccessKeyEnv: 'EXAMPLES_OSS_SK' },
        },
      }),
      testTask('archive'),
    ],
    // An OSS task must name credentials; no worker runs here, so they are never used.
    env: { ...process.env, EXAMPLES_OSS_AK: 'unused', EXAMPLES_OSS_SK: randomBytes(8).toString('hex') },
    senders: [
      { accessKeyId: 'lambda-1', secrets: [secret], tasks: ['photos', 'archive'], source: 'config' },
      { accessKeyId: 'fc-1', secrets: [secret], tasks: ['oss-docs', 'archive'], source: 'config' },
    ],
  });
});
// Unset when start-up failed: don't mask that error with a TypeError here.
t.teardown(() => (stack as Stack | undefined)?.close());

interface SignCase {
  method: string;
  url: string;
  body: string;
}

/** Hand-picked requests: plain, explicit task, OMS route, unicode path and query, odd escapes. */
const CASES: SignCase[] = [
  { method: 'POST', url: 'http://127.0.0.1:8080/sync', body: '{"Records":[]}' },
  { method: 'POST', url: 'https://bucketbridge.example.com/sync?task=photos', body: '{"key":"a b.txt","size":1}' },
  { method: 'POST', url: 'http://bb.internal:9000/v2/proj-1/sync-tasks/t_1/events', body: '{"object_keys":["a%2Fb.txt"]}' },
  { method: 'POST', url: 'http://127.0.0.1:8080/데이터/über bé/', body: '{"events":[{"k":"中文"}]}' },
  { method: 'POST', url: 'http://127.0.0.1:8080/sync?q=中文&a=2&a=1&b=x y&plus=a+b&tilde=~', body: '' },
  { method: 'POST', url: 'http://127.0.0.1:8080/a%2Fb/%7e%41%zz%/?=noKey&k&k2=&%E2%82%AC=%', body: '{}' },
  { method: 'put', url: 'http://[::1]:8443/sync?Z=1&z=1&_=0', body: '😀' },
];

/** What the server signs for the request a client sends to `url` (WHATWG serialisation, as fetch sends it). */
function serverSignature(c: SignCase, date = FIXED_DATE): string {
  const u = new URL(c.url);
  return sign(
    { method: c.method, path: u.pathname, query: u.search.replace(/^\?/, ''), headers: { host: u.host, 'content-type': 'application/json' }, body: c.body },
    { accessKeyId: 'sender-1', secret },
    { date },
  ).headers.Authorization as string;
}

// Generated requests: path segments and query pairs drawn from characters that
// stress the encoding rules (reserved, '%' escapes valid and broken, '+', space,
// multi-byte UTF-8). Segments start with 'x' so none is a '.'/'..' segment, which
// URL parsing would resolve away before either signer saw it.
const CHARS = ['a', 'Z', '0', '-', '_', '.', '~', '!', '$', "'", '(', '*', ',', ';', ':', '@', '+', ' ', '%', '%41', '%2F', '%zz', '%e2%82%ac', 'é', '中', '😀', '|', '^', '['];
const text = fc.array(fc.constantFrom(...CHARS), { maxLength: 6 }).map((a) => a.join(''));
const pathArb = fc.tuple(fc.array(text.map((s) => `x${s}`), { minLength: 1, maxLength: 4 }), fc.boolean()).map(([segs, slash]) => `/${segs.join('/')}${slash ? '/' : ''}`);
const queryArb = fc
  .array(fc.tuple(text, fc.option(text, { nil: undefined })), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join('&'));
const caseArb = fc.record({
  method: fc.constantFrom('POST', 'GET', 'put'),
  url: fc.tuple(pathArb, queryArb).map(([p, q]) => new URL(`http://127.0.0.1:8080${p}${q === '' ? '' : `?${q}`}`).href),
  body: fc.string({ unit: 'binary', maxLength: 40 }),
});

t.test('the Lambda signer signs exactly like src/auth/sdk-hmac.ts', async (t) => {
  for (const c of CASES) {
    const headers = lambdaSign({ method: c.method, url: c.url, body: c.body, accessKeyId: 'sender-1', secret, date: FIXED_DATE });
    t.equal(headers.Authorization, serverSignature(c), `${c.method} ${c.url}`);
    t.equal(headers['X-Sdk-Date'], '20240501T123456Z');
    t.equal(headers.Host, new URL(c.url).host);
  }
  fc.assert(
    fc.property(caseArb, (c) => lambdaSign({ ...c, accessKeyId: 'sender-1', secret, date: FIXED_DATE }).Authorization === serverSignature(c)),
    { numRuns: 300 },
  );
  t.pass('300 generated requests agree');
});

t.test('the Lambda signer\'s headers pass the server\'s verify()', async (t) => {
  const u = new URL('http://127.0.0.1:8080/sync?task=t1');
  const body = '{"key":"k","size":1}';
  const headers = lambdaSign({ url: u, body, accessKeyId: 'sender-1', secret, date: FIXED_DATE });
  const result = verify({ method: 'POST', path: u.pathname, query: 'task=t1', headers: { ...headers }, body }, (ak) => (ak === 'sender-1' ? [secret] : undefined), {
    now: FIXED_DATE,
  });
  t.equal(result.accessKeyId, 'sender-1');
});

// ---------------------------------------------------------------------------
// Python

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a python3 snippet with examples/aliyun-fc importable, a minimal env (no proxies) and `input` on stdin. */
function python(code: string, env: Record<string, string>, input: string | Buffer): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', code, FC_DIR], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1', PYTHONIOENCODING: 'utf-8', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve({ code: exitCode, stdout, stderr }));
    child.stdin.end(input);
  });
}

const PY_SIGN = `
import sys, json, datetime
sys.path.insert(0, sys.argv[1])
import index
cases = json.load(sys.stdin)
out = []
for c in cases:
    when = datetime.datetime.fromtimestamp(c["epoch"], datetime.timezone.utc)
    h = index.sign_request(c["method"], c["url"], c["body"].encode("utf-8"), c["accessKey"], c["secret"], when)
    out.append(h)
print(json.dumps(out))
`;

t.test('the Function Compute signer (index.py) signs exactly like src/auth/sdk-hmac.ts', async (t) => {
  // Python sends the URL as given, so it gets the ASCII (percent-encoded) form a client puts on the wire.
  const generated = fc.sample(caseArb, { numRuns: 300, seed: 42 });
  const cases = [...CASES.map((c) => ({ ...c, url: new URL(c.url).href })), ...generated];
  const input = cases.map((c) => ({ ...c, epoch: FIXED_DATE.getTime() / 1000, accessKey: 'sender-1', secret }));
  const res = await python(PY_SIGN, {}, JSON.stringify(input));
  t.equal(res.code, 0, res.stderr);
  const signed = JSON.parse(res.stdout) as { Authorization: string; 'X-Sdk-Date': string; Host: string }[];
  let agree = 0;
  cases.forEach((c, i) => {
    if (signed[i]?.Authorization === serverSignature(c)) agree++;
    else t.fail(`differs for ${c.method} ${c.url}`, { python: signed[i]?.Authorization, server: serverSignature(c) });
  });
  t.equal(agree, cases.length, `${cases.length} requests agree (${CASES.length} hand-picked, 300 generated)`);
  t.equal(signed[0]?.['X-Sdk-Date'], '20240501T123456Z');
  t.equal(signed[3]?.Host, '127.0.0.1:8080');
});

// ---------------------------------------------------------------------------
// Handlers against a live intake


function s3Event(bucket: string, encodedKey: string) {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventName: 'ObjectCreated:Put',
        s3: { bucket: { name: bucket }, object: { key: encodedKey, size: 6, eTag: '5a2a525d0ccf28ee9d2d6748ec0f3f0c', sequencer: '005F5F00497AE2D491' } },
      },
    ],
  };
}

function ossEvent(bucket: string, key: string) {
  return {
    events: [
      {
        eventName: 'ObjectCreated:PutObject',
        eventSource: 'acs:oss',
        eventTime: '2024-05-01T12:00:00.000Z',
        region: 'cn-hangzhou',
        oss: { bucket: { name: bucket }, object: { key, size: 6, eTag: '5A2A525D0CCF28EE9D2D6748EC0F3F0C', deltaSize: 6 } },
      },
    ],
  };
}

/** Run `fn` with the Lambda's environment set, restoring process.env afterwards. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, val] of Object.entries(v)) {
      if (val === undefined) delete process.env[k];
      else process.env[k] = val;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

function lambdaEnv(overrides: Record<string, string | undefined> = {}) {
  return { BB_SYNC_URL: `${stack.url}/sync`, BB_ACCESS_KEY: 'lambda-1', BB_SECRET: secret, BB_TASK: undefined, BB_TIMEOUT_MS: undefined, ...overrides };
}

async function jobsFor(taskId: string): Promise<string[]> {
  return (await stack.jobs()).filter((j) => j.taskId === taskId).map((j) => j.key);
}

t.test('Lambda handler: an S3 event is delivered and queued under its decoded key', async (t) => {
  const logs = t.capture(console, 'log');
  const answer = (await withEnv(lambdaEnv(), () => lambdaHandler(s3Event('photos-src', 'photos/a+b%C3%A9+%281%29.jpg')))) as { accepted: number };
  t.equal(answer.accepted, 1);
  t.same(await jobsFor('photos'), ['photos/a bé (1).jpg']);
  const logged = JSON.parse(String(logs()[0]?.args[0])) as { status: number; replayed: boolean };
  t.match(logged, { status: 202, replayed: false });
});

t.test('Lambda handler: BB_TASK routes every key to that task', async (t) => {
  t.capture(console, 'log');
  await withEnv(lambdaEnv({ BB_TASK: 'archive' }), () => lambdaHandler(s3Event('some-other-bucket', 'x/y.bin')));
  t.same(await jobsFor('archive'), ['x/y.bin']);
});

t.test('Lambda handler: a wrong secret rejects (so Lambda retries) and queues nothing', async (t) => {
  const before = await stack.jobCount();
  await t.rejects(
    withEnv(lambdaEnv({ BB_SECRET: wrongSecret }), () => lambdaHandler(s3Event('photos-src', 'evil.jpg'))),
    /HTTP 401 \(SIGNATURE_INVALID\).*photos-src\/evil\.jpg/,
  );
  t.equal(await stack.jobCount(), before);
  await t.rejects(withEnv(lambdaEnv({ BB_SECRET: undefined }), () => lambdaHandler(s3Event('photos-src', 'a'))), /BB_SECRET is not set/);
});

/** A stand-in intake answering every request with `respond`. */
async function stubIntake(respond: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(respond);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/sync`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

t.test('Lambda handler: a 200 replay is success, a 503 and a timeout are failures', async (t) => {
  const logs = t.capture(console, 'log');
  const replay = await stubIntake((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: 1, duplicates: 0, ignored: 0, jobs: [], replayed: true }));
  });
  t.teardown(() => replay.close());
  await withEnv(lambdaEnv({ BB_SYNC_URL: replay.url }), () => lambdaHandler(s3Event('photos-src', 'a')));
  t.match(JSON.parse(String(logs()[0]?.args[0])), { status: 200, replayed: true });

  const down = await stubIntake((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'DATABASE_UNAVAILABLE', message: 'try later' } }));
  });
  t.teardown(() => down.close());
  await t.rejects(withEnv(lambdaEnv({ BB_SYNC_URL: down.url }), () => lambdaHandler(s3Event('photos-src', 'a'))), /HTTP 503 \(DATABASE_UNAVAILABLE\)/);

  const hung = await stubIntake(() => {}); // never answers
  t.teardown(() => hung.close());
  await t.rejects(withEnv(lambdaEnv({ BB_SYNC_URL: hung.url, BB_TIMEOUT_MS: '200' }), () => lambdaHandler(s3Event('photos-src', 'a'))), {
    name: 'TimeoutError',
  });
});

const PY_HANDLER = `
import sys
sys.path.insert(0, sys.argv[1])
import index
print(index.handler(sys.stdin.buffer.read(), None))
`;

function fcEnv(overrides: Record<string, string> = {}): Record<string, string> {
  return { BB_SYNC_URL: `${stack.url}/sync`, BB_ACCESS_KEY: 'fc-1', BB_SECRET: secret, ...overrides };
}

t.test('Function Compute handler: an OSS event is delivered byte for byte and queued', async (t) => {
  const res = await python(PY_HANDLER, fcEnv(), Buffer.from(JSON.stringify(ossEvent('oss-docs-src', 'docs/report é 1.pdf'))));
  t.equal(res.code, 0, res.stderr);
  t.match(JSON.parse(res.stdout), { accepted: 1, format: 'oss' });
  t.same(await jobsFor('oss-docs'), ['docs/report é 1.pdf']);

  const routed = await python(PY_HANDLER, fcEnv({ BB_TASK: 'archive' }), JSON.stringify(ossEvent('elsewhere', 'z/ü.txt')));
  t.equal(routed.code, 0, routed.stderr);
  t.ok((await jobsFor('archive')).includes('z/ü.txt'), 'BB_TASK routes to that task');
});

t.test('Function Compute handler: a wrong secret exits non-zero and queues nothing', async (t) => {
  const before = await stack.jobCount();
  const res = await python(PY_HANDLER, fcEnv({ BB_SECRET: wrongSecret }), JSON.stringify(ossEvent('oss-docs-src', 'evil.pdf')));
  t.not(res.code, 0);
  t.match(res.stderr, /HTTP 401 \(SIGNATURE_INVALID\).*oss:\/\/oss-docs-src\/evil\.pdf/);
  t.notMatch(res.stderr, wrongSecret, 'the secret is not printed');
  t.equal(await stack.jobCount(), before);
});

t.test('the sample events shipped beside the senders parse as S3 and OSS notifications', async (t) => {
  const s3 = parseNotification(JSON.parse(readFileSync(new URL('../examples/aws-lambda/s3-event.json', import.meta.url), 'utf8')));
  t.equal(s3.format, 's3');
  t.match(s3.changes, [{ bucket: 'my-source-bucket', key: 'photos/summer 2024/beach.jpg', kind: 'created' }]);
  const oss = parseNotification(JSON.parse(readFileSync(new URL('../examples/aliyun-fc/oss-event.json', import.meta.url), 'utf8')));
  t.equal(oss.format, 'oss');
  t.match(oss.changes, [{ bucket: 'my-source-bucket', key: 'docs/report 2024.pdf', kind: 'created' }]);
});
