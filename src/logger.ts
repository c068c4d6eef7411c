/** pino, with secrets and signatures redacted wherever they may appear. */
import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-sdk-content-sha256"]',
  'req.headers["x-oss-security-token"]',
  'req.headers["x-amz-security-token"]',
  'headers.authorization',
  'headers.Authorization',
  '*.authorization',
  '*.Authorization',
  '*.signature',
  '*.secret',
  '*.secretAccessKey',
  '*.accessKeySecret',
  '*.sessionToken',
  '*.password',
  '*.connectionString',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'bucketbridge' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: stdSerializers.err },
    },
    destination,
  );
}
