/**
 * `bucketbridge <command> [options]`: pick the command, run it, and turn what
 * it throws into the exit-code policy of command.ts (2 for a wrong invocation,
 * 1 for a failure). Top-level --help / --version are answered here.
 */
import { readFileSync } from 'node:fs';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type CommandResult } from './command.js';
import { COMMANDS, type CommandEntry } from './commands.js';

export function topLevelUsage(commands: readonly CommandEntry[] = COMMANDS): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: bucketbridge <command> [options]

Commands:
${lines.join('\n')}

Run "bucketbridge <command> --help" for the options of a command.
`;
}

function version(): string {
  // src/cli and dist/cli are both two levels below the package root.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export async function runCli(io: CliIo, commands: readonly CommandEntry[] = COMMANDS): Promise<CommandResult> {
  const [name, ...rest] = io.argv;
  if (name === undefined) {
    io.stderr.write(topLevelUsage(commands));
    return EXIT_USAGE;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(topLevelUsage(commands));
    return EXIT_OK;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${version()}\n`);
    return EXIT_OK;
  }
  const entry = commands.find((c) => c.name === name);
  if (entry === undefined) {
    io.stderr.write(`bucketbridge: unknown command ${JSON.stringify(name)}\n\n${topLevelUsage(commands)}`);
    return EXIT_USAGE;
  }
  const { command } = await entry.load();
  try {
    return await command.run({ ...io, argv: rest });
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`bucketbridge ${name}: ${err.message}\nRun "bucketbridge ${name} --help" for usage.\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`bucketbridge ${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT_FAILED;
  }
}
