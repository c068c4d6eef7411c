/**
 * Alibaba Cloud OSS events as delivered by a Function Compute OSS trigger:
 * `{"events":[{eventName:"ObjectCreated:PutObject", eventSource:"acs:oss", eventTime, region,
 *   oss:{bucket:{name}, object:{key, size, eTag, deltaSize}}}]}`. eTag is upper-case hex;
 * there is no sequencer.
 *
 * Key encoding: NOT encoded. Alibaba's own Function Compute samples (image resize, zip
 * decompress, the OSS-to-OMS sender in seeds/oms-oss-sync-requests.txt) and AWS DTH's
 * OSS sender all pass `oss.object.key` straight to GetObject/HeadObject or forward it
 * unchanged, which only works if it is the plain key; the trigger documentation says
 * nothing about encoding it. Not verified against a live bucket: if a key with a space
 * or non-ASCII character ever arrives encoded, flip OSS_KEY_ENCODING to 'percent'.
 */
import { optSize, optString, own, requireObject, type Collector } from './collect.js';
import type { KeyEncoding } from './keys.js';
import type { ChangeKind } from './object-change.js';

/** The one switch for OSS key decoding (see the file header). */
export const OSS_KEY_ENCODING: KeyEncoding = 'none';

export type OssDisposition = { kind: ChangeKind } | { ignore: string };

/** Multipart steps before Complete: no object has changed yet, Complete will follow. */
const MULTIPART_IN_PROGRESS = new Set(['InitiateMultipartUpload', 'UploadPart', 'UploadPartCopy']);

/**
 * ObjectCreated:{PutObject, PostObject, CopyObject, CompleteMultipartUpload, AppendObject,
 * PutSymlink} → created. ObjectRemoved:{DeleteObject, DeleteObjects} → removed.
 * ObjectRemoved:AbortMultipartUpload → 'unknown': Alibaba files it under ObjectRemoved, but
 * an abort discards parts, never a committed object, so claiming a removal would mislead
 * logs/metrics; a reconcile confirms nothing changed. Multipart steps before Complete and
 * ObjectDownloaded:* are ignored (nothing changed). ObjectReplication:ObjectCreated/Removed
 * map like their plain counterparts; anything else (ObjectModified:UpdateObjectMeta,
 * ObjectRestore:*, …) → 'unknown'. An "oss:" prefix (trigger-config / EventBridge spelling)
 * is stripped first.
 */
export function ossDisposition(eventName: string | undefined): OssDisposition {
  if (eventName === undefined) return { kind: 'unknown' };
  const name = eventName.startsWith('oss:') ? eventName.slice(4) : eventName;
  const colon = name.indexOf(':');
  const group = colon === -1 ? name : name.slice(0, colon);
  const action = colon === -1 ? '' : name.slice(colon + 1);
  switch (group) {
    case 'ObjectCreated':
      return MULTIPART_IN_PROGRESS.has(action) ? { ignore: 'multipart-in-progress' } : { kind: 'created' };
    case 'ObjectRemoved':
      return action === 'AbortMultipartUpload' ? { kind: 'unknown' } : { kind: 'removed' };
    case 'ObjectDownloaded':
      return { ignore: 'not-a-change' };
    case 'ObjectReplication':
      return action === 'ObjectCreated' ? { kind: 'created' } : action === 'ObjectRemoved' ? { kind: 'removed' } : { kind: 'unknown' };
    default:
      return { kind: 'unknown' };
  }
}

export function parseOssEvents(events: unknown[], path: string, out: Collector): void {
  events.forEach((event, i) => {
    const p = `${path}[${i}]`;
    const e = requireObject(event, p);
    const oss = requireObject(own(e, 'oss'), `${p}.oss`);
    const object = requireObject(own(oss, 'object'), `${p}.oss.object`);
    const eventName = optString(e, 'eventName', p);
    const disposition = ossDisposition(eventName);
    if ('ignore' in disposition) {
      out.ignore(disposition.ignore);
      return;
    }
    const bucket = own(oss, 'bucket');
    out.add({
      rawKey: own(object, 'key'),
      encoding: OSS_KEY_ENCODING,
      index: i,
      keyPath: `${p}.oss.object.key`,
      kind: disposition.kind,
      bucket: bucket === undefined ? undefined : optString(requireObject(bucket, `${p}.oss.bucket`), 'name', `${p}.oss.bucket`),
      size: optSize(object, 'size', `${p}.oss.object`),
      etag: optString(object, 'eTag', `${p}.oss.object`),
      versionId: optString(object, 'versionId', `${p}.oss.object`),
      eventName,
      eventTime: optString(e, 'eventTime', p),
    });
  });
}
