/**
 * The OpenAPI document: generated from the route schemas, committed under
 * openapi/ and kept current (this test fails when it is stale), valid OpenAPI 3,
 * complete (every operation has response schemas, errors included), served at
 * /openapi.json and /docs; and a typed client generated from the committed
 * document (openapi-typescript + openapi-fetch) drives the admin API.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import createClient from 'openapi-fetch';
import type { paths } from '../openapi/openapi.js';
import { renderOpenApiTypes } from '../scripts/openapi-types.mjs';
import { signedPost } from '../src/auth/signed-client.js';
import { PACKAGE_VERSION, renderOpenApiDocument } from '../src/http/openapi-doc.js';
import { startStack, testTask, type Stack } from './support/stack.js';

const committedJson = readFileSync(new URL('../openapi/openapi.json', import.meta.url), 'utf8');
const committedTypes = readFileSync(new URL('../openapi/openapi.d.ts', import.meta.url), 'utf8');
const committed = JSON.parse(committedJson) as {
  openapi: string;
  info: { version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};
interface Operation {
  operationId?: string;
  security?: unknown[];
  parameters?: { in: string; name: string }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}

const STALE = 'openapi/ is stale: run `node scripts/openapi.mjs` and commit openapi/openapi.json and openapi/openapi.d.ts';

t.test('the committed document is the one the routes generate', async (t) => {
  const generated = await renderOpenApiDocument();
  t.ok(generated === committedJson, STALE);
  t.equal(await renderOpenApiDocument(), generated, 'deterministic');
  t.equal(committed.info.version, PACKAGE_VERSION, 'version from package.json');
});

t.test('the committed TypeScript types are generated from the committed document', async (t) => {
  t.ok((await renderOpenApiTypes(committed)) === committedTypes, STALE);
});

t.test('the document is valid OpenAPI 3', async (t) => {
  t.equal(committed.openapi, '3.0.3');
  await t.resolves(SwaggerParser.validate(structuredClone(committed) as never));
});

t.test('every operation is documented: responses with schemas, errors, auth, parameters, bodies', async (t) => {
  const ids = new Set<string>();
  let operations = 0;
  for (const [path, methods] of Object.entries(committed.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      operations++;
      const name = `${method.toUpperCase()} ${path}`;
      if (op.operationId) {
        t.notOk(ids.has(op.operationId), `${name}: unique operationId`);
        ids.add(op.operationId);
      }
      const codes = Object.keys(op.responses);
      const success = codes.filter((c) => c.startsWith('2'));
      t.ok(success.length > 0, `${name}: a success response`);
      for (const code of success.filter((c) => c !== '204')) {
        const content = op.responses[code]!.content;
        t.ok(content && Object.values(content)[0]?.schema, `${name} ${code}: a response schema`);
      }
      for (const p of path.match(/\{[^}]+\}/g) ?? []) {
        t.ok(op.parameters?.some((x) => x.in === 'path' && `{${x.name}}` === p), `${name}: path parameter ${p}`);
      }
      if (path.startsWith('/admin/')) {
        t.same(op.security, [{ bearer: [] }], `${name}: bearer auth`);
        for (const code of ['401', '403', '503']) {
          t.same(op.responses[code]?.content?.['application/json']?.schema, { $ref: '#/components/schemas/ErrorResponse' }, `${name}: ${code} ErrorResponse`);
        }
        if (path.includes('{')) t.ok(op.responses['404'] || op.responses['400'], `${name}: documents an error for unknown ids`);
      }
      if ((method === 'post' || method === 'put') && ['/admin/tasks', '/admin/tasks/{id}', '/admin/senders', '/sync', '/v2/{project_id}/sync-tasks/{task_id}/events'].includes(path)) {
        t.ok(op.requestBody?.content['application/json']?.schema, `${name}: request body documented`);
      }
    }
  }
  t.ok(operations >= 25, `${operations} operations`);
  t.same(committed.paths['/admin/tasks']!.post!.requestBody!.content['application/json']!.schema, { $ref: '#/components/schemas/TaskInput' });
  const taskInput = committed.components.schemas.TaskInput as { properties: Record<string, unknown> };
  t.ok(taskInput.properties.source && taskInput.properties.options, 'the config task schema is the API body schema');
  const sync = committed.paths['/sync']!.post!.requestBody!.content['application/json']!.schema as { anyOf: unknown[] };
  t.ok(sync.anyOf.length >= 5, 'POST /sync body documented although parsed raw');
});

let stack: Stack;
t.before(async () => {
  stack = await startStack({ tasks: [testTask('from-config')] });
});
t.teardown(() => stack?.close());

t.test('served at /openapi.json (same document) and /docs', async (t) => {
  const res = await fetch(`${stack.url}/openapi.json`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /application\/json/);
  const served = (await res.json()) as typeof committed;
  // The test stack leaves out optional route groups (scans); what it serves matches the committed document.
  t.same(served.components, committed.components, 'same components');
  t.ok(Object.keys(served.paths).length >= 20);
  for (const [path, ops] of Object.entries(served.paths)) t.same(ops, committed.paths[path], `${path}: as committed`);
  const docs = await fetch(`${stack.url}/docs/`);
  t.equal(docs.status, 200);
  t.match(await docs.text(), /swagger-ui/i);
});

t.test('a typed client generated from the committed document drives the admin API', async (t) => {
  const token = await stack.token(['bb:read', 'bb:write']);
  const client = createClient<paths>({ baseUrl: stack.url, headers: { authorization: `Bearer ${token}` } });

  const created = await client.POST('/admin/tasks', {
    body: {
      id: 'typed-1',
      source: { provider: 's3', bucket: 'typed-src', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, prefixes: ['in/'] },
      destination: { provider: 's3', bucket: 'typed-dst', region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true },
      options: { compare: 'size' },
    },
  });
  t.equal(created.response.status, 201);
  const task = created.data!;
  t.equal(task.id, 'typed-1');
  t.equal(task.options.compare, 'size');
  t.equal(task.managedBy, 'api');

  const bad = await client.POST('/admin/tasks', {
    body: { id: 'typed-2', source: { provider: 's3', bucket: 'typed-src' }, destination: { provider: 's3', bucket: 'typed-src' } },
  });
  t.equal(bad.response.status, 400);
  t.equal(bad.error?.error.code, 'REPLICATION_LOOP');

  const sender = await client.POST('/admin/senders', { body: { tasks: ['typed-1'], description: 'typed client' } });
  t.equal(sender.response.status, 201);
  const { accessKeyId, secret } = sender.data!;
  t.ok(secret.length >= 43);

  const sent = await signedPost(`${stack.url}/sync?task=typed-1`, JSON.stringify({ key: 'in/typed.bin', size: 5 }), { accessKeyId, secret });
  t.equal(sent.status, 202, sent.text);

  const status = await client.GET('/admin/tasks/{id}/status', { params: { path: { id: 'typed-1' } } });
  t.equal(status.response.status, 200);
  t.equal(status.data!.jobs.queued, 1);
  t.equal(status.data!.objects.total, 0);
  t.ok(status.data!.lagSeconds >= 0);

  const object = await client.GET('/admin/tasks/{id}/objects/{key}', { params: { path: { id: 'typed-1', key: 'in/typed.bin' } } });
  t.equal(object.response.status, 200, 'the key with a slash is encoded as one path segment');
  t.equal(object.data!.job?.state, 'created');

  const retried = await client.POST('/admin/tasks/{id}/objects/{key}/retry', { params: { path: { id: 'typed-1', key: 'in/typed.bin' } } });
  t.same(retried.data, { queued: 0, duplicates: 1 });

  const ledger = await client.GET('/admin/intake', { params: { query: { sender: accessKeyId, limit: 10 } } });
  t.equal(ledger.data!.items.length, 1);
  t.equal(ledger.data!.items[0]!.taskId, 'typed-1');

  const tasks = await client.GET('/admin/tasks');
  t.same(tasks.data!.tasks.map((x) => [x.id, x.managedBy]), [
    ['from-config', 'config'],
    ['typed-1', 'api'],
  ]);
  const readOnly = await client.DELETE('/admin/tasks/{id}', { params: { path: { id: 'from-config' } } });
  t.equal(readOnly.response.status, 409);
  t.equal(readOnly.error?.error.code, 'MANAGED_BY_CONFIG');

  const paused = await client.POST('/admin/tasks/{id}/pause', { params: { path: { id: 'typed-1' } } });
  t.equal(paused.data!.paused, true);
  const rotated = await client.POST('/admin/senders/{accessKeyId}/rotate', {
    params: { path: { accessKeyId } },
    body: { previousSecretValidUntil: new Date(Date.now() + 60_000).toISOString() },
  });
  t.not(rotated.data!.secret, secret);
  const removed = await client.DELETE('/admin/senders/{accessKeyId}', { params: { path: { accessKeyId } } });
  t.equal(removed.response.status, 204);

  const anonymous = createClient<paths>({ baseUrl: stack.url });
  const denied = await anonymous.GET('/admin/tasks');
  t.equal(denied.response.status, 401);
  t.equal(denied.error?.error.code, 'UNAUTHENTICATED');
});
