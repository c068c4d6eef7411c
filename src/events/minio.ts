/**
 * MinIO webhook target: `{"EventName":"s3:ObjectCreated:Put","Key":"bucket/path/obj","Records":[…]}`.
 * The Records are S3-shaped (form-encoded keys, "s3:"-prefixed event names) and are used
 * whenever present. Only without Records do we fall back to the top-level `Key`, which MinIO
 * builds as bucket + "/" + the UNESCAPED object name, so it is split at the first '/' and
 * not decoded.
 */
import { optString, own, requireArray, unsupported, type Collector, type JsonObject } from './collect.js';
import { parseS3Records, s3Kind } from './s3.js';

export function isMinio(body: JsonObject): boolean {
  return Object.hasOwn(body, 'EventName') && Object.hasOwn(body, 'Key');
}

export function parseMinio(body: JsonObject, path: string, out: Collector): void {
  const records = own(body, 'Records');
  if (records !== undefined) {
    parseS3Records(requireArray(records, `${path}.Records`), `${path}.Records`, out);
    return;
  }
  const eventName = optString(body, 'EventName', path);
  const full = own(body, 'Key');
  if (typeof full !== 'string') throw unsupported(`${path}.Key must be a string "bucket/key"`, `${path}.Key`);
  const slash = full.indexOf('/');
  if (slash <= 0) throw unsupported(`${path}.Key must be "bucket/key"`, `${path}.Key`);
  out.add({
    rawKey: full.slice(slash + 1),
    encoding: 'none',
    index: 0,
    keyPath: `${path}.Key`,
    kind: s3Kind(eventName),
    bucket: full.slice(0, slash),
    eventName,
  });
}
