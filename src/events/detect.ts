/**
 * Picks the parser by the body's shape and unwraps SNS / SQS envelopes.
 *
 * Shape rules, first match wins (each marker is an own property of a JSON object):
 *   JSON array                          → dth-list   (array of {key,size})
 *   object_keys                         → oms
 *   EventName + Key                     → minio      (its Records are used when present)
 *   Records whose entries hold `body`   → s3-sqs     (eventSource "aws:sqs"; Lambda's SQS event)
 *   Records whose entries hold `Sns`    → s3-sns     (Lambda's SNS event)
 *   Records (anything else, or empty)   → s3
 *   Type + Message                      → s3-sns     (raw SNS envelope; only Type "Notification" is accepted)
 *   Event "s3:TestEvent"                → s3         (zero changes, ignored 'test-event')
 *   detail-type + detail                → eventbridge
 *   events                              → oss
 *   key                                 → dth
 * A Records array mixing entry kinds is UNSUPPORTED_FORMAT rather than a guess.
 *
 * Envelopes nest at most two deep (SQS → SNS → event): an SQS body may be an SNS envelope
 * or an event; an SNS message must be an event. Events inside envelopes may be S3
 * (Records), s3:TestEvent, EventBridge or DTH — what AWS actually puts in those queues and
 * topics. Nothing here recurses on caller-controlled depth.
 */
import { isObject, own, requireArray, requireObject, unsupported, type Collector, type JsonObject } from './collect.js';
import { isDth, parseDthList, parseDthMessage } from './dth.js';
import { isEventBridge, parseEventBridge } from './eventbridge.js';
import { isMinio, parseMinio } from './minio.js';
import type { EventFormat } from './object-change.js';
import { isOms, parseOms } from './oms.js';
import { parseOssEvents } from './oss.js';
import { isS3Record, isS3TestEvent, parseS3Records } from './s3.js';

const ROOT = '$';

type RecordKind = 'sqs' | 'sns' | 's3';

function recordKind(record: unknown): RecordKind | undefined {
  if (!isObject(record)) return undefined;
  if (Object.hasOwn(record, 'body')) return 'sqs';
  if (Object.hasOwn(record, 'Sns')) return 'sns';
  if (isS3Record(record)) return 's3';
  return undefined;
}

/** All entries of a Records array must be the same kind; an empty array counts as S3. */
function recordsKind(records: unknown[], path: string): RecordKind {
  let kind: RecordKind | undefined;
  records.forEach((r, i) => {
    const k = recordKind(r);
    if (k === undefined) throw unsupported(`${path}[${i}] is neither an S3 record, an SQS message nor an SNS record`, `${path}[${i}]`);
    if (kind !== undefined && k !== kind) throw unsupported(`${path} mixes ${kind} and ${k} entries`, `${path}[${i}]`);
    kind = k;
  });
  return kind ?? 's3';
}

function parseJsonString(v: unknown, path: string): unknown {
  if (typeof v !== 'string') throw unsupported(`${path} must be a JSON string`, path);
  try {
    return JSON.parse(v) as unknown;
  } catch {
    throw unsupported(`${path} is not valid JSON`, path);
  }
}

/** A leaf event found inside an envelope (S3 event, test event, EventBridge event, DTH message). */
function parseWrappedEvent(value: unknown, path: string, out: Collector): void {
  if (!isObject(value)) throw unsupported(`${path} must hold a JSON object`, path);
  if (Object.hasOwn(value, 'Records')) {
    const records = requireArray(own(value, 'Records'), `${path}.Records`);
    records.forEach((r, i) => {
      if (!isS3Record(r)) throw unsupported(`${path}.Records[${i}] is not an S3 record`, `${path}.Records[${i}]`);
    });
    parseS3Records(records, `${path}.Records`, out);
  } else if (isS3TestEvent(value)) {
    out.ignore('test-event');
  } else if (isEventBridge(value)) {
    parseEventBridge(value, path, out);
  } else if (isDth(value)) {
    parseDthMessage(value, 0, path, out);
  } else {
    throw unsupported(`${path} holds no recognised object event`, path);
  }
}

/** An SNS envelope `{Type:"Notification", Message:"<json>"}`; its message must be an event, not another envelope. */
function parseSnsEnvelope(envelope: unknown, path: string, out: Collector): void {
  const env = requireObject(envelope, path);
  const type = own(env, 'Type');
  if (type !== 'Notification') {
    // SubscriptionConfirmation etc.: SNS cannot sign our requests, so it never talks to us directly.
    throw unsupported(`${path}.Type must be "Notification", got ${JSON.stringify(type) ?? 'nothing'}`, `${path}.Type`);
  }
  parseWrappedEvent(parseJsonString(own(env, 'Message'), `${path}.Message`), `${path}.Message`, out);
}

function isSnsEnvelope(v: JsonObject): boolean {
  return typeof own(v, 'Type') === 'string' && Object.hasOwn(v, 'Message');
}

/** An SQS message body: an SNS envelope (second and last level) or an event. */
function parseSqsBody(body: unknown, path: string, out: Collector): void {
  if (isObject(body) && isSnsEnvelope(body)) {
    parseSnsEnvelope(body, path, out);
  } else {
    parseWrappedEvent(body, path, out);
  }
}

/** Parse any supported body into `out`; returns the detected format. */
export function parseAny(body: unknown, out: Collector): EventFormat {
  if (Array.isArray(body)) {
    body.forEach((m, i) => {
      if (!isObject(m) || !isDth(m)) throw unsupported(`${ROOT}[${i}] is not a {"key": ...} message`, `${ROOT}[${i}]`);
    });
    parseDthList(body, ROOT, out);
    return 'dth-list';
  }
  if (!isObject(body)) throw unsupported('notification body must be a JSON object or array');
  return parseObject(body, out);
}

function parseObject(body: JsonObject, out: Collector): EventFormat {
  if (isOms(body)) {
    parseOms(body, ROOT, out);
    return 'oms';
  }
  if (isMinio(body)) {
    parseMinio(body, ROOT, out);
    return 'minio';
  }
  if (Object.hasOwn(body, 'Records')) {
    const path = `${ROOT}.Records`;
    const records = requireArray(own(body, 'Records'), path);
    switch (recordsKind(records, path)) {
      case 'sqs':
        records.forEach((r, i) => {
          const p = `${path}[${i}].body`;
          parseSqsBody(parseJsonString(own(r as JsonObject, 'body'), p), p, out);
        });
        return 's3-sqs';
      case 'sns':
        records.forEach((r, i) => parseSnsEnvelope(own(r as JsonObject, 'Sns'), `${path}[${i}].Sns`, out));
        return 's3-sns';
      case 's3':
        parseS3Records(records, path, out);
        return 's3';
    }
  }
  if (isSnsEnvelope(body)) {
    parseSnsEnvelope(body, ROOT, out);
    return 's3-sns';
  }
  if (isS3TestEvent(body)) {
    out.ignore('test-event');
    return 's3';
  }
  if (isEventBridge(body)) {
    parseEventBridge(body, ROOT, out);
    return 'eventbridge';
  }
  if (Object.hasOwn(body, 'events')) {
    parseOssEvents(requireArray(own(body, 'events'), `${ROOT}.events`), `${ROOT}.events`, out);
    return 'oss';
  }
  if (isDth(body)) {
    parseDthMessage(body, 0, ROOT, out);
    return 'dth';
  }
  throw unsupported('notification body matches no supported format');
}
