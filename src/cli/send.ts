/**
 * `bucketbridge send`: sign a notification and POST it, the way a sender function
 * would — for trying a deployment end to end, or replaying an event by hand.
 */
import { signedPost } from '../auth/signed-client.js';
import { EXIT_FAILED, EXIT_OK, parseCommandArgs, UsageError, type CliIo, type Command } from './command.js';
import { BODY_OPTIONS, parseTargetUrl, readBody } from './request-input.js';
import { SECRET_OPTION_HINTS, SENDER_OPTIONS, SENDER_OPTIONS_HELP, senderCredentials } from './sender-credentials.js';

const DEFAULT_TIMEOUT_SECONDS = 30;

const USAGE = `Usage: bucketbridge send --url URL --file event.json [options]

Sign a notification with SDK-HMAC-SHA256 and POST it. Prints the response body;
exits 0 on a 2xx answer, 1 otherwise (status and error code on stderr).

Options:
  --url URL           endpoint, e.g. http://127.0.0.1:8080/sync
  --task ID           route every key to this task (appends ?task=ID)
  --file PATH         notification JSON, sent byte for byte ("-" reads stdin)
  --data STRING       notification given inline instead of --file
${SENDER_OPTIONS_HELP}
  --timeout SECONDS   give up after this long (default: ${DEFAULT_TIMEOUT_SECONDS})
  -h, --help          show this help
`;

/** The URL with `task=ID` added to whatever query it already has (encoded, never re-serialising the rest). */
function withTask(url: URL, task: string | undefined): URL {
  if (task === undefined) return url;
  if (task === '') throw new UsageError('--task must not be empty');
  const out = new URL(url);
  const pair = `task=${encodeURIComponent(task)}`;
  out.search = out.search === '' ? pair : `${out.search.slice(1)}&${pair}`;
  return out;
}

function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_TIMEOUT_SECONDS * 1000;
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError('--timeout must be a positive number of seconds');
  return Math.round(seconds * 1000);
}

/** The stable error code of an error answer, if the body has the API's error shape. */
function errorCode(body: unknown): string | undefined {
  const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

function errorMessage(body: unknown): string | undefined {
  const error = typeof body === 'object' && body !== null ? (body as { error?: { message?: unknown } }).error : undefined;
  return typeof error?.message === 'string' ? error.message : undefined;
}

/** fetch reports network failures as "fetch failed" with the real reason in `cause`. */
function describeNetworkError(err: unknown): string {
  if (err instanceof Error && err.name === 'TimeoutError') return 'timed out';
  const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}

export const command: Command = {
  usage: USAGE,
  async run(io: CliIo) {
    const values = parseCommandArgs(
      io.argv,
      { url: { type: 'string' }, task: { type: 'string' }, timeout: { type: 'string' }, ...BODY_OPTIONS, ...SENDER_OPTIONS },
      SECRET_OPTION_HINTS,
    );
    if (values.help === true) {
      io.stdout.write(USAGE);
      return EXIT_OK;
    }
    const url = withTask(parseTargetUrl(values.url), values.task);
    const timeoutMs = parseTimeout(values.timeout);
    const credentials = senderCredentials(values, io.env);
    const body = await readBody(values, io.stdin, true);

    let res;
    try {
      res = await signedPost(url, body, credentials, { timeoutMs });
    } catch (err) {
      io.stderr.write(`bucketbridge send: request to ${url.origin} failed: ${describeNetworkError(err)}\n`);
      return EXIT_FAILED;
    }
    if (res.text !== '') io.stdout.write(res.text.endsWith('\n') ? res.text : `${res.text}\n`);
    if (res.status >= 200 && res.status < 300) return EXIT_OK;
    const code = errorCode(res.body);
    const message = errorMessage(res.body);
    io.stderr.write(`bucketbridge send: HTTP ${res.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}\n`);
    return EXIT_FAILED;
  },
};
