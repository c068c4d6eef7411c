/**
 * Notification parsing (DESIGN.md §4): one fixture per format, built here from the
 * documented shapes; key decoding rules per format; every error code.
 */
import t from 'tap';
import fc from 'fast-check';
import { EventParseError, parseNotification, parseOmsKeys, type ObjectChange } from '../src/events/index.js';

/** The EventParseError code a call fails with (and its message), or 'ok'. */
function failure(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
    return { code: 'ok', message: '' };
  } catch (err) {
    if (err instanceof EventParseError) return { code: err.code, message: err.message };
    throw err;
  }
}
const codeOf = (body: unknown, maxKeys?: number): string => failure(() => parseNotification(body, maxKeys === undefined ? undefined : { maxKeys })).code;
const keysOf = (body: unknown): string[] => parseNotification(body).changes.map((c) => c.key);

// ---------------------------------------------------------------------------
// Fixtures from the documented shapes

function s3Record(key: string, eventName = 'ObjectCreated:Put', extra: Record<string, unknown> = {}) {
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'ap-east-1',
    eventTime: '2020-09-14T05:31:50.329Z',
    eventName,
    userIdentity: { principalId: 'AW0C5LIQ7QYNI' },
    requestParameters: { sourceIPAddress: '203.0.113.9' },
    responseElements: { 'x-amz-request-id': '4F17BD3B5AF27799', 'x-amz-id-2': 'example' },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'sss',
      bucket: { name: 'hk-bucket', ownerIdentity: { principalId: 'AW0C5LIQ7QYNI' }, arn: 'arn:aws:s3:::hk-bucket' },
      object: { key, size: 6, eTag: '5a2a525d0ccf28ee9d2d6748ec0f3f0c', sequencer: '005F5F00497AE2D491', ...extra },
    },
  };
}
const s3Event = (...records: unknown[]) => ({ Records: records });
const testEvent = {
  Service: 'Amazon S3',
  Event: 's3:TestEvent',
  Time: '2024-03-05T06:07:08.000Z',
  Bucket: 'hk-bucket',
  RequestId: '5582815E1AEA5ADF',
  HostId: '8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE',
};
const snsEnvelope = (message: unknown) => ({
  Type: 'Notification',
  MessageId: '22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324',
  TopicArn: 'arn:aws:sns:us-east-1:123456789012:s3-events',
  Subject: 'Amazon S3 Notification',
  Message: JSON.stringify(message),
  Timestamp: '2024-03-05T06:07:08.000Z',
  SignatureVersion: '1',
  Signature: 'EXAMPLE',
});
const sqsBatch = (...bodies: unknown[]) => ({
  Records: bodies.map((b, i) => ({
    messageId: `059f36b4-87a3-44ab-83d2-66197564883${i}`,
    receiptHandle: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...',
    body: typeof b === 'string' ? b : JSON.stringify(b),
    attributes: { ApproximateReceiveCount: '1', SentTimestamp: '1545082649183' },
    messageAttributes: {},
    md5OfBody: 'e4e68fb7bd0e697a0ae8f1bb342846b3',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-2:123456789012:my-queue',
    awsRegion: 'us-east-2',
  })),
});
const eventBridge = (detailType: string, key: string, extra: Record<string, unknown> = {}) => ({
  version: '0',
  id: '17793124-05d4-b198-2fde-7ededc63b103',
  'detail-type': detailType,
  source: 'aws.s3',
  account: '111122223333',
  time: '2021-11-12T00:00:00Z',
  region: 'ca-central-1',
  resources: ['arn:aws:s3:::example-bucket'],
  detail: {
    version: '0',
    bucket: { name: 'example-bucket' },
    object: { key, size: 5, etag: 'b1946ac92492d2347c6235b4d2611184', 'version-id': 'IYV3p45BT0ac8hjHg1houSdS1a.Mro8e', sequencer: '617f08299329d189', ...extra },
    'request-id': 'N4N7GDK58NMKJ12R',
    requester: '123456789012',
    reason: 'PutObject',
  },
});
const ossEvent = (eventName: string, key: string) => ({
  eventName,
  eventSource: 'acs:oss',
  eventTime: '2022-08-13T06:45:43.000Z',
  eventVersion: '1.0',
  oss: {
    bucket: { arn: 'acs:oss:cn-hangzhou:123456789:src-bucket', name: 'src-bucket', ownerIdentity: '123456789' },
    object: { deltaSize: 122539, eTag: '688A7BF4F233DC9C88A80BF985AB7329', key, size: 122539 },
    ossSchemaVersion: '1.0',
    ruleId: '9adac8e253828f4f7c0466d941fa3db81161****',
  },
  region: 'cn-hangzhou',
  requestParameters: { sourceIPAddress: '140.205.XX.XX' },
  responseElements: { requestId: '58F9FF2D3DF792092E12044C' },
  userIdentity: { principalId: '123456789' },
});
const ossBody = (...events: unknown[]) => ({ events });
const minioBody = (key: string, withRecords = true) => ({
  EventName: 's3:ObjectCreated:Put',
  Key: `images/${key}`,
  ...(withRecords
    ? {
        Records: [
          {
            eventVersion: '2.0',
            eventSource: 'minio:s3',
            awsRegion: '',
            eventTime: '2024-03-05T06:07:08.123Z',
            eventName: 's3:ObjectCreated:Put',
            userIdentity: { principalId: 'minioadmin' },
            s3: {
              s3SchemaVersion: '1.0',
              configurationId: 'Config',
              bucket: { name: 'images', ownerIdentity: { principalId: 'minioadmin' }, arn: 'arn:aws:s3:::images' },
              object: { key: encodeURIComponent(key).replace(/%20/g, '+'), size: 3, eTag: 'acbd18db4cc2f85cedef654fccc4a4d8', versionId: '', contentType: 'text/plain', sequencer: '17B9A1B2C3D4E5F6' },
            },
          },
        ],
      }
    : {}),
});

// ---------------------------------------------------------------------------
// One test per format

t.test('s3: S3 event notification', async (t) => {
  const parsed = parseNotification(s3Event(s3Record('aa.txt'), s3Record('dir/b.txt', 'ObjectRemoved:Delete', { size: undefined, versionId: '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY' })));
  t.equal(parsed.format, 's3');
  t.same(parsed.ignored, []);
  t.same(parsed.changes, [
    { key: 'aa.txt', bucket: 'hk-bucket', kind: 'created', size: 6, etag: '5a2a525d0ccf28ee9d2d6748ec0f3f0c', sequencer: '005F5F00497AE2D491', eventName: 'ObjectCreated:Put', eventTime: '2020-09-14T05:31:50.329Z' },
    {
      key: 'dir/b.txt',
      bucket: 'hk-bucket',
      kind: 'removed',
      etag: '5a2a525d0ccf28ee9d2d6748ec0f3f0c',
      sequencer: '005F5F00497AE2D491',
      versionId: '3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY',
      eventName: 'ObjectRemoved:Delete',
      eventTime: '2020-09-14T05:31:50.329Z',
    },
  ] satisfies ObjectChange[]);
});

t.test('s3: event names → kinds', async (t) => {
  const cases: [string, string][] = [
    ['ObjectCreated:Put', 'created'],
    ['ObjectCreated:Post', 'created'],
    ['ObjectCreated:Copy', 'created'],
    ['ObjectCreated:CompleteMultipartUpload', 'created'],
    ['ObjectRemoved:Delete', 'removed'],
    ['ObjectRemoved:DeleteMarkerCreated', 'removed'],
    ['LifecycleExpiration:Delete', 'removed'],
    ['LifecycleExpiration:DeleteMarkerCreated', 'removed'],
    ['ObjectRestore:Post', 'unknown'],
    ['ObjectRestore:Completed', 'unknown'],
    ['ObjectRestore:Delete', 'unknown'],
    ['Replication:OperationFailedReplication', 'unknown'],
    ['LifecycleTransition', 'unknown'],
    ['ObjectTagging:Put', 'unknown'],
    ['ObjectAcl:Put', 'unknown'],
    ['IntelligentTiering', 'unknown'],
    ['s3:ObjectCreated:Put', 'created'],
  ];
  for (const [name, kind] of cases) t.equal(parseNotification(s3Event(s3Record('k', name))).changes[0]?.kind, kind, name);
  t.equal(parseNotification(s3Event({ s3: { object: { key: 'k' } } })).changes[0]?.kind, 'unknown', 'no eventName');
});

t.test('s3: s3:TestEvent is ignored, not an error', async (t) => {
  t.same(parseNotification(testEvent), { format: 's3', changes: [], ignored: [{ reason: 'test-event', count: 1 }] });
  t.same(parseNotification(sqsBatch(testEvent, s3Event(s3Record('a')), testEvent)).ignored, [{ reason: 'test-event', count: 2 }], 'inside an SQS batch');
  t.same(parseNotification(snsEnvelope(testEvent)).ignored, [{ reason: 'test-event', count: 1 }], 'inside SNS');
});

t.test('s3-sns: SNS envelope, raw and as delivered to Lambda', async (t) => {
  const raw = parseNotification(snsEnvelope(s3Event(s3Record('x%2By+z.txt'))));
  t.equal(raw.format, 's3-sns');
  t.same(raw.changes.map((c) => [c.key, c.kind]), [['x+y z.txt', 'created']]);
  const lambda = parseNotification({
    Records: [
      { EventSource: 'aws:sns', EventVersion: '1.0', EventSubscriptionArn: 'arn:aws:sns:us-east-1:123456789012:s3-events:sub', Sns: snsEnvelope(s3Event(s3Record('a'))) },
      { EventSource: 'aws:sns', EventVersion: '1.0', EventSubscriptionArn: 'arn:aws:sns:us-east-1:123456789012:s3-events:sub', Sns: snsEnvelope(s3Event(s3Record('b'), s3Record('c'))) },
    ],
  });
  t.equal(lambda.format, 's3-sns');
  t.same(lambda.changes.map((c) => c.key), ['a', 'b', 'c']);
});

t.test('s3-sqs: SQS batch of S3 events, SNS envelopes and EventBridge events', async (t) => {
  const parsed = parseNotification(
    sqsBatch(s3Event(s3Record('one'), s3Record('two')), snsEnvelope(s3Event(s3Record('three', 'ObjectRemoved:Delete'))), eventBridge('Object Created', 'four'), { key: 'five', size: 1 }),
  );
  t.equal(parsed.format, 's3-sqs');
  t.same(parsed.changes.map((c) => [c.key, c.kind]), [
    ['one', 'created'],
    ['two', 'created'],
    ['three', 'removed'],
    ['four', 'created'],
    ['five', 'unknown'],
  ]);
});

t.test('envelopes nest at most two levels', async (t) => {
  t.equal(codeOf(sqsBatch(snsEnvelope(snsEnvelope(s3Event(s3Record('a')))))), 'UNSUPPORTED_FORMAT', 'SQS → SNS → SNS');
  t.equal(codeOf(snsEnvelope(snsEnvelope(s3Event(s3Record('a'))))), 'UNSUPPORTED_FORMAT', 'SNS → SNS');
  t.equal(codeOf(sqsBatch(sqsBatch(s3Event(s3Record('a'))))), 'UNSUPPORTED_FORMAT', 'SQS → SQS');
  t.equal(codeOf(snsEnvelope(sqsBatch(s3Event(s3Record('a'))))), 'UNSUPPORTED_FORMAT', 'SNS → SQS');
  t.equal(codeOf(sqsBatch('not json')), 'UNSUPPORTED_FORMAT', 'SQS body not JSON');
  t.equal(codeOf({ ...snsEnvelope(s3Event(s3Record('a'))), Type: 'SubscriptionConfirmation' }), 'UNSUPPORTED_FORMAT', 'SNS subscription confirmation');
  t.equal(codeOf({ Records: [{ eventSource: 'aws:sqs', body: 42 }] }), 'UNSUPPORTED_FORMAT', 'SQS body not a string');
});

t.test('eventbridge: Object Created / Deleted / others; key not encoded', async (t) => {
  const created = parseNotification(eventBridge('Object Created', 'a+b%2B c.txt'));
  t.equal(created.format, 'eventbridge');
  t.same(created.changes, [
    {
      key: 'a+b%2B c.txt',
      bucket: 'example-bucket',
      kind: 'created',
      size: 5,
      etag: 'b1946ac92492d2347c6235b4d2611184',
      sequencer: '617f08299329d189',
      versionId: 'IYV3p45BT0ac8hjHg1houSdS1a.Mro8e',
      eventName: 'Object Created',
      eventTime: '2021-11-12T00:00:00Z',
    },
  ]);
  t.equal(parseNotification(eventBridge('Object Deleted', 'k')).changes[0]?.kind, 'removed');
  for (const dt of ['Object Restore Initiated', 'Object Restore Completed', 'Object Restore Expired', 'Object Tags Added', 'Object Tags Deleted', 'Object ACL Updated', 'Object Storage Class Changed', 'Object Access Tier Changed']) {
    t.equal(parseNotification(eventBridge(dt, 'k')).changes[0]?.kind, 'unknown', dt);
  }
  t.equal(codeOf({ ...eventBridge('Object Created', 'k'), source: 'aws.ec2' }), 'UNSUPPORTED_FORMAT', 'not an S3 event');
  t.equal(codeOf([eventBridge('Object Created', 'k')]), 'UNSUPPORTED_FORMAT', 'a bare array of EventBridge events is not accepted');
});

t.test('oss: Function Compute trigger event; key not encoded; eTag kept as sent', async (t) => {
  const parsed = parseNotification(ossBody(ossEvent('ObjectCreated:PutObject', '照片/a b+c%20d.jpg')));
  t.equal(parsed.format, 'oss');
  t.same(parsed.changes, [
    {
      key: '照片/a b+c%20d.jpg',
      bucket: 'src-bucket',
      kind: 'created',
      size: 122539,
      etag: '688A7BF4F233DC9C88A80BF985AB7329',
      eventName: 'ObjectCreated:PutObject',
      eventTime: '2022-08-13T06:45:43.000Z',
    },
  ]);
  t.notOk('sequencer' in (parsed.changes[0] ?? {}), 'OSS has no sequencer');
});

t.test('oss: every event name', async (t) => {
  const changes: [string, string][] = [
    ['ObjectCreated:PutObject', 'created'],
    ['ObjectCreated:PostObject', 'created'],
    ['ObjectCreated:CopyObject', 'created'],
    ['ObjectCreated:CompleteMultipartUpload', 'created'],
    ['ObjectCreated:AppendObject', 'created'],
    ['ObjectCreated:PutSymlink', 'created'],
    ['ObjectRemoved:DeleteObject', 'removed'],
    ['ObjectRemoved:DeleteObjects', 'removed'],
    // an abort discards parts, never a committed object: reconciled, but not claimed as a removal
    ['ObjectRemoved:AbortMultipartUpload', 'unknown'],
    ['ObjectReplication:ObjectCreated', 'created'],
    ['ObjectReplication:ObjectRemoved', 'removed'],
    ['ObjectReplication:ObjectModified', 'unknown'],
    ['ObjectModified:UpdateObjectMeta', 'unknown'],
    ['ObjectRestore:FinishRestore', 'unknown'],
    ['oss:ObjectCreated:PutObject', 'created'],
  ];
  for (const [name, kind] of changes) {
    const p = parseNotification(ossBody(ossEvent(name, 'k')));
    t.same([p.changes[0]?.kind, p.changes[0]?.eventName], [kind, name], name);
  }
  const ignored: [string, string][] = [
    ['ObjectCreated:InitiateMultipartUpload', 'multipart-in-progress'],
    ['ObjectCreated:UploadPart', 'multipart-in-progress'],
    ['ObjectCreated:UploadPartCopy', 'multipart-in-progress'],
    ['ObjectDownloaded:GetObject', 'not-a-change'],
  ];
  for (const [name, reason] of ignored) t.same(parseNotification(ossBody(ossEvent(name, 'k'))), { format: 'oss', changes: [], ignored: [{ reason, count: 1 }] }, name);
  const mixed = parseNotification(ossBody(...changes.map(([n], i) => ossEvent(n, `k${i}`)), ...ignored.map(([n]) => ossEvent(n, 'x'))));
  t.equal(mixed.changes.length, changes.length);
  t.same(mixed.ignored, [
    { reason: 'multipart-in-progress', count: 3 },
    { reason: 'not-a-change', count: 1 },
  ]);
});

t.test('minio: Records used when present (form-encoded), else the top-level Key', async (t) => {
  const withRecords = parseNotification(minioBody('a b+c/ü.txt'));
  t.equal(withRecords.format, 'minio');
  t.same(withRecords.changes, [
    { key: 'a b+c/ü.txt', bucket: 'images', kind: 'created', size: 3, etag: 'acbd18db4cc2f85cedef654fccc4a4d8', sequencer: '17B9A1B2C3D4E5F6', eventName: 's3:ObjectCreated:Put', eventTime: '2024-03-05T06:07:08.123Z' },
  ]);
  const bare = parseNotification(minioBody('dir/a b+c%2B.txt', false));
  t.same(bare.changes, [{ key: 'dir/a b+c%2B.txt', bucket: 'images', kind: 'created', eventName: 's3:ObjectCreated:Put' }], 'top-level Key is not encoded');
  t.equal(codeOf({ EventName: 's3:ObjectCreated:Put', Key: 'no-slash' }), 'UNSUPPORTED_FORMAT');
});

t.test('dth: {key,size} and a list of them; keys not encoded', async (t) => {
  t.same(parseNotification({ key: 'photos/a+b%20c.jpg', size: 123 }), { format: 'dth', changes: [{ key: 'photos/a+b%20c.jpg', kind: 'unknown', size: 123 }], ignored: [] });
  const list = parseNotification([{ key: 'a', size: 1 }, { key: 'b', size: 0 }, { key: 'c' }]);
  t.equal(list.format, 'dth-list');
  t.same(list.changes, [
    { key: 'a', kind: 'unknown', size: 1 },
    { key: 'b', kind: 'unknown', size: 0 },
    { key: 'c', kind: 'unknown' },
  ]);
});

t.test('oms: object_keys, percent-encoded, via both entry points', async (t) => {
  const body = { object_keys: ['test%2F001.txt', 'a+b%2Bc', '%E7%85%A7%E7%89%87.jpg'] };
  const expected = { format: 'oms', changes: [{ key: 'test/001.txt', kind: 'unknown' }, { key: 'a+b+c', kind: 'unknown' }, { key: '照片.jpg', kind: 'unknown' }], ignored: [] };
  t.same(parseNotification(body), expected, 'auto-detected');
  t.same(parseOmsKeys(body), expected, 'OMS route');
  t.equal(failure(() => parseOmsKeys(s3Event(s3Record('a')))).code, 'UNSUPPORTED_FORMAT', 'the OMS route takes only OMS bodies');
  t.equal(failure(() => parseOmsKeys({ object_keys: 'a' })).code, 'UNSUPPORTED_FORMAT');
  t.equal(failure(() => parseOmsKeys({ object_keys: [] })).code, 'NO_EVENTS');
});

// ---------------------------------------------------------------------------
// Key rules

t.test("'+' and '%2B': form encoding in S3/MinIO records, plain percent-encoding in OMS", async (t) => {
  t.same(keysOf(s3Event(s3Record('my+photo%2B1.jpg'))), ['my photo+1.jpg'], 'S3: + is a space, %2B a plus');
  t.same(keysOf({ object_keys: ['my+photo%2B1.jpg'] }), ['my+photo+1.jpg'], 'OMS: + stays a plus');
  t.same(keysOf(eventBridge('Object Created', 'my+photo%2B1.jpg')), ['my+photo%2B1.jpg'], 'EventBridge: not encoded at all');
  t.same(keysOf(ossBody(ossEvent('ObjectCreated:PutObject', 'my+photo%2B1.jpg'))), ['my+photo%2B1.jpg'], 'OSS: not encoded at all');
  t.same(keysOf({ key: 'my+photo%2B1.jpg' }), ['my+photo%2B1.jpg'], 'DTH: not encoded at all');
});

t.test('unicode keys', async (t) => {
  t.same(keysOf(s3Event(s3Record('%E7%85%A7%E7%89%87/caf%C3%A9+%F0%9F%98%80.txt'))), ['照片/café 😀.txt']);
  t.same(keysOf(s3Event(s3Record('%e7%85%a7.txt'))), ['照.txt'], 'lower-case hex');
  t.same(keysOf(s3Event(s3Record('raw-ü'))), ['raw-ü'], 'raw non-ASCII in an encoded key is taken as is');
  t.same(keysOf({ object_keys: ['%EF%BB%BFbom.txt'] }), ['\uFEFFbom.txt'], 'a leading BOM is part of the key');
  t.same(keysOf(eventBridge('Object Created', 'Ω/😀/\u0301e')), ['Ω/😀/\u0301e'], 'not normalised');
});

t.test('property: percent- and form-encoded keys round-trip', async (t) => {
  const keyArb = fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).filter((k) => !/\p{Cc}/u.test(k));
  fc.assert(
    fc.property(keyArb, (k) => {
      const oms = keysOf({ object_keys: [encodeURIComponent(k)] })[0] === k;
      const s3 = keysOf(s3Event(s3Record(encodeURIComponent(k).replace(/%20/g, '+'))))[0] === k;
      return oms && s3;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

// ---------------------------------------------------------------------------
// Errors

t.test('UNSUPPORTED_FORMAT', async (t) => {
  const cases: [string, unknown][] = [
    ['null', null],
    ['number', 42],
    ['string', 'Records'],
    ['boolean', true],
    ['empty object', {}],
    ['unknown object', { foo: 1 }],
    ['Records not an array', { Records: {} }],
    ['Records entry not a record', { Records: [{ foo: 1 }] }],
    ['Records entry not an object', { Records: ['x'] }],
    ['Records mixing S3 and SQS', { Records: [s3Record('a'), sqsBatch(s3Event(s3Record('b'))).Records[0]] }],
    ['events not an array', { events: 'x' }],
    ['OSS event without oss', { events: [{ eventName: 'ObjectCreated:PutObject' }] }],
    ['array of non-DTH objects', [{ foo: 1 }]],
    ['array of strings', ['a']],
    ['S3 object not an object', s3Event({ s3: { object: 'k' } })],
    ['negative size', s3Event(s3Record('a', 'ObjectCreated:Put', { size: -1 }))],
    ['fractional size', s3Event(s3Record('a', 'ObjectCreated:Put', { size: 1.5 }))],
    ['size not a number', s3Event(s3Record('a', 'ObjectCreated:Put', { size: 'big' }))],
    ['size beyond 2^53', { key: 'a', size: 2 ** 53 }],
    ['eTag not a string', ossBody({ ...ossEvent('ObjectCreated:PutObject', 'a'), oss: { object: { key: 'a', eTag: 5 } } })],
    ['eventName not a string', s3Event({ ...s3Record('a'), eventName: 7 })],
    ['bucket not an object', s3Event({ ...s3Record('a'), s3: { bucket: 'b', object: { key: 'a' } } })],
  ];
  for (const [name, body] of cases) t.equal(codeOf(body), 'UNSUPPORTED_FORMAT', name);
  t.match(failure(() => parseNotification(s3Event(s3Record('a'), s3Record('b', 'ObjectCreated:Put', { size: -1 })))).message, /Records\[1\]\.s3\.object\.size/, 'names the path');
  t.same(parseNotification(s3Event(s3Record('a', 'ObjectCreated:Put', { size: '1024', versionId: null }))).changes[0]?.size, 1024, 'decimal-string size (Ceph) and null versionId accepted');
});

t.test('NO_EVENTS', async (t) => {
  const cases: [string, unknown][] = [
    ['Records: []', { Records: [] }],
    ['object_keys: []', { object_keys: [] }],
    ['[]', []],
    ['events: []', { events: [] }],
    ['MinIO with empty Records', { ...minioBody('a'), Records: [] }],
    ['SQS batch of empty S3 events', sqsBatch({ Records: [] }, snsEnvelope({ Records: [] }))],
  ];
  for (const [name, body] of cases) t.equal(codeOf(body), 'NO_EVENTS', name);
});

t.test('INVALID_KEY', async (t) => {
  const cases: [string, unknown][] = [
    ['empty (OMS)', { object_keys: [''] }],
    ['empty (S3)', s3Event(s3Record(''))],
    ['empty (DTH)', { key: '' }],
    ['1025 bytes', { object_keys: ['a'.repeat(1025)] }],
    ['1026 bytes of 3-byte characters', { key: '照'.repeat(342) }],
    ['1025 bytes once decoded', { object_keys: ['%E7%85%A7'.repeat(341) + 'ab'] }],
    ['raw text far too long', { object_keys: ['%C3%A9'.repeat(512) + 'a'] }],
    ['%zz', { object_keys: ['a%zzb'] }],
    ['truncated %4', { object_keys: ['a%4'] }],
    ['lone %', s3Event(s3Record('100%'))],
    ['invalid UTF-8', { object_keys: ['%C3%28'] }],
    ['overlong UTF-8', { object_keys: ['%C0%AF'] }],
    ['UTF-8 encoded surrogate', { object_keys: ['%ED%A0%80'] }],
    ['encoded NUL', { object_keys: ['a%00b'] }],
    ['raw NUL', { key: 'a\u0000b' }],
    ['control char', eventBridge('Object Created', 'a\u0007b')],
    ['newline', ossBody(ossEvent('ObjectCreated:PutObject', 'a\nb'))],
    ['DEL', { key: 'a\u007f' }],
    ['C1 control', { object_keys: ['%C2%85'] }],
    ['lone surrogate', { key: 'a\uD800b' }],
    ['key is a number', { key: 42 }],
    ['key is null', s3Event(s3Record(null as unknown as string))],
    ['key missing', s3Event({ s3: { object: { size: 1 } } })],
    ['OMS entry not a string', { object_keys: ['a', 7] }],
  ];
  for (const [name, body] of cases) t.equal(codeOf(body), 'INVALID_KEY', name);
  t.equal(codeOf({ object_keys: ['a'.repeat(1024)] }), 'ok', 'exactly 1024 bytes is fine');
  t.equal(codeOf({ key: '照'.repeat(341) + 'a' }), 'ok', '1024 bytes of mixed width is fine');

  const e = failure(() => parseNotification({ object_keys: ['ok', 'fine', 'bad%zz'] }));
  t.match(e.message, /index 2/, 'message names the index');
  t.match(e.message, /object_keys\[2\]/);
  t.match(failure(() => parseNotification(sqsBatch(s3Event(s3Record('a')), s3Event(s3Record('b'), s3Record('%ff'))))).message, /index 1 \(\$\.Records\[1\]\.body\.Records\[1\]\.s3\.object\.key\)/, 'nested path');
});

t.test('TOO_MANY_KEYS', async (t) => {
  const keys = (n: number) => ({ object_keys: Array.from({ length: n }, (_, i) => `k${i}`) });
  t.equal(codeOf(keys(1000)), 'ok', '1000 by default');
  t.equal(codeOf(keys(1001)), 'TOO_MANY_KEYS');
  t.equal(failure(() => parseOmsKeys(keys(1001))).code, 'TOO_MANY_KEYS');
  t.equal(codeOf(keys(3), 3), 'ok');
  t.equal(codeOf(keys(4), 3), 'TOO_MANY_KEYS');
  t.equal(codeOf(sqsBatch(s3Event(s3Record('a'), s3Record('b')), s3Event(s3Record('c'), s3Record('d'))), 3), 'TOO_MANY_KEYS', 'counted across an SQS batch');
  t.equal(codeOf(sqsBatch(testEvent, testEvent, s3Event(s3Record('a'))), 1), 'ok', 'ignored events do not count');
  t.throws(() => parseNotification(keys(1), { maxKeys: 0 }), RangeError);
});
