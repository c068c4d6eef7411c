/**
 * Service- and bucket-level operations: ListBuckets, PutBucket,
 * DeleteBucket, GetBucketInfo, GetBucketLocation. Enough for clients that
 * probe or create their bucket at start-up.
 */
import { OssError } from './oss-server-errors.js';
import { isoTime, MAX_XML_BODY_BYTES, readBody, type RequestContext, requireBucket, sendEmpty, sendXml } from './oss-server-http.js';
import { isValidBucketName, OWNER_ID, SERVER_REGION } from './oss-server-store.js';
import type { XmlElement } from './oss-server-xml.js';

const OWNER: readonly XmlElement[] = [
  ['ID', OWNER_ID],
  ['DisplayName', OWNER_ID],
];

export function listBuckets(ctx: RequestContext): void {
  const prefix = ctx.query.get('prefix') ?? '';
  sendXml(ctx, 200, 'ListAllMyBucketsResult', [
    ['Owner', OWNER],
    [
      'Buckets',
      ctx.store
        .allBuckets()
        .filter((bucket) => bucket.name.startsWith(prefix))
        .map((bucket) => [
          'Bucket',
          [
            ['CreationDate', isoTime(bucket.createdAt)],
            ['ExtranetEndpoint', `${SERVER_REGION}.aliyuncs.com`],
            ['IntranetEndpoint', `${SERVER_REGION}-internal.aliyuncs.com`],
            ['Location', SERVER_REGION],
            ['Name', bucket.name],
            ['Region', SERVER_REGION.replace(/^oss-/, '')],
            ['StorageClass', 'Standard'],
          ],
        ] as const),
    ],
  ]);
}

export async function putBucket(ctx: RequestContext): Promise<void> {
  const name = ctx.target.bucket ?? '';
  await readBody(ctx, MAX_XML_BODY_BYTES);
  if (!isValidBucketName(name)) throw new OssError('InvalidBucketName', 'The specified bucket is not valid.', { BucketName: name });
  if (!ctx.store.createBucket(name)) {
    throw new OssError('BucketAlreadyExists', 'The requested bucket name is not available.', { BucketName: name });
  }
  sendEmpty(ctx, 200, { location: `/${name}` });
}

export function deleteBucket(ctx: RequestContext): void {
  const bucket = requireBucket(ctx);
  if (bucket.objectCount > 0 || bucket.uploads.size > 0) {
    throw new OssError('BucketNotEmpty', 'The bucket you tried to delete is not empty.', { BucketName: bucket.name });
  }
  ctx.store.deleteBucket(bucket.name);
  sendEmpty(ctx, 204);
}

export function getBucketInfo(ctx: RequestContext): void {
  const bucket = requireBucket(ctx);
  sendXml(ctx, 200, 'BucketInfo', [
    [
      'Bucket',
      [
        ['CreationDate', isoTime(bucket.createdAt)],
        ['ExtranetEndpoint', `${SERVER_REGION}.aliyuncs.com`],
        ['IntranetEndpoint', `${SERVER_REGION}-internal.aliyuncs.com`],
        ['Location', SERVER_REGION],
        ['Name', bucket.name],
        ['StorageClass', 'Standard'],
        ['Owner', OWNER],
        ['AccessControlList', [['Grant', 'private']]],
      ],
    ],
  ]);
}

export function getBucketLocation(ctx: RequestContext): void {
  requireBucket(ctx);
  sendXml(ctx, 200, 'LocationConstraint', SERVER_REGION);
}
