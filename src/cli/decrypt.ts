/**
 * `bucketbridge decrypt`: read back a replica written with client-side
 * envelope encryption (src/crypto/envelope.ts), so an operator can prove the
 * data is recoverable with the private key alone. The plaintext is streamed
 * (memory stays one chunk whatever the size) into `--out`; it is written to a
 * temporary file beside it and renamed only once the size and digests check,
 * so a wrong key or a damaged object never leaves a plausible-looking file.
 */
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { dirname, basename, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decryptStream, EnvelopeError, openEnvelope } from '../crypto/envelope.js';
import { KeyMaterialError, loadPrivateKey, readCaBundle } from '../crypto/keys.js';
import { createStore } from '../storage/create-store.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, parseCommandArgs, UsageError, type CliIo, type Command } from './command.js';

const USAGE = `Usage: bucketbridge decrypt --private-key FILE (--url URL | --file FILE --metadata FILE) --out FILE [options]

Decrypt an object that BucketBridge replicated with client-side encryption
(AES-256-CTR data, RSA-OAEP-SHA256 wrapped data key in the object's metadata),
check its size and digests, and write the plaintext.

Where the object comes from:
  --url URL             s3://BUCKET/KEY or oss://BUCKET/KEY (read with the credentials below),
                        or an http(s) URL (a presigned or public URL; metadata from the response headers)
  --file FILE           the encrypted bytes, downloaded by any tool, with
  --metadata FILE       its metadata as JSON: {"bb-cse-key": "...", ...}, response headers
                        ({"x-amz-meta-bb-cse-key": ...}), or "aws s3api head-object" output ({"Metadata": {...}})

Options:
  --private-key FILE    RSA private key (PEM or DER; PKCS#8 or PKCS#1)
  --passphrase-env VAR  env var holding the private key's passphrase, if it is encrypted
  --out FILE            where to write the plaintext ("-" for stdout: not retracted on failure)
  --endpoint URL        storage endpoint for s3:// and oss:// URLs
  --region REGION       region (default us-east-1 / oss-cn-hangzhou)
  --force-path-style    path-style S3 addressing (S3-compatible stores)
  --access-key-env VAR  env var with the access key id
                        (default AWS_ACCESS_KEY_ID for s3://, OSS_ACCESS_KEY_ID for oss://)
  --secret-key-env VAR  env var with the secret
                        (default AWS_SECRET_ACCESS_KEY for s3://, OSS_ACCESS_KEY_SECRET for oss://)
  --ca-bundle FILE      PEM CA bundle for an https endpoint or URL with a private CA
  -h, --help            show this help

Exit status: 0 decrypted and verified, 1 failed (wrong key, damaged object,
unreadable input), 2 wrong invocation.
`;

const OPTIONS = {
  'private-key': { type: 'string' },
  'passphrase-env': { type: 'string' },
  url: { type: 'string' },
  file: { type: 'string' },
  metadata: { type: 'string' },
  out: { type: 'string' },
  endpoint: { type: 'string' },
  region: { type: 'string' },
  'force-path-style': { type: 'boolean' },
  'access-key-env': { type: 'string' },
  'secret-key-env': { type: 'string' },
  'ca-bundle': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>;

interface Input {
  metadata: Record<string, string>;
  /** The encrypted bytes; opened only once the envelope opened (a wrong key reads nothing). */
  body(): Promise<Readable>;
  /** Released when done (streams, storage clients, sockets). */
  close(): Promise<void>;
}

/** Destroy a stream whose errors nobody will read any more. */
function discard(stream: Readable | undefined): void {
  if (!stream || stream.destroyed) return;
  stream.on('error', () => {});
  stream.destroy();
}

/** Flatten the metadata JSON forms we accept into name → value. */
export function metadataFromJson(value: unknown, file: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`--metadata ${file} must hold a JSON object`);
  const obj = value as Record<string, unknown>;
  const nested = obj['Metadata'] ?? obj['metadata'] ?? obj['userMetadata'];
  const source = typeof nested === 'object' && nested !== null && !Array.isArray(nested) ? (nested as Record<string, unknown>) : obj;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (typeof v === 'string' || typeof v === 'number') out[k] = String(v);
  return out;
}

async function fromFile(values: Values): Promise<Input> {
  const file = values.file!;
  if (values.metadata === undefined) throw new UsageError('--file needs --metadata (the object\'s metadata as JSON)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(values.metadata, 'utf8'));
  } catch (err) {
    throw new UsageError(`--metadata ${values.metadata}: ${(err as Error).message}`);
  }
  const metadata = metadataFromJson(parsed, values.metadata);
  const body = createReadStream(file);
  await new Promise<void>((resolve, reject) => {
    body.once('open', () => resolve());
    body.once('error', (err) => reject(new Error(`cannot read --file ${file}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
  });
  return { metadata, body: async () => body, close: async () => discard(body) };
}

function caOption(values: Values): string | undefined {
  if (values['ca-bundle'] === undefined) return undefined;
  try {
    return readCaBundle(values['ca-bundle']);
  } catch (err) {
    if (err instanceof KeyMaterialError) throw new UsageError(`--ca-bundle: ${err.message}`);
    throw err;
  }
}

async function fromHttp(url: URL, values: Values): Promise<Input> {
  const ca = caOption(values);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', ...(ca !== undefined ? { ca } : {}) }, resolve);
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200) {
    res.resume();
    throw new Error(`GET ${url.origin}${url.pathname} answered HTTP ${res.statusCode}`);
  }
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') metadata[k] = v;
  return { metadata, body: async () => res, close: async () => discard(res) };
}

async function fromStore(url: URL, values: Values, env: NodeJS.ProcessEnv): Promise<Input> {
  const provider = url.protocol === 's3:' ? 's3' : 'oss';
  const bucket = url.hostname;
  const key = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!bucket || !key) throw new UsageError(`--url ${url.href}: expected ${provider}://BUCKET/KEY`);
  const accessKeyIdEnv = values['access-key-env'] ?? (provider === 's3' ? 'AWS_ACCESS_KEY_ID' : 'OSS_ACCESS_KEY_ID');
  const secretAccessKeyEnv = values['secret-key-env'] ?? (provider === 's3' ? 'AWS_SECRET_ACCESS_KEY' : 'OSS_ACCESS_KEY_SECRET');
  // S3 without credentials in env falls back to the SDK's default chain (profiles, roles).
  const haveCreds = !!env[accessKeyIdEnv] && !!env[secretAccessKeyEnv];
  if (provider === 'oss' && !haveCreds) throw new UsageError(`oss:// needs credentials in ${accessKeyIdEnv} and ${secretAccessKeyEnv}`);
  let store;
  try {
    store = createStore(
      {
        provider,
        bucket,
        ...(values.region !== undefined ? { region: values.region } : {}),
        ...(values.endpoint !== undefined ? { endpoint: values.endpoint } : {}),
        ...(values['force-path-style'] ? { forcePathStyle: true } : {}),
        ...(values['ca-bundle'] !== undefined ? { caBundleFile: values['ca-bundle'] } : {}),
        ...(haveCreds ? { credentials: { accessKeyIdEnv, secretAccessKeyEnv } } : {}),
      },
      env,
    );
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  try {
    const head = await store.head(key);
    if (!head) throw new Error(`${url.href} does not exist`);
    let body: Readable | undefined;
    return {
      metadata: head.userMetadata,
      body: async () => (body = await store.get(key, { ifMatch: head.etag })),
      close: async () => {
        discard(body);
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function openInput(values: Values, env: NodeJS.ProcessEnv): Promise<Input> {
  const hasUrl = values.url !== undefined;
  const hasFile = values.file !== undefined;
  if (hasUrl === hasFile) throw new UsageError('give exactly one of --url or --file');
  if (hasFile) return fromFile(values);
  let url: URL;
  try {
    url = new URL(values.url!);
  } catch {
    throw new UsageError(`--url ${JSON.stringify(values.url)} is not a URL`);
  }
  if (url.protocol === 'http:' || url.protocol === 'https:') return fromHttp(url, values);
  if (url.protocol === 's3:' || url.protocol === 'oss:') return fromStore(url, values, env);
  throw new UsageError(`--url must be s3://, oss://, http:// or https:// (got ${url.protocol})`);
}

/** A writable that forwards to `out` without ending it (stdout must stay open). */
function keepOpen(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      if (out.write(chunk)) done();
      else out.once('drain', () => done());
    },
  });
}

export const command: Command = {
  usage: USAGE,
  async run(io: CliIo) {
    const values = parseCommandArgs(io.argv, OPTIONS);
    if (values.help === true) {
      io.stdout.write(USAGE);
      return EXIT_OK;
    }
    if (values['private-key'] === undefined) throw new UsageError('--private-key is required');
    if (values.out === undefined) throw new UsageError('--out is required ("-" writes to stdout)');
    let passphrase: string | undefined;
    if (values['passphrase-env'] !== undefined) {
      passphrase = io.env[values['passphrase-env']];
      if (!passphrase) throw new UsageError(`env var ${values['passphrase-env']} (--passphrase-env) is not set`);
    }
    let privateKey;
    try {
      privateKey = loadPrivateKey(values['private-key'], passphrase);
    } catch (err) {
      if (err instanceof KeyMaterialError) throw new UsageError(`--private-key: ${err.message}`);
      throw err;
    }

    const input = await openInput(values, io.env);
    const toStdout = values.out === '-';
    const temp = toStdout ? undefined : join(dirname(values.out), `.${basename(values.out)}.${randomBytes(4).toString('hex')}.partial`);
    try {
      const opened = openEnvelope(input.metadata, privateKey);
      const decrypt = await decryptStream(opened);
      const sink = toStdout ? keepOpen(io.stdout) : createWriteStream(temp!, { mode: 0o600 });
      await pipeline(await input.body(), decrypt, sink);
      if (temp !== undefined) await rename(temp, values.out);
      const report = decrypt.report();
      const checks = report.verifiedAgainst.filter((f) => f !== 'bb-cse-plaintext-size');
      io.stderr.write(
        `decrypted ${report.bytes} bytes to ${toStdout ? 'stdout' : values.out}; ` +
          (checks.length > 0
            ? `verified against ${checks.join(', ')}\n`
            : 'size checked; no plaintext digest was recorded for this object, so content could not be verified\n'),
      );
      return EXIT_OK;
    } catch (err) {
      if (temp !== undefined) await unlink(temp).catch(() => {});
      if (err instanceof EnvelopeError) {
        io.stderr.write(`bucketbridge decrypt: ${err.code === 'WRONG_KEY' ? 'wrong key: ' : ''}${err.message}\n`);
        return EXIT_FAILED;
      }
      throw err;
    } finally {
      await input.close();
    }
  },
};

/** Entry for a dispatcher that passes only argv: runs with the real process streams. */
export async function decryptCommand(argv: string[]): Promise<number> {
  const io: CliIo = { argv, env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  try {
    const result = await command.run(io);
    return result === 'running' ? EXIT_OK : result;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bucketbridge decrypt: ${err.message}\nRun "bucketbridge decrypt --help" for usage.\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`bucketbridge decrypt: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  }
}
