/**
 * Hostile input against the live service (the real process, `node dist/main.js`):
 * a corpus of more than 1,000 requests generated from a fixed seed — malformed
 * and truncated JSON, deep nesting, huge arrays, wrong types, invalid UTF-8,
 * oversize bodies and headers, signature edge cases (wrong case, duplicated
 * headers, SignedHeaders that leave out what must be signed, skewed and
 * impossible dates, other bodies, replays), path tricks on the OMS route and
 * plain HTTP protocol junk. Requests are written byte for byte on a TCP socket
 * (node:net), so invalid bytes, duplicated headers and oversize headers reach
 * the server exactly as generated.
 *
 * Every answer must be a 4xx with the API's one error shape
 * `{"error":{"code","message"}}` and a code from the documented list; no 5xx,
 * no crash, and nothing queued. The one deliberate exception is a replay of a
 * request that was accepted: it gets the first answer again (200, replayed),
 * and queues nothing new. RSS of the service is read from /proc before and
 * after two passes of the corpus.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import pg from 'pg';
import { formatSdkDate, sign } from '../src/auth/sdk-hmac.js';
import { createTestDatabase, type TestDatabase } from './support/postgres.js';
import { startService, type ServiceProcess } from './support/service.js';

const SEED = 0xb0c4e7;
const ACCESS_KEY = 'fuzz-sender';
const SECRET = randomBytes(24).toString('hex');
const OTHER_KEY = 'fuzz-other';
const OTHER_SECRET = randomBytes(24).toString('hex');
const MIB = 1024 * 1024;
/** Old-space cap of the service under test (its normal peak here is ~130 MiB of live heap). */
const HEAP_CAP_MB = 256;

/** Codes the intake and the HTTP layer may answer with (README: errors). */
const KNOWN_CODES = new Set([
  'SIGNATURE_INVALID',
  'REQUEST_EXPIRED',
  'UNKNOWN_ACCESS_KEY',
  'INVALID_JSON',
  'UNSUPPORTED_FORMAT',
  'NO_EVENTS',
  'INVALID_KEY',
  'TOO_MANY_KEYS',
  'TASK_REQUIRED',
  'TASK_FORBIDDEN',
  'TASK_NOT_FOUND',
  'BODY_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'NOT_FOUND',
  'VALIDATION_FAILED',
  'DUPLICATE_HEADER',
  'BAD_REQUEST',
  'BAD_URL',
  'URI_TOO_LONG',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'EXPECTATION_FAILED',
]);

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const rand = mulberry32(SEED);
const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;

// ---------------------------------------------------------------------------------------------
// Raw requests

type HeaderList = [string, string | Buffer][];

interface Case {
  category: string;
  name: string;
  bytes: Buffer;
  /** 'error' (default): a 4xx in our shape. 'replay': 200 with replayed=true. 'accepted': the seed of a replay (202). 'none': the client hangs up, no answer expected. */
  expect?: 'error' | 'replay' | 'accepted' | 'none';
  /** Only for 'none': bytes written before the socket is destroyed. */
}

let HOST = '127.0.0.1:0';

function requestBytes(method: string, target: string | Buffer, headers: HeaderList, body: Buffer = Buffer.alloc(0), version = 'HTTP/1.1'): Buffer {
  const lines: Buffer[] = [Buffer.concat([Buffer.from(`${method} `), Buffer.isBuffer(target) ? target : Buffer.from(target, 'latin1'), Buffer.from(` ${version}\r\n`)])];
  for (const [name, value] of headers) lines.push(Buffer.concat([Buffer.from(`${name}: `, 'latin1'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'latin1'), Buffer.from('\r\n')]));
  lines.push(Buffer.from('\r\n'));
  return Buffer.concat([...lines, body]);
}

interface SignedOptions {
  method?: string;
  /** Raw path as sent (percent-encoding kept); also what is signed unless signPath is given. */
  path?: string;
  query?: string;
  signPath?: string;
  date?: Date;
  secret?: string;
  accessKeyId?: string;
  contentType?: string | null;
  /** Edit the headers after signing (order kept). */
  edit?: (headers: HeaderList) => HeaderList;
  /** Signed body differs from the one sent. */
  signedBody?: Buffer;
  contentSha256?: boolean;
  signedHeaders?: string[];
}

/** A request signed with SDK-HMAC-SHA256 as a real sender would, then optionally damaged. */
function signedRequest(body: Buffer | string, o: SignedOptions = {}): Buffer {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const method = o.method ?? 'POST';
  const path = o.path ?? '/sync';
  const query = o.query ?? '';
  const base: Record<string, string> = { host: HOST };
  if (o.contentType !== null) base['content-type'] = o.contentType ?? 'application/json';
  const signed = sign(
    { method, path: o.signPath ?? path, query, headers: base, body: o.signedBody ?? buf },
    { accessKeyId: o.accessKeyId ?? ACCESS_KEY, secret: o.secret ?? SECRET },
    { date: o.date ?? new Date(), contentSha256: o.contentSha256, signedHeaders: o.signedHeaders },
  );
  let headers: HeaderList = [['Host', HOST]];
  if (base['content-type'] !== undefined) headers.push(['Content-Type', base['content-type']]);
  for (const [k, v] of Object.entries(signed.headers)) headers.push([k, v]);
  headers.push(['Content-Length', String(buf.length)], ['Connection', 'close']);
  if (o.edit) headers = o.edit(headers);
  return requestBytes(method, query ? `${path}?${query}` : path, headers, buf);
}

function unsignedRequest(method: string, target: string | Buffer, body: Buffer | string = Buffer.alloc(0), extra: HeaderList = []): Buffer {
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  return requestBytes(method, target, [['Host', HOST], ['Content-Type', 'application/json'], ['Content-Length', String(buf.length)], ['Connection', 'close'], ...extra], buf);
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Parse one HTTP/1.1 response from `data`; undefined until it is complete. */
function parseResponse(data: Buffer, closed: boolean): Answer | undefined {
  // Skip interim answers (100 Continue): the final one follows.
  while (/^HTTP\/1\.[01] 1\d\d /.test(data.subarray(0, 16).toString('latin1'))) {
    const interim = data.indexOf('\r\n\r\n');
    if (interim === -1) return undefined;
    data = data.subarray(interim + 4);
  }
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const head = data.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? '')?.[1] ?? NaN);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = data.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    return rest.length >= n ? { status, headers, body: rest.subarray(0, n) } : undefined;
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const nl = rest.indexOf('\r\n', at);
      if (nl === -1) return undefined;
      const size = parseInt(rest.subarray(at, nl).toString('latin1'), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(chunks) };
      if (rest.length < nl + 2 + size + 2) return undefined;
      chunks.push(rest.subarray(nl + 2, nl + 2 + size));
      at = nl + 2 + size + 2;
    }
  }
  return closed ? { status, headers, body: rest } : undefined;
}

let PORT = 0;

/** Write the bytes, read one response. Resolves undefined when the server closed without answering. */
function exchange(bytes: Buffer, options: { hangUpAfter?: number; timeoutMs?: number } = {}): Promise<Answer | undefined> {
  return new Promise((resolve) => {
    const socket = connect(PORT, '127.0.0.1');
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (a: Answer | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(a);
    };
    const timer = setTimeout(() => finish(parseResponse(data, true)), options.timeoutMs ?? 15_000);
    socket.on('data', (c: Buffer) => {
      data = Buffer.concat([data, c]);
      const a = parseResponse(data, false);
      if (a) finish(a);
    });
    socket.on('error', () => finish(parseResponse(data, true)));
    socket.on('close', () => finish(parseResponse(data, true)));
    socket.on('connect', () => {
      if (options.hangUpAfter !== undefined) {
        socket.write(bytes.subarray(0, options.hangUpAfter), () => setTimeout(() => finish(undefined), 50));
        return;
      }
      // A server that refuses a large request early (413, 431) closes without reading the rest, and the
      // reset that unread bytes cause can take its answer with it: send the first 32 KiB, give the
      // answer time to arrive, and send the rest only if there is none yet.
      const FIRST = 32 * 1024;
      if (bytes.length <= FIRST) {
        socket.write(bytes, () => {});
        return;
      }
      socket.write(bytes.subarray(0, FIRST), () => {
        setTimeout(() => {
          if (!settled && !socket.destroyed) socket.write(bytes.subarray(FIRST), () => {});
        }, 250);
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The corpus

const BUCKET = 'fz-src';

function s3Event(key = `in/${int(0, 1e9)}.bin`): Record<string, unknown> {
  return {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        eventName: 'ObjectCreated:Put',
        s3: { bucket: { name: BUCKET }, object: { key: encodeURIComponent(key).replace(/%2F/g, '/'), size: 10, eTag: 'abc', sequencer: '0A' } },
      },
    ],
  };
}

function ossEvent(key = `in/${int(0, 1e9)}.bin`): Record<string, unknown> {
  return {
    events: [
      {
        eventName: 'ObjectCreated:PutObject',
        eventSource: 'acs:oss',
        eventTime: '2024-01-01T00:00:00.000Z',
        region: 'cn-hangzhou',
        oss: { bucket: { name: BUCKET }, object: { key, size: 10, eTag: 'ABC', deltaSize: 10 } },
      },
    ],
  };
}

function eventBridgeEvent(key = `in/${int(0, 1e9)}.bin`): Record<string, unknown> {
  return { 'detail-type': 'Object Created', source: 'aws.s3', detail: { bucket: { name: BUCKET }, object: { key, size: 10, etag: 'abc', sequencer: '0A' } } };
}

const OMS_PATH = '/v2/proj-1/sync-tasks/fz/events';
const validBodies = (): { path: string; body: Record<string, unknown> | unknown[] }[] => [
  { path: '/sync', body: s3Event() },
  { path: '/sync', body: ossEvent() },
  { path: '/sync', body: eventBridgeEvent() },
  { path: '/sync?task=fz', body: { key: `in/${int(0, 1e9)}.bin`, size: 3 } },
  { path: '/sync?task=fz', body: [{ key: `in/${int(0, 1e9)}.bin`, size: 3 }] },
  { path: OMS_PATH, body: { object_keys: [`in%2F${int(0, 1e9)}.bin`] } },
];

function splitPath(p: string): { path: string; query: string } {
  const q = p.indexOf('?');
  return q === -1 ? { path: p, query: '' } : { path: p.slice(0, q), query: p.slice(q + 1) };
}

function signedJson(body: Buffer | string, at: string, o: SignedOptions = {}): Buffer {
  return signedRequest(body, { ...splitPath(at), ...o });
}

function malformedJson(): Case[] {
  const fixed = [
    "{'Records': []}",
    '{"Records": [,]}',
    '{Records: []}',
    '{"a":1,}',
    '[1,2,,3]',
    'NaN',
    'undefined',
    '{"a": Infinity}',
    '{"a": 01}',
    '/*c*/{}',
    '{"a":"\u0001"}',
    '{"a":"\\u12"}',
    '{"a":"\\x41"}',
    '\uFEFF{"key":"a"}',
    '{"key":"a"}}',
    '{"key":"a"} {"key":"b"}',
    '{"key" "a"}',
    '{"key":tru}',
    '{"key":nul}',
    '{"a":.5}',
    '{"a":-}',
    '{"a":1e}',
    '"unterminated',
    '{"object_keys":["a"]',
    ')]}\'\n{"key":"a"}',
    '\u0000',
    ' ',
    '{"Records":[{"s3":{"object":{"key":"a"}}}]}garbage',
  ];
  const out: Case[] = fixed.map((s, i) => ({ category: 'malformed JSON', name: `fixed ${i}`, bytes: signedJson(s, pick(['/sync', OMS_PATH])) }));
  const alphabet = '{}[]":,.-+eE0123456789abcdefnulltrus \\\t\n';
  while (out.length < 150) {
    let s = '';
    const n = int(1, 400);
    for (let i = 0; i < n; i++) s += alphabet[int(0, alphabet.length - 1)];
    out.push({ category: 'malformed JSON', name: `random ${out.length}`, bytes: signedJson(s, pick(['/sync', OMS_PATH, '/sync?task=fz'])) });
  }
  return out;
}

function truncatedJson(): Case[] {
  const out: Case[] = [];
  while (out.length < 150) {
    const { path, body } = pick(validBodies());
    const text = JSON.stringify(body);
    const cut = int(0, text.length - 1);
    out.push({ category: 'truncated JSON', name: `${path} cut at ${cut}/${text.length}`, bytes: signedJson(text.slice(0, cut), path) });
  }
  return out;
}

function deepNesting(): Case[] {
  const out: Case[] = [];
  const depths = [64, 1_000, 10_000, 100_000, 300_000];
  for (const d of depths) {
    const arrays = '['.repeat(d) + ']'.repeat(d);
    const objects = '{"a":'.repeat(Math.min(d, 150_000)) + '1' + '}'.repeat(Math.min(d, 150_000));
    const shapes: [string, string, string][] = [
      ['arrays', arrays, '/sync'],
      ['objects', objects, '/sync'],
      ['unclosed arrays', '['.repeat(d), '/sync'],
      ['unclosed objects', '{"a":'.repeat(Math.min(d, 150_000)), '/sync'],
      ['in Records', `{"Records":${arrays}}`, '/sync'],
      ['in Records[0]', `{"Records":[${arrays}]}`, '/sync'],
      ['as the S3 key', `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"${BUCKET}"},"object":{"key":${objects}}}}]}`, '/sync'],
      ['as an OSS event', `{"events":[${objects}]}`, '/sync'],
      ['in object_keys', `{"object_keys":${arrays}}`, OMS_PATH],
      ['as an OMS key', `{"object_keys":[${arrays}]}`, OMS_PATH],
      ['as the DTH key', `{"key":${objects}}`, '/sync?task=fz'],
      ['as the SNS Message', `{"Type":"Notification","Message":${JSON.stringify(arrays.slice(0, 200_000))}}`, '/sync'],
    ];
    for (const [name, text, path] of shapes) out.push({ category: 'deep nesting', name: `${name}, depth ${d}`, bytes: signedJson(text, path) });
  }
  return out;
}

function hugeArrays(): Case[] {
  const out: Case[] = [];
  const record = JSON.stringify((s3Event() as { Records: unknown[] }).Records[0]);
  for (const n of [1_001, 2_000, 5_000, 7_000]) {
    out.push({ category: 'huge arrays', name: `${n} S3 records`, bytes: signedJson(`{"Records":[${Array(n).fill(record).join(',')}]}`, '/sync') });
  }
  for (const n of [1_001, 10_000, 100_000, 200_000]) {
    out.push({ category: 'huge arrays', name: `${n} OMS keys`, bytes: signedJson(`{"object_keys":[${Array(n).fill('"a"').join(',')}]}`, OMS_PATH) });
    out.push({ category: 'huge arrays', name: `${n} OMS keys via /sync`, bytes: signedJson(`{"object_keys":[${Array(n).fill('"a"').join(',')}]}`, '/sync?task=fz') });
  }
  for (const n of [1_001, 50_000, 250_000]) {
    out.push({ category: 'huge arrays', name: `${n} nulls as Records`, bytes: signedJson(`{"Records":[${Array(n).fill('null').join(',')}]}`, '/sync') });
    out.push({ category: 'huge arrays', name: `${n} zeros as OSS events`, bytes: signedJson(`{"events":[${Array(n).fill('0').join(',')}]}`, '/sync') });
    out.push({ category: 'huge arrays', name: `${n} empty objects as a DTH list`, bytes: signedJson(`[${Array(n).fill('{}').join(',')}]`, '/sync?task=fz') });
    out.push({ category: 'huge arrays', name: `${n} empty arrays as OMS keys`, bytes: signedJson(`{"object_keys":[${Array(n).fill('[]').join(',')}]}`, OMS_PATH) });
  }
  while (out.length < 50) {
    const n = int(1_001, 60_000);
    const item = pick(['1', 'true', '"k"', '{"key":"k"}', '[1]']);
    const [shape, path] = pick([
      ['{"object_keys":[%]}', OMS_PATH],
      ['[%]', '/sync?task=fz'],
      ['{"Records":[%]}', '/sync'],
      ['{"events":[%]}', '/sync'],
    ] as const);
    out.push({ category: 'huge arrays', name: `${n} × ${item} in ${shape}`, bytes: signedJson(shape.replace('%', Array(n).fill(item).join(',')), path) });
  }
  return out;
}

const WRONG_VALUES: readonly unknown[] = [null, true, false, 0, -1, 1.5, 1e308, [], [null], [1, 2], {}, { a: 1 }];
const WRONG_STRINGS_OR_OBJECTS: readonly unknown[] = [...WRONG_VALUES, 'text', ''];

function setAt(obj: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(obj) as Record<string | number, unknown>;
  let at: Record<string | number, unknown> = copy;
  for (const p of path.slice(0, -1)) at = at[p] as Record<string | number, unknown>;
  at[path[path.length - 1]!] = value;
  return copy;
}

function wrongTypes(): Case[] {
  // Fields that decide what is replicated, with values of a type they can never have.
  const targets: { name: string; body: () => unknown; path: (string | number)[]; at: string; values: readonly unknown[] }[] = [
    { name: 'Records', body: s3Event, path: ['Records'], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS.filter((v) => !Array.isArray(v) || v.length > 0) },
    { name: 'Records[0]', body: s3Event, path: ['Records', 0], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS },
    { name: 'Records[0].s3', body: s3Event, path: ['Records', 0, 's3'], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS },
    { name: 'Records[0].s3.object', body: s3Event, path: ['Records', 0, 's3', 'object'], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS },
    { name: 'Records[0].s3.object.key', body: s3Event, path: ['Records', 0, 's3', 'object', 'key'], at: '/sync', values: [...WRONG_VALUES, ''] },
    { name: 'Records[0].s3.bucket', body: s3Event, path: ['Records', 0, 's3', 'bucket'], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS.filter((v) => !(typeof v === 'object' && v !== null && !Array.isArray(v))) },
    { name: 'events', body: ossEvent, path: ['events'], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS.filter((v) => !Array.isArray(v) || v.length > 0) },
    { name: 'events[0].oss.object.key', body: ossEvent, path: ['events', 0, 'oss', 'object', 'key'], at: '/sync', values: [...WRONG_VALUES, ''] },
    { name: 'events[0].oss', body: ossEvent, path: ['events', 0, 'oss'], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS },
    { name: 'detail', body: eventBridgeEvent, path: ['detail'], at: '/sync', values: WRONG_STRINGS_OR_OBJECTS },
    { name: 'detail.object.key', body: eventBridgeEvent, path: ['detail', 'object', 'key'], at: '/sync', values: [...WRONG_VALUES, ''] },
    { name: 'object_keys', body: () => ({ object_keys: ['a'] }), path: ['object_keys'], at: OMS_PATH, values: WRONG_STRINGS_OR_OBJECTS.filter((v) => !Array.isArray(v) || v.length > 0) },
    { name: 'object_keys[0]', body: () => ({ object_keys: ['a'] }), path: ['object_keys', 0], at: OMS_PATH, values: [...WRONG_VALUES, ''] },
    { name: 'key (DTH)', body: () => ({ key: 'a', size: 1 }), path: ['key'], at: '/sync?task=fz', values: [...WRONG_VALUES, ''] },
    { name: 'Message (SNS)', body: () => ({ Type: 'Notification', Message: JSON.stringify(s3Event()) }), path: ['Message'], at: '/sync', values: [...WRONG_VALUES, 'not json', '{}', '[]'] },
  ];
  const out: Case[] = [];
  for (const target of targets) {
    for (const v of target.values) {
      out.push({ category: 'wrong types', name: `${target.name} = ${JSON.stringify(v)}`, bytes: signedJson(JSON.stringify(setAt(target.body(), target.path, v)), target.at) });
    }
  }
  return out;
}

const INVALID_UTF8: readonly Buffer[] = [
  Buffer.from([0xff]),
  Buffer.from([0xfe, 0xff]),
  Buffer.from([0xc0, 0x80]), // overlong NUL
  Buffer.from([0xc1, 0xbf]), // overlong
  Buffer.from([0xe0, 0x80, 0xaf]), // overlong '/'
  Buffer.from([0xed, 0xa0, 0x80]), // UTF-16 surrogate
  Buffer.from([0xe2, 0x82]), // truncated 3-byte sequence
  Buffer.from([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
  Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80]), // 5-byte form
  Buffer.from([0x80]), // lone continuation byte
];

function invalidUtf8(): Case[] {
  const out: Case[] = [];
  const templates: [string, string, string][] = [
    ['S3 key', JSON.stringify(s3Event('in/XX.bin')), '/sync'],
    ['OSS key', JSON.stringify(ossEvent('in/XX.bin')), '/sync'],
    ['EventBridge key', JSON.stringify(eventBridgeEvent('in/XX.bin')), '/sync'],
    ['DTH key', '{"key":"in/XX.bin","size":1}', '/sync?task=fz'],
    ['OMS key', '{"object_keys":["in/XX.bin"]}', OMS_PATH],
    ['bucket name', JSON.stringify(s3Event('in/a.bin')).replace(BUCKET, `${BUCKET}XX`), '/sync'],
    ['eventName', JSON.stringify(ossEvent('in/a.bin')).replace('PutObject', 'PutXXObject'), '/sync'],
  ];
  for (const [name, text, path] of templates) {
    for (const bad of INVALID_UTF8) {
      const [before, after] = text.split('XX') as [string, string];
      const body = Buffer.concat([Buffer.from(before), bad, Buffer.from(after)]);
      out.push({ category: 'invalid UTF-8', name: `${name} with ${bad.toString('hex')}`, bytes: signedJson(body, path) });
    }
  }
  // Outside strings, in the path and in header values.
  for (const bad of INVALID_UTF8) {
    out.push({ category: 'invalid UTF-8', name: `bare ${bad.toString('hex')} before the JSON`, bytes: signedJson(Buffer.concat([bad, Buffer.from('{"key":"a"}')]), '/sync?task=fz') });
    out.push({ category: 'invalid UTF-8', name: `${bad.toString('hex')} in the OMS path`, bytes: unsignedRequest('POST', Buffer.concat([Buffer.from('/v2/p/sync-tasks/'), bad, Buffer.from('/events')]), '{"object_keys":["a"]}') });
  }
  out.push({
    category: 'invalid UTF-8',
    name: 'signed content-type with invalid UTF-8',
    bytes: signedJson('{"key":"a"}', '/sync?task=fz', { edit: (h) => h.map(([k, v]) => (k === 'Content-Type' ? [k, Buffer.from([0x61, 0xff, 0xfe])] : [k, v])) }),
  });
  return out;
}

function oversizeBodies(): Case[] {
  const out: Case[] = [];
  for (const size of [MIB + 1, MIB + 4096, 2 * MIB, 5 * MIB]) {
    const pad = Buffer.alloc(size - 20, 0x61);
    const body = Buffer.concat([Buffer.from('{"key":"a","pad":"'), pad, Buffer.from('"}')]);
    out.push({ category: 'oversize bodies', name: `${body.length} bytes, signed`, bytes: signedJson(body, '/sync?task=fz') });
    out.push({ category: 'oversize bodies', name: `${body.length} bytes, unsigned, OMS`, bytes: unsignedRequest('POST', OMS_PATH, body) });
  }
  for (const size of [MIB + 1, 3 * MIB]) {
    // Chunked: no length announced, the limit is found while reading.
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const parts: Buffer[] = [];
    for (let sent = 0; sent < size; sent += chunk.length) parts.push(Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n'));
    parts.push(Buffer.from('0\r\n\r\n'));
    out.push({
      category: 'oversize bodies',
      name: `${size} bytes chunked`,
      bytes: requestBytes('POST', '/sync', [['Host', HOST], ['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked'], ['Connection', 'close']], Buffer.concat(parts)),
    });
  }
  for (const claimed of [MIB + 1, 100 * MIB, 2 ** 40]) {
    out.push({
      category: 'oversize bodies',
      name: `Content-Length ${claimed} announced, 11 bytes sent`,
      bytes: requestBytes('POST', '/sync', [['Host', HOST], ['Content-Type', 'application/json'], ['Content-Length', String(claimed)], ['Connection', 'close']], Buffer.from('{"key":"a"}')),
    });
  }
  while (out.length < 20) {
    const size = int(MIB + 1, 3 * MIB);
    out.push({ category: 'oversize bodies', name: `${size} bytes of JSON array`, bytes: signedJson(`[${'0,'.repeat(Math.ceil(size / 2))}0]`, '/sync?task=fz') });
  }
  return out;
}

function oversizeHeaders(): Case[] {
  const out: Case[] = [];
  const body = '{"key":"a"}';
  for (const size of [17 * 1024, 64 * 1024, 256 * 1024]) {
    out.push({ category: 'oversize headers', name: `one ${size}-byte header`, bytes: signedJson(body, '/sync?task=fz', { edit: (h) => [...h, ['X-Padding', 'p'.repeat(size)]] }) });
    out.push({ category: 'oversize headers', name: `${size}-byte Authorization`, bytes: signedJson(body, '/sync?task=fz', { edit: (h) => h.map(([k, v]) => (k === 'Authorization' ? [k, `${String(v)}${' '.repeat(size)}`] : [k, v])) }) });
    out.push({ category: 'oversize headers', name: `${size}-byte URL`, bytes: unsignedRequest('POST', `/sync?task=${'t'.repeat(size)}`, body) });
    out.push({ category: 'oversize headers', name: `${size}-byte OMS project id`, bytes: unsignedRequest('POST', `/v2/${'p'.repeat(size)}/sync-tasks/fz/events`, body) });
  }
  for (const n of [1_500, 2_000, 5_000]) {
    const many: HeaderList = Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v'.repeat(8)]);
    out.push({ category: 'oversize headers', name: `${n} headers`, bytes: signedJson(body, '/sync?task=fz', { edit: (h) => [...h, ...many] }) });
  }
  while (out.length < 20) {
    const size = int(16 * 1024 + 1, 80 * 1024);
    out.push({ category: 'oversize headers', name: `X-Sdk-Date of ${size} bytes`, bytes: signedJson(body, '/sync?task=fz', { edit: (h) => h.map(([k, v]) => (k === 'X-Sdk-Date' ? [k, `${String(v)}${'0'.repeat(size)}`] : [k, v])) }) });
  }
  return out;
}

function replaceHeader(name: string, value: string | Buffer | ((v: string) => string | Buffer)): (h: HeaderList) => HeaderList {
  return (h) => h.map(([k, v]) => (k.toLowerCase() === name.toLowerCase() ? [k, typeof value === 'function' ? value(String(v)) : value] : [k, v]));
}

function dropHeader(name: string): (h: HeaderList) => HeaderList {
  return (h) => h.filter(([k]) => k.toLowerCase() !== name.toLowerCase());
}

function duplicate(name: string, value?: (v: string) => string, first = false): (h: HeaderList) => HeaderList {
  return (h) => {
    const out: HeaderList = [];
    for (const [k, v] of h) {
      if (k.toLowerCase() === name.toLowerCase()) {
        const extra: [string, string] = [k, value ? value(String(v)) : String(v)];
        if (first) out.push(extra, [k, v]);
        else out.push([k, v], extra);
      } else out.push([k, v]);
    }
    return out;
  };
}

function authParts(v: string): { access: string; signed: string; signature: string } {
  const m = /Access=([^,]*), SignedHeaders=([^,]*), Signature=([0-9a-f]*)/.exec(v)!;
  return { access: m[1]!, signed: m[2]!, signature: m[3]! };
}

function signatureEdges(): { cases: Case[]; replaySeeds: Case[] } {
  const cases: Case[] = [];
  const now = Date.now();
  const mutations: [string, SignedOptions][] = [
    ['lower-case algorithm', { edit: replaceHeader('Authorization', (v) => v.replace('SDK-HMAC-SHA256', 'sdk-hmac-sha256')) }],
    ['mixed-case algorithm', { edit: replaceHeader('Authorization', (v) => v.replace('SDK-HMAC-SHA256', 'Sdk-Hmac-Sha256')) }],
    ['other algorithm', { edit: replaceHeader('Authorization', (v) => v.replace('SDK-HMAC-SHA256', 'AWS4-HMAC-SHA256')) }],
    ['lower-case parameter names', { edit: replaceHeader('Authorization', (v) => v.replace('Access=', 'access=').replace('Signature=', 'signature=')) }],
    ['upper-case SignedHeaders entries', { edit: replaceHeader('Authorization', (v) => v.replace(/SignedHeaders=([^,]*)/, (_m, s: string) => `SignedHeaders=${s.toUpperCase()}`)) }],
    ['SignedHeaders unsorted', { edit: replaceHeader('Authorization', (v) => v.replace(/SignedHeaders=([^,]*)/, (_m, s: string) => `SignedHeaders=${s.split(';').reverse().join(';')}`)) }],
    ['SignedHeaders with a duplicate', { edit: replaceHeader('Authorization', (v) => v.replace(/SignedHeaders=([^,]*)/, (_m, s: string) => `SignedHeaders=${s};x-sdk-date`)) }],
    ['SignedHeaders without x-sdk-date', { signedHeaders: ['content-type', 'host', 'x-sdk-date'], edit: replaceHeader('Authorization', (v) => v.replace(';x-sdk-date', '')) }],
    ['SignedHeaders without host', { edit: replaceHeader('Authorization', (v) => v.replace('host;', '')) }],
    ['SignedHeaders empty', { edit: replaceHeader('Authorization', (v) => v.replace(/SignedHeaders=[^,]*/, 'SignedHeaders=')) }],
    ['SignedHeaders names an absent header', { edit: replaceHeader('Authorization', (v) => v.replace(/SignedHeaders=[^,]*/, 'SignedHeaders=content-type;host;x-absent;x-sdk-date')) }],
    ['Signature missing', { edit: replaceHeader('Authorization', (v) => v.replace(/, Signature=[0-9a-f]+/, '')) }],
    ['Signature truncated', { edit: replaceHeader('Authorization', (v) => v.slice(0, -1)) }],
    ['Signature with a non-hex digit', { edit: replaceHeader('Authorization', (v) => `${v.slice(0, -1)}g`) }],
    ['Signature of zeros', { edit: replaceHeader('Authorization', (v) => v.replace(/Signature=[0-9a-f]+/, `Signature=${'0'.repeat(64)}`)) }],
    ['Signature one bit off', { edit: replaceHeader('Authorization', (v) => v.replace(/.$/, (c) => (c === '0' ? '1' : '0'))) }],
    ['Access empty', { edit: replaceHeader('Authorization', (v) => v.replace(/Access=[^,]*/, 'Access=')) }],
    ['unknown access key', { accessKeyId: 'nobody-here' }],
    ['access key with a comma', { edit: replaceHeader('Authorization', (v) => v.replace(/Access=[^,]*/, 'Access=a,b')) }],
    ['wrong secret', { secret: 'not-the-secret' }],
    ['another sender\'s secret', { secret: OTHER_SECRET }],
    ['parameters duplicated', { edit: replaceHeader('Authorization', (v) => `${v}, Access=${ACCESS_KEY}`) }],
    ['unknown parameter', { edit: replaceHeader('Authorization', (v) => `${v}, Region=x`) }],
    ['no parameters', { edit: replaceHeader('Authorization', 'SDK-HMAC-SHA256') }],
    ['empty Authorization', { edit: replaceHeader('Authorization', '') }],
    ['Bearer token', { edit: replaceHeader('Authorization', 'Bearer abc.def.ghi') }],
    ['no Authorization', { edit: dropHeader('Authorization') }],
    ['no X-Sdk-Date', { edit: dropHeader('X-Sdk-Date') }],
    ['X-Sdk-Date 16 minutes early', { date: new Date(now - 16 * 60_000) }],
    ['X-Sdk-Date 16 minutes late', { date: new Date(now + 16 * 60_000) }],
    ['X-Sdk-Date a day early', { date: new Date(now - 86_400_000) }],
    ['X-Sdk-Date in 1970', { date: new Date(0) }],
    ['X-Sdk-Date in 9999', { date: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)) }],
    ['X-Sdk-Date lower-case t and z', { edit: replaceHeader('X-Sdk-Date', (v) => v.toLowerCase()) }],
    ['X-Sdk-Date as ISO-8601', { edit: replaceHeader('X-Sdk-Date', new Date(now).toISOString()) }],
    ['X-Sdk-Date as an HTTP date', { edit: replaceHeader('X-Sdk-Date', new Date(now).toUTCString()) }],
    ['X-Sdk-Date of Feb 30', { edit: replaceHeader('X-Sdk-Date', '20240230T120000Z') }],
    ['X-Sdk-Date month 13', { edit: replaceHeader('X-Sdk-Date', '20241301T120000Z') }],
    ['X-Sdk-Date 25 o\'clock', { edit: replaceHeader('X-Sdk-Date', '20240101T250000Z') }],
    ['X-Sdk-Date empty', { edit: replaceHeader('X-Sdk-Date', '') }],
    ['X-Sdk-Date changed after signing', { edit: replaceHeader('X-Sdk-Date', formatSdkDate(new Date(now - 1000))) }],
    ['body other than the one signed', { signedBody: Buffer.from('{"key":"other"}') }],
    ['X-Sdk-Content-Sha256 not the body\'s', { contentSha256: true, edit: replaceHeader('X-Sdk-Content-Sha256', 'a'.repeat(64)) }],
    ['X-Sdk-Content-Sha256 UNSIGNED-PAYLOAD', { contentSha256: true, edit: replaceHeader('X-Sdk-Content-Sha256', 'UNSIGNED-PAYLOAD') }],
    ['X-Sdk-Content-Sha256 added unsigned', { edit: (h) => [...h, ['X-Sdk-Content-Sha256', 'b'.repeat(64)]] }],
    ['path other than the one signed', { signPath: '/v2/p/sync-tasks/fz/events' }],
    ['query added after signing', { edit: (h) => h, query: '' }],
    ['method other than the one signed', {}],
    ['duplicated Authorization (bad one first)', { edit: duplicate('Authorization', (v) => v.replace(/Signature=[0-9a-f]+/, `Signature=${'1'.repeat(64)}`), true) }],
    ['duplicated Authorization (bad one second)', { edit: duplicate('Authorization', (v) => v.replace(/Signature=[0-9a-f]+/, `Signature=${'1'.repeat(64)}`)) }],
    ['duplicated Authorization (identical)', { edit: duplicate('Authorization') }],
    ['duplicated X-Sdk-Date (identical)', { edit: duplicate('X-Sdk-Date') }],
    ['duplicated X-Sdk-Date (other date)', { edit: duplicate('X-Sdk-Date', () => formatSdkDate(new Date(now - 60_000))) }],
    ['duplicated Host', { edit: duplicate('Host', () => 'evil.example') }],
    ['duplicated Host (identical)', { edit: duplicate('Host') }],
    ['duplicated Content-Type', { edit: duplicate('Content-Type', () => 'text/plain') }],
    ['duplicated Content-Length', { edit: duplicate('Content-Length') }],
    ['X-Sdk-Content-Sha256 duplicated', { contentSha256: true, edit: duplicate('X-Sdk-Content-Sha256') }],
    ['Authorization with a NUL', { edit: replaceHeader('Authorization', (v) => v.replace('Access=', 'Access=\u0000')) }],
    ['Authorization with obs-text bytes', { edit: replaceHeader('Authorization', (v) => Buffer.concat([Buffer.from(v), Buffer.from([0xe9, 0xff])])) }],
  ];
  const bodies = validBodies();
  let round = 0;
  while (cases.length < 240) {
    for (const [name, o] of mutations) {
      const { path, body } = bodies[round % bodies.length]!;
      const text = JSON.stringify(body);
      let bytes: Buffer;
      if (name === 'query added after signing') {
        const { path: p, query } = splitPath(path);
        const signed = signedRequest(text, { path: p, query });
        // Re-target the same signed request at a different query string.
        bytes = Buffer.from(signed.toString('latin1').replace(/^POST (\S+) /, (_m, target: string) => `POST ${target}${target.includes('?') ? '&' : '?'}extra=1 `), 'latin1');
      } else if (name === 'method other than the one signed') {
        bytes = Buffer.from(signedJson(text, path).toString('latin1').replace(/^POST /, 'PUT '), 'latin1');
      } else {
        bytes = signedJson(text, path, o);
      }
      cases.push({ category: 'signatures', name: `${name} (${path})`, bytes });
      if (cases.length >= 240) break;
    }
    round++;
  }
  // Replays: a rejected request is rejected again; an accepted one gets its first answer (not a 4xx).
  const replaySeeds: Case[] = [];
  for (let i = 0; i < 6; i++) {
    const { path, body } = bodies[i % bodies.length]!;
    const seed = signedJson(JSON.stringify(body), path);
    replaySeeds.push({ category: 'replays', name: `accepted ${path}`, bytes: seed, expect: 'accepted' });
  }
  for (let i = 0; i < 4; i++) {
    const bad = cases[int(0, cases.length - 1)]!;
    cases.push({ category: 'replays', name: `rejected request replayed: ${bad.name}`, bytes: bad.bytes });
  }
  const stale = signedJson(JSON.stringify(s3Event()), '/sync', { date: new Date(now - 20 * 60_000) });
  cases.push({ category: 'replays', name: 'a request signed 20 minutes ago', bytes: stale });
  return { cases, replaySeeds };
}

function pathTricks(): Case[] {
  const body = '{"object_keys":["a%2Fb"]}';
  const paths = [
    '/v2/../sync',
    '/v2/p/sync-tasks/../../sync',
    '/v2/p/sync-tasks/fz/events/../../../../sync',
    '/v2/p/sync-tasks/%2e%2e/events',
    '/v2/p/sync-tasks/%2E%2E/%2E%2E/events',
    '/v2/%2e%2e/sync-tasks/fz/events',
    '/v2/p/sync-tasks/%252e%252e/events',
    '/v2/p/sync-tasks/..%2f..%2fsync/events',
    '/v2/p/sync-tasks/..%252f..%252fsync/events',
    '/v2/p/sync-tasks/fz%2fevents/events',
    '/v2/p/sync-tasks/fz/events/',
    '/v2/p/sync-tasks/fz/events//',
    '//v2/p/sync-tasks/fz/events',
    '/v2//sync-tasks/fz/events',
    '/v2/p/sync-tasks//events',
    '/V2/p/sync-tasks/fz/events',
    '/v2/p/SYNC-TASKS/fz/events',
    '/v2/p/sync-tasks/fz/EVENTS',
    '/v2/p/sync-tasks/fz/events.json',
    '/v2/p/sync-tasks/fz/events;x=1',
    '/v2/p/sync-tasks/nope/events',
    '/v2/p/sync-tasks/other-task/events',
    '/v2/p/sync-tasks/%00/events',
    '/v2/p/sync-tasks/fz%00/events',
    '/v2/p/sync-tasks/%zz/events',
    '/v2/p/sync-tasks/%/events',
    '/v2/p/sync-tasks/fz%/events',
    '/v2/p/sync-tasks/%c0%ae%c0%ae/events',
    '/v2/p/sync-tasks/%ff/events',
    '/v2/%ed%a0%80/sync-tasks/fz/events',
    '/v2/p/sync-tasks/fz/events%3F',
    '/v2/p/sync-tasks/fz/events%23frag',
    '/v2/p/sync-tasks/fz/events#frag',
    '/v2/p/sync-tasks/fz\\..\\..\\sync/events',
    '/v2/p/sync-tasks/fz/events?task=other-task',
    '/sync/../v2/p/sync-tasks/fz/events',
    '/sync/',
    '/sync//',
    '/./sync',
    '/sync%2f',
    '/%73ync',
    '/SYNC',
    '/sync?task=nope',
    '/sync?task=other-task',
    '/sync?task=',
    '/sync?task=%zz',
    '/sync?task=a&task=b',
    `/v2/${'p'.repeat(129)}/sync-tasks/fz/events`,
    `/v2/p/sync-tasks/${'t'.repeat(129)}/events`,
    `/v2/p/sync-tasks/${'t'.repeat(5000)}/events`,
    `/v2/${'%2e'.repeat(2000)}/sync-tasks/fz/events`,
    `/v2/p/sync-tasks/${'..%2f'.repeat(900)}/events`,
    'http://evil.example/sync',
    '*',
    'sync',
  ];
  const out: Case[] = [];
  for (const raw of paths) {
    const { path, query } = splitPath(raw);
    const target = path.startsWith('/') ? path : undefined;
    // Signed exactly for the path as sent, so routing and validation are what answer.
    if (target !== undefined) out.push({ category: 'path tricks', name: `signed ${raw.slice(0, 80)}`, bytes: signedRequest(body, { path, query }) });
    out.push({ category: 'path tricks', name: `unsigned ${raw.slice(0, 80)}`, bytes: unsignedRequest('POST', raw, body) });
    out.push({ category: 'path tricks', name: `signed for /sync, sent to ${raw.slice(0, 80)}`, bytes: Buffer.from(signedRequest('{"key":"a"}', { path: '/sync', query: 'task=fz' }).toString('latin1').replace(/^POST \S+ /, `POST ${raw} `), 'latin1') });
  }
  return out;
}

function protocolJunk(): Case[] {
  const body = Buffer.from('{"key":"a"}');
  const base: HeaderList = [['Host', HOST], ['Content-Type', 'application/json'], ['Connection', 'close']];
  const raw = (s: string) => Buffer.from(s, 'latin1');
  const cases: [string, Buffer][] = [
    ['request line without version', raw('POST /sync\r\nHost: x\r\n\r\n')],
    ['HTTP/9.9', requestBytes('POST', '/sync', [...base, ['Content-Length', '11']], body, 'HTTP/9.9')],
    ['HTTP/2.0 over HTTP/1 framing', requestBytes('POST', '/sync', [...base, ['Content-Length', '11']], body, 'HTTP/2.0')],
    ['lower-case method', requestBytes('post', '/sync', [...base, ['Content-Length', '11']], body)],
    ['unknown method', requestBytes('FROB', '/sync', [...base, ['Content-Length', '11']], body)],
    ['header without a colon', raw(`POST /sync HTTP/1.1\r\nHost: ${HOST}\r\nNoColonHere\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{"key":"a"}`)],
    ['space before the colon', raw(`POST /sync HTTP/1.1\r\nHost : ${HOST}\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{"key":"a"}`)],
    ['NUL in a header value', raw(`POST /sync HTTP/1.1\r\nHost: ${HOST}\r\nX-A: a\u0000b\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{"key":"a"}`)],
    ['header folding (obs-fold)', raw(`POST /sync HTTP/1.1\r\nHost: ${HOST}\r\nX-A: a\r\n b\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{"key":"a"}`)],
    ['bare LF line ends', raw(`POST /sync HTTP/1.1\nHost: ${HOST}\nContent-Length: 11\nConnection: close\n\n{"key":"a"}`)],
    ['CR without LF', raw(`POST /sync HTTP/1.1\rHost: ${HOST}\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{"key":"a"}`)],
    ['Transfer-Encoding and Content-Length', requestBytes('POST', '/sync', [...base, ['Content-Length', '11'], ['Transfer-Encoding', 'chunked']], raw('b\r\n{"key":"a"}\r\n0\r\n\r\n'))],
    ['invalid chunk size', requestBytes('POST', '/sync', [...base, ['Transfer-Encoding', 'chunked']], raw('zz\r\n{"key":"a"}\r\n0\r\n\r\n'))],
    ['chunk longer than announced', requestBytes('POST', '/sync', [...base, ['Transfer-Encoding', 'chunked']], raw('2\r\n{"key":"a"}\r\n0\r\n\r\n'))],
    ['Transfer-Encoding gzip, chunked', requestBytes('POST', '/sync', [...base, ['Transfer-Encoding', 'gzip, chunked']], raw('b\r\n{"key":"a"}\r\n0\r\n\r\n'))],
    ['Transfer-Encoding identity', requestBytes('POST', '/sync', [...base, ['Transfer-Encoding', 'identity'], ['Content-Length', '11']], body)],
    ['negative Content-Length', requestBytes('POST', '/sync', [...base, ['Content-Length', '-1']], body)],
    ['non-numeric Content-Length', requestBytes('POST', '/sync', [...base, ['Content-Length', 'eleven']], body)],
    ['two different Content-Length', requestBytes('POST', '/sync', [...base, ['Content-Length', '11'], ['Content-Length', '12']], body)],
    ['Content-Length with a plus sign', requestBytes('POST', '/sync', [...base, ['Content-Length', '+11']], body)],
    ['Content-Length of 2^64', requestBytes('POST', '/sync', [...base, ['Content-Length', '18446744073709551616']], body)],
    ['no Host', requestBytes('POST', '/sync', [['Content-Type', 'application/json'], ['Content-Length', '11'], ['Connection', 'close']], body)],
    ['TLS ClientHello on the plain port', Buffer.from('16030100a5010000a10303', 'hex')],
    ['binary garbage', Buffer.from(Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff))],
    ['absolute-form target', requestBytes('POST', `http://${HOST}/nope`, [...base, ['Content-Length', '11']], body)],
    ['Expect: 100-continue, no body signed', requestBytes('POST', '/sync', [...base, ['Content-Length', '11'], ['Expect', '100-continue']], body)],
    ['unknown Expect', requestBytes('POST', '/sync', [...base, ['Content-Length', '11'], ['Expect', 'teapot']], body)],
    ['Upgrade: websocket', requestBytes('GET', '/sync', [...base, ['Upgrade', 'websocket'], ['Connection', 'Upgrade'], ['Sec-WebSocket-Key', 'dGhlIHNhbXBsZSBub25jZQ=='], ['Sec-WebSocket-Version', '13']])],
  ];
  const out: Case[] = cases.map(([name, bytes]) => ({ category: 'protocol', name, bytes }));
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT']) {
    for (const path of ['/sync', OMS_PATH]) {
      out.push({ category: 'protocol', name: `${method} ${path}`, bytes: requestBytes(method, method === 'CONNECT' ? HOST : path, [...base, ['Content-Length', '11']], body) });
    }
  }
  for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
    out.push({ category: 'protocol', name: `unsigned ${type}`, bytes: requestBytes('POST', '/sync', [['Host', HOST], ['Content-Type', type], ['Content-Length', '11'], ['Connection', 'close']], body) });
  }
  return out;
}

/** Requests whose client hangs up mid-way: no answer is possible, the service must not mind. */
function hangUps(): Case[] {
  const out: Case[] = [];
  for (let i = 0; i < 20; i++) {
    const bytes = signedJson(JSON.stringify(s3Event()), '/sync');
    out.push({ category: 'hang-ups', name: `closed after ${i * 20} bytes`, bytes: bytes.subarray(0, Math.min(bytes.length - 1, i * 20 + 5)), expect: 'none' });
  }
  out.push({ category: 'hang-ups', name: 'empty lines only, then closed', bytes: Buffer.from('\r\n\r\n\r\n'), expect: 'none' });
  return out;
}

// ---------------------------------------------------------------------------------------------

let db: TestDatabase;
let svc: ServiceProcess;

t.before(async () => {
  db = await createTestDatabase();
  const endpoint = { region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, credentials: { accessKeyIdEnv: 'FZ_AK', secretAccessKeyEnv: 'FZ_SK' } };
  svc = await startService({
    config: {
      tasks: [
        { id: 'fz', source: { provider: 's3', bucket: BUCKET, ...endpoint }, destination: { provider: 's3', bucket: 'fz-dst', ...endpoint } },
        { id: 'other-task', source: { provider: 's3', bucket: 'other-src', ...endpoint }, destination: { provider: 's3', bucket: 'other-dst', ...endpoint } },
      ],
      senders: [
        { accessKeyId: ACCESS_KEY, secretEnv: 'FZ_SENDER_SK', tasks: ['fz'] },
        { accessKeyId: OTHER_KEY, secretEnv: 'FZ_OTHER_SK', tasks: ['other-task'] },
      ],
    },
    // Intake only: the corpus is about the front door; no replication is attempted.
    // The heap is capped: memory that grew with the requests would end the process (and the test)
    // instead of only showing as a larger RSS.
    env: {
      DATABASE_URL: db.url,
      FZ_AK: 'ak',
      FZ_SK: 'sk',
      FZ_SENDER_SK: SECRET,
      FZ_OTHER_SK: OTHER_SECRET,
      BB_WORKERS: 'false',
      LOG_LEVEL: 'warn',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --max-old-space-size=${HEAP_CAP_MB}`.trim(),
    },
  });
  PORT = svc.port;
  HOST = `127.0.0.1:${PORT}`;
});

t.teardown(async () => {
  await svc?.stop();
  await db?.drop();
});

function rssKib(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? NaN);
}

async function jobCount(): Promise<number> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'bb-replicate'");
    return rows[0]!.n;
  } finally {
    await c.end();
  }
}

interface Outcome {
  c: Case;
  answer: Answer | undefined;
}

async function runAll(cases: Case[], concurrency: number): Promise<Outcome[]> {
  const out: Outcome[] = new Array<Outcome>(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < cases.length) {
        const i = next++;
        const c = cases[i]!;
        const answer = await exchange(c.bytes, c.expect === 'none' ? { hangUpAfter: c.bytes.length } : {});
        out[i] = { c, answer };
      }
    }),
  );
  return out;
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown };
}

function problem(o: Outcome): string | undefined {
  const { c, answer } = o;
  if (c.expect === 'none') return undefined;
  if (!answer) return 'no answer';
  const text = answer.body.toString('utf8');
  if (c.expect === 'accepted') return answer.status === 202 ? undefined : `expected 202, got ${answer.status} ${text.slice(0, 200)}`;
  if (c.expect === 'replay') {
    let parsed: { replayed?: boolean } | undefined;
    try {
      parsed = JSON.parse(text) as { replayed?: boolean };
    } catch {
      // reported below
    }
    return answer.status === 200 && parsed?.replayed === true ? undefined : `expected 200 replayed, got ${answer.status} ${text.slice(0, 200)}`;
  }
  if (answer.status < 400 || answer.status > 499) return `status ${answer.status}: ${text.slice(0, 300)}`;
  let parsed: ErrorBody;
  try {
    parsed = JSON.parse(text) as ErrorBody;
  } catch {
    return `status ${answer.status}, body is not JSON: ${JSON.stringify(text.slice(0, 200))}`;
  }
  const code = parsed.error?.code;
  if (typeof code !== 'string' || typeof parsed.error?.message !== 'string') return `status ${answer.status}, not the error shape: ${text.slice(0, 200)}`;
  if (!KNOWN_CODES.has(code)) return `status ${answer.status}, unknown code ${code}: ${text.slice(0, 200)}`;
  if (!/json/.test(answer.headers['content-type'] ?? '')) return `status ${answer.status}, content-type ${answer.headers['content-type']}`;
  return undefined;
}

t.test('a generated corpus of hostile requests: every answer a 4xx in the error shape, no 5xx, no crash, bounded memory', async (t) => {
  const signatures = signatureEdges();
  const corpus: Case[] = [
    ...malformedJson(),
    ...truncatedJson(),
    ...deepNesting(),
    ...hugeArrays(),
    ...wrongTypes(),
    ...invalidUtf8(),
    ...oversizeBodies(),
    ...oversizeHeaders(),
    ...signatures.cases,
    ...pathTricks(),
    ...protocolJunk(),
    ...hangUps(),
  ];
  const answered = corpus.filter((c) => c.expect !== 'none').length;
  t.ok(answered >= 1000, `${answered} requests expecting an answer (${corpus.length} with hang-ups)`);

  // Warm up (JIT, pools) before the first RSS reading.
  const seeds = await runAll(signatures.replaySeeds, 2);
  const replays = await runAll(signatures.replaySeeds.map((c) => ({ ...c, expect: 'replay' as const })), 2);
  const jobsBefore = await jobCount();
  const rssStart = rssKib(svc.child.pid!);

  // Three passes: memory that grows with the number of requests shows as a rise pass after pass;
  // the heap's own breathing (GC runs when it likes) shows as a plateau.
  const passes: Outcome[][] = [];
  const rss: number[] = [];
  for (let pass = 0; pass < 3; pass++) {
    passes.push(await runAll(corpus, 8));
    rss.push(rssKib(svc.child.pid!));
  }
  const byCategory = new Map<string, { n: number; statuses: Map<string, number> }>();
  const problems: string[] = [];
  let fiveHundreds = 0;
  for (const o of [...seeds, ...replays, ...passes.flat()]) {
    const p = problem(o);
    if (p) problems.push(`[${o.c.category}] ${o.c.name}: ${p}`);
    if (o.answer && o.answer.status >= 500) fiveHundreds++;
    const entry = byCategory.get(o.c.category) ?? { n: 0, statuses: new Map() };
    entry.n++;
    let label = o.answer ? String(o.answer.status) : 'no answer';
    try {
      const code = (JSON.parse(o.answer?.body.toString('utf8') ?? '') as ErrorBody).error?.code;
      if (typeof code === 'string') label += ` ${code}`;
    } catch {
      // keep the status alone
    }
    entry.statuses.set(label, (entry.statuses.get(label) ?? 0) + 1);
    byCategory.set(o.c.category, entry);
  }
  const table = [...byCategory.entries()].map(([cat, e]) => `${cat} (${e.n}): ${[...e.statuses.entries()].map(([s, n]) => `${s}×${n}`).join(', ')}`);
  t.comment(`answers by category, three passes:\n${table.join('\n')}`);
  if (process.env.FUZZ_DUMP) writeFileSync(process.env.FUZZ_DUMP, problems.join('\n'));
  t.same(problems.slice(0, 40), [], `every answer is a 4xx in the error shape (${problems.length} problems)`);
  t.equal(fiveHundreds, 0, 'no 5xx');
  t.equal(svc.child.exitCode, null, 'the service is still running');
  const health = await exchange(requestBytes('GET', '/healthz', [['Host', HOST], ['Connection', 'close']]));
  t.equal(health?.status, 200, 'and answers /healthz');
  t.equal(await jobCount(), jobsBefore, 'the hostile corpus queued nothing');
  t.equal(jobsBefore, signatures.replaySeeds.length, 'only the replay seeds were queued (once each)');
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  t.comment(`service RSS: ${mib(rssStart)} before; after each pass of ${corpus.length} requests: ${rss.map(mib).join(', ')}`);
  // Bodies of 1–5 MiB, 8 at a time, make the heap breathe by tens of MiB from pass to pass (GC runs
  // when V8 likes). The hard bound is the heap cap: a leak of request bodies (gigabytes over 3,600
  // requests) or of sockets and parsers would have ended the process above.
  t.ok(rss[2]! - rss[0]! < 192 * 1024, `RSS does not run away pass after pass (${mib(rss[0]!)} → ${mib(rss[2]!)})`);
  t.ok(rss[2]! < 768 * 1024, `RSS stays well under 768 MiB with the heap capped at ${HEAP_CAP_MB} MiB`);
  t.notMatch(svc.output(), /"level":(50|60)/, 'nothing logged at error or fatal level');
});
