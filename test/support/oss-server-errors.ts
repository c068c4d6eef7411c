/**
 * OSS error vocabulary for the test server.
 *
 * Handlers throw `OssError`; the HTTP layer renders it as the OSS error XML
 * document. Keeping the codes in one table means a test that asserts
 * `err.code === 'NoSuchUpload'` is checking the same spelling the server uses.
 */

/** Every error code the test server can emit, with the HTTP status OSS pairs it with. */
export const OSS_ERROR_STATUS = {
  AccessDenied: 403,
  BucketAlreadyExists: 409,
  BucketNotEmpty: 409,
  EntityTooSmall: 400,
  FileAlreadyExists: 409,
  InternalError: 500,
  InvalidAccessKeyId: 403,
  InvalidArgument: 400,
  InvalidBucketName: 400,
  InvalidDigest: 400,
  InvalidObjectName: 400,
  InvalidObjectState: 403,
  InvalidPart: 400,
  InvalidPartOrder: 400,
  InvalidRange: 416,
  KeyTooLong: 400,
  MalformedXML: 400,
  MethodNotAllowed: 405,
  NoSuchBucket: 404,
  NoSuchKey: 404,
  NoSuchUpload: 404,
  NotImplemented: 501,
  ObjectNotAppendable: 409,
  OperationNotSupported: 400,
  PositionNotEqualToLength: 409,
  PreconditionFailed: 412,
  RequestTimeTooSkewed: 403,
  RestoreAlreadyInProgress: 409,
  SignatureDoesNotMatch: 403,
} as const;

export type OssErrorCode = keyof typeof OSS_ERROR_STATUS;

export class OssError extends Error {
  readonly status: number;

  /**
   * @param code    OSS error code, rendered as `<Code>`.
   * @param message human-readable `<Message>`.
   * @param details extra elements OSS adds for some errors (e.g. `Condition`
   *                for PreconditionFailed, `StringToSign` for signature
   *                mismatches) — rendered after `<HostId>` in insertion order.
   */
  constructor(
    readonly code: OssErrorCode,
    message: string,
    readonly details: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = `${code}Error`;
    this.status = OSS_ERROR_STATUS[code];
  }
}

export function noSuchBucket(bucket: string): OssError {
  return new OssError('NoSuchBucket', 'The specified bucket does not exist.', { BucketName: bucket });
}

export function noSuchKey(key: string): OssError {
  return new OssError('NoSuchKey', 'The specified key does not exist.', { Key: key });
}

export function noSuchUpload(uploadId: string): OssError {
  return new OssError(
    'NoSuchUpload',
    'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.',
    { UploadId: uploadId },
  );
}

export function invalidArgument(message: string, name?: string, value?: string): OssError {
  const details: Record<string, string> = {};
  if (name !== undefined) details.ArgumentName = name;
  if (value !== undefined) details.ArgumentValue = value;
  return new OssError('InvalidArgument', message, details);
}

export function preconditionFailed(condition: string): OssError {
  return new OssError('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold.', {
    Condition: condition,
  });
}
