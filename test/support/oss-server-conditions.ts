/**
 * Conditional requests (If-Match & co., and their x-oss-copy-source-if-*
 * twins on copies) and byte ranges.
 */
import { normalizeEtag } from './oss-server-digest.js';
import { OssError, preconditionFailed } from './oss-server-errors.js';
import type { StoredObject } from './oss-server-store.js';

/** The four validator headers, named per request kind (plain GET vs copy source). */
export interface ConditionHeaderNames {
  readonly ifMatch: string;
  readonly ifNoneMatch: string;
  readonly ifModifiedSince: string;
  readonly ifUnmodifiedSince: string;
}

export const GET_CONDITIONS: ConditionHeaderNames = {
  ifMatch: 'if-match',
  ifNoneMatch: 'if-none-match',
  ifModifiedSince: 'if-modified-since',
  ifUnmodifiedSince: 'if-unmodified-since',
};

export const COPY_SOURCE_CONDITIONS: ConditionHeaderNames = {
  ifMatch: 'x-oss-copy-source-if-match',
  ifNoneMatch: 'x-oss-copy-source-if-none-match',
  ifModifiedSince: 'x-oss-copy-source-if-modified-since',
  ifUnmodifiedSince: 'x-oss-copy-source-if-unmodified-since',
};

function etagListMatches(headerValue: string, etag: string): boolean {
  return headerValue.split(',').some((candidate) => candidate.trim() === '*' || normalizeEtag(candidate) === etag.toUpperCase());
}

function parseHttpDate(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? undefined : parsed;
}

/**
 * Evaluates validators in RFC 7232 order. Throws PreconditionFailed (412) for
 * failed If-Match / If-Unmodified-Since; returns 'not-modified' (304) for
 * satisfied If-None-Match / If-Modified-Since; otherwise 'proceed'.
 */
export function evaluatePreconditions(
  object: StoredObject,
  header: (name: string) => string | undefined,
  names: ConditionHeaderNames,
): 'proceed' | 'not-modified' {
  const ifMatch = header(names.ifMatch);
  if (ifMatch !== undefined && !etagListMatches(ifMatch, object.etag)) throw preconditionFailed('If-Match');

  const lastModified = object.lastModified.getTime();
  const unmodifiedSince = parseHttpDate(header(names.ifUnmodifiedSince));
  if (ifMatch === undefined && unmodifiedSince !== undefined && lastModified > unmodifiedSince) {
    throw preconditionFailed('If-Unmodified-Since');
  }

  const ifNoneMatch = header(names.ifNoneMatch);
  if (ifNoneMatch !== undefined && etagListMatches(ifNoneMatch, object.etag)) return 'not-modified';

  const modifiedSince = parseHttpDate(header(names.ifModifiedSince));
  if (ifNoneMatch === undefined && modifiedSince !== undefined && lastModified <= modifiedSince) return 'not-modified';

  return 'proceed';
}

/** Inclusive byte range. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range against an
 * object of `size` bytes. Like OSS, a syntactically invalid or multi-range
 * header is ignored (whole object, 200) while a start beyond the end is 416.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null) return undefined;
  const [, startText = '', endText = ''] = match;
  if (startText === '' && endText === '') return undefined;

  if (startText === '') {
    const suffix = Number(endText);
    if (suffix === 0) return undefined;
    if (size === 0) throw invalidRange(header, size);
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }

  const start = Number(startText);
  const requestedEnd = endText === '' ? size - 1 : Number(endText);
  if (requestedEnd < start) return undefined;
  if (start >= size) throw invalidRange(header, size);
  return { start, end: Math.min(requestedEnd, size - 1) };
}

function invalidRange(header: string, size: number): OssError {
  return new OssError('InvalidRange', 'The requested range cannot be satisfied.', {
    RangeRequested: header,
    ActualObjectSize: String(size),
  });
}
