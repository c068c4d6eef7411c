/**
 * BucketBridge sender for AWS Lambda (Node.js 20, S3 trigger).
 *
 * Forwards the S3 event notification it is invoked with, unchanged, to BucketBridge's
 * `POST /sync`, signed with SDK-HMAC-SHA256. BucketBridge decodes the keys, routes them
 * to tasks by bucket name and replicates each object; this function only delivers.
 *
 * Built-ins only (node:crypto, global fetch): the deployment is this one file, with
 * nothing to bundle or patch.
 *
 * Environment:
 *   BB_SYNC_URL     e.g. https://bucketbridge.example.com/sync          (required)
 *   BB_ACCESS_KEY   the sender's access key id                          (required)
 *   BB_SECRET       the sender's secret                                 (required)
 *   BB_TASK         route every key to this task id (adds ?task=ID)     (optional)
 *   BB_TIMEOUT_MS   give up on one request after this long, default 10000 (optional;
 *                   keep it below the function timeout so the failure is ours, not a kill)
 *
 * BB_SECRET as a plain env var keeps the example self-contained; in production prefer
 * AWS Secrets Manager (read once per cold start, e.g. with the "AWS Parameters and
 * Secrets" Lambda extension), so the secret does not show in the console or in
 * `get-function-configuration` output.
 *
 * Failure contract: any non-2xx answer or network error THROWS. S3 invokes Lambda
 * asynchronously, so a throw makes Lambda retry the event (twice by default) and then
 * hand it to the function's on-failure destination / DLQ instead of dropping it.
 * Retrying is safe: BucketBridge treats events as hints and collapses duplicates.
 */
import { createHash, createHmac } from 'node:crypto';

const ALGORITHM = 'SDK-HMAC-SHA256';
const SIGNED_HEADERS = 'content-type;host;x-sdk-date';
const CONTENT_TYPE = 'application/json';
const DEFAULT_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------
// SDK-HMAC-SHA256 signer: a dependency-free copy of BucketBridge's src/auth/sdk-hmac.ts
// (restricted to what this sender signs). test/examples.test.ts checks that both
// produce the same signature, so do not "simplify" the encoding rules.

const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;

/**
 * Lenient percent-decoding to bytes, as the server does: `%XX` becomes that byte, a `%`
 * without two hex digits stays a literal `%`, `+` stays `+`, anything else is UTF-8.
 */
function percentDecode(s) {
  const bytes = [];
  for (let i = 0; i < s.length; ) {
    if (s[i] === '%' && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const char = String.fromCodePoint(s.codePointAt(i));
      bytes.push(...Buffer.from(char, 'utf8'));
      i += char.length;
    }
  }
  return Buffer.from(bytes);
}

/** Percent-encode bytes: the unreserved set A-Za-z0-9-_.~ as is, everything else as %XX (upper case). */
function percentEncode(bytes) {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += UNRESERVED.test(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

/** Path split on '/', each segment decoded then re-encoded, always ending in '/'. */
function canonicalUri(path) {
  const joined = path
    .split('/')
    .map((segment) => percentEncode(percentDecode(segment)))
    .join('/');
  return joined.endsWith('/') ? joined : joined + '/';
}

/** Raw query (no '?'): pairs decoded, empty keys dropped, sorted by key then value bytes, re-encoded. */
function canonicalQuery(query) {
  const pairs = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = percentDecode(eq === -1 ? part : part.slice(0, eq));
    if (key.length === 0) continue;
    pairs.push([key, percentDecode(eq === -1 ? '' : part.slice(eq + 1))]);
  }
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]) || Buffer.compare(a[1], b[1]));
  return pairs.map(([k, v]) => percentEncode(k) + '=' + percentEncode(v)).join('&');
}

function sha256Hex(data) {
  return createHash('sha256').update(data).digest('hex');
}

/** `YYYYMMDDTHHMMSSZ` in UTC. */
function sdkDate(date) {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/**
 * Headers that sign a request: Authorization, X-Sdk-Date, Host, Content-Type.
 * `url` is a URL or string; `body` a string or Buffer, hashed exactly as it will be sent.
 */
export function signRequest({ method = 'POST', url, body, accessKeyId, secret, date = new Date() }) {
  const u = new URL(url);
  const timestamp = sdkDate(date);
  // fetch sends Host as URL.host (default port omitted), so that is the value signed.
  const headers = { 'Content-Type': CONTENT_TYPE, Host: u.host, 'X-Sdk-Date': timestamp };
  const canonicalHeaders = `content-type:${CONTENT_TYPE}\nhost:${u.host}\nx-sdk-date:${timestamp}\n`;
  const canonicalRequest = [
    method.toUpperCase(),
    canonicalUri(u.pathname),
    canonicalQuery(u.search.replace(/^\?/, '')),
    canonicalHeaders,
    SIGNED_HEADERS,
    sha256Hex(body),
  ].join('\n');
  const stringToSign = `${ALGORITHM}\n${timestamp}\n${sha256Hex(canonicalRequest)}`;
  const signature = createHmac('sha256', secret).update(stringToSign, 'utf8').digest('hex');
  return {
    ...headers,
    Authorization: `${ALGORITHM} Access=${accessKeyId}, SignedHeaders=${SIGNED_HEADERS}, Signature=${signature}`,
  };
}

// ---------------------------------------------------------------------------
// Handler

function requiredEnv(name) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`environment variable ${name} is not set`);
  return value;
}

/** BB_SYNC_URL with `task=ID` appended to any query it already has. */
function syncUrl() {
  const url = new URL(requiredEnv('BB_SYNC_URL'));
  const task = process.env.BB_TASK;
  if (task) {
    const pair = `task=${encodeURIComponent(task)}`;
    url.search = url.search === '' ? pair : `${url.search.slice(1)}&${pair}`;
  }
  return url;
}

function summarize(event) {
  const records = Array.isArray(event?.Records) ? event.Records : [];
  return records.map((r) => `${r?.eventName} s3://${r?.s3?.bucket?.name}/${r?.s3?.object?.key}`);
}

export async function handler(event) {
  const url = syncUrl();
  const accessKeyId = requiredEnv('BB_ACCESS_KEY');
  const secret = requiredEnv('BB_SECRET');
  const timeoutMs = Number(process.env.BB_TIMEOUT_MS ?? DEFAULT_TIMEOUT_MS);

  const body = JSON.stringify(event);
  const { Host: _host, ...headers } = signRequest({ url, body, accessKeyId, secret });
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : DEFAULT_TIMEOUT_MS),
  });
  const text = await res.text();
  let answer;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = undefined;
  }
  if (!res.ok) {
    const code = answer?.error?.code ?? 'no error code';
    const message = answer?.error?.message ?? text.slice(0, 200);
    // The message names the objects, never the secret or the signature.
    throw new Error(`BucketBridge answered HTTP ${res.status} (${code}): ${message} — objects: ${summarize(event).join(', ')}`);
  }
  // 202: queued now. 200 with replayed=true: this exact signed request was already
  // accepted (a retried delivery), so it is queued too — success either way.
  console.log(
    JSON.stringify({
      status: res.status,
      replayed: answer?.replayed === true,
      accepted: answer?.accepted,
      duplicates: answer?.duplicates,
      ignored: answer?.ignored,
      objects: summarize(event),
    }),
  );
  return answer;
}
