/**
 * SDK-HMAC-SHA256 — the request-signing scheme of Huawei API Gateway / OMS (DESIGN.md §4).
 *
 * Senders in the field use Huawei's published APIG signers (the Python one is in
 * /work/shared/seeds/oms-oss-sync-requests.txt), so where DESIGN.md leaves a detail
 * open this module follows what those signers actually put on the wire:
 *
 *  - Percent-encoding (path segments, query keys and values) uses the RFC 3986
 *    unreserved set `A-Za-z0-9-_.~`; every other UTF-8 byte becomes `%XX`, upper-case
 *    hex (Python's `quote(s, safe='~')`).
 *  - Decoding is lenient, like Python's `unquote`: a `%` that is not followed by two
 *    hex digits stays a literal `%` (and is re-encoded as `%25`), so a request can
 *    never make canonicalisation throw. Decoding works on bytes, so a path holding
 *    bytes that are not UTF-8 canonicalises to those same bytes (Python would fold them
 *    into U+FFFD; no real sender signs such a path).
 *  - Query strings are decoded with plain percent-decoding: `+` is a literal plus,
 *    NOT a space (Python's `unquote`; Go's signer differs here). Pairs are sorted by
 *    decoded key, then decoded value, in byte order (= code-point order, which is
 *    what Python/Go `sort` do); an empty key is dropped, `k` alone means `k=`.
 *  - CanonicalURI follows DESIGN.md: split the raw path on `/`, then decode and
 *    re-encode each segment. Huawei's signers decode the whole path first and then
 *    split, so the two differ only for an encoded slash (`%2F`) inside a segment;
 *    BucketBridge's routes never carry one. Splitting first keeps `/a%2Fb` and `/a/b`
 *    distinct, so a signature for one path cannot be replayed against the other.
 *  - CanonicalHeaders: names lower-cased, values trimmed of ASCII whitespace. A header
 *    that occurs more than once (array value, or the same name in two cases) has its
 *    trimmed values joined with `,` in arrival order — Huawei's signers never repeat a
 *    header, and Node already joins most repeats with ", " which trims the same way.
 *  - `X-Sdk-Content-Sha256`, when present, replaces the body hash in the canonical
 *    request (as in Huawei's signer). The verifier additionally requires it to be the
 *    hex SHA-256 of the body actually received; the literal `UNSIGNED-PAYLOAD` is
 *    REJECTED, because BucketBridge acts on the body, so the body must be covered.
 *
 * Verification order: parse Authorization → look up the access key → check the
 * signed date / headers / content hash → compare signatures → check clock skew.
 * Skew is checked last so that REQUEST_EXPIRED is only ever said about a request
 * whose signature was right: the sender then knows to fix its clock, not its key.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export const ALGORITHM = 'SDK-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
/** Default allowed distance between X-Sdk-Date and server time, in seconds (DESIGN.md §4). */
export const DEFAULT_MAX_SKEW_SECONDS = 15 * 60;

const HEADER_DATE = 'x-sdk-date';
const HEADER_CONTENT_SHA256 = 'x-sdk-content-sha256';
const HEADER_AUTHORIZATION = 'authorization';

export type SignatureErrorCode = 'SIGNATURE_INVALID' | 'REQUEST_EXPIRED' | 'UNKNOWN_ACCESS_KEY';

export class SignatureError extends Error {
  override readonly name = 'SignatureError';
  constructor(
    readonly code: SignatureErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface SignableRequest {
  method: string;
  /** Raw path as received (may contain %XX), without the query string. */
  path: string;
  /**
   * Either the raw query string without the leading '?' (preferred on the server: it is
   * what the sender signed), or already-decoded key/values. Do not pass a query object
   * produced by Node's `querystring`/fastify: it turns `+` into a space, the signers don't.
   */
  query?: Record<string, string | string[]> | string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | string;
}

export interface Credentials {
  accessKeyId: string;
  secret: string;
}

export interface SignOptions {
  /** Signing time; defaults to now. Sets X-Sdk-Date. */
  date?: Date;
  /** Headers to sign; default: host (if present), x-sdk-date, content-type (if present), x-sdk-content-sha256 (if contentSha256). */
  signedHeaders?: string[];
  /** Also send X-Sdk-Content-Sha256 (hex SHA-256 of the body). */
  contentSha256?: boolean;
}

export interface SignResult {
  /** Headers to add to the request: Authorization, X-Sdk-Date and, when asked for, X-Sdk-Content-Sha256. */
  headers: Record<string, string>;
  canonicalRequest: string;
  stringToSign: string;
  signature: string;
}

export interface ParsedAuthorization {
  accessKeyId: string;
  signedHeaders: string[];
  signature: string;
}

export interface VerifyOptions {
  now?: Date;
  maxSkewSeconds?: number;
}

export interface VerifyResult {
  accessKeyId: string;
  signature: string;
  sdkDate: Date;
}

// ---------------------------------------------------------------------------
// Encoding

/** Byte → is it in the unreserved set A-Za-z0-9-_.~ ? Precomputed because this runs per byte. */
const UNRESERVED_BYTE: readonly boolean[] = (() => {
  const table: boolean[] = new Array<boolean>(256).fill(false);
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~';
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = true;
  return table;
})();

const HEX_UPPER = '0123456789ABCDEF';

/** Percent-encode bytes: unreserved bytes as themselves, every other byte as %XX (upper-case). */
function encodeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (UNRESERVED_BYTE[b] === true) out += String.fromCharCode(b);
    else out += '%' + HEX_UPPER[b >> 4] + HEX_UPPER[b & 15];
  }
  return out;
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30; // 0-9
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10; // A-F
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10; // a-f
  return -1;
}

/**
 * Lenient percent-decoding to bytes: `%XX` → that byte, a malformed `%` → a literal '%',
 * any other character → its UTF-8 bytes. `+` is left alone (see file header).
 */
function percentDecodeToBytes(s: string): Buffer {
  if (!s.includes('%')) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  const escaped: number[] = [];
  let i = 0;
  while (i < s.length) {
    const pct = s.indexOf('%', i);
    const end = pct === -1 ? s.length : pct;
    if (end > i) {
      // '%' is ASCII, so cutting at it never splits a surrogate pair.
      parts.push(Buffer.from(escaped), Buffer.from(s.slice(i, end), 'utf8'));
      escaped.length = 0;
    }
    if (pct === -1) break;
    const hi = pct + 2 < s.length ? hexValue(s.charCodeAt(pct + 1)) : -1;
    const lo = pct + 2 < s.length ? hexValue(s.charCodeAt(pct + 2)) : -1;
    if (hi >= 0 && lo >= 0) {
      escaped.push((hi << 4) | lo);
      i = pct + 3;
    } else {
      escaped.push(0x25); // malformed escape: a literal '%'
      i = pct + 1;
    }
  }
  parts.push(Buffer.from(escaped));
  return Buffer.concat(parts);
}

/** Decode leniently then re-encode: the canonical form of one path segment / query key / value. */
function canonicalComponent(raw: string): string {
  return encodeBytes(percentDecodeToBytes(raw));
}

// ---------------------------------------------------------------------------
// Canonical request

export function canonicalUri(path: string): string {
  // Each segment separately (DESIGN.md §4); empty segments are kept so '//' stays '//'.
  const joined = path.split('/').map(canonicalComponent).join('/');
  return joined.endsWith('/') ? joined : joined + '/';
}

export function canonicalQuery(query: SignableRequest['query']): string {
  const pairs: Array<[Buffer, Buffer]> = [];
  if (typeof query === 'string') {
    for (const part of query.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const rawKey = eq === -1 ? part : part.slice(0, eq);
      const rawValue = eq === -1 ? '' : part.slice(eq + 1);
      const key = percentDecodeToBytes(rawKey);
      if (key.length === 0) continue; // Huawei's signers drop empty keys
      pairs.push([key, percentDecodeToBytes(rawValue)]);
    }
  } else if (query !== undefined) {
    for (const [k, v] of Object.entries(query)) {
      if (k === '') continue;
      const key = Buffer.from(k, 'utf8');
      for (const value of typeof v === 'string' ? [v] : v) pairs.push([key, Buffer.from(value, 'utf8')]);
    }
  }
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]) || Buffer.compare(a[1], b[1]));
  return pairs.map(([k, v]) => encodeBytes(k) + '=' + encodeBytes(v)).join('&');
}

/** ASCII whitespace, as Python's str.strip() removes it from header values. */
function trimHeaderValue(v: string): string {
  return v.replace(/^[\t\n\v\f\r ]+|[\t\n\v\f\r ]+$/g, '');
}

/** Lower-cased header name → trimmed values in arrival order (names in different case merged). */
function headerMap(headers: SignableRequest['headers']): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    const list = map.get(lower) ?? [];
    for (const v of typeof value === 'string' ? [value] : value) list.push(trimHeaderValue(v));
    map.set(lower, list);
  }
  return map;
}

/** The canonical value of a header, or undefined when absent. Repeats are joined with ','. */
function headerValue(map: Map<string, string[]>, name: string): string | undefined {
  const values = map.get(name);
  return values === undefined || values.length === 0 ? undefined : values.join(',');
}

function normalizeSignedHeaders(signedHeaders: readonly string[]): string[] {
  const names = [...new Set(signedHeaders.map((h) => h.trim().toLowerCase()))];
  names.sort(); // header names are ASCII, so UTF-16 order is byte order
  return names;
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The canonical request. `signedHeaders` is lower-cased, de-duplicated and sorted here.
 * Throws SignatureError('SIGNATURE_INVALID') when a signed header is absent from the request,
 * because no canonical form exists for it.
 */
export function canonicalRequest(req: SignableRequest, signedHeaders: string[]): string {
  const map = headerMap(req.headers);
  const names = normalizeSignedHeaders(signedHeaders);
  let canonicalHeaders = '';
  for (const name of names) {
    const value = headerValue(map, name);
    if (value === undefined) throw new SignatureError('SIGNATURE_INVALID', `signed header '${name}' is missing from the request`);
    canonicalHeaders += `${name}:${value}\n`;
  }
  const payloadHash = headerValue(map, HEADER_CONTENT_SHA256) ?? sha256Hex(req.body);
  return [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQuery(req.query),
    canonicalHeaders,
    names.join(';'),
    payloadHash,
  ].join('\n');
}

export function stringToSign(sdkDate: string, canonical: string): string {
  return `${ALGORITHM}\n${sdkDate}\n${sha256Hex(canonical)}`;
}

function hmac(secret: string, data: string): Buffer {
  return createHmac('sha256', secret).update(data, 'utf8').digest();
}

// ---------------------------------------------------------------------------
// Dates

export function formatSdkDate(d: Date): string {
  const t = d.getTime();
  if (!Number.isFinite(t)) throw new RangeError('formatSdkDate: invalid Date');
  const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ, or ±YYYYYY-… outside years 0–9999
  if (iso.length !== 24) throw new RangeError('formatSdkDate: year outside 0000–9999');
  return iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + 'T' + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
}

const SDK_DATE_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;

/** Parses exactly `YYYYMMDDTHHMMSSZ` (UTC); anything else, or an impossible date such as Feb 30, gives undefined. */
export function parseSdkDate(s: string): Date | undefined {
  const m = SDK_DATE_RE.exec(s);
  if (m === null) return undefined;
  const [, y, mo, da, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const d = new Date(0);
  // setUTCFullYear, not Date.UTC: Date.UTC maps years 0–99 to 1900–1999.
  d.setUTCFullYear(y, mo - 1, da);
  d.setUTCHours(h, mi, se, 0);
  // Date rolls over out-of-range fields (month 13, 25:00); the round trip rejects those.
  return formatSdkDate(d) === s ? d : undefined;
}

// ---------------------------------------------------------------------------
// Authorization header

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9a-z-]+$/; // RFC 9110 token, lower-case only
const ACCESS_KEY_RE = /^[\x21-\x2b\x2d-\x7e]+$/; // visible ASCII except ','
const SIGNATURE_RE = /^[0-9a-fA-F]{64}$/;

function malformed(why: string): SignatureError {
  return new SignatureError('SIGNATURE_INVALID', `malformed Authorization header: ${why}`);
}

/**
 * Parses `SDK-HMAC-SHA256 Access=AK, SignedHeaders=a;b;c, Signature=hex`.
 * Parameters may come in any order with any whitespace around commas, but each exactly
 * once; SignedHeaders must be lower-case, sorted and without duplicates (what every
 * Huawei signer emits), so there is one reading of which headers were signed.
 */
export function parseAuthorization(header: string): ParsedAuthorization {
  const trimmed = header.trim();
  const sp = trimmed.search(/[ \t]/);
  const algorithm = sp === -1 ? trimmed : trimmed.slice(0, sp);
  if (algorithm !== ALGORITHM) {
    throw new SignatureError('SIGNATURE_INVALID', `unsupported Authorization scheme '${algorithm.slice(0, 32)}', expected ${ALGORITHM}`);
  }
  if (sp === -1) throw malformed('no parameters');
  const params = new Map<string, string>();
  for (const part of trimmed.slice(sp + 1).split(',')) {
    const p = part.trim();
    const eq = p.indexOf('=');
    if (eq <= 0) throw malformed(`parameter '${p.slice(0, 32)}' is not name=value`);
    const name = p.slice(0, eq);
    if (name !== 'Access' && name !== 'SignedHeaders' && name !== 'Signature') throw malformed(`unknown parameter '${name.slice(0, 32)}'`);
    if (params.has(name)) throw malformed(`duplicate parameter '${name}'`);
    params.set(name, p.slice(eq + 1));
  }
  const accessKeyId = params.get('Access');
  const signed = params.get('SignedHeaders');
  const signature = params.get('Signature');
  if (accessKeyId === undefined || signed === undefined || signature === undefined) {
    throw malformed('Access, SignedHeaders and Signature are all required');
  }
  if (!ACCESS_KEY_RE.test(accessKeyId)) throw malformed('Access is empty or has invalid characters');
  if (!SIGNATURE_RE.test(signature)) throw malformed('Signature is not 64 hex digits');
  const signedHeaders = signed.split(';');
  for (let i = 0; i < signedHeaders.length; i++) {
    const h = signedHeaders[i] as string;
    if (!TOKEN_RE.test(h)) throw malformed(`SignedHeaders entry '${h.slice(0, 32)}' is not a lower-case header name`);
    if (i > 0 && (signedHeaders[i - 1] as string) >= h) throw malformed('SignedHeaders is not sorted or has duplicates');
  }
  return { accessKeyId, signedHeaders, signature: signature.toLowerCase() };
}

// ---------------------------------------------------------------------------
// Sign / verify

/** Copy of `headers` without any case variant of the given names. */
function withoutHeaders(headers: SignableRequest['headers'], names: readonly string[]): SignableRequest['headers'] {
  const out: SignableRequest['headers'] = {};
  for (const [k, v] of Object.entries(headers)) if (!names.includes(k.toLowerCase())) out[k] = v;
  return out;
}

export function sign(req: SignableRequest, credentials: Credentials, options: SignOptions = {}): SignResult {
  if (!ACCESS_KEY_RE.test(credentials.accessKeyId)) throw new TypeError('sign: accessKeyId is empty or has characters the Authorization header cannot carry');
  if (credentials.secret === '') throw new TypeError('sign: secret is empty');
  const sdkDate = formatSdkDate(options.date ?? new Date());
  // The date (and content hash) come from this call, never from stale headers on the request.
  const replaced = [HEADER_DATE, HEADER_AUTHORIZATION, ...(options.contentSha256 === true ? [HEADER_CONTENT_SHA256] : [])];
  const added: Record<string, string> = { 'X-Sdk-Date': sdkDate };
  if (options.contentSha256 === true) added['X-Sdk-Content-Sha256'] = sha256Hex(req.body);
  const headers: SignableRequest['headers'] = { ...withoutHeaders(req.headers, replaced), ...added };
  const signable: SignableRequest = { ...req, headers };

  const map = headerMap(headers);
  let names: string[];
  if (options.signedHeaders === undefined) {
    names = [HEADER_DATE];
    if (map.has('host')) names.push('host');
    if (map.has('content-type')) names.push('content-type');
    if (options.contentSha256 === true) names.push(HEADER_CONTENT_SHA256);
  } else {
    names = options.signedHeaders;
  }
  names = normalizeSignedHeaders(names);
  if (!names.includes(HEADER_DATE)) throw new TypeError('sign: signedHeaders must include x-sdk-date');
  for (const n of names) {
    if (!TOKEN_RE.test(n)) throw new TypeError(`sign: '${n}' is not a valid header name`);
    if (!map.has(n)) throw new TypeError(`sign: signed header '${n}' is not present on the request`);
  }

  const canonical = canonicalRequest(signable, names);
  const sts = stringToSign(sdkDate, canonical);
  const signature = hmac(credentials.secret, sts).toString('hex');
  return {
    headers: {
      Authorization: `${ALGORITHM} Access=${credentials.accessKeyId}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
      ...added,
    },
    canonicalRequest: canonical,
    stringToSign: sts,
    signature,
  };
}

/**
 * Verify against one or more candidate secrets (a sender may have two during rotation).
 * Returns the parsed auth on success, throws SignatureError otherwise.
 * Empty-string secrets are ignored (an HMAC under an empty key proves nothing); a key
 * whose lookup yields no usable secret is UNKNOWN_ACCESS_KEY.
 */
export function verify(
  req: SignableRequest,
  lookupSecrets: (accessKeyId: string) => string[] | undefined,
  options: VerifyOptions = {},
): VerifyResult {
  const maxSkewSeconds = options.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS;
  if (!(maxSkewSeconds >= 0) || !Number.isFinite(maxSkewSeconds)) throw new RangeError('verify: maxSkewSeconds must be a finite number >= 0');

  const map = headerMap(req.headers);
  const authValues = map.get(HEADER_AUTHORIZATION);
  if (authValues === undefined || authValues.length === 0) throw new SignatureError('SIGNATURE_INVALID', 'missing Authorization header');
  if (authValues.length > 1) throw new SignatureError('SIGNATURE_INVALID', 'more than one Authorization header');
  const auth = parseAuthorization(authValues[0] as string);

  const secrets = (lookupSecrets(auth.accessKeyId) ?? []).filter((s) => s !== '');
  if (secrets.length === 0) throw new SignatureError('UNKNOWN_ACCESS_KEY', `unknown access key '${auth.accessKeyId.slice(0, 64)}'`);

  if (!auth.signedHeaders.includes(HEADER_DATE)) throw new SignatureError('SIGNATURE_INVALID', 'X-Sdk-Date must be among the signed headers');
  const sdkDateText = headerValue(map, HEADER_DATE);
  if (sdkDateText === undefined) throw new SignatureError('SIGNATURE_INVALID', 'missing X-Sdk-Date header');
  const sdkDate = parseSdkDate(sdkDateText);
  if (sdkDate === undefined) throw new SignatureError('SIGNATURE_INVALID', 'X-Sdk-Date is not YYYYMMDDTHHMMSSZ');

  const claimedHash = headerValue(map, HEADER_CONTENT_SHA256);
  if (claimedHash !== undefined) {
    if (claimedHash === UNSIGNED_PAYLOAD) {
      throw new SignatureError('SIGNATURE_INVALID', 'X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD is not accepted; the body must be signed');
    }
    // Not secret (anyone can hash the body), so an ordinary comparison is fine here.
    if (!/^[0-9a-fA-F]{64}$/.test(claimedHash) || claimedHash.toLowerCase() !== sha256Hex(req.body)) {
      throw new SignatureError('SIGNATURE_INVALID', 'X-Sdk-Content-Sha256 does not match the body');
    }
  }

  // Throws SIGNATURE_INVALID when a signed header is absent.
  const canonical = canonicalRequest(req, auth.signedHeaders);
  const sts = stringToSign(sdkDateText, canonical);
  const provided = Buffer.from(auth.signature, 'hex');
  let matched = false;
  // Try every candidate, without stopping early, so timing does not tell which secret matched.
  for (const secret of secrets) {
    const expected = hmac(secret, sts);
    if (expected.length === provided.length && timingSafeEqual(expected, provided)) matched = true;
  }
  if (!matched) throw new SignatureError('SIGNATURE_INVALID', 'signature does not match');

  const now = (options.now ?? new Date()).getTime();
  if (Math.abs(now - sdkDate.getTime()) > maxSkewSeconds * 1000) {
    throw new SignatureError('REQUEST_EXPIRED', `X-Sdk-Date ${sdkDateText} is more than ${maxSkewSeconds}s from server time`);
  }
  return { accessKeyId: auth.accessKeyId, signature: auth.signature, sdkDate };
}
