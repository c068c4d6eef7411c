/**
 * `bucketbridge token`: mint an admin API token (HS256) from BB_ADMIN_JWT_SECRET,
 * with BB_ADMIN_JWT_ISSUER / BB_ADMIN_JWT_AUDIENCE applied like the server
 * checks them. Prints the token alone on stdout, so `$(bucketbridge token …)` works.
 */
import { ADMIN_SCOPES, MIN_ADMIN_SECRET_LENGTH, mintAdminToken } from '../auth/admin-jwt.js';
import { EXIT_OK, EXIT_USAGE, parseCommandArgs, UsageError, type CliIo, type Command } from './command.js';

export const usage = `Usage: bucketbridge token [--scope bb:read] [--scope bb:write] [--ttl 1h] [--subject NAME]

Mint an admin API bearer token signed (HS256) with BB_ADMIN_JWT_SECRET.

Options:
  --scope SCOPE    bb:read (GET calls) and/or bb:write (every other call); repeat the
                   option or separate with spaces. Default: bb:read
  --ttl DURATION   lifetime: seconds, or a number with s, m, h or d. Default: 1h (max 30d)
  --subject NAME   the token's sub claim (shown in the admin audit log). Default: bucketbridge-cli
  --issuer ISS     iss claim. Default: BB_ADMIN_JWT_ISSUER
  --audience AUD   aud claim. Default: BB_ADMIN_JWT_AUDIENCE
  -h, --help       this help

Example: curl -H "Authorization: Bearer $(bucketbridge token --scope bb:read)" http://127.0.0.1:8080/admin/tasks
`;

const MAX_TTL_SECONDS = 30 * 24 * 3600;

/** `3600`, `90s`, `15m`, `12h`, `7d` → seconds. */
export function parseTtl(value: string): number {
  const m = /^([1-9][0-9]*)([smhd]?)$/.exec(value.trim());
  if (!m) throw new UsageError(`--ttl ${JSON.stringify(value)}: expected seconds or a number with s, m, h or d`);
  const seconds = Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  if (seconds > MAX_TTL_SECONDS) throw new UsageError(`--ttl ${value}: at most 30d`);
  return seconds;
}

async function run(io: Pick<CliIo, 'argv' | 'env' | 'stdout' | 'stderr'>): Promise<number> {
  const values = parseCommandArgs(io.argv, {
    scope: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    subject: { type: 'string' },
    issuer: { type: 'string' },
    audience: { type: 'string' },
  });
  if (values.help) {
    io.stdout.write(usage);
    return EXIT_OK;
  }
  const secret = io.env.BB_ADMIN_JWT_SECRET;
  if (!secret) throw new UsageError('BB_ADMIN_JWT_SECRET is not set: the token is signed with the server\'s secret');
  if (secret.length < MIN_ADMIN_SECRET_LENGTH) throw new UsageError(`BB_ADMIN_JWT_SECRET must be at least ${MIN_ADMIN_SECRET_LENGTH} characters`);
  const scopes = [...new Set(((values.scope as string[] | undefined) ?? ['bb:read']).flatMap((s) => s.split(/[\s,]+/)).filter(Boolean))];
  for (const s of scopes) {
    if (!(ADMIN_SCOPES as readonly string[]).includes(s)) throw new UsageError(`unknown scope ${JSON.stringify(s)} (known: ${ADMIN_SCOPES.join(', ')})`);
  }
  const token = await mintAdminToken({
    secret,
    scopes,
    ttlSeconds: parseTtl((values.ttl as string | undefined) ?? '1h'),
    subject: values.subject as string | undefined,
    issuer: (values.issuer as string | undefined) ?? (io.env.BB_ADMIN_JWT_ISSUER || undefined),
    audience: (values.audience as string | undefined) ?? (io.env.BB_ADMIN_JWT_AUDIENCE || undefined),
  });
  io.stdout.write(`${token}\n`);
  return EXIT_OK;
}

/** The dispatcher's entry (src/cli/commands.ts loads modules exporting `command`). */
export const command: Command = { usage, run };

/** Standalone form over the real process: exit code 0, or 2 for a wrong invocation (message on stderr). */
export async function tokenCommand(argv: string[]): Promise<number> {
  try {
    return await run({ argv, env: process.env, stdout: process.stdout, stderr: process.stderr });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`bucketbridge token: ${err.message}\nRun "bucketbridge token --help" for usage.\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}
