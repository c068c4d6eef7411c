// Types for index.mjs, so TypeScript callers (test/examples.test.ts) import it
// without `any`. Not needed to deploy the function.

export interface SignRequestInput {
  /** Default POST. */
  method?: string;
  url: string | URL;
  /** Hashed exactly as given; it must be the bytes sent. */
  body: string | Buffer;
  accessKeyId: string;
  secret: string;
  /** Signing time; default now. */
  date?: Date;
}

export interface SignedRequestHeaders {
  Authorization: string;
  'X-Sdk-Date': string;
  Host: string;
  'Content-Type': string;
}

export function signRequest(input: SignRequestInput): SignedRequestHeaders;
/** Lambda entry point: forwards `event` to BB_SYNC_URL; resolves with BucketBridge's answer, rejects on non-2xx. */
export function handler(event: unknown): Promise<unknown>;
