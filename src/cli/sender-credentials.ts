/**
 * Where `sign` and `send` get the sender's access key and secret.
 *
 * The secret is only ever read from an environment variable (named by
 * --secret-env), never from an argument: arguments land in shell history, in
 * `ps`/`/proc/<pid>/cmdline` for every local user, and in CI logs that echo
 * commands. An env var can be filled from a secret store without being typed.
 */
import type { Credentials } from '../auth/sdk-hmac.js';
import { UsageError } from './command.js';

export const DEFAULT_SECRET_ENV = 'BB_SENDER_SECRET';
export const ACCESS_KEY_ENV = 'BB_SENDER_ACCESS_KEY';

/** parseArgs options shared by the commands that sign. */
export const SENDER_OPTIONS = {
  'access-key': { type: 'string' },
  'secret-env': { type: 'string' },
} as const;

const SECRET_HINT =
  `The secret is never taken as an argument (it would end up in shell history and in the process list); ` +
  `export it in ${DEFAULT_SECRET_ENV}, or name another variable with --secret-env.`;

/** Unknown-option hints for people who reach for the obvious flag. */
export const SECRET_OPTION_HINTS: Record<string, string> = {
  '--secret': SECRET_HINT,
  '--secret-key': SECRET_HINT,
  '--sk': SECRET_HINT,
};

export const SENDER_OPTIONS_HELP = `  --access-key AK     sender access key (default: $${ACCESS_KEY_ENV})
  --secret-env VAR    environment variable holding the sender secret (default: ${DEFAULT_SECRET_ENV});
                      the secret itself is never an argument: arguments are kept in shell
                      history and visible to every local user in the process list`;

export function senderCredentials(values: { 'access-key'?: string; 'secret-env'?: string }, env: NodeJS.ProcessEnv): Credentials {
  const accessKeyId = values['access-key'] ?? env[ACCESS_KEY_ENV];
  if (accessKeyId === undefined || accessKeyId === '') {
    throw new UsageError(`no access key: pass --access-key or set ${ACCESS_KEY_ENV}`);
  }
  const secretEnv = values['secret-env'] ?? DEFAULT_SECRET_ENV;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(secretEnv)) {
    // Most likely the secret itself was passed by mistake: don't echo it back.
    throw new UsageError('--secret-env must be the NAME of an environment variable (letters, digits, _), not the secret');
  }
  const secret = env[secretEnv];
  if (secret === undefined || secret === '') {
    // Name the variable only when it looks like one (FOO_BAR): anything else may be the
    // secret itself, pasted into --secret-env, and must not be echoed into logs.
    const shown = /^[A-Z_][A-Z0-9_]{0,63}$/.test(secretEnv) ? secretEnv : 'named by --secret-env';
    throw new UsageError(`environment variable ${shown} is not set or empty: export the sender secret in it (see --secret-env)`);
  }
  return { accessKeyId, secret };
}
