/**
 * `bucketbridge sign`: print the headers of a signed request so any HTTP client
 * (curl, Postman, another language) can send it — and so a sender's own signer can
 * be checked against ours header by header.
 */
import { signedHeaders } from '../auth/signed-client.js';
import { EXIT_OK, parseCommandArgs, UsageError, type CliIo, type Command } from './command.js';
import { BODY_OPTIONS, parseSigningDate, parseTargetUrl, readBody } from './request-input.js';
import { SECRET_OPTION_HINTS, SENDER_OPTIONS, SENDER_OPTIONS_HELP, senderCredentials } from './sender-credentials.js';

const USAGE = `Usage: bucketbridge sign --url URL [options]

Print the SDK-HMAC-SHA256 headers for one request, one per line as "Name: value"
(Authorization, X-Sdk-Date, Host, Content-Type). The body sent must be exactly the
bytes signed, and the request must reach the server within 15 minutes.

Options:
  --url URL           full request URL, query string included
  --method METHOD     HTTP method (default: POST)
  --file PATH         body from a file, byte for byte ("-" reads stdin)
  --data STRING       body given inline (UTF-8)
${SENDER_OPTIONS_HELP}
  --date DATE         signing time, YYYYMMDDTHHMMSSZ or ISO 8601 with zone (default: now)
  -h, --help          show this help

Example:
  export BB_SENDER_SECRET=...   # from your secret store, not typed
  bucketbridge sign --url http://127.0.0.1:8080/sync --file event.json --access-key lambda-1 > headers.txt
  curl -H @headers.txt --data-binary @event.json http://127.0.0.1:8080/sync
`;

/** Output order and spelling; signedHeaders() returns host and content-type lower-cased. */
const PRINTED: readonly [label: string, key: string][] = [
  ['Authorization', 'Authorization'],
  ['X-Sdk-Date', 'X-Sdk-Date'],
  ['Host', 'host'],
  ['Content-Type', 'content-type'],
];

export const command: Command = {
  usage: USAGE,
  async run(io: CliIo) {
    const values = parseCommandArgs(
      io.argv,
      { url: { type: 'string' }, method: { type: 'string' }, date: { type: 'string' }, ...BODY_OPTIONS, ...SENDER_OPTIONS },
      SECRET_OPTION_HINTS,
    );
    if (values.help === true) {
      io.stdout.write(USAGE);
      return EXIT_OK;
    }
    const url = parseTargetUrl(values.url);
    const method = (values.method ?? 'POST').toUpperCase();
    if (!/^[A-Z]+$/.test(method)) throw new UsageError(`--method ${JSON.stringify(values.method)} is not an HTTP method`);
    const date = parseSigningDate(values.date);
    const credentials = senderCredentials(values, io.env);
    const body = await readBody(values, io.stdin, false);

    const headers = signedHeaders(method, url, body, credentials, { date });
    io.stdout.write(PRINTED.map(([label, key]) => `${label}: ${headers[key] ?? ''}\n`).join(''));
    return EXIT_OK;
  },
};
