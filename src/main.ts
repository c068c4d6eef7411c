/**
 * Process entry: start the service on the configured (or embedded) database
 * and stop it gracefully on SIGTERM/SIGINT. Start-up failures print one line
 * naming the problem and exit non-zero, with the embedded database stopped.
 */
import closeWithGrace from 'close-with-grace';
import { loadConfig } from './config/load.js';
import { ConfigError } from './config/validate.js';
import { createLogger } from './logger.js';
import { startService, StartupError } from './service.js';

export async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bucketbridge: invalid configuration: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.env.logLevel);
  let service;
  try {
    service = await startService(config, log);
  } catch (err) {
    const message = err instanceof StartupError ? err.message : (err as Error).message;
    log.error({ err }, 'start-up failed');
    process.stderr.write(`bucketbridge: cannot start: ${message}\n`);
    process.exit(1);
  }
  const running = service;
  // Grace covers the workers' own deadline plus closing the database.
  closeWithGrace({ delay: config.env.shutdownGraceMs + 10_000 }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'fatal error; shutting down');
    else log.info({ signal }, 'shutting down');
    await running.stop();
    log.info('stopped');
  });
}

await main();
