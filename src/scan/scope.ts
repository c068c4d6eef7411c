/**
 * What a scan covers. A request names at most one of `prefixes` and
 * `prefixList` (neither: the task's whole scope) plus optional filters; it is
 * stored as given (bb_scans.scope) and resolved when the scan runs.
 *
 * A scan never reaches outside its task: requested prefixes are intersected
 * with the task's source prefixes, so a scan of a task limited to "photos/"
 * cannot queue (or, with deletes on, delete) "docs/…" keys.
 *
 * Listing prefixes are normalised to a sorted set in which no prefix starts
 * with another; listing them in that order yields one stream in UTF-8 binary
 * order, which is what the merge-join needs.
 */
import type { ListedObject } from '../storage/object-store.js';
import { AppError } from '../errors.js';
import { globLiteralPrefix, GlobError, keyFilter, globToRegExp } from './glob.js';
import { compareKeys } from './key-order.js';

export interface ScanRequest {
  /** List only keys under these prefixes (within the task's own prefixes). */
  prefixes?: string[];
  /** Read the prefixes from an object: one per line, in the source bucket unless `bucket` names another (same endpoint). */
  prefixList?: { key: string; bucket?: string };
  /** Glob patterns: a key is in scope when it matches any include (or none are given) and no exclude. */
  include?: string[];
  exclude?: string[];
  /** Inclusive size bounds, in bytes. */
  minSize?: number;
  maxSize?: number;
  /** Only objects last modified after this instant (ISO 8601). */
  modifiedAfter?: string;
}

export type ScanMode = 'bucket' | 'prefixes' | 'prefix-list';

/** The scope as recorded: the request plus how its keys are chosen. */
export interface ScanScope extends ScanRequest {
  mode: ScanMode;
}

export const MAX_PREFIXES = 100_000;

export class ScanRequestError extends AppError {
  constructor(field: string, message: string) {
    super(400, 'INVALID_SCAN_REQUEST', `${field}: ${message}`, { field });
  }
}

/** Check a request beyond what its JSON schema says; returns the scope to record. */
export function scopeFromRequest(request: ScanRequest = {}): ScanScope {
  if (request.prefixes !== undefined && request.prefixList !== undefined) {
    throw new ScanRequestError('prefixList', 'give either prefixes or prefixList, not both');
  }
  if (request.prefixes && request.prefixes.length > MAX_PREFIXES) {
    throw new ScanRequestError('prefixes', `at most ${MAX_PREFIXES} prefixes`);
  }
  for (const [field, list] of [
    ['include', request.include],
    ['exclude', request.exclude],
  ] as const) {
    for (const pattern of list ?? []) {
      try {
        globToRegExp(pattern);
      } catch (err) {
        if (err instanceof GlobError) throw new ScanRequestError(field, err.message);
        throw err;
      }
    }
  }
  for (const field of ['minSize', 'maxSize'] as const) {
    const v = request[field];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new ScanRequestError(field, 'must be a non-negative integer');
  }
  if (request.minSize !== undefined && request.maxSize !== undefined && request.minSize > request.maxSize) {
    throw new ScanRequestError('maxSize', 'must not be smaller than minSize');
  }
  if (request.modifiedAfter !== undefined && Number.isNaN(Date.parse(request.modifiedAfter))) {
    throw new ScanRequestError('modifiedAfter', 'must be an ISO 8601 date-time');
  }
  if (request.prefixList !== undefined && request.prefixList.key === '') {
    throw new ScanRequestError('prefixList.key', 'must not be empty');
  }
  const mode: ScanMode = request.prefixList ? 'prefix-list' : request.prefixes ? 'prefixes' : 'bucket';
  const scope: ScanScope = { mode };
  // Copy only known fields, so what is stored is exactly what was understood.
  if (request.prefixes) scope.prefixes = [...request.prefixes];
  if (request.prefixList) scope.prefixList = { key: request.prefixList.key, ...(request.prefixList.bucket ? { bucket: request.prefixList.bucket } : {}) };
  if (request.include?.length) scope.include = [...request.include];
  if (request.exclude?.length) scope.exclude = [...request.exclude];
  if (request.minSize !== undefined) scope.minSize = request.minSize;
  if (request.maxSize !== undefined) scope.maxSize = request.maxSize;
  if (request.modifiedAfter !== undefined) scope.modifiedAfter = new Date(request.modifiedAfter).toISOString();
  return scope;
}

/**
 * Sorted (UTF-8 binary order), deduplicated, and with every prefix that
 * starts with another prefix of the set removed. [""] is the whole bucket.
 */
export function normalizePrefixes(prefixes: readonly string[]): string[] {
  const sorted = [...new Set(prefixes)].sort(compareKeys);
  const out: string[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    // Sorted order puts a prefix right before everything that starts with it.
    if (last !== undefined && p.startsWith(last)) continue;
    out.push(p);
  }
  return out;
}

/** Keys under some prefix of `a` and some prefix of `b`, as a normalised prefix set. */
export function intersectPrefixes(a: readonly string[], b: readonly string[]): string[] {
  const na = normalizePrefixes(a);
  const nb = normalizePrefixes(b);
  if (nb.length === 1 && nb[0] === '') return na;
  if (na.length === 1 && na[0] === '') return nb;
  const out: string[] = [];
  for (const p of na) {
    for (const q of nb) {
      if (p.startsWith(q)) out.push(p);
      else if (q.startsWith(p)) out.push(q);
    }
  }
  return normalizePrefixes(out);
}

export interface ResolvedScope {
  /** Listing prefixes, normalised; [""] lists the whole bucket, [] lists nothing. */
  prefixes: string[];
  /** Key filter from the globs, applied to both listings alike. */
  keyFilter?: (key: string) => boolean;
  /** Attribute filter (size, modification time), applied to the source object of a key, or the destination's when only it exists. */
  objectFilter?: (object: ListedObject) => boolean;
}

/**
 * Turn a recorded scope into listing prefixes and filters. `taskPrefixes` are
 * the task's source prefixes; `listed` is what the request asked for (its own
 * prefixes or the prefix-list's lines), undefined for the whole task scope.
 */
export function resolveScope(scope: ScanScope, taskPrefixes: readonly string[] | undefined, listed: readonly string[] | undefined): ResolvedScope {
  let prefixes = normalizePrefixes(taskPrefixes && taskPrefixes.length > 0 ? taskPrefixes : ['']);
  if (listed !== undefined) prefixes = intersectPrefixes(prefixes, listed);
  // Include globs can only match keys that start with their literal prefix: list only those.
  if (scope.include && scope.include.length > 0) prefixes = intersectPrefixes(prefixes, scope.include.map(globLiteralPrefix));
  const resolved: ResolvedScope = { prefixes };
  const kf = keyFilter(scope.include, scope.exclude);
  if (kf) resolved.keyFilter = kf;
  const { minSize, maxSize } = scope;
  const after = scope.modifiedAfter !== undefined ? Date.parse(scope.modifiedAfter) : undefined;
  if (minSize !== undefined || maxSize !== undefined || after !== undefined) {
    resolved.objectFilter = (o) =>
      (minSize === undefined || o.size >= minSize) &&
      (maxSize === undefined || o.size <= maxSize) &&
      (after === undefined || o.lastModified.getTime() > after);
  }
  return resolved;
}
