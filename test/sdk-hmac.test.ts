/**
 * SDK-HMAC-SHA256 (DESIGN.md §4). Fixed vectors are written out by hand and hashed here
 * with node:crypto, never computed by the module under test; one of them is also pinned
 * to the signature that Huawei's published Python APIG signer (the one in
 * seeds/oms-oss-sync-requests.txt) produces for the same request, so a drift from what
 * senders actually do fails here. Keys and secrets are fake.
 */
import { createHash, createHmac } from 'node:crypto';
import t from 'tap';
import fc from 'fast-check';
import {
  canonicalRequest,
  formatSdkDate,
  parseAuthorization,
  parseSdkDate,
  sign,
  SignatureError,
  stringToSign,
  verify,
  type SignableRequest,
} from '../src/auth/sdk-hmac.js';

const AK = 'test-ak';
const SECRET = 'test-secret-not-real';
const DATE = new Date('2024-03-05T06:07:08Z');
const SDK_DATE = '20240305T060708Z';

const sha256hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
const hmacHex = (key: string, s: string): string => createHmac('sha256', key).update(s, 'utf8').digest('hex');

/** The SignatureError code a call fails with, or 'ok'. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof SignatureError) return err.code;
    throw err;
  }
}

const lookup = (secrets: Record<string, string[]>) => (ak: string) => secrets[ak];

// ---------------------------------------------------------------------------
// Fixed vectors

const VECTOR_BODY = '{"object_keys":["a%2Fb.txt","caf\u00e9 menu+1.txt"]}';
const vectorRequest = (): SignableRequest => ({
  method: 'post',
  // lower-case hex escapes, a raw reserved ':' and '~' and a space: all must canonicalise
  path: '/v2/proj%201/sync-tasks/t%c3%a9st~x/a:b/events',
  // repeated key 'a' (out of order), a key without '=', a literal '+' and an encoded one
  query: 'b=2&a=%7Ex&a=1&c&d=a%2Bb+c',
  headers: { 'Content-Type': '  application/json ', Host: ' bucketbridge.example.com ', 'User-Agent': 'not-signed' },
  body: VECTOR_BODY,
});

t.test('fixed vector: canonical request, string to sign and signature (Huawei signer compatible)', async (t) => {
  const expectedCanonical =
    'POST\n' +
    '/v2/proj%201/sync-tasks/t%C3%A9st~x/a%3Ab/events/\n' +
    'a=1&a=~x&b=2&c=&d=a%2Bb%2Bc\n' +
    'content-type:application/json\n' +
    'host:bucketbridge.example.com\n' +
    'x-sdk-date:20240305T060708Z\n' +
    '\n' +
    'content-type;host;x-sdk-date\n' +
    sha256hex(Buffer.from(VECTOR_BODY, 'utf8'));
  const expectedSts = 'SDK-HMAC-SHA256\n20240305T060708Z\n' + sha256hex(expectedCanonical);
  const expectedSig = hmacHex(SECRET, expectedSts);

  const r = sign(vectorRequest(), { accessKeyId: AK, secret: SECRET }, { date: DATE });
  t.equal(r.canonicalRequest, expectedCanonical);
  t.equal(r.stringToSign, expectedSts);
  t.equal(r.signature, expectedSig);
  // What Huawei's Python signer (signer.py from the seeds file) emits for this exact request.
  t.equal(r.signature, 'dc868c79062dd6d6ce610e325ff02c8c051e65f0fc240e1dd4c87805fcd34da6');
  t.same(r.headers, {
    Authorization: `SDK-HMAC-SHA256 Access=test-ak, SignedHeaders=content-type;host;x-sdk-date, Signature=${expectedSig}`,
    'X-Sdk-Date': SDK_DATE,
  });

  // The exported building blocks agree with the literal too.
  const withDate = { ...vectorRequest(), headers: { ...vectorRequest().headers, 'X-Sdk-Date': SDK_DATE } };
  t.equal(canonicalRequest(withDate, ['X-Sdk-Date', 'host', 'content-type', 'host']), expectedCanonical);
  t.equal(stringToSign(SDK_DATE, expectedCanonical), expectedSts);

  // And the server accepts it, as fastify would hand it over (lower-cased names).
  const server: SignableRequest = {
    ...vectorRequest(),
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      host: 'bucketbridge.example.com',
      'x-sdk-date': SDK_DATE,
      authorization: r.headers.Authorization,
    },
  };
  const v = verify(server, lookup({ [AK]: [SECRET] }), { now: new Date('2024-03-05T06:10:00Z') });
  t.same(v, { accessKeyId: AK, signature: expectedSig, sdkDate: DATE });
});

t.test('fixed vector: repeated header values joined with ",", X-Sdk-Content-Sha256, Record query', async (t) => {
  const body = Buffer.from([0x00, 0xff, 0x10, 0x80]);
  const req: SignableRequest = {
    method: 'PUT',
    path: '/a%2Fb//c d/%zz/',
    query: { z: '', 'k y': ['2', '1'], '{': 'x', a: 'a+b' },
    headers: { host: 'h', 'x-multi': ['  one ', 'two\t'], 'X-MULTI': 'three' },
    body,
  };
  const bodyHash = sha256hex(body);
  const expectedCanonical =
    'PUT\n' +
    // split on '/' first: the encoded slash stays inside its segment; '%zz' is a literal '%'
    '/a%2Fb//c%20d/%25zz/\n' +
    // sorted by decoded key bytes: 'a' < 'k y' < 'z' < '{'
    'a=a%2Bb&k%20y=1&k%20y=2&z=&%7B=x\n' +
    'host:h\n' +
    'x-multi:one,two,three\n' +
    `x-sdk-content-sha256:${bodyHash}\n` +
    'x-sdk-date:20240305T060708Z\n' +
    '\n' +
    'host;x-multi;x-sdk-content-sha256;x-sdk-date\n' +
    bodyHash;
  const r = sign(req, { accessKeyId: AK, secret: SECRET }, { date: DATE, contentSha256: true, signedHeaders: ['x-multi', 'host', 'x-sdk-date', 'x-sdk-content-sha256'] });
  t.equal(r.canonicalRequest, expectedCanonical);
  t.equal(r.signature, hmacHex(SECRET, 'SDK-HMAC-SHA256\n20240305T060708Z\n' + sha256hex(expectedCanonical)));
  t.equal(r.headers['X-Sdk-Content-Sha256'], bodyHash);
  t.equal(outcome(() => verify({ ...req, headers: { ...req.headers, ...r.headers } }, lookup({ [AK]: [SECRET] }), { now: DATE })), 'ok');
});

t.test('canonical URI and query details', async (t) => {
  const cr = (path: string, query?: SignableRequest['query']) =>
    canonicalRequest({ method: 'get', path, query, headers: { 'x-sdk-date': SDK_DATE }, body: '' }, ['x-sdk-date']).split('\n');
  t.equal(cr('')[1], '/', 'empty path is /');
  t.equal(cr('/')[1], '/');
  t.equal(cr('/sync')[1], '/sync/', 'always ends in /');
  t.equal(cr('/sync/')[1], '/sync/');
  t.equal(cr('/a//b')[1], '/a//b/', 'empty segments kept');
  t.equal(cr("/!*'()+,;=@$&")[1], '/%21%2A%27%28%29%2B%2C%3B%3D%40%24%26/', 'reserved characters are encoded');
  t.equal(cr('/%7e%41%2d%5F')[1], '/~A-_/', 'unreserved escapes are decoded');
  t.equal(cr('/\u00e9\u{1F600}')[1], '/%C3%A9%F0%9F%98%80/', 'raw non-ASCII is UTF-8 encoded');
  t.equal(cr('/%4')[1], '/%254/', 'truncated escape is a literal %');
  t.equal(cr('/a', '')[2], '');
  t.equal(cr('/a', 'a=1&&=x&b')[2], 'a=1&b=', 'empty parts and empty keys are dropped');
  t.equal(cr('/a', 'x=a=b')[2], 'x=a%3Db', 'value keeps everything after the first =');
  t.equal(cr('/a', 'p=+')[2], 'p=%2B', "'+' in a query is a plus, not a space");
  // Byte order (= code-point order), not UTF-16 order: U+FFFD (EF BF BD) sorts before U+1F600 (F0 9F 98 80).
  t.equal(cr('/a', { '\u{1F600}': '1', '\uFFFD': '2' })[2], '%EF%BF%BD=2&%F0%9F%98%80=1');
  t.equal(cr('/a', { b: ['2', '10', '1'] })[2], 'b=1&b=10&b=2', 'repeated keys sorted by value');
  t.equal(cr('/a', 'q=%E2%82%AC&r=\u20ac')[2], cr('/a', { q: '\u20ac', r: '\u20ac' })[2], 'raw and Record forms agree');
});

t.test('formatSdkDate / parseSdkDate', async (t) => {
  t.equal(formatSdkDate(new Date('2024-03-05T06:07:08.999Z')), '20240305T060708Z', 'milliseconds truncated');
  t.same(parseSdkDate('20240305T060708Z'), new Date('2024-03-05T06:07:08Z'));
  t.same(parseSdkDate('00500101T000000Z'), new Date('0050-01-01T00:00:00Z'), 'two-digit years are not 19xx');
  for (const bad of ['20240230T000000Z', '20241301T000000Z', '20240305T240000Z', '20240305T060760Z', '2024-03-05T06:07:08Z', '20240305T060708z', '20240305T060708Z ', '', '20240305060708Z']) {
    t.equal(parseSdkDate(bad), undefined, `rejects ${JSON.stringify(bad)}`);
  }
  t.throws(() => formatSdkDate(new Date(NaN)), RangeError);
});

t.test('parseAuthorization', async (t) => {
  const sig = 'ab'.repeat(32);
  t.same(parseAuthorization(`SDK-HMAC-SHA256 Access=k1, SignedHeaders=host;x-sdk-date, Signature=${sig}`), {
    accessKeyId: 'k1',
    signedHeaders: ['host', 'x-sdk-date'],
    signature: sig,
  });
  t.same(parseAuthorization(`SDK-HMAC-SHA256   Signature=${sig.toUpperCase()},SignedHeaders=x-sdk-date ,  Access=k1`).signature, sig, 'any order and spacing; signature lower-cased');
  const bad = [
    '',
    'SDK-HMAC-SHA256',
    `AWS4-HMAC-SHA256 Access=k1, SignedHeaders=x-sdk-date, Signature=${sig}`,
    `sdk-hmac-sha256 Access=k1, SignedHeaders=x-sdk-date, Signature=${sig}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=x-sdk-date`,
    `SDK-HMAC-SHA256 Access=, SignedHeaders=x-sdk-date, Signature=${sig}`,
    `SDK-HMAC-SHA256 Access=k1, Access=k2, SignedHeaders=x-sdk-date, Signature=${sig}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=x-sdk-date, Signature=${sig}, Extra=1`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=x-sdk-date, Signature=${sig.slice(2)}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=x-sdk-date, Signature=${'zz'.repeat(32)}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=x-sdk-date;host, Signature=${sig}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=host;host;x-sdk-date, Signature=${sig}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=Host;x-sdk-date, Signature=${sig}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=, Signature=${sig}`,
    `SDK-HMAC-SHA256 Access=k1, SignedHeaders=host;;x-sdk-date, Signature=${sig}`,
  ];
  for (const h of bad) t.equal(outcome(() => parseAuthorization(h)), 'SIGNATURE_INVALID', `rejects ${JSON.stringify(h.slice(0, 60))}`);
});

t.test('sign', async (t) => {
  const base: SignableRequest = { method: 'POST', path: '/sync', headers: { Host: 'h' }, body: 'x' };
  t.match(sign(base, { accessKeyId: AK, secret: SECRET }, { date: DATE }).headers.Authorization, /SignedHeaders=host;x-sdk-date,/, 'content-type only when present');
  t.match(
    sign({ ...base, headers: { 'x-sdk-date': '19990101T000000Z', authorization: 'stale' } }, { accessKeyId: AK, secret: SECRET }, { date: DATE }).canonicalRequest,
    /\nx-sdk-date:20240305T060708Z\n\nx-sdk-date\n/,
    'a stale X-Sdk-Date on the request is replaced',
  );
  t.throws(() => sign(base, { accessKeyId: AK, secret: SECRET }, { signedHeaders: ['host'] }), TypeError, 'x-sdk-date must be signed');
  t.throws(() => sign(base, { accessKeyId: AK, secret: SECRET }, { signedHeaders: ['x-sdk-date', 'content-type'] }), TypeError, 'signed headers must exist');
  t.throws(() => sign(base, { accessKeyId: 'a b', secret: SECRET }), TypeError, 'access key must fit the header');
  t.throws(() => sign(base, { accessKeyId: AK, secret: '' }), TypeError);
  const now = Date.now();
  const d = parseSdkDate(sign(base, { accessKeyId: AK, secret: SECRET }).headers['X-Sdk-Date'] ?? '');
  t.ok(d !== undefined && Math.abs(d.getTime() - now) < 5000, 'defaults to now');
});

// ---------------------------------------------------------------------------
// verify: error rules

/** A request whose headers are plain strings, so tests can read and replace them. */
type PlainRequest = Omit<SignableRequest, 'headers'> & { headers: Record<string, string> };

/** A correctly signed request plus helpers to tamper with it. */
function signed(opts: { date?: Date; contentSha256?: boolean; secret?: string } = {}): PlainRequest {
  const req: PlainRequest = {
    method: 'POST',
    path: '/v2/p/sync-tasks/t/events',
    query: 'x=1',
    headers: { host: 'bb.example', 'content-type': 'application/json' },
    body: '{"object_keys":["a"]}',
  };
  const r = sign(req, { accessKeyId: AK, secret: opts.secret ?? SECRET }, { date: opts.date ?? DATE, contentSha256: opts.contentSha256 ?? false });
  return { ...req, headers: { ...req.headers, ...lowerKeys(r.headers) } };
}
/** `req` with some headers replaced. */
function withHeaders(req: PlainRequest, extra: Record<string, string>): PlainRequest {
  return { ...req, headers: { ...req.headers, ...extra } };
}
function lowerKeys(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}
/** Authorization for arbitrary signed headers, built by hand (sign() refuses some of these on purpose). */
function handAuth(req: SignableRequest, names: string[], sdkDate: string): string {
  const sts = 'SDK-HMAC-SHA256\n' + sdkDate + '\n' + sha256hex(canonicalRequest(req, names));
  return `SDK-HMAC-SHA256 Access=${AK}, SignedHeaders=${names.join(';')}, Signature=${hmacHex(SECRET, sts)}`;
}

t.test('verify error rules', async (t) => {
  const secrets = lookup({ [AK]: [SECRET] });
  const opts = { now: DATE };
  const ok = signed();
  t.equal(outcome(() => verify(ok, secrets, opts)), 'ok');

  const without = (name: string) => Object.fromEntries(Object.entries(ok.headers).filter(([k]) => k !== name));
  t.equal(outcome(() => verify({ ...ok, headers: without('authorization') }, secrets, opts)), 'SIGNATURE_INVALID', 'missing Authorization');
  t.equal(
    outcome(() => verify({ ...ok, headers: { ...ok.headers, authorization: [ok.headers.authorization ?? '', ok.headers.authorization ?? ''] } } as SignableRequest, secrets, opts)),
    'SIGNATURE_INVALID',
    'two Authorization headers',
  );
  t.equal(
    outcome(() => verify({ ...ok, headers: { ...ok.headers, authorization: (ok.headers.authorization ?? '').replace('SDK-HMAC-SHA256', 'SDK-HMAC-SHA1') } }, secrets, opts)),
    'SIGNATURE_INVALID',
    'wrong algorithm',
  );
  t.equal(outcome(() => verify({ ...ok, headers: { ...ok.headers, authorization: 'SDK-HMAC-SHA256 garbage' } }, secrets, opts)), 'SIGNATURE_INVALID', 'malformed');
  t.equal(outcome(() => verify(ok, () => undefined, opts)), 'UNKNOWN_ACCESS_KEY', 'lookup returns undefined');
  t.equal(outcome(() => verify(ok, () => [], opts)), 'UNKNOWN_ACCESS_KEY', 'lookup returns []');
  t.equal(outcome(() => verify(ok, () => [''], opts)), 'UNKNOWN_ACCESS_KEY', 'empty secrets are not secrets');

  // x-sdk-date present but not signed
  const unsignedDate = { ...ok, headers: { ...ok.headers, authorization: handAuth(ok, ['host'], SDK_DATE) } };
  t.equal(outcome(() => verify(unsignedDate, secrets, opts)), 'SIGNATURE_INVALID', 'x-sdk-date not in SignedHeaders');
  t.equal(outcome(() => verify({ ...ok, headers: without('x-sdk-date') }, secrets, opts)), 'SIGNATURE_INVALID', 'x-sdk-date missing');
  const isoDate = withHeaders(ok, { 'x-sdk-date': '2024-03-05T06:07:08Z' });
  isoDate.headers.authorization = handAuth(isoDate, ['host', 'x-sdk-date'], '2024-03-05T06:07:08Z');
  t.equal(outcome(() => verify(isoDate, secrets, opts)), 'SIGNATURE_INVALID', 'x-sdk-date in the wrong format');
  // a signed header absent from the request
  const withCustom = withHeaders(ok, { 'x-custom': 'v' });
  withCustom.headers.authorization = handAuth(withCustom, ['host', 'x-custom', 'x-sdk-date'], SDK_DATE);
  t.equal(outcome(() => verify(withCustom, secrets, opts)), 'ok', 'hand-built auth with a custom header verifies');
  t.equal(
    outcome(() => verify({ ...withCustom, headers: Object.fromEntries(Object.entries(withCustom.headers).filter(([k]) => k !== 'x-custom')) }, secrets, opts)),
    'SIGNATURE_INVALID',
    'signed header absent',
  );
  t.equal(outcome(() => verify({ ...ok, body: ok.body + ' ' }, secrets, opts)), 'SIGNATURE_INVALID', 'mismatch');
  t.equal(outcome(() => verify(ok, lookup({ [AK]: ['other-secret'] }), opts)), 'SIGNATURE_INVALID', 'wrong secret');
  t.equal(outcome(() => verify({ ...ok, body: 'tampered' }, secrets, { now: new Date(DATE.getTime() + 3600_000) })), 'SIGNATURE_INVALID', 'bad signature is reported before expiry');
  t.throws(() => verify(ok, secrets, { maxSkewSeconds: -1 }), RangeError);
});

t.test('verify: clock skew', async (t) => {
  const secrets = lookup({ [AK]: [SECRET] });
  const req = signed();
  const at = (offsetSeconds: number, maxSkewSeconds?: number) =>
    outcome(() => verify(req, secrets, { now: new Date(DATE.getTime() + offsetSeconds * 1000), ...(maxSkewSeconds === undefined ? {} : { maxSkewSeconds }) }));
  t.equal(at(900), 'ok', 'exactly 15 min late is still ok');
  t.equal(at(-900), 'ok', 'exactly 15 min early is still ok');
  t.equal(at(901), 'REQUEST_EXPIRED');
  t.equal(at(-901), 'REQUEST_EXPIRED', 'a date in the future is rejected too');
  t.equal(at(61, 60), 'REQUEST_EXPIRED', 'configurable');
  t.equal(at(3000, 3600), 'ok', 'configurable');
});

t.test('verify: X-Sdk-Content-Sha256', async (t) => {
  const secrets = lookup({ [AK]: [SECRET] });
  const ok = signed({ contentSha256: true });
  t.equal(outcome(() => verify(ok, secrets, { now: DATE })), 'ok');
  t.equal(outcome(() => verify({ ...ok, body: '{"object_keys":["b"]}' }, secrets, { now: DATE })), 'SIGNATURE_INVALID', 'header no longer matches body');

  // A sender that put UNSIGNED-PAYLOAD in (and signed it): still rejected, the body must be covered.
  const unsigned = withHeaders(ok, { 'x-sdk-content-sha256': 'UNSIGNED-PAYLOAD' });
  unsigned.headers.authorization = handAuth(unsigned, ['host', 'x-sdk-content-sha256', 'x-sdk-date'], SDK_DATE);
  t.throws(() => verify(unsigned, secrets, { now: DATE }), { code: 'SIGNATURE_INVALID', message: /UNSIGNED-PAYLOAD/ });

  // Header present but not signed: it must still match the body (it replaces the body hash).
  const notSigned = signed();
  notSigned.headers['x-sdk-content-sha256'] = sha256hex('something else');
  t.equal(outcome(() => verify(notSigned, secrets, { now: DATE })), 'SIGNATURE_INVALID');

  // Upper-case hex of the right hash, signed as such by the sender, is accepted.
  const upper = withHeaders(ok, { 'x-sdk-content-sha256': sha256hex(ok.body).toUpperCase() });
  upper.headers.authorization = handAuth(upper, ['content-type', 'host', 'x-sdk-content-sha256', 'x-sdk-date'], SDK_DATE);
  t.equal(outcome(() => verify(upper, secrets, { now: DATE })), 'ok');
});

// ---------------------------------------------------------------------------
// Properties

const segmentChars = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 6 }),
  fc.string({ unit: fc.constantFrom(...'%+?#!*\'()[]{}:;@&=$,~ -_.aZ09'), maxLength: 6 }),
);
/** A raw path as a sender would put it on the wire: segments percent-encoded, sometimes with lower-case hex. */
const pathArb = fc
  .array(fc.tuple(segmentChars, fc.constantFrom('encode', 'encode-lower', 'raw')), { minLength: 0, maxLength: 5 })
  .map((segs) =>
    '/' +
    segs
      .map(([s, how]) =>
        how === 'raw'
          ? s.replace(/[/?#]/g, '')
          : how === 'encode'
            ? encodeURIComponent(s)
            : encodeURIComponent(s).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()),
      )
      .join('/'),
  );
const queryArb = fc.oneof(
  fc.dictionary(fc.string({ unit: 'binary', minLength: 1, maxLength: 5 }), fc.oneof(fc.string({ unit: 'binary', maxLength: 5 }), fc.array(fc.string({ unit: 'binary', maxLength: 5 }), { minLength: 1, maxLength: 3 })), { maxKeys: 4 }),
  fc
    .array(fc.tuple(fc.string({ unit: 'binary', minLength: 1, maxLength: 5 }), fc.string({ unit: 'binary', maxLength: 5 })), { maxLength: 4 })
    .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')),
);
const headerValueArb = fc.string({ unit: fc.constantFrom(...'abcXYZ019 -_.,;:/"=()'), minLength: 1, maxLength: 12 }).filter((s) => s.trim() === s && s !== '');
const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'post'),
  path: pathArb,
  query: fc.option(queryArb, { nil: undefined }),
  host: headerValueArb,
  contentType: fc.option(headerValueArb, { nil: undefined }),
  extra: headerValueArb,
  pad: fc.constantFrom('', ' ', '\t', '  '),
  body: fc.oneof(fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), fc.string({ unit: 'binary', maxLength: 32 })),
  contentSha256: fc.boolean(),
});
type Gen = typeof requestArb extends fc.Arbitrary<infer T> ? T : never;

function build(g: Gen): SignableRequest {
  const headers: SignableRequest['headers'] = { Host: g.pad + g.host + g.pad, 'X-Extra': g.extra };
  if (g.contentType !== undefined) headers['Content-Type'] = g.contentType + g.pad;
  return { method: g.method, path: g.path, query: g.query, headers, body: g.body };
}
const SIGNED = ['host', 'x-extra', 'x-sdk-date'];
function signAndAttach(req: SignableRequest, secret: string, date: Date, contentSha256: boolean): SignableRequest {
  // Requests from build() also sign X-Extra; hand-made ones use sign()'s default list.
  const names = 'X-Extra' in req.headers ? (contentSha256 ? [...SIGNED, 'x-sdk-content-sha256'] : SIGNED) : undefined;
  const r = sign(req, { accessKeyId: AK, secret }, { date, contentSha256, ...(names === undefined ? {} : { signedHeaders: names }) });
  return { ...req, headers: { ...req.headers, ...r.headers } };
}
/** Replace the character at i with one that is neither equal nor equivalent (not a hex digit, not whitespace). */
function replaceAt(s: string, i: number): string {
  const c = s[i] === 'Q' ? 'R' : 'Q';
  return s.slice(0, i) + c + s.slice(i + 1);
}
const secrets = lookup({ [AK]: [SECRET] });

t.test('property: whatever sign() produces verifies', async (t) => {
  fc.assert(
    fc.property(requestArb, (g) => {
      const req = signAndAttach(build(g), SECRET, DATE, g.contentSha256);
      return outcome(() => verify(req, secrets, { now: DATE })) === 'ok';
    }),
    { numRuns: 300 },
  );
  t.pass('300 random requests signed and verified');
});

t.test('property: equivalent encodings of the path verify with the same signature', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.string({ unit: 'binary', maxLength: 6 }), { maxLength: 4 }), (segs) => {
      const upper = '/' + segs.map(encodeURIComponent).join('/');
      const lower = upper.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase());
      const req = signAndAttach({ method: 'POST', path: upper, headers: { host: 'h' }, body: '' }, SECRET, DATE, false);
      return outcome(() => verify({ ...req, path: lower }, secrets, { now: DATE })) === 'ok';
    }),
    { numRuns: 200 },
  );
  t.pass();
});

t.test('property: changing any single byte breaks verification', async (t) => {
  const run = (name: string, mutate: (req: SignableRequest, pick: number) => SignableRequest | undefined) => {
    fc.assert(
      fc.property(requestArb, fc.nat(), (g, pick) => {
        const req = signAndAttach(build(g), SECRET, DATE, g.contentSha256);
        const bad = mutate(req, pick);
        fc.pre(bad !== undefined);
        return outcome(() => verify(bad as SignableRequest, secrets, { now: DATE })) === 'SIGNATURE_INVALID';
      }),
      { numRuns: 200 },
    );
    t.pass(name);
  };
  run('body', (req, pick) => {
    const body = Buffer.from(req.body); // copy; string bodies become their UTF-8 bytes
    if (body.length === 0) return { ...req, body: Buffer.from([pick & 0xff]) };
    const i = pick % body.length;
    body[i] = (body[i] as number) ^ (1 + (pick % 255));
    return { ...req, body };
  });
  run('path', (req, pick) => {
    const i = pick % req.path.length;
    return { ...req, path: replaceAt(req.path, i) };
  });
  run('signed header value', (req, pick) => {
    const host = req.headers.Host as string;
    const trimmed = host.trim();
    const start = host.indexOf(trimmed);
    return { ...req, headers: { ...req.headers, Host: replaceAt(host, start + (pick % trimmed.length)) } };
  });
  run('query value', (req, pick) => {
    const q = req.query;
    if (q === undefined) return undefined;
    if (typeof q === 'string') {
      // replace a character inside some value (after an '=')
      const positions = [...q].map((_, i) => i).filter((i) => q.lastIndexOf('=', i - 1) > q.lastIndexOf('&', i - 1) && q[i] !== '&');
      if (positions.length === 0) return undefined;
      const i = positions[pick % positions.length] as number;
      return { ...req, query: replaceAt(q, i) };
    }
    const keys = Object.keys(q);
    if (keys.length === 0) return undefined;
    const k = keys[pick % keys.length] as string;
    const v = q[k] as string | string[];
    const first = typeof v === 'string' ? v : (v[0] as string);
    const changed = first === '' ? 'Q' : replaceAt(first, pick % first.length);
    return { ...req, query: { ...q, [k]: typeof v === 'string' ? changed : [changed, ...v.slice(1)] } };
  });
  run('signature', (req, pick) => {
    const auth = req.headers.Authorization as string;
    const at = auth.indexOf('Signature=') + 'Signature='.length + (pick % 64);
    const digit = (auth[at] as string).toLowerCase();
    const other = '0123456789abcdef'[(parseInt(digit, 16) + 1 + (pick % 15)) % 16] as string;
    return { ...req, headers: { ...req.headers, Authorization: auth.slice(0, at) + other + auth.slice(at + 1) } };
  });
});

t.test('property: key rotation — either of two secrets verifies, a third does not', async (t) => {
  const secretArb = fc.string({ minLength: 1, maxLength: 40 });
  fc.assert(
    fc.property(requestArb, secretArb, secretArb, secretArb, fc.boolean(), (g, oldS, newS, other, useNew) => {
      fc.pre(other !== oldS && other !== newS);
      const req = signAndAttach(build(g), useNew ? newS : oldS, DATE, g.contentSha256);
      return (
        outcome(() => verify(req, () => [oldS, newS], { now: DATE })) === 'ok' &&
        outcome(() => verify(req, () => [newS, oldS], { now: DATE })) === 'ok' &&
        outcome(() => verify(req, () => [other], { now: DATE })) === 'SIGNATURE_INVALID'
      );
    }),
    { numRuns: 200 },
  );
  t.pass();
});

t.test('property: skew within 15 min verifies, beyond is REQUEST_EXPIRED', async (t) => {
  const dateArb = fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z') }).map((d) => new Date(Math.floor(d.getTime() / 1000) * 1000));
  fc.assert(
    fc.property(dateArb, fc.integer({ min: -900, max: 900 }), fc.integer({ min: 901, max: 10_000_000 }), fc.boolean(), (date, within, beyond, future) => {
      const req = signAndAttach({ method: 'POST', path: '/sync', headers: { host: 'h' }, body: 'b' }, SECRET, date, false);
      const at = (s: number) => outcome(() => verify(req, secrets, { now: new Date(date.getTime() + s * 1000) }));
      return at(within) === 'ok' && at(future ? -beyond : beyond) === 'REQUEST_EXPIRED';
    }),
    { numRuns: 200 },
  );
  t.pass();
});

t.test('property: X-Sdk-Content-Sha256 that does not match the body is SIGNATURE_INVALID', async (t) => {
  fc.assert(
    fc.property(requestArb, fc.uint8Array({ maxLength: 64 }), (g, other) => {
      const req = signAndAttach(build(g), SECRET, DATE, true);
      fc.pre(!Buffer.from(other).equals(Buffer.from(req.body)));
      return outcome(() => verify({ ...req, body: Buffer.from(other) }, secrets, { now: DATE })) === 'SIGNATURE_INVALID';
    }),
    { numRuns: 200 },
  );
  t.pass();
});
