/**
 * Amazon S3 event notifications (and S3-compatible servers that copy the shape):
 * `{"Records":[{eventName, eventTime, s3:{bucket:{name}, object:{key, size, eTag, versionId, sequencer}}}]}`.
 *
 * - The key is form-URL-encoded: `+` is a space, `%2B` is a plus (AWS documents this).
 * - A record is recognised by its `s3.object` member, not by `eventSource`, because
 *   compatible servers write "minio:s3", "ceph:s3", or nothing there.
 * - `s3:TestEvent` (sent once when a notification configuration is saved) is not an
 *   object change: zero changes, ignored reason 'test-event', and not an error, so the
 *   sender does not retry it forever.
 * SNS / SQS envelopes around these are unwrapped in detect.ts.
 */
import { optSize, optString, requireObject, own, type Collector, type JsonObject } from './collect.js';
import type { ChangeKind } from './object-change.js';

/**
 * ObjectCreated:* → created. ObjectRemoved:* (Delete, DeleteMarkerCreated) and
 * LifecycleExpiration:* (Delete, DeleteMarkerCreated) → removed: the current version is gone.
 * Everything else — ObjectRestore:*, Replication:*, LifecycleTransition, ObjectTagging:*,
 * ObjectAcl:Put, IntelligentTiering — leaves the bytes as they were, or is news we do not
 * model: 'unknown', which still reconciles (cheap, and always safe).
 * MinIO and Ceph prefix names with "s3:"; that is stripped first.
 */
export function s3Kind(eventName: string | undefined): ChangeKind {
  if (eventName === undefined) return 'unknown';
  const name = eventName.startsWith('s3:') ? eventName.slice(3) : eventName;
  if (name.startsWith('ObjectCreated:')) return 'created';
  if (name.startsWith('ObjectRemoved:') || name.startsWith('LifecycleExpiration:')) return 'removed';
  return 'unknown';
}

export function isS3Record(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.hasOwn(v, 's3');
}

export function isS3TestEvent(body: JsonObject): boolean {
  return own(body, 'Event') === 's3:TestEvent';
}

/** One S3 record; `path` is its JSON path, e.g. `Records[3]`. */
export function parseS3Record(record: unknown, index: number, path: string, out: Collector): void {
  const r = requireObject(record, path);
  const s3 = requireObject(own(r, 's3'), `${path}.s3`);
  const object = requireObject(own(s3, 'object'), `${path}.s3.object`);
  const bucket = own(s3, 'bucket');
  const eventName = optString(r, 'eventName', path);
  out.add({
    rawKey: own(object, 'key'),
    encoding: 'form',
    index,
    keyPath: `${path}.s3.object.key`,
    kind: s3Kind(eventName),
    bucket: bucket === undefined ? undefined : optString(requireObject(bucket, `${path}.s3.bucket`), 'name', `${path}.s3.bucket`),
    size: optSize(object, 'size', `${path}.s3.object`),
    etag: optString(object, 'eTag', `${path}.s3.object`),
    sequencer: optString(object, 'sequencer', `${path}.s3.object`),
    versionId: optString(object, 'versionId', `${path}.s3.object`),
    eventName,
    eventTime: optString(r, 'eventTime', path),
  });
}

export function parseS3Records(records: unknown[], path: string, out: Collector): void {
  records.forEach((record, i) => parseS3Record(record, i, `${path}[${i}]`, out));
}
