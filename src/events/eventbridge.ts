/**
 * Amazon EventBridge S3 events:
 * `{"detail-type":"Object Created"|"Object Deleted"|…, "source":"aws.s3", "time",
 *   "detail":{bucket:{name}, object:{key, size, etag, sequencer, "version-id"}}}`.
 * The key is NOT encoded here (unlike S3 notifications).
 * One event per request; an SQS batch of them is handled in detect.ts.
 */
import { optSize, optString, own, requireObject, unsupported, type Collector, type JsonObject } from './collect.js';
import type { ChangeKind } from './object-change.js';

export function isEventBridge(body: JsonObject): boolean {
  return Object.hasOwn(body, 'detail-type') && Object.hasOwn(body, 'detail');
}

/**
 * "Object Created" → created; "Object Deleted" (including lifecycle expiration, which
 * EventBridge reports as Object Deleted with reason "Lifecycle Expiration") → removed;
 * restore, tags, ACL, storage-class and access-tier events → 'unknown' (still reconciled).
 */
export function eventBridgeKind(detailType: string): ChangeKind {
  if (detailType === 'Object Created') return 'created';
  if (detailType === 'Object Deleted') return 'removed';
  return 'unknown';
}

export function parseEventBridge(body: JsonObject, path: string, out: Collector): void {
  const source = own(body, 'source');
  if (source !== 'aws.s3') throw unsupported(`${path}.source must be "aws.s3" for an EventBridge object event`, `${path}.source`);
  const detailType = own(body, 'detail-type');
  if (typeof detailType !== 'string') throw unsupported(`${path}.detail-type must be a string`, `${path}.detail-type`);
  const detail = requireObject(own(body, 'detail'), `${path}.detail`);
  const object = requireObject(own(detail, 'object'), `${path}.detail.object`);
  const bucket = own(detail, 'bucket');
  out.add({
    rawKey: own(object, 'key'),
    encoding: 'none',
    index: 0,
    keyPath: `${path}.detail.object.key`,
    kind: eventBridgeKind(detailType),
    bucket: bucket === undefined ? undefined : optString(requireObject(bucket, `${path}.detail.bucket`), 'name', `${path}.detail.bucket`),
    size: optSize(object, 'size', `${path}.detail.object`),
    etag: optString(object, 'etag', `${path}.detail.object`),
    sequencer: optString(object, 'sequencer', `${path}.detail.object`),
    versionId: optString(object, 'version-id', `${path}.detail.object`),
    eventName: detailType,
    eventTime: optString(body, 'time', path),
  });
}
