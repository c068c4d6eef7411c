/**
 * An independent SigV4 (header auth) verifier for tests, written from AWS's
 * specification: s3rver checks only the access key id, so a request signed
 * wrongly would pass every other test. Checked against AWS's published
 * example in test/storage-s3-lean.test.ts.
 */
import { createHash, createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string): Buffer => createHmac('sha256', key).update(s, 'utf8').digest();
const encode = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((pair) => {
      const i = pair.indexOf('=');
      const k = decodeURIComponent(i < 0 ? pair : pair.slice(0, i));
      const v = i < 0 ? '' : decodeURIComponent(pair.slice(i + 1));
      return [encode(k), encode(v)] as const;
    })
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/** Whether the request's Authorization header is a valid SigV4 signature with `secret` (S3 rules: the path is signed as sent). */
export function sigV4Valid(request: { method: string; url: string; headers: IncomingHttpHeaders }, secret: string): { ok: boolean; reason?: string } {
  const auth = String(request.headers['authorization'] ?? '');
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return { ok: false, reason: `not a SigV4 Authorization header: ${auth}` };
  const [, , day, region, service, signedHeaders, signature] = m as unknown as string[];
  const amzDate = String(request.headers['x-amz-date'] ?? '');
  if (!amzDate.startsWith(day!)) return { ok: false, reason: `x-amz-date ${amzDate} is not in the credential's day ${day}` };
  const payloadHash = request.headers['x-amz-content-sha256'];
  if (typeof payloadHash !== 'string') return { ok: false, reason: 'no x-amz-content-sha256' };
  const names = signedHeaders!.split(';');
  if (!names.includes('host')) return { ok: false, reason: 'host is not signed' };
  const canonicalHeaders = names
    .map((n) => {
      const v = request.headers[n];
      return `${n}:${(Array.isArray(v) ? v.join(',') : (v ?? '')).trim().replace(/\s+/g, ' ')}\n`;
    })
    .join('');
  const q = request.url.indexOf('?');
  const path = q < 0 ? request.url : request.url.slice(0, q);
  const canonicalRequest = [request.method, path, canonicalQuery(q < 0 ? '' : request.url.slice(q + 1)), canonicalHeaders, signedHeaders, payloadHash].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day!), region!), service!), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return expected === signature ? { ok: true } : { ok: false, reason: `signature mismatch; canonical request:\n${canonicalRequest}` };
}
