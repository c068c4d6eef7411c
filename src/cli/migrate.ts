/**
 * `bucketbridge migrate`: apply pending migrations and exit — a deploy step (job,
 * init container) run once before new service processes roll out, so they don't
 * race each other to migrate. The service still migrates at start-up; this is
 * the same runner (migrations are idempotent and serialised by an advisory lock).
 */
import { loadEnv, type Env } from '../config/env.js';
import { ConfigError } from '../config/validate.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { EXIT_FAILED, EXIT_OK, parseCommandArgs, UsageError, type CliIo, type Command } from './command.js';

const USAGE = `Usage: bucketbridge migrate

Apply the pending database migrations and exit. Prints the name of each migration
applied, one per line (nothing when the schema is current); a summary goes to stderr.

Database: DATABASE_URL, or when unset the embedded PostgreSQL under BB_DATA_DIR
(default ./.data). The embedded cluster can serve one process at a time, so stop
the service before migrating it (the service also migrates when it starts).

Options:
  -h, --help   show this help
`;

function readEnv(env: NodeJS.ProcessEnv): Env {
  try {
    return loadEnv(env);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(`invalid configuration: ${err.message}`);
    throw err;
  }
}

export const command: Command = {
  usage: USAGE,
  async run(io: CliIo) {
    const values = parseCommandArgs(io.argv, {});
    if (values.help === true) {
      io.stdout.write(USAGE);
      return EXIT_OK;
    }
    const env = readEnv(io.env);
    let embedded: EmbeddedDatabase | undefined;
    let applied: string[];
    try {
      let connectionString = env.databaseUrl;
      if (connectionString === undefined) {
        io.stderr.write(`bucketbridge migrate: DATABASE_URL unset, using the embedded database under ${env.dataDir}\n`);
        embedded = await startEmbeddedPostgres({ dataDir: env.dataDir });
        connectionString = embedded.connectionString;
      }
      const pool = createPool(connectionString, 1);
      try {
        applied = await migrate(pool);
      } finally {
        await pool.end();
      }
    } catch (err) {
      io.stderr.write(`bucketbridge migrate: failed: ${(err as Error).message}\n`);
      return EXIT_FAILED;
    } finally {
      await embedded?.stop();
    }
    for (const name of applied) io.stdout.write(`${name}\n`);
    io.stderr.write(`bucketbridge migrate: ${applied.length === 0 ? 'schema is up to date' : `${applied.length} applied`}\n`);
    return EXIT_OK;
  },
};
