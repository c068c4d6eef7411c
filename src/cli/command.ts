/**
 * The contract between `bucketbridge` (src/cli.ts) and its command modules.
 *
 * A command gets its arguments, environment and output streams passed in rather
 * than reaching for `process`, so one function serves the real binary and any
 * in-process caller, and the exit-code policy lives in one place:
 *   0  done · 1  the operation failed (HTTP error, database error) ·
 *   2  the invocation was wrong (bad option, missing secret, invalid config).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface CliIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadableStream;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/**
 * What `run` resolves to: an exit code, or 'running' for a command (serve) that
 * keeps the process alive and owns its own exit (close-with-grace exits on signal).
 */
export type CommandResult = number | 'running';

export interface Command {
  /** Full help text, printed for `bucketbridge <name> --help`. */
  usage: string;
  run(io: CliIo): Promise<CommandResult>;
}

/** A wrong invocation: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

type Options = NonNullable<ParseArgsConfig['options']>;

const HELP = { type: 'boolean', short: 'h' } as const;

/**
 * node:util parseArgs in strict mode, positionals refused, `--help`/`-h` always
 * accepted. A parse failure (unknown option, missing value, stray argument) becomes a
 * UsageError; `hints` appends an explanation for specific unknown options.
 */
export function parseCommandArgs<const O extends Options>(argv: string[], options: O, hints: Record<string, string> = {}) {
  try {
    return parseArgs({ args: argv, options: { ...options, help: HELP }, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = (err as Error).message;
    const unknown = /Unknown option '(--?[^'=]+)/.exec(message)?.[1];
    const hint = unknown === undefined ? undefined : hints[unknown];
    throw new UsageError(hint === undefined ? message : `${message}. ${hint}`);
  }
}
