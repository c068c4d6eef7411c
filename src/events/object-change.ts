/**
 * What every notification parser produces: a list of object keys that may have changed.
 *
 * Events are hints, not commands (DESIGN.md §1): a worker re-reads both sides before
 * acting, so `kind` and the other fields are informational (logs, metrics, ordering
 * hints) and never decide whether something is copied or deleted.
 */

/** `unknown` = the notification says "look at this key" without saying what happened; it is still reconciled. */
export type ChangeKind = 'created' | 'removed' | 'unknown';

export interface ObjectChange {
  /** Decoded, exact object key (no URL-encoding left). */
  key: string;
  bucket?: string;
  kind: ChangeKind;
  size?: number;
  /** As the platform sent it (OSS: upper-case hex); compare case-insensitively. */
  etag?: string;
  /** S3 only; orders events of one key, never across keys. */
  sequencer?: string;
  versionId?: string;
  eventName?: string;
  eventTime?: string;
}

export type EventFormat = 's3' | 's3-sns' | 's3-sqs' | 'eventbridge' | 'oss' | 'minio' | 'dth' | 'dth-list' | 'oms';

export interface ParsedNotification {
  format: EventFormat;
  changes: ObjectChange[];
  /** events deliberately not turned into changes, e.g. s3:TestEvent */
  ignored: { reason: string; count: number }[];
}

export type EventParseErrorCode = 'UNSUPPORTED_FORMAT' | 'NO_EVENTS' | 'INVALID_KEY' | 'TOO_MANY_KEYS';

export class EventParseError extends Error {
  override readonly name = 'EventParseError';
  constructor(
    readonly code: EventParseErrorCode,
    message: string,
    /** Where in the body the problem is, e.g. `Records[3].s3.object.key`, when it is one place. */
    readonly path?: string,
  ) {
    super(message);
  }
}
