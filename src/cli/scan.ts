/**
 * `bucketbridge scan TASK`: start a reconciliation scan through the database.
 *
 * With DATABASE_URL the scan is queued for the service's scan workers (any
 * process of the deployment runs it) and the command prints its id; --wait
 * follows it to the end. --run (implied with the embedded database, which
 * serves one process at a time) runs it in this process instead: it lists,
 * compares and queues the reconcile jobs, which the service's workers copy.
 */
import { parseArgs } from 'node:util';
import { loadEnv, type Env } from '../config/env.js';
import { ConfigError } from '../config/validate.js';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../db/embedded.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { AppError } from '../errors.js';
import { createLogger } from '../logger.js';
import { startBoss } from '../queue/boss.js';
import { StoreCache } from '../replication/stores.js';
import { ScanRunner } from '../scan/runner.js';
import { TERMINAL_STATES, type ScanRecord } from '../scan/scan-repo.js';
import { ScanService } from '../scan/scans.js';
import type { ScanRequest } from '../scan/scope.js';
import { TaskRegistry } from '../tasks/registry.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE, UsageError, type CliIo, type Command } from './command.js';

const USAGE = `Usage: bucketbridge scan TASK [options]

Start a reconciliation scan of TASK: list the source and destination buckets in
key order, compare them, and queue a reconcile job for every key missing on the
destination, differing in size or content, or (when the task allows deletes)
only on the destination. One scan per task runs at a time; a scan requested
while another is queued or running is recorded as skipped.

Database: DATABASE_URL (the service's database): the scan is queued for the
service's scan workers. Without DATABASE_URL the embedded database under
BB_DATA_DIR (default ./.data) is used, which serves one process at a time: stop
the service first; the scan then runs in this process (as with --run) and the
jobs it queues are copied when the service runs again.

Scope (default: the task's prefixes, or the whole bucket):
  --prefix P              only keys under P (repeatable; within the task's own prefixes)
  --prefix-list KEY       read the prefixes, one per line, from object KEY of the source bucket
  --prefix-list-bucket B  ... from bucket B instead (same endpoint and credentials as the source)
  --include GLOB          only keys matching GLOB (repeatable; * ** ? [..] {a,b})
  --exclude GLOB          not keys matching GLOB (repeatable)
  --min-size BYTES        only objects of at least BYTES
  --max-size BYTES        only objects of at most BYTES
  --modified-after TIME   only objects modified after TIME (ISO 8601)

Options:
  --wait                  wait for the scan to end, printing progress to stderr
  --run                   run the scan in this process (implies --wait); the task's
                          credential env vars must be set here
  --json                  print the scan record as JSON on stdout (default: one line)
  -h, --help              show this help

Exit status: 0 completed (or queued, without --wait); 1 failed, cancelled or
skipped, or a database error; 2 wrong invocation.
`;

const OPTIONS = {
  prefix: { type: 'string', multiple: true },
  'prefix-list': { type: 'string' },
  'prefix-list-bucket': { type: 'string' },
  include: { type: 'string', multiple: true },
  exclude: { type: 'string', multiple: true },
  'min-size': { type: 'string' },
  'max-size': { type: 'string' },
  'modified-after': { type: 'string' },
  wait: { type: 'boolean' },
  run: { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function bytes(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`--${name} must be a whole number of bytes`);
  return Number(value);
}

export function requestFromArgs(values: ReturnType<typeof parse>['values']): ScanRequest {
  const request: ScanRequest = {};
  if (values.prefix) request.prefixes = values.prefix;
  if (values['prefix-list-bucket'] !== undefined && values['prefix-list'] === undefined) {
    throw new UsageError('--prefix-list-bucket needs --prefix-list');
  }
  if (values['prefix-list'] !== undefined) {
    request.prefixList = { key: values['prefix-list'], ...(values['prefix-list-bucket'] ? { bucket: values['prefix-list-bucket'] } : {}) };
  }
  if (values.include) request.include = values.include;
  if (values.exclude) request.exclude = values.exclude;
  const min = bytes('min-size', values['min-size']);
  const max = bytes('max-size', values['max-size']);
  if (min !== undefined) request.minSize = min;
  if (max !== undefined) request.maxSize = max;
  if (values['modified-after'] !== undefined) request.modifiedAfter = values['modified-after'];
  return request;
}

function summary(s: ScanRecord): string {
  const c = s.counters;
  const differences = c.missing + c.sizeDiffers + c.contentDiffers + c.extra + c.uncompared;
  return (
    `scan ${s.id} of ${s.taskId}: ${s.state}` +
    (s.state === 'skipped' ? ` (scan ${s.skippedFor} is active)` : '') +
    ` · listed ${c.sourceKeys} source / ${c.destinationKeys} destination` +
    ` · differences ${differences} (missing ${c.missing}, size ${c.sizeDiffers}, content ${c.contentDiffers}, extra ${c.extra}` +
    (c.uncompared ? `, uncompared ${c.uncompared}` : '') +
    `) · jobs queued ${c.jobsQueued}` +
    (c.jobsAlreadyQueued ? ` (+${c.jobsAlreadyQueued} already queued)` : '') +
    (s.error ? ` · error: ${s.error}` : '')
  );
}

function record(s: ScanRecord): Record<string, unknown> {
  return { ...s, createdAt: s.createdAt.toISOString(), startedAt: s.startedAt?.toISOString() ?? null, heartbeatAt: s.heartbeatAt?.toISOString() ?? null, finishedAt: s.finishedAt?.toISOString() ?? null };
}

export const command: Command = {
  usage: USAGE,
  async run(io: CliIo) {
    const { values, positionals } = parse(io.argv);
    if (values.help === true) {
      io.stdout.write(USAGE);
      return EXIT_OK;
    }
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'name the task to scan' : `one task at a time (got ${positionals.join(', ')})`);
    const taskId = positionals[0]!;
    const request = requestFromArgs(values);
    let env: Env;
    try {
      env = loadEnv(io.env);
    } catch (err) {
      if (err instanceof ConfigError) throw new UsageError(`invalid configuration: ${err.message}`);
      throw err;
    }
    const runHere = values.run === true || env.databaseUrl === undefined;
    const wait = values.wait === true || runHere;
    const log = createLogger(io.env.LOG_LEVEL ?? 'warn', io.stderr as unknown as { write(msg: string): void });
    let embedded: EmbeddedDatabase | undefined;
    let connectionString = env.databaseUrl;
    const cleanup: (() => Promise<unknown>)[] = [];
    const onSignal = () => abort.abort();
    const abort = new AbortController();
    try {
      if (connectionString === undefined) {
        io.stderr.write(`bucketbridge scan: DATABASE_URL unset, using the embedded database under ${env.dataDir}; the scan runs in this process\n`);
        embedded = await startEmbeddedPostgres({ dataDir: env.dataDir });
        cleanup.push(() => embedded!.stop());
        connectionString = embedded.connectionString;
      }
      const pool = createPool(connectionString, 4);
      cleanup.push(() => pool.end());
      await migrate(pool);
      const boss = await startBoss(connectionString, log, undefined, { supervise: false, schedule: false });
      cleanup.push(() => boss.stop({ graceful: false, wait: true, timeout: 5_000 }));
      const tasks = new TaskRegistry(pool);
      await tasks.load();
      const scans = new ScanService(pool, boss, tasks, log);
      let result;
      try {
        result = await scans.request(taskId, request, 'cli');
      } catch (err) {
        if (err instanceof AppError && err.statusCode === 400) throw new UsageError(err.message);
        if (err instanceof AppError && err.statusCode === 404) {
          io.stderr.write(`bucketbridge scan: ${err.message}\n`);
          return EXIT_USAGE;
        }
        throw err;
      }
      let scan = result.scan;
      if (!result.started) {
        io.stderr.write(`bucketbridge scan: scan ${scan.skippedFor} of ${taskId} is already queued or running; this request was recorded as skipped scan ${scan.id}\n`);
        if (values.json) io.stdout.write(`${JSON.stringify(record(scan))}\n`);
        return EXIT_FAILED;
      }
      io.stderr.write(`bucketbridge scan: scan ${scan.id} of ${taskId} ${runHere ? 'started' : 'queued'}\n`);
      if (!wait) {
        io.stdout.write(values.json ? `${JSON.stringify(record(scan))}\n` : `${scan.id}\n`);
        return EXIT_OK;
      }
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let lastLine = '';
      const report = (s: ScanRecord) => {
        const line = summary(s);
        if (line !== lastLine) io.stderr.write(`${line}\n`);
        lastLine = line;
      };
      const progress = setInterval(() => {
        void scans.get(taskId, scan.id).then((s) => s && s.state === 'running' && report(s), () => {});
      }, 2_000);
      cleanup.push(async () => clearInterval(progress));
      if (runHere) {
        const stores = new StoreCache(log, io.env, { pool });
        cleanup.push(() => stores.close());
        const runner = new ScanRunner({ pool, boss, tasks, stores, log, env: io.env });
        scan = (await runner.run(scan.id, abort.signal)) ?? scan;
        if (abort.signal.aborted && scan.state === 'queued') {
          io.stderr.write(`bucketbridge scan: interrupted; scan ${scan.id} was handed back to the queue at ${JSON.stringify(scan.position)} and resumes in the service\n`);
        }
      }
      // Queued for the service, or claimed by a service worker before this process could run it.
      while (!TERMINAL_STATES.includes(scan.state) && !abort.signal.aborted) {
        await new Promise((r) => setTimeout(r, 1_000));
        scan = (await scans.get(taskId, scan.id)) ?? scan;
      }
      report(scan);
      if (values.json) io.stdout.write(`${JSON.stringify(record(scan))}\n`);
      return scan.state === 'completed' ? EXIT_OK : EXIT_FAILED;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      io.stderr.write(`bucketbridge scan: failed: ${(err as Error).message}\n`);
      return EXIT_FAILED;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      for (const fn of cleanup.reverse()) await fn().catch(() => {});
    }
  },
};

/** Run the command against this process's streams and environment; resolves with the exit code. */
export async function scanCommand(argv: string[]): Promise<number> {
  const io: CliIo = { argv, env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  try {
    const code = await command.run(io);
    return code === 'running' ? EXIT_OK : code;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`bucketbridge scan: ${err.message}\nRun "bucketbridge scan --help" for usage.\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`bucketbridge scan: ${(err as Error).message}\n`);
    return EXIT_FAILED;
  }
}
