/**
 * `bucketbridge serve`: run the service until SIGTERM/SIGINT — the same start-up
 * and graceful stop as `node dist/main.js`. `serve()` is exported so main.ts can
 * delegate to it and the two entry points cannot drift apart.
 */
import closeWithGrace from 'close-with-grace';
import { loadConfig, type Config } from '../config/load.js';
import { ConfigError } from '../config/validate.js';
import { createLogger } from '../logger.js';
import type { RunningService } from '../service.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, parseCommandArgs, type CliIo, type Command, type CommandResult } from './command.js';

const USAGE = `Usage: bucketbridge serve

Run the service: the signed intake (POST /sync), the admin API and the replication
workers, on PORT/HOST (default 127.0.0.1:8080). Stops gracefully on SIGTERM or
SIGINT: no new requests, running jobs finish or are handed back.

Configuration comes from the environment (DATABASE_URL, BB_CONFIG, PORT, HOST,
LOG_LEVEL, BB_DATA_DIR, ...) and the config file BB_CONFIG names.

Options:
  -h, --help   show this help
`;

/**
 * Start the service and install the graceful stop. Resolves 'running' once it is
 * listening (close-with-grace then owns the exit), or with an exit code when it
 * cannot start: 2 for invalid configuration, 1 for anything else. Start-up failures
 * print one line on stderr; the service has already stopped what it had started.
 */
export async function serve(env: NodeJS.ProcessEnv = process.env, stderr: NodeJS.WritableStream = process.stderr): Promise<CommandResult> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      stderr.write(`bucketbridge: invalid configuration: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  const log = createLogger(config.env.logLevel);
  // Loaded only now: the service pulls in the HTTP server, queue and storage SDKs,
  // seconds of start-up that a configuration error should not have to wait for.
  const { startService, StartupError } = await import('../service.js');
  let running: RunningService;
  try {
    running = await startService(config, log);
  } catch (err) {
    const message = err instanceof StartupError ? err.message : (err as Error).message;
    log.error({ err }, 'start-up failed');
    stderr.write(`bucketbridge: cannot start: ${message}\n`);
    return EXIT_FAILED;
  }
  // Grace covers the workers' own deadline plus closing the database.
  closeWithGrace({ delay: config.env.shutdownGraceMs + 10_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'fatal error; shutting down');
    else log.info({ signal }, 'shutting down');
    await running.stop();
    log.info('stopped');
  });
  return 'running';
}

export const command: Command = {
  usage: USAGE,
  async run(io: CliIo) {
    const values = parseCommandArgs(io.argv, {});
    if (values.help === true) {
      io.stdout.write(USAGE);
      return EXIT_OK;
    }
    return serve(io.env, io.stderr);
  },
};
