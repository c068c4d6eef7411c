/**
 * Shared plumbing for the format parsers: the accumulator they push into, and typed
 * field readers.
 *
 * Error policy for wrong types inside a recognised format (one rule, all formats):
 *  - anything wrong with a KEY (missing, not a string, empty, bad encoding, too long,
 *    control characters) → INVALID_KEY, naming the index and JSON path;
 *  - anything else of the wrong type or shape (a record that is not an object, a size
 *    that is negative / fractional / not a number, an eTag that is not a string, an
 *    envelope whose body is not JSON, …) → UNSUPPORTED_FORMAT, naming the path:
 *    the body claims a format but does not conform to it.
 * Optional string fields that are `null` or "" are treated as absent, because S3-compatible
 * servers (Ceph, MinIO) send `"versionId": ""` / `null` for "no value".
 * Unknown extra fields are ignored: platforms add fields over time.
 */
import { decodeKey, type KeyEncoding } from './keys.js';
import { EventParseError, type ChangeKind, type ObjectChange } from './object-change.js';

export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Own property only, so that names like `constructor` never resolve to Object.prototype. */
export function own(obj: JsonObject, name: string): unknown {
  return Object.hasOwn(obj, name) ? obj[name] : undefined;
}

export function unsupported(message: string, path?: string): EventParseError {
  return new EventParseError('UNSUPPORTED_FORMAT', message, path);
}

export function requireObject(v: unknown, path: string): JsonObject {
  if (!isObject(v)) throw unsupported(`${path} must be an object`, path);
  return v;
}

export function requireArray(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v)) throw unsupported(`${path} must be an array`, path);
  return v;
}

export function optString(obj: JsonObject, name: string, path: string): string | undefined {
  const v = own(obj, name);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw unsupported(`${path}.${name} must be a string`, `${path}.${name}`);
  return v;
}

const DECIMAL = /^(0|[1-9]\d{0,15})$/;

/**
 * Size in bytes: a non-negative safe integer. A decimal string is accepted too, because
 * Ceph RGW sends `"size": "1024"`.
 */
export function optSize(obj: JsonObject, name: string, path: string): number | undefined {
  const v = own(obj, name);
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && DECIMAL.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw unsupported(`${path}.${name} must be a non-negative integer`, `${path}.${name}`);
  }
  return n;
}

export interface ChangeFields {
  rawKey: unknown;
  encoding: KeyEncoding;
  index: number;
  keyPath: string;
  kind: ChangeKind;
  bucket?: string | undefined;
  size?: number | undefined;
  etag?: string | undefined;
  sequencer?: string | undefined;
  versionId?: string | undefined;
  eventName?: string | undefined;
  eventTime?: string | undefined;
}

/** Accumulates changes and ignored events across envelopes; enforces maxKeys as it goes. */
export class Collector {
  readonly changes: ObjectChange[] = [];
  /** Events seen, turned into changes or ignored; zero means NO_EVENTS. */
  events = 0;
  private readonly ignoredCounts = new Map<string, number>();

  constructor(readonly maxKeys: number) {}

  add(f: ChangeFields): void {
    const key = decodeKey(f.rawKey, f.encoding, { index: f.index, path: f.keyPath });
    this.events++;
    // Checked as we go, so an oversized batch costs at most maxKeys+1 decodes.
    if (this.changes.length >= this.maxKeys) {
      throw new EventParseError('TOO_MANY_KEYS', `more than ${this.maxKeys} object keys in one notification`);
    }
    // Only defined fields are set, so changes compare and serialise cleanly.
    const change: ObjectChange = { key, kind: f.kind };
    if (f.bucket !== undefined) change.bucket = f.bucket;
    if (f.size !== undefined) change.size = f.size;
    if (f.etag !== undefined) change.etag = f.etag;
    if (f.sequencer !== undefined) change.sequencer = f.sequencer;
    if (f.versionId !== undefined) change.versionId = f.versionId;
    if (f.eventName !== undefined) change.eventName = f.eventName;
    if (f.eventTime !== undefined) change.eventTime = f.eventTime;
    this.changes.push(change);
  }

  ignore(reason: string): void {
    this.events++;
    this.ignoredCounts.set(reason, (this.ignoredCounts.get(reason) ?? 0) + 1);
  }

  ignored(): { reason: string; count: number }[] {
    return [...this.ignoredCounts].map(([reason, count]) => ({ reason, count }));
  }
}
