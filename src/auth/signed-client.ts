/**
 * Client side of SDK-HMAC-SHA256: sign and POST a body. Used by the CLI's
 * `send`, the alert sender and the tests, on the same module the server
 * verifies with.
 */
import { sign, type Credentials } from './sdk-hmac.js';

export interface SignedResponse {
  status: number;
  body: unknown;
  text: string;
}

/** Headers for a signed request to `url` (host, content-type, x-sdk-date and authorization). */
export function signedHeaders(
  method: string,
  url: URL,
  body: Buffer | string,
  credentials: Credentials,
  options: { date?: Date; contentType?: string; contentSha256?: boolean } = {},
): Record<string, string> {
  const headers: Record<string, string> = {
    host: url.host,
    'content-type': options.contentType ?? 'application/json',
  };
  const signed = sign(
    { method, path: url.pathname, query: url.search.replace(/^\?/, ''), headers, body },
    credentials,
    { date: options.date, contentSha256: options.contentSha256 },
  );
  return { ...headers, ...signed.headers };
}

export async function signedPost(
  url: string | URL,
  body: Buffer | string,
  credentials: Credentials,
  options: { date?: Date; contentType?: string; contentSha256?: boolean; timeoutMs?: number } = {},
): Promise<SignedResponse> {
  const u = new URL(url);
  const headers = signedHeaders('POST', u, body, credentials, options);
  // fetch sets Host itself from the URL; the value we signed is the same.
  const { host: _host, ...sendHeaders } = headers;
  const res = await fetch(u, {
    method: 'POST',
    headers: sendHeaders,
    body,
    signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, text };
}
