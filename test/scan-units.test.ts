/**
 * The scan engine's parts without servers: key order, globs, scope, the
 * read-ahead listing (order checks, resume, retries), the merge-join, the
 * comparison rule and the pipeline over in-memory listers.
 */
import t from 'tap';
import fc from 'fast-check';
import { compareKeys, compareKeysByBytes, KeyOrderError } from '../src/scan/key-order.js';
import { globLiteralPrefix, globToRegExp, GlobError } from '../src/scan/glob.js';
import { intersectPrefixes, normalizePrefixes, resolveScope, scopeFromRequest, ScanRequestError } from '../src/scan/scope.js';
import { ListingStream } from '../src/scan/listing.js';
import { mergeJoin, type KeyPair } from '../src/scan/merge-join.js';
import { compareChunk, type StatusRowLite } from '../src/scan/compare.js';
import { runPipeline } from '../src/scan/pipeline.js';
import { zeroCounters } from '../src/scan/scan-repo.js';
import { StorageError } from '../src/storage/errors.js';
import type { ListedObject } from '../src/storage/object-store.js';
import { FakeLister, type FakeObject } from './support/fake-lister.js';

const md5 = (n: number) => n.toString(16).padStart(32, '0');
const listed = (key: string, size: number, etag: string): ListedObject => ({ key, size, etag, lastModified: new Date(0), storageClass: 'STANDARD' });

t.test('compareKeys is UTF-8 byte order (Buffer.compare), not UTF-16 order', async (t) => {
  const sign = (n: number) => Math.sign(n);
  fc.assert(
    fc.property(fc.fullUnicodeString(), fc.fullUnicodeString(), (a, b) => sign(compareKeys(a, b)) === sign(compareKeysByBytes(a, b))),
    { numRuns: 5000 },
  );
  // Near the surrogate range, where UTF-16 and UTF-8 disagree.
  const near = fc.constantFrom('\u{1F600}', '\uFF5E', '\uE000', '\uD7FF', '\u{10000}', 'a', '\u00e9', '\uFFFD', '/');
  fc.assert(
    fc.property(fc.array(near, { maxLength: 4 }), fc.array(near, { maxLength: 4 }), (a, b) =>
      sign(compareKeys(a.join(''), b.join(''))) === sign(compareKeysByBytes(a.join(''), b.join(''))),
    ),
    { numRuns: 3000 },
  );
  t.ok('\u{1F600}' < '\uFF5E', 'JS string order puts the emoji first');
  t.ok(compareKeys('\u{1F600}', '\uFF5E') > 0, 'UTF-8 order puts it last');
  const tricky = ['a/', 'a', 'a.b', 'a-b', '%', 'a b', 'é', '\u{1F600}', '\uFF5E', 'A', '100%', '~'];
  t.same([...tricky].sort(compareKeys), [...tricky].sort(compareKeysByBytes));
  t.same([...tricky].sort(compareKeys).slice(0, 8), ['%', '100%', 'A', 'a', 'a b', 'a-b', 'a.b', 'a/']);
});

t.test('globs: *, **, ?, classes, braces, escapes; literal prefixes', async (t) => {
  const cases: [string, string, boolean][] = [
    ['*.jpg', 'a.jpg', true],
    ['*.jpg', 'x/a.jpg', false],
    ['**/*.jpg', 'a.jpg', true],
    ['**/*.jpg', 'x/y/a.jpg', true],
    ['photos/**', 'photos/2024/a.jpg', true],
    ['photos/**', 'photosx/a', false],
    ['logs/202?/*.gz', 'logs/2024/a.gz', true],
    ['logs/202?/*.gz', 'logs/2024/b/a.gz', false],
    ['[a-c]*', 'b1', true],
    ['[!a-c]*', 'b1', false],
    ['[!a-c]*', 'd1', true],
    ['*.{jpg,png}', 'x.png', true],
    ['*.{jpg,png}', 'x.gif', false],
    ['a{b,c{d,e}}', 'ace', true],
    ['\\*x', '*x', true],
    ['\\*x', 'ax', false],
    ['100%/*', '100%/a', true],
    ['é/?', 'é/\u{1F600}', true],
    ['a.b', 'aXb', false],
    ['a+b(c)', 'a+b(c)', true],
  ];
  for (const [g, key, expected] of cases) t.equal(globToRegExp(g).test(key), expected, `${g} ~ ${key}`);
  t.throws(() => globToRegExp('{a,b'), GlobError);
  t.equal(globLiteralPrefix('logs/2024/*.gz'), 'logs/2024/');
  t.equal(globLiteralPrefix('**/*.jpg'), '');
  t.equal(globLiteralPrefix('a\\*b*'), 'a*b');
  t.equal(globLiteralPrefix('exact.txt'), 'exact.txt');
});

t.test('prefixes: normalised, intersected with the task, narrowed by include globs', async (t) => {
  t.same(normalizePrefixes(['b/', 'a/x/', 'a/', 'a/', 'c']), ['a/', 'b/', 'c']);
  t.same(normalizePrefixes(['x', '']), ['']);
  t.same(intersectPrefixes(['photos/'], ['photos/2024/', 'docs/', 'p']), ['photos/'], '"p" covers all of photos/');
  t.same(intersectPrefixes(['photos/', 'docs/'], ['photos/2024/', 'docs/', 'p']), ['docs/', 'photos/']);
  t.same(intersectPrefixes(['photos/'], ['photos/2024/', 'docs/']), ['photos/2024/']);
  t.same(intersectPrefixes([''], ['b', 'a']), ['a', 'b']);
  t.same(intersectPrefixes(['a/'], ['b/']), []);
  const whole = resolveScope(scopeFromRequest({}), undefined, undefined);
  t.same(whole.prefixes, ['']);
  const task = resolveScope(scopeFromRequest({}), ['docs/', 'photos/'], undefined);
  t.same(task.prefixes, ['docs/', 'photos/']);
  const narrowed = resolveScope(scopeFromRequest({ prefixes: ['photos/2024/', 'other/'] }), ['docs/', 'photos/'], ['photos/2024/', 'other/']);
  t.same(narrowed.prefixes, ['photos/2024/'], 'a scan never leaves its task');
  const globbed = resolveScope(scopeFromRequest({ include: ['logs/2024/*.gz', 'logs/2025/**'] }), undefined, undefined);
  t.same(globbed.prefixes, ['logs/2024/', 'logs/2025/']);
  t.equal(globbed.keyFilter!('logs/2024/a.gz'), true);
  t.equal(globbed.keyFilter!('logs/2024/a.txt'), false);
  const filters = resolveScope(scopeFromRequest({ minSize: 10, maxSize: 20, modifiedAfter: '2024-01-01T00:00:00Z' }), undefined, undefined);
  const o = (size: number, when: string) => ({ ...listed('k', size, 'e'), lastModified: new Date(when) });
  t.equal(filters.objectFilter!(o(10, '2024-06-01T00:00:00Z')), true);
  t.equal(filters.objectFilter!(o(21, '2024-06-01T00:00:00Z')), false);
  t.equal(filters.objectFilter!(o(15, '2023-06-01T00:00:00Z')), false);
});

t.test('scan requests are checked: exclusive scope, globs, sizes, dates', async (t) => {
  t.throws(() => scopeFromRequest({ prefixes: ['a'], prefixList: { key: 'l' } }), { code: 'INVALID_SCAN_REQUEST', message: /either prefixes or prefixList/ });
  t.ok(new ScanRequestError('f', 'm') instanceof Error);
  t.throws(() => scopeFromRequest({ include: ['{a'] }), { code: 'INVALID_SCAN_REQUEST', statusCode: 400 });
  t.throws(() => scopeFromRequest({ minSize: 5, maxSize: 4 }), /maxSize/);
  t.throws(() => scopeFromRequest({ modifiedAfter: 'yesterday' }), /modifiedAfter/);
  t.same(scopeFromRequest({ prefixList: { key: 'lists/p.txt' } }), { mode: 'prefix-list', prefixList: { key: 'lists/p.txt' } });
  t.same(scopeFromRequest({ prefixes: ['a/'], exclude: ['*.tmp'] }), { mode: 'prefixes', prefixes: ['a/'], exclude: ['*.tmp'] });
});

async function drain(stream: ListingStream): Promise<string[]> {
  const keys: string[] = [];
  for (let page = await stream.next(); page; page = await stream.next()) keys.push(...page.map((o) => o.key));
  return keys;
}

t.test('listing: pages in order across prefixes, resume point, read-ahead is bounded', async (t) => {
  const keys = Array.from({ length: 95 }, (_, i) => `${['a', 'b', 'c'][i % 3]}/${String(i).padStart(3, '0')}`);
  const store = new FakeLister('src', keys.map((key) => ({ key, size: 1, etag: md5(1) })));
  const all = await drain(new ListingStream(store, { side: 'source', prefixes: [''], pageSize: 10 }));
  t.same(all, [...keys].sort(compareKeysByBytes));
  const some = await drain(new ListingStream(store, { side: 'source', prefixes: ['a/', 'c/'], pageSize: 7 }));
  t.same(some, all.filter((k) => k.startsWith('a/') || k.startsWith('c/')));
  const resumed = await drain(new ListingStream(store, { side: 'source', prefixes: ['a/', 'b/', 'c/'], pageSize: 7, startAfter: 'b/040' }));
  t.same(resumed, all.filter((k) => k > 'b/040'));
  const filtered = await drain(new ListingStream(store, { side: 'source', prefixes: [''], keyFilter: (k) => k.endsWith('0') }));
  t.same(filtered, all.filter((k) => k.endsWith('0')));

  const lazy = new FakeLister('src', keys.map((key) => ({ key, size: 1, etag: md5(1) })));
  const stream = new ListingStream(lazy, { side: 'source', prefixes: [''], pageSize: 5, readAhead: 2 });
  await stream.next();
  await new Promise((r) => setTimeout(r, 50));
  t.ok(lazy.listCalls <= 4, `fetched ahead ${lazy.listCalls} pages, not the whole listing (19 pages)`);
  stream.close();
});

t.test('listing: keys out of UTF-8 order or outside the prefix fail the scan clearly', async (t) => {
  // "b\u{1F600}" before "b\uFF5E" is UTF-16 order, which is wrong for S3/OSS.
  const utf16 = new FakeLister('dst', [{ key: 'a', size: 1, etag: 'x' }, { key: 'b\u{1F600}', size: 1, etag: 'x' }, { key: 'b\uFF5E', size: 1, etag: 'x' }], { keepOrder: true });
  const err = await drain(new ListingStream(utf16, { side: 'destination', prefixes: [''] })).catch((e: unknown) => e);
  t.type(err, KeyOrderError);
  t.match((err as Error).message, /destination listing of bucket dst returned "b～" after "b😀": keys are not in UTF-8 binary order/);
  const dup = new FakeLister('src', [{ key: 'a', size: 1, etag: 'x' }, { key: 'a', size: 1, etag: 'x' }], { keepOrder: true });
  await t.rejects(drain(new ListingStream(dup, { side: 'source', prefixes: [''] })), KeyOrderError);
  const stray = { bucket: 'src', listPage: async () => ({ objects: [listed('zzz', 1, 'x')] }) };
  await t.rejects(drain(new ListingStream(stray, { side: 'source', prefixes: ['a/'] })), /returned key "zzz" for prefix "a\/"/);
});

t.test('listing: transient errors are retried, permanent ones fail', async (t) => {
  let calls = 0;
  const flaky = new FakeLister('src', [{ key: 'a', size: 1, etag: 'x' }]);
  const store = {
    bucket: 'src',
    listPage: async (o: Parameters<FakeLister['listPage']>[0]) => {
      if (++calls < 3) throw new StorageError('ServerError', 'boom', 503);
      return flaky.listPage(o);
    },
  };
  t.same(await drain(new ListingStream(store, { side: 'source', prefixes: [''], retryDelayMs: 1 })), ['a']);
  const denied = { bucket: 'src', listPage: async () => Promise.reject(new StorageError('AccessDenied', 'no', 403)) };
  await t.rejects(drain(new ListingStream(denied, { side: 'source', prefixes: [''], retryDelayMs: 1 })), { code: 'AccessDenied' });
});

t.test('merge-join emits the union of both listings in key order, with each side', async (t) => {
  const keyArb = fc.array(fc.fullUnicodeString({ minLength: 1, maxLength: 6 }), { maxLength: 60 });
  await fc.assert(
    fc.asyncProperty(keyArb, keyArb, fc.integer({ min: 1, max: 7 }), fc.integer({ min: 1, max: 9 }), async (a, b, pageSize, chunk) => {
      const src = new FakeLister('s', [...new Set(a)].map((key) => ({ key, size: 1, etag: 's' })));
      const dst = new FakeLister('d', [...new Set(b)].map((key) => ({ key, size: 2, etag: 'd' })));
      const out: KeyPair[] = [];
      for await (const c of mergeJoin(
        new ListingStream(src, { side: 'source', prefixes: [''], pageSize }),
        new ListingStream(dst, { side: 'destination', prefixes: [''], pageSize }),
        chunk,
      )) {
        if (c.length > chunk) return false;
        out.push(...c);
      }
      const union = [...new Set([...a, ...b])].sort(compareKeysByBytes);
      return (
        JSON.stringify(out.map((p) => p.key)) === JSON.stringify(union) &&
        out.every((p) => (p.source !== undefined) === a.includes(p.key) && (p.destination !== undefined) === b.includes(p.key))
      );
    }),
    { numRuns: 300 },
  );
});

t.test('comparison: the engine rule, as cheaply as the listing allows', async (t) => {
  const src = new FakeLister('s', [
    { key: 'fp-same', size: 5, etag: 'abc-2' },
    { key: 'fp-changed', size: 5, etag: 'def-2' },
    { key: 'nofp-crc', size: 5, etag: 'x-2', crc64: '111' },
    { key: 'nofp-crcdiff', size: 5, etag: 'y-2', crc64: '111' },
  ]);
  const dst = new FakeLister('d', [
    { key: 'fp-same', size: 5, etag: 'zzz-3', meta: { 'bb-source-etag': 'ABC-2' } },
    { key: 'fp-changed', size: 5, etag: 'zzz-3', meta: { 'bb-source-etag': 'old-2' } },
    { key: 'nofp-crc', size: 5, etag: 'q-2', crc64: '111' },
    { key: 'nofp-crcdiff', size: 5, etag: 'q-2', crc64: '222' },
  ]);
  const statuses = new Map<string, StatusRowLite>([
    ['by-status', { status: 'completed', sourceEtag: 'AAA-2', destinationEtag: 'bbb-2' }],
    ['status-dst-changed', { status: 'completed', sourceEtag: md5(7), destinationEtag: md5(9) }],
    ['status-failed', { status: 'failed', sourceEtag: md5(1), destinationEtag: null }],
  ]);
  const pairs: KeyPair[] = [
    { key: 'by-status', source: listed('by-status', 5, 'aaa-2'), destination: listed('by-status', 5, 'bbb-2') },
    { key: 'status-dst-changed', source: listed('status-dst-changed', 5, md5(7)), destination: listed('status-dst-changed', 5, md5(8)) },
    { key: 'md5-same', source: listed('md5-same', 5, md5(3)), destination: listed('md5-same', 5, md5(3).toUpperCase()) },
    { key: 'fp-same', source: listed('fp-same', 5, 'abc-2'), destination: listed('fp-same', 5, 'zzz-3') },
    { key: 'fp-changed', source: listed('fp-changed', 5, 'def-2'), destination: listed('fp-changed', 5, 'zzz-3') },
    { key: 'nofp-crc', source: listed('nofp-crc', 5, 'x-2'), destination: listed('nofp-crc', 5, 'q-2') },
    { key: 'nofp-crcdiff', source: listed('nofp-crcdiff', 5, 'y-2'), destination: listed('nofp-crcdiff', 5, 'q-2') },
    { key: 'size', source: listed('size', 5, md5(1)), destination: listed('size', 6, md5(1)) },
    { key: 'missing', source: listed('missing', 5, md5(1)) },
    { key: 'extra', destination: listed('extra', 5, md5(1)) },
    { key: 'small', source: listed('small', 1, md5(1)) },
  ];
  let lookups = 0;
  const ctx = {
    mode: 'checksum' as const,
    source: src,
    destination: dst,
    headConcurrency: 2,
    statuses: async (keys: string[]) => {
      lookups++;
      return new Map(keys.filter((k) => statuses.has(k)).map((k) => [k, statuses.get(k)!]));
    },
    objectFilter: (o: ListedObject) => o.size >= 5,
  };
  const r = await compareChunk(pairs, ctx);
  t.equal(lookups, 1, 'one status query per chunk');
  t.same(r.differences, [
    { key: 'status-dst-changed', kind: 'missing' }, // not trusted (destination ETag moved), not MD5-equal, HEAD finds no such destination
    { key: 'fp-changed', kind: 'content' },
    { key: 'nofp-crcdiff', kind: 'content' },
    { key: 'size', kind: 'size' },
    { key: 'missing', kind: 'missing' },
    { key: 'extra', kind: 'extra' },
  ]);
  t.equal(r.sameByStatus, 1);
  t.equal(r.sameByEtag, 1);
  t.equal(r.sameByHead, 2, 'fingerprint and CRC-64');
  t.equal(r.filtered, 1, 'small is left out by minSize');
  t.equal(r.compared, 8);
  t.equal(r.heads, 1 + 1 + 1 + 2 + 2, 'fingerprinted keys need only the destination HEAD');

  const bySize = await compareChunk(pairs, { ...ctx, mode: 'size' });
  t.same(bySize.differences.map((d) => d.kind), ['size', 'missing', 'extra']);
  t.equal(bySize.heads, 0);
  const none = await compareChunk(pairs.slice(0, 3), { ...ctx, mode: 'none' });
  t.same(none.differences.map((d) => d.kind), ['uncompared', 'uncompared', 'uncompared']);
});

function objects(n: number, f: (i: number) => Partial<FakeObject> | null): FakeObject[] {
  const out: FakeObject[] = [];
  for (let i = 0; i < n; i++) {
    const o = f(i);
    if (o) out.push({ key: `k/${String(i).padStart(5, '0')}`, size: 10, etag: md5(i), ...o });
  }
  return out;
}

t.test('comparison: archived sources already recorded as archived are not queued again', async (t) => {
  const archived = (key: string, etag: string): ListedObject => ({ ...listed(key, 5, etag), storageClass: 'ARCHIVE' });
  const pairs: KeyPair[] = [
    { key: 'known', source: archived('known', md5(1)) },
    { key: 'changed', source: archived('changed', md5(2)) },
    { key: 'new', source: archived('new', md5(3)) },
    { key: 'plain', source: listed('plain', 5, md5(4)) },
  ];
  const rows = new Map<string, StatusRowLite>([
    ['known', { status: 'archived', sourceEtag: md5(1), destinationEtag: null }],
    ['changed', { status: 'archived', sourceEtag: md5(9), destinationEtag: null }],
    ['plain', { status: 'archived', sourceEtag: md5(4), destinationEtag: null }],
  ]);
  const none = new FakeLister('x', []);
  const ctx = { mode: 'checksum' as const, source: none, destination: none, headConcurrency: 1, statuses: async () => rows };
  const skipping = await compareChunk(pairs, { ...ctx, skipKnownArchived: true });
  t.same(skipping.differences.map((d) => d.key), ['changed', 'new', 'plain'], 'only the key archived from this very ETag is left out');
  t.equal(skipping.archived, 1);
  const restoring = await compareChunk(pairs, ctx);
  t.equal(restoring.differences.length, 4, 'a task that restores archived objects queues them all');
});

t.test('pipeline: differences reach the sink in batches; extras only with deletes; resume loses nothing', async (t) => {
  const n = 3000;
  const src = new FakeLister('s', objects(n, (i) => (i % 10 === 0 ? null : {})));
  const dst = new FakeLister('d', objects(n, (i) => (i % 7 === 0 ? null : i % 11 === 0 ? { size: 11 } : i % 13 === 0 ? { etag: md5(i + 1) } : {})));
  const expected = new Set<string>();
  for (let i = 0; i < n; i++) {
    const k = `k/${String(i).padStart(5, '0')}`;
    const inS = i % 10 !== 0;
    const inD = i % 7 !== 0;
    if (inS && (!inD || i % 11 === 0 || i % 13 === 0)) expected.add(k);
  }
  const run = async (deletes: boolean, stopAfter?: number, startAfter?: string, counters = zeroCounters()) => {
    const got: string[] = [];
    const batches: number[] = [];
    let chunks = 0;
    let saved = counters;
    const r = await runPipeline({
      source: src,
      destination: dst,
      scope: resolveScope(scopeFromRequest({}), undefined, undefined),
      compare: 'checksum',
      deletes,
      sink: async (d) => {
        batches.push(d.length);
        got.push(...d.map((x) => x.key));
        return { queued: d.length, alreadyQueued: 0 };
      },
      counters,
      ...(startAfter ? { startAfter } : {}),
      shouldStop: () => (stopAfter !== undefined && chunks++ >= stopAfter ? 'shutdown' : undefined),
      onPosition: (_p, snapshot) => (saved = snapshot),
      options: { pageSize: 100, chunkSize: 250, enqueueBatch: 100, headConcurrency: 8 },
    });
    return { got, batches, counters, r, saved };
  };
  const full = await run(false);
  t.same(new Set(full.got), expected, 'missing, size and content differences; no extras without deletes');
  t.ok(full.batches.every((b) => b <= 100), 'batches of at most enqueueBatch');
  t.equal(full.counters.sourceKeys, n - n / 10);
  t.equal(full.counters.destinationKeys, n - Math.ceil(n / 7));
  t.ok(full.counters.extra > 0);
  t.equal(full.counters.jobsQueued, expected.size);
  const withDeletes = await run(true);
  t.equal(withDeletes.got.length, expected.size + full.counters.extra, 'extras queued when deletes are on');

  const first = await run(false, 3);
  t.equal(first.r.stopped, 'shutdown');
  t.ok(first.r.position, 'a resume position');
  t.same(first.saved, first.counters, 'on shutdown the saved counters are the final ones');
  const second = await run(false, undefined, first.r.position!, { ...first.saved });
  t.same(new Set([...first.got, ...second.got]), expected, 'the resumed scan finds the rest');
  t.equal(second.counters.sourceKeys, n - n / 10, 'counters continue across the resume');
});
