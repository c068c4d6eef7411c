/**
 * Wake-ups for the replication workers through PostgreSQL LISTEN/NOTIFY.
 *
 * An idle ReplicationWorkers dispatcher polls for jobs every `pollIntervalMs`
 * (500 ms), so a job queued while it sleeps waited up to that long before its
 * copy started. Jobs are often queued by another process than the one running
 * the workers (an intake-only deployment, a scan in another worker process, the
 * CLI, the bench), so the signal has to go through the database: whoever commits
 * ready replicate jobs also runs `pg_notify(REPLICATE_READY_CHANNEL, '')` in the
 * same transaction (enqueue.ts, intake-statement.ts), or, for the intake's
 * statements inside its notify window, in a transaction of its own issued after
 * theirs committed (IntakeEnqueuer, "Wake-ups"). PostgreSQL
 * delivers a notification when, and only if, its transaction commits, so a
 * listener is never woken for jobs it cannot see yet, nor for jobs that were
 * rolled back. The payload is empty: nothing about tasks or keys leaves the
 * transaction, and identical notifications of one transaction collapse into one.
 *
 * Best effort, by design: polling stays, unchanged, as the fallback. A
 * notification can be missed (the listener is reconnecting, the database
 * restarted, a nudge reached the dispatcher in the middle of a fetch that
 * started before the job committed), and then the job starts at the next poll,
 * as it did before this existed: a missed notification costs at most one poll
 * interval, never a job. So this class never fails anything: connection
 * problems are logged once per outage and retried with backoff in the
 * background, and every (re)connection is followed by one wake-up, because jobs
 * may have been queued while nobody was listening.
 *
 * One dedicated connection per process (a pooled one cannot hold a LISTEN: the
 * pool would hand it to others and close it when idle), with the same
 * connection string as the pool, so credentials and TLS (`sslmode` and friends
 * in the URL) are the same. It needs a session-mode connection: behind a
 * transaction-mode pooler (PgBouncer) LISTEN does not work, and the workers
 * simply keep polling.
 */
import pg from 'pg';
import type { Logger } from 'pino';

/** The channel the replicate queue's wake-ups go through. Per database, as every LISTEN. */
export const REPLICATE_READY_CHANNEL = 'bb_replicate_ready';

/** The statement that sends a wake-up; run it inside the transaction that queues the jobs, or after that one committed. */
export const NOTIFY_REPLICATE_READY_SQL = `SELECT pg_notify('${REPLICATE_READY_CHANNEL}', '')`;

export interface JobWakeupsOptions {
  connectionString: string;
  log: Logger;
  /** Called on a notification (throttled, see minWakeIntervalMs) and once after every (re)connection. Must be cheap; must not throw. */
  onWake: () => void;
  channel?: string;
  /**
   * Wakes are at least this far apart (default 50 ms): the first notification
   * after a quiet spell wakes at once, the ones that follow within the interval
   * share one trailing wake at its end. So a storm of notifications (the intake
   * commits hundreds of batches a second) costs at most 1000/minWakeIntervalMs
   * wakes a second, i.e. at most that many job fetches, instead of one per
   * notification; and the trailing wake also catches jobs that a nudge landing
   * in the middle of a fetch missed.
   */
  minWakeIntervalMs?: number;
  /** Reconnect backoff: first delay (default 250 ms), doubled per failed attempt up to the cap (default 30 s), with jitter. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /**
   * How often the idle connection is checked with `SELECT 1` (default 30 s). A
   * connection that died without a FIN (a network partition, a host that went
   * away) would otherwise look alive forever and the process would silently
   * fall back to polling; a check that fails or takes longer than
   * queryTimeoutMs counts as a lost connection.
   */
  pingIntervalMs?: number;
  /** Timeout of LISTEN and of the checks (default 10 s). */
  queryTimeoutMs?: number;
  /** Timeout of a connection attempt (default 5 s, as the pool's). */
  connectTimeoutMs?: number;
}

export interface JobWakeupStats {
  /** Notifications received on the channel. */
  notifications: number;
  /** onWake calls (notifications after throttling, plus one per connection). */
  wakes: number;
  /** Successful LISTENs (the first one included). */
  connections: number;
  /** Connections lost, or attempts that failed. */
  failures: number;
}

type State = 'idle' | 'connecting' | 'listening' | 'waiting' | 'closed';

export class JobWakeups {
  private readonly channel: string;
  private readonly minWakeIntervalMs: number;
  private state: State = 'idle';
  private client?: pg.Client;
  /** Bumped whenever a client is given up: events of older clients are ignored. */
  private generation = 0;
  private connecting?: Promise<void>;
  private reconnectTimer?: NodeJS.Timeout;
  private pingTimer?: NodeJS.Timeout;
  /** Failed attempts in a row (the backoff exponent). */
  private attempts = 0;
  /** When the current outage began (undefined while connected): one log line per outage. */
  private outageSince?: number;
  private lastWakeAt = Number.NEGATIVE_INFINITY;
  private trailingWake?: NodeJS.Timeout;
  private readonly counts: JobWakeupStats = { notifications: 0, wakes: 0, connections: 0, failures: 0 };

  constructor(private readonly options: JobWakeupsOptions) {
    this.channel = options.channel ?? REPLICATE_READY_CHANNEL;
    this.minWakeIntervalMs = options.minWakeIntervalMs ?? 50;
  }

  /**
   * Connect and LISTEN. Never rejects: when the first attempt fails, the
   * failure is logged and retried in the background like any later outage
   * (the workers poll meanwhile).
   */
  async start(): Promise<void> {
    if (this.state !== 'idle') return;
    await this.connect();
  }

  /** True while the LISTEN is in place. */
  get listening(): boolean {
    return this.state === 'listening';
  }

  stats(): JobWakeupStats {
    return { ...this.counts };
  }

  /** Stop listening and cancel every timer; a pending wake is dropped. Safe to call more than once. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.generation++;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.pingTimer);
    clearTimeout(this.trailingWake);
    this.trailingWake = undefined;
    // An attempt in flight sees `closed` when it returns and ends its own client.
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    if (client) await end(client);
  }

  private connect(): Promise<void> {
    this.connecting = this.attempt().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async attempt(): Promise<void> {
    const generation = ++this.generation;
    this.state = 'connecting';
    const client = new pg.Client({
      connectionString: this.options.connectionString,
      application_name: 'bucketbridge-wakeups',
      connectionTimeoutMillis: this.options.connectTimeoutMs ?? 5_000,
      // Client-side: a timed-out query rejects and the client is then given up (end() destroys its socket).
      query_timeout: this.options.queryTimeoutMs ?? 10_000,
    });
    this.client = client;
    // Without an 'error' listener a dropped connection would crash the process.
    client.on('error', (err) => this.lost(generation, err));
    client.on('end', () => this.lost(generation, new Error('connection ended')));
    client.on('notification', (msg) => {
      if (generation !== this.generation || msg.channel !== this.channel) return;
      this.counts.notifications++;
      this.wake();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.channel)}`);
    } catch (err) {
      this.lost(generation, err);
      return;
    }
    if (generation !== this.generation) {
      // Closed (or given up) while connecting.
      if (this.client === client) this.client = undefined;
      await end(client);
      return;
    }
    this.state = 'listening';
    this.counts.connections++;
    if (this.outageSince !== undefined) {
      this.options.log.info({ channel: this.channel, outageMs: Date.now() - this.outageSince, attempts: this.attempts }, 'job wake-up listener is back');
    }
    this.outageSince = undefined;
    this.attempts = 0;
    this.schedulePing(generation);
    // Jobs may have been queued while nobody listened (the outage, or before the first LISTEN).
    this.wake();
  }

  /** The connection (or an attempt) failed: give the client up and try again later. */
  private lost(generation: number, err: unknown): void {
    if (generation !== this.generation || this.state === 'closed') return;
    this.generation++;
    this.counts.failures++;
    clearTimeout(this.pingTimer);
    const client = this.client;
    this.client = undefined;
    if (client) void end(client);
    if (this.outageSince === undefined) {
      this.outageSince = Date.now();
      this.options.log.warn(
        { err, channel: this.channel },
        'job wake-up listener has no database connection; workers poll for jobs until it is back',
      );
    } else {
      this.options.log.debug({ err, attempts: this.attempts }, 'job wake-up listener: reconnect failed');
    }
    const min = this.options.reconnectMinMs ?? 250;
    const max = this.options.reconnectMaxMs ?? 30_000;
    const delay = Math.min(max, min * 2 ** Math.min(this.attempts, 20));
    this.attempts++;
    this.state = 'waiting';
    // Jitter: processes that lost the same database do not all come back in the same instant.
    this.reconnectTimer = setTimeout(() => {
      if (this.state === 'waiting') void this.connect();
    }, delay / 2 + Math.random() * (delay / 2));
    this.reconnectTimer.unref();
  }

  private schedulePing(generation: number): void {
    const interval = this.options.pingIntervalMs ?? 30_000;
    this.pingTimer = setTimeout(() => {
      const client = this.client;
      if (generation !== this.generation || !client) return;
      client.query('SELECT 1').then(
        () => {
          if (generation === this.generation) this.schedulePing(generation);
        },
        (err: unknown) => this.lost(generation, err),
      );
    }, interval);
    this.pingTimer.unref();
  }

  /** Leading edge at once, then at most one trailing wake per minWakeIntervalMs. */
  private wake(): void {
    if (this.trailingWake || this.state === 'closed') return; // a wake is already due; this one joins it
    const wait = this.lastWakeAt + this.minWakeIntervalMs - performance.now();
    if (wait <= 0) {
      this.fire();
      return;
    }
    this.trailingWake = setTimeout(() => {
      this.trailingWake = undefined;
      if (this.state !== 'closed') this.fire();
    }, wait);
    this.trailingWake.unref();
  }

  private fire(): void {
    this.lastWakeAt = performance.now(); // monotonic: a clock step cannot hold wakes back
    this.counts.wakes++;
    try {
      this.options.onWake();
    } catch (err) {
      this.options.log.warn({ err }, 'job wake-up handler failed');
    }
  }
}

/** End a client without waiting on a dead peer: end() destroys the socket when a query is pending. */
async function end(client: pg.Client): Promise<void> {
  await Promise.race([client.end().catch(() => {}), new Promise((r) => setTimeout(r, 2_000).unref())]);
}
