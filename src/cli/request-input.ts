/**
 * The request pieces `sign` and `send` take from the command line: target URL,
 * body (exact bytes, since the signature covers their hash) and signing date.
 */
import { readFile } from 'node:fs/promises';
import { parseSdkDate } from '../auth/sdk-hmac.js';
import { UsageError } from './command.js';

export const BODY_OPTIONS = {
  file: { type: 'string' },
  data: { type: 'string' },
} as const;

export function parseTargetUrl(value: string | undefined): URL {
  if (value === undefined) throw new UsageError('--url is required');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(value)} is not an absolute URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http:// or https://');
  // Fragments never reach the server, and credentials in the URL would be sent as-is.
  if (url.hash !== '' || url.username !== '' || url.password !== '') throw new UsageError('--url must not carry a #fragment or user:password@');
  return url;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/**
 * The body as bytes: `--file PATH` (or `-` for stdin) read untouched, `--data STR` as
 * UTF-8, neither → empty (only when `required` is false).
 */
export async function readBody(
  values: { file?: string; data?: string },
  stdin: NodeJS.ReadableStream,
  required: boolean,
): Promise<Buffer> {
  if (values.file !== undefined && values.data !== undefined) throw new UsageError('give either --file or --data, not both');
  if (values.data !== undefined) return Buffer.from(values.data, 'utf8');
  if (values.file === undefined) {
    if (required) throw new UsageError('--file (or --data) is required');
    return Buffer.alloc(0);
  }
  if (values.file === '-') return readAll(stdin);
  try {
    return await readFile(values.file);
  } catch (err) {
    throw new UsageError(`cannot read --file ${values.file}: ${(err as Error).message}`);
  }
}

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * `--date`: either the X-Sdk-Date form `YYYYMMDDTHHMMSSZ` or ISO 8601 with an explicit
 * zone. A zone-less time is refused: it would silently mean local time, and a
 * signature made for the wrong hour fails as REQUEST_EXPIRED far from its cause.
 */
export function parseSigningDate(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const sdk = parseSdkDate(value);
  if (sdk !== undefined) return sdk;
  const d = ISO_WITH_ZONE.test(value) ? new Date(value) : new Date(NaN);
  if (!Number.isFinite(d.getTime())) {
    throw new UsageError(`--date ${JSON.stringify(value)} is neither YYYYMMDDTHHMMSSZ nor ISO 8601 with a zone (2024-05-01T12:00:00Z)`);
  }
  return d;
}
