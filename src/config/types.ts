/** Typed view of what config/schema.ts validates (after defaults are applied). */
import type { StorageClass } from '../storage/object-store.js';

export interface CredentialsRef {
  accessKeyIdEnv: string;
  secretAccessKeyEnv: string;
  sessionTokenEnv?: string;
}

export interface EndpointConfig {
  provider: 's3' | 'oss';
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: CredentialsRef;
  prefixes?: string[];
  /** PEM CA bundle for an https endpoint with a private CA. */
  caBundleFile?: string;
  /** Destination only: server-side encryption of every write. */
  encryption?: EncryptionConfig;
  /** Source only (S3): env var holding the SSE-C key of customer-key-encrypted objects. */
  sseCustomerKeyEnv?: string;
}

export interface EncryptionConfig {
  mode: 'AES256' | 'aws:kms' | 'KMS';
  keyId?: string;
}

export interface ClientSideEncryptionConfig {
  publicKeyFile: string;
  algorithm: 'AES-256-CTR';
}

export interface LimitsConfig {
  bytesPerSecond?: number;
  requestsPerSecond?: number;
}

export interface AlertsConfig {
  url: string;
  secretEnv: string;
  accessKeyId: string;
  lagSeconds?: number;
  dedupeSeconds: number;
  maxPerMinute: number;
}

export type CompareMode = 'checksum' | 'size' | 'none';

export interface TaskOptions {
  deletes: boolean;
  compare: CompareMode;
  markers?: { bucket: string; prefix: string; side: 'source' | 'destination' };
  multipartThresholdBytes: number;
  partSizeBytes: number;
  partConcurrency: number;
  maxConcurrentCopies: number;
  storageClass?: Exclude<StorageClass, 'OTHER'>;
  restoreArchived: boolean;
  clientSideEncryption?: ClientSideEncryptionConfig;
  limits?: LimitsConfig;
  alerts?: AlertsConfig;
}

export type Schedule =
  | { mode: 'none' }
  | { mode: 'once' }
  | { mode: 'rate'; every: string }
  | { mode: 'cron'; expression: string };

export interface TaskConfig {
  id: string;
  source: EndpointConfig;
  destination: EndpointConfig;
  options: TaskOptions;
  schedule: Schedule;
}

export interface SenderConfig {
  accessKeyId: string;
  secretEnv: string;
  previousSecretEnv?: string;
  tasks: string[];
}

export interface ConfigFile {
  tasks: TaskConfig[];
  senders: SenderConfig[];
}
